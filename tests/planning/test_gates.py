"""Plate-reader gates: shared readers where roads merge, minimum counts, budgets, bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from vigila.core.errors import InvalidInput
from vigila.planning import gates

LON0, LAT0 = 11.097, 43.88
M_PER_DEG_LAT = math.radians(1) * 6_371_008.8
M_PER_DEG_LON = M_PER_DEG_LAT * math.cos(math.radians(LAT0))


def ll(x: float, y: float) -> list[float]:
    return [LON0 + x / M_PER_DEG_LON, LAT0 + y / M_PER_DEG_LAT]


def road(rid: str, *xy: tuple[float, float], **props: Any) -> dict[str, Any]:
    return {"type": "Feature", "properties": {"id": rid, **props},
            "geometry": {"type": "LineString", "coordinates": [ll(x, y) for x, y in xy]}}


# The city: a 1 km square centred on the origin.
BOUNDARY = {"type": "Polygon", "coordinates": [[ll(-500, -500), ll(500, -500), ll(500, 500),
                                                 ll(-500, 500), ll(-500, -500)]]}


def problem(*roads: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"roads": {"type": "FeatureCollection", "features": list(roads)},
            "boundary": BOUNDARY, **extra}


def solve(doc: dict[str, Any]) -> gates.GatesResult:
    return gates.solve(gates.parse_problem(doc))


def four_roads(**weights: float) -> list[dict[str, Any]]:
    """One road through each side of the square, each far from the others."""
    ends = {"nord": ((0, 800), (0, 300)), "sud": ((0, -800), (0, -300)),
            "est": ((800, 0), (300, 0)), "ovest": ((-800, 0), (-300, 0))}
    return [road(name, *ends[name], **({"weight": weights[name]} if name in weights else {}))
            for name in ends]


def test_two_roads_merging_just_inside_share_one_reader() -> None:
    # A comes in from the west; B from the south-west, ending on A 60 m inside. At the
    # boundary they are ~40 m apart (two readers); 50 m in, one reader is within 15 m of both.
    doc = problem(road("A", (-800, 40), (-440, 0), (0, 0)),
                  road("B", (-800, -200), (-440, 0)))
    r = solve(doc)
    assert r.status == "OPTIMAL" and r.proven_minimum == 1
    assert len(r.readers) == 1
    (reader,) = r.readers
    assert sorted(reader.roads) == ["A", "B"]
    assert not reader.on_boundary and 0 < reader.inside_m <= 200
    assert r.covered_roads == r.entering_roads == 2
    assert r.greedy_readers == 1


def test_n_separate_roads_need_n_readers_on_the_boundary() -> None:
    r = solve(problem(*four_roads()))
    assert r.proven_minimum == 4 and r.lower_bound == 4
    assert len(r.readers) == 4
    assert all(rd.on_boundary for rd in r.readers)  # nearest the boundary among equals
    assert r.covered_pct == pytest.approx(100)


def test_with_k_readers_the_heaviest_roads_are_covered() -> None:
    weights = {"nord": 10, "sud": 50, "est": 30, "ovest": 5}
    r = solve(problem(*four_roads(**weights), count=2))
    assert r.mode == "budget" and len(r.readers) == 2
    assert {s.id for s in r.roads if s.covered} == {"sud", "est"}
    assert r.covered_weight == pytest.approx(80)
    assert r.total_weight == pytest.approx(95)
    assert r.greedy_covered_weight == pytest.approx(80)


def test_a_budget_above_the_minimum_uses_no_more_readers_than_needed() -> None:
    doc = problem(road("A", (-800, 40), (-440, 0), (0, 0)), road("B", (-800, -200), (-440, 0)),
                  count=5)
    r = solve(doc)
    assert len(r.readers) == 1 and r.covered_pct == pytest.approx(100)


def test_roads_that_do_not_enter_are_reported_apart() -> None:
    doc = problem(*four_roads(), road("interna", (-100, 100), (100, 100)),
                  road("esterna", (700, -300), (700, 300)),
                  road("al confine", (800, 200), (500, 200)))  # ends on the line: not in
    r = solve(doc)
    assert r.not_entering == ["interna", "esterna", "al confine"]
    assert r.entering_roads == 4 and len(r.readers) == 4
    assert not any(s.entering for s in r.roads if s.id in r.not_entering)


def test_outputs(tmp_path: Path) -> None:
    prob = gates.parse_problem(problem(*four_roads(), road("interna", (-100, 100), (100, 100))))
    result = gates.solve(prob)
    out = tmp_path / "gates.geojson"
    out.write_text(json.dumps(gates.to_geojson(result)))
    parsed = json.loads(out.read_text())
    readers = [f for f in parsed["features"] if f["properties"]["role"] == "reader"]
    roads = [f for f in parsed["features"] if f["properties"]["role"] == "road"]
    assert len(readers) == 4 and len(roads) == 5
    assert all(f["geometry"]["type"] == "Point" for f in readers)
    png = tmp_path / "gates.png"
    gates.render_png(prob, result, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = gates.summary(result)
    assert "proven minimum 4" in text and "interna" in text


def test_load_problem_with_linked_roads(tmp_path: Path) -> None:
    (tmp_path / "roads.geojson").write_text(json.dumps(problem(*four_roads())["roads"]))
    (tmp_path / "gates.json").write_text(json.dumps({"roads": "roads.geojson",
                                                     "boundary": BOUNDARY, "reach_m": 20}))
    assert len(gates.solve(gates.load_problem(tmp_path / "gates.json")).readers) == 4


# --- bad input ---------------------------------------------------------------

def fault(doc: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        gates.parse_problem(doc)
    return info.value


def fields(err: InvalidInput) -> list[str]:
    return [e.field for e in err.errors]


def test_no_road_enters() -> None:
    err = fault(problem(road("interna", (-100, 100), (100, 100))))
    assert fields(err) == ["roads"] and "no road crosses the boundary" in err.errors[0].message


def test_bad_input_names_the_field() -> None:
    assert fields(fault(problem(*four_roads(), count=0))) == ["count"]
    assert fields(fault(problem(*four_roads(), reach_m=0))) == ["reach_m"]
    dup = four_roads()
    dup[1]["properties"]["id"] = "nord"
    err = fault(problem(*dup))
    assert fields(err) == ["roads"] and "nord" in err.errors[0].message
    pointy = four_roads()
    pointy[2]["geometry"] = {"type": "Point", "coordinates": ll(0, 0)}
    assert fields(fault(problem(*pointy))) == ["roads.features.2.geometry.type"]
    assert fields(fault({**problem(*four_roads()), "boundary": {"type": "Polygon",
                                                                "coordinates": []}})) == [
        "boundary.coordinates"]
    assert fields(fault({"roads": {"type": "FeatureCollection", "features": []},
                         "boundary": BOUNDARY})) == ["roads.features"]
    bad_weight = four_roads()
    bad_weight[0]["properties"]["weight"] = -1
    assert fields(fault(problem(*bad_weight))) == ["roads.features.0.properties.weight"]
