"""Planning benchmark: camera coverage (exact CP-SAT beside greedy) and plate-reader gates.

Generates, from a seed, a city shaped like Prato (lon 11.097, lat 43.88): a jittered street
grid, perimeter blocks with courtyards and detached buildings, schools with their forecourts
as areas, squares, streets as lines and point targets (shop doors, bus stops, ZTL gates);
1,000 candidate poles and 5,000 targets. The peer is the greedy baseline (best marginal weight
per euro), run on the same candidate options in the same process.

    python bench/planning.py [--seed 7] [--no-write]

Prints the figures and records them in docs/BENCHMARKS.md, section "Planning (coverage)".
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from benchdoc import cpu_name, put_section
from shapely.geometry import mapping

from vigila.planning import coverage, gates

ROOT = Path(__file__).resolve().parent.parent
LON0, LAT0 = 11.097, 43.88
FRAME = coverage.LocalFrame(LON0, LAT0)
SECTION = "## Planning (coverage)"


def _lonlat(geom: Any) -> dict[str, Any]:
    g: dict[str, Any] = _plain(mapping(shapely.set_precision(FRAME.unproject(geom), 1e-7)))
    return g


def _plain(value: Any) -> Any:
    """Shapely's mapping gives tuples; GeoJSON wants lists."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _fc(features: list[tuple[Any, dict[str, Any]]]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": _lonlat(g), "properties": p} for g, p in features]}


def _bearing(a: tuple[float, float], b: tuple[float, float]) -> float:
    return math.degrees(math.atan2(b[0] - a[0], b[1] - a[1])) % 360.0


def coverage_instance(seed: int, candidates: int = 1000, targets: int = 5000) -> dict[str, Any]:
    rng = random.Random(seed)
    n, spacing = 29, 110.0
    half = (n - 1) * spacing / 2
    node = [[(i * spacing - half + rng.uniform(-12, 12), j * spacing - half + rng.uniform(-12, 12))
             for j in range(n)] for i in range(n)]
    streets = []
    for i in range(n):
        for j in range(n):
            for di, dj in ((1, 0), (0, 1)):
                if i + di < n and j + dj < n and rng.random() > 0.12:
                    streets.append((node[i][j], node[i + di][j + dj]))
    buildings: list[Any] = []
    schools: list[Any] = []
    squares: list[Any] = []
    for i in range(n - 1):
        for j in range(n - 1):
            quad = shapely.Polygon([node[i][j], node[i + 1][j], node[i + 1][j + 1],
                                    node[i][j + 1]])
            inset = quad.buffer(-9.0, join_style="mitre")
            kind = rng.random()
            if kind < 0.08 and len(squares) < 12:
                squares.append(inset)
            elif kind < 0.12 and len(schools) < 20:
                minx, miny, maxx, maxy = inset.bounds
                mid = (miny + maxy) / 2
                buildings.append(inset.intersection(shapely.box(minx, mid + 3, maxx, maxy)))
                schools.append(inset.intersection(shapely.box(minx, miny, maxx, mid - 3)))
            elif kind < 0.65:
                court = inset.buffer(-16.0, join_style="mitre")
                buildings.append(inset.difference(court) if not court.is_empty else inset)
            else:
                minx, miny, maxx, maxy = inset.bounds
                cols, rows = rng.randint(1, 2), rng.randint(2, 3)
                w, h = (maxx - minx) / cols, (maxy - miny) / rows
                for c in range(cols):
                    for r in range(rows):
                        cell = shapely.box(minx + c * w + 3, miny + r * h + 3,
                                           minx + (c + 1) * w - 3, miny + (r + 1) * h - 3)
                        part = inset.intersection(cell)
                        if part.geom_type == "Polygon" and part.area > 40:
                            buildings.append(part)
    buildings = [shapely.make_valid(b) for b in buildings if b.geom_type == "Polygon"]
    buildings = [b for b in buildings if b.geom_type == "Polygon" and b.area > 40]

    def roadside(offset: float) -> tuple[tuple[float, float], float]:
        a, b = rng.choice(streets)
        t = rng.uniform(0.1, 0.9)
        bearing = _bearing(a, b)
        side = rng.choice((-1.0, 1.0))
        nx, ny = math.cos(math.radians(bearing)), -math.sin(math.radians(bearing))
        x = a[0] + t * (b[0] - a[0]) + side * offset * nx
        y = a[1] + t * (b[1] - a[1]) + side * offset * ny
        return (x, y), bearing

    target_features: list[tuple[Any, dict[str, Any]]] = []
    for k, (a, b) in enumerate(streets):
        line = shapely.LineString([a, b])
        cls = rng.choice((1.0, 1.0, 1.0, 2.0, 4.0))
        target_features.append((line, {"id": f"via-{k}", "kind": "street",
                                       "weight": round(cls * line.length / 100, 3)}))
    for k, s in enumerate(schools):
        target_features.append((s, {"id": f"scuola-{k}", "kind": "school", "weight": 40}))
    for k, s in enumerate(squares):
        target_features.append((s, {"id": f"piazza-{k}", "kind": "square", "weight": 25}))
    k = 0
    while len(target_features) < targets:
        (x, y), _ = roadside(rng.uniform(6, 8))
        gate = rng.random() < 0.03
        target_features.append((shapely.Point(x, y), {
            "id": f"punto-{k}", "kind": "gate" if gate else "point",
            "weight": 10 if gate else round(rng.lognormvariate(0, 0.7), 3)}))
        k += 1

    cand_features: list[tuple[Any, dict[str, Any]]] = []
    for k in range(candidates):
        (x, y), bearing = roadside(5.0)
        props: dict[str, Any] = {"id": f"palo-{k}"}
        if rng.random() < 0.3:
            props["headings"] = [round(bearing, 1), round((bearing + 180) % 360, 1),
                                 round((bearing + 90) % 360, 1)]
        if rng.random() < 0.15:
            props["models"] = ["dome-4mp"]
        cand_features.append((shapely.Point(x, y), props))
    models = [
        {"id": "dome-4mp", "range_m": 35, "fov_deg": 100, "price_eur": 900},
        {"id": "bullet-8mp", "range_m": 70, "fov_deg": 60, "price_eur": 1500},
        {"id": "bullet-tele", "range_m": 120, "fov_deg": 30, "price_eur": 2100},
        {"id": "panoramic-360", "range_m": 25, "fov_deg": 360, "price_eur": 2400},
    ]
    existing = []
    for k in range(60):
        (x, y), _ = roadside(5.0)
        existing.append((shapely.Point(x, y), {
            "id": f"esistente-{k}", "heading": round(rng.uniform(0, 360), 1),
            "model": rng.choice(["dome-4mp", "bullet-8mp"])}))
    return {
        "candidates": _fc(cand_features),
        "targets": _fc(target_features),
        "models": models,
        "buildings": _fc([(b, {}) for b in buildings]),
        "existing": _fc(existing),
        "budget": {"count": 120, "eur": 180_000},
        "sample_spacing_m": 20,
        "time_limit_s": 50,
    }


def gates_instance(seed: int, roads: int = 30) -> dict[str, Any]:
    rng = random.Random(seed)
    ring = []
    for k in range(48):
        a = 2 * math.pi * k / 48
        r = 1700 + 150 * math.sin(3 * a) + rng.uniform(-40, 40)
        ring.append((r * math.cos(a), r * math.sin(a)))
    boundary = shapely.Polygon(ring)
    features: list[tuple[Any, dict[str, Any]]] = []
    k = 0
    while k < roads:
        a = 2 * math.pi * (k + rng.uniform(-0.2, 0.2)) / roads
        pts = [((2600 - 100 * s) * math.cos(a + rng.uniform(-0.01, 0.01)),
                (2600 - 100 * s) * math.sin(a + rng.uniform(-0.01, 0.01))) for s in range(14)]
        features.append((shapely.LineString(pts), {"id": f"SR-{k}",
                                                    "weight": rng.randint(2000, 25000)}))
        k += 1
        if k % 5 == 0 and k < roads:  # a side road joining this one ~60 m inside the boundary
            main = shapely.LineString(pts)
            edge = shapely.get_coordinates(main.intersection(boundary.boundary))[0]
            join_at = main.interpolate(main.project(shapely.Point(edge)) + 60)
            join = (join_at.x, join_at.y)
            far = (2500 * math.cos(a + 0.3), 2500 * math.sin(a + 0.3))
            features.append((shapely.LineString([far, join]), {
                "id": f"SP-{k}", "weight": rng.randint(500, 4000)}))
            k += 1
    features.append((shapely.LineString([(2200, -300), (2300, 300)]),
                     {"id": "tangenziale-esterna"}))
    features.append((shapely.LineString([(-200, 0), (200, 50)]), {"id": "via-interna"}))
    return {"roads": _fc(features), "boundary": _lonlat(boundary)}


def _machine() -> tuple[int, str]:
    return os.cpu_count() or 0, cpu_name()


def _write_section(text: str) -> None:
    put_section(ROOT / "docs" / "BENCHMARKS.md", SECTION, None, text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument("--export", type=Path, metavar="DIR",
                    help="write the two instances as problem files for `vigila plan`, and stop")
    args = ap.parse_args(argv)
    if args.export:
        args.export.mkdir(parents=True, exist_ok=True)
        (args.export / "coverage.json").write_text(json.dumps(coverage_instance(args.seed)))
        (args.export / "gates.json").write_text(json.dumps(gates_instance(args.seed)))
        print(f"written: {args.export / 'coverage.json'}, {args.export / 'gates.json'}")
        return 0

    t = time.perf_counter()
    doc = coverage_instance(args.seed)
    gen_s = time.perf_counter() - t
    t = time.perf_counter()
    problem = coverage.parse_problem(doc)
    parse_s = time.perf_counter() - t
    result = coverage.solve(problem)
    print(coverage.summary(result))
    e, g = result.exact, result.greedy
    added_e = e.covered_weight - result.existing_weight
    added_g = g.covered_weight - result.existing_weight
    ratio = added_e / added_g if added_g > 0 else float("nan")

    gdoc = gates_instance(args.seed)
    gproblem = gates.parse_problem(gdoc)
    t = time.perf_counter()
    gmin = gates.solve(gproblem)
    gmin_s = time.perf_counter() - t
    gk = gates.solve(gproblem.model_copy(update={"count": max(1, len(gmin.readers) - 5)}))
    greedy_k_pct = 100 * gk.greedy_covered_weight / gk.total_weight
    print(gates.summary(gmin).splitlines()[1])
    print(f"gates, budget {gk.count}: {gk.covered_pct:.1f} % of entering traffic "
          f"(greedy {greedy_k_pct:.1f} %), {gk.status}, {gk.solve_s:.2f} s")

    cores, cpu = _machine()
    gap = "n/a" if result.gap_pct is None else f"{result.gap_pct:.3f} %"
    rows = [
        ("instance", f"{result.candidates} candidates, {len(result.targets)} targets "
                     f"({result.samples} sample points, {result.groups} solver groups), "
                     f"{len(problem.buildings.features) if problem.buildings else 0} buildings, "
                     f"{len(result.existing)} existing cameras, 4 models; budget "
                     f"{problem.budget.count} cameras and {problem.budget.eur:,.0f} EUR"),
        ("options (site, heading, model)", f"{result.options}"),
        ("generate / parse", f"{gen_s:.2f} s / {parse_s:.2f} s"),
        ("precompute (sampling, line of sight, grouping)", f"{result.precompute_s:.2f} s"),
        ("greedy (peer)", f"{result.greedy_s:.2f} s"),
        ("CP-SAT (model + solve, 2 workers)", f"{result.solve_s:.2f} s "
                                              f"(limit {result.time_limit_s:g} s)"),
        ("status", f"{result.status}, gap {gap}, answer from {result.source}"),
        ("covered weight, exact", f"{e.covered_weight:,.1f} of {result.total_weight:,.1f} "
                                  f"({e.covered_pct:.2f} %), {len(e.cameras)} cameras, "
                                  f"{e.cost_eur:,.0f} EUR"),
        ("covered weight, greedy (peer)", f"{g.covered_weight:,.1f} ({g.covered_pct:.2f} %), "
                                          f"{len(g.cameras)} cameras, {g.cost_eur:,.0f} EUR"),
        ("existing cameras alone", f"{result.existing_weight:,.1f}"),
        ("weight added, exact / greedy", f"{added_e:,.1f} / {added_g:,.1f} = {ratio:.4f}"),
        ("gates: minimum readers", f"{len(gmin.readers)} for {gmin.entering_roads} entering "
                                   f"roads (greedy {gmin.greedy_readers}), {gmin.status}, "
                                   f"{gmin_s:.2f} s"),
        (f"gates: best {gk.count} readers", f"{gk.covered_pct:.1f} % of entering traffic "
                                            f"(greedy {greedy_k_pct:.1f} %), {gk.solve_s:.2f} s"),
    ]
    for k, v in rows:
        print(f"{k:48} {v}")
    if not args.no_write:
        body = "\n".join(f"| {k} | {v} |" for k, v in rows)
        _write_section(
            f"{SECTION}\n\n"
            "Camera placement as a maximal covering location problem: CP-SAT against the peer,\n"
            "the greedy baseline (best marginal weight per euro), on the same options in the same\n"
            "run; then plate-reader gates on 30 entering roads (5 pairs merging inside the\n"
            "boundary). The instance is generated from the seed, shaped like Prato.\n\n"
            f"Command: `python bench/planning.py --seed {args.seed}`  \n"
            f"Machine: {cores} CPUs ({cpu}), Python {sys.version.split()[0]}, OR-Tools "
            f"{_ortools_version()}, {time.strftime('%Y-%m-%d')}\n\n"
            "| figure | value |\n|---|---|\n" + body + "\n\n"
            "CP-SAT runs its `max_lp` worker (`coverage.cp_solver`): with the default\n"
            "two-worker portfolio the covering constraints become clauses that its LP leaves\n"
            "out, and on this instance the bound was still 72 % above the incumbent after\n"
            "50 s.\n\n")
        print("recorded in docs/BENCHMARKS.md")
    return 0


def _ortools_version() -> str:
    from importlib.metadata import version

    return version("ortools")


if __name__ == "__main__":
    np.seterr(all="ignore")
    raise SystemExit(main())
