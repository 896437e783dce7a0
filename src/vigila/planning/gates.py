"""Plate-reader gates: where to put readers so that every road into the city is watched.

A road *enters* when it crosses the city boundary (part of it inside, part outside). Readers
may stand where a road crosses the boundary, or along it just inside (every `step_m`, up to
`depth_m` in), so that roads which merge soon after the boundary can share one reader. A reader
covers every entering road that passes within `reach_m` of it (a reader and its lenses take in
both carriageways of an ordinary road).

Without a count this is a set-cover problem: the fewest readers that cover every entering road
(CP-SAT proves the minimum; among minimal sets it prefers readers nearer the boundary). With a
count k it is a maximal covering problem: the k readers that cover the most road weight (daily
traffic, say), then, among those, the fewest and nearest the boundary. A greedy pick is
reported beside it. Geometry is worked in the same local metric frame as camera coverage.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import shapely
from ortools.sat.python import cp_model
from pydantic import Field, ValidationError, field_validator
from shapely.geometry import shape
from shapely.strtree import STRtree

from vigila.core.errors import FieldError, InvalidInput
from vigila.planning.coverage import (
    MAX_ERRORS,
    FeatureCollection,
    FeatureId,
    Label,
    LocalFrame,
    StrictModel,
    area_geometry,
    cp_solver,
    lines_of,
    parse_geometry,
    read_document,
    repeated_ids,
    rings,
    write_png,
)
from vigila.registry.service import field_errors

__all__ = [
    "GatesProblem",
    "GatesResult",
    "Reader",
    "RoadProps",
    "RoadState",
    "load_problem",
    "parse_problem",
    "render_png",
    "solve",
    "summary",
    "to_geojson",
]

WEIGHT_SCALE = 1_000_000  # road weights are scaled to this total, then rounded, for CP-SAT


class RoadProps(StrictModel):
    id: FeatureId
    name: Label | None = None
    weight: float = Field(default=1.0, gt=0)  # e.g. vehicles a day
    lanes: int | None = Field(default=None, ge=1)


class GatesProblem(StrictModel):
    roads: FeatureCollection[RoadProps]
    boundary: dict[str, Any]  # GeoJSON Polygon/MultiPolygon, or a Feature holding one
    reach_m: float = Field(default=15.0, gt=0, le=500)
    count: int | None = None
    step_m: float = Field(default=25.0, ge=1, le=1000)
    depth_m: float = Field(default=200.0, ge=0, le=5000)
    time_limit_s: float = Field(default=30.0, gt=0, le=3600)

    @field_validator("count")
    @classmethod
    def _at_least_one(cls, v: int | None) -> int | None:
        if v is not None and v < 1:
            raise ValueError(f"count is {v}: a budget below one reader covers nothing")
        return v


class Reader(StrictModel):
    id: str
    lon: float
    lat: float
    roads: list[str]
    on_boundary: bool
    inside_m: float  # along the road from where it crosses the boundary


class RoadState(StrictModel):
    id: str
    name: str | None
    weight: float
    entering: bool
    covered: bool
    reader: str | None
    geometry: dict[str, Any]


class GatesResult(StrictModel):
    mode: Literal["minimum", "budget"]
    count: int | None
    readers: list[Reader]
    roads: list[RoadState]
    not_entering: list[str]  # roads that do not cross the boundary: reported, not covered
    status: str
    proven_minimum: int | None  # mode "minimum", when CP-SAT proved it
    lower_bound: int | None  # mode "minimum": no fewer readers can do
    entering_roads: int
    covered_roads: int
    total_weight: float  # of the entering roads
    covered_weight: float
    covered_pct: float
    greedy_readers: int
    greedy_covered_weight: float
    candidates: int
    reach_m: float
    solve_s: float


def parse_problem(doc: Any) -> GatesProblem:
    try:
        problem = GatesProblem.model_validate(doc)
    except ValidationError as exc:
        raise InvalidInput("invalid gates problem", field_errors(exc)) from exc
    _scene(problem)
    return problem


def load_problem(path: str | Path) -> GatesProblem:
    """Read and check a gates file (JSON, or YAML by its .yaml/.yml extension)."""
    return parse_problem(read_document(path, ("roads", "boundary")))


@dataclass
class _Scene:
    frame: LocalFrame
    road_ids: list[str]
    roads: list[Any]  # metres
    entering: list[int]
    boundary: Any  # metres


def _scene(problem: GatesProblem) -> _Scene:
    errors: list[FieldError] = []
    geoms: list[Any] = []
    for i, f in enumerate(problem.roads.features):
        try:
            geoms.append(parse_geometry(f.geometry, ("LineString", "MultiLineString"),
                                        f"roads.features.{i}.geometry"))
        except InvalidInput as exc:
            errors.extend(exc.errors)
    try:
        boundary = area_geometry(problem.boundary, "boundary")
    except InvalidInput as exc:
        errors.extend(exc.errors)
    ids = [f.properties.id for f in problem.roads.features]
    dup = repeated_ids(ids)
    if dup:
        errors.append(FieldError("roads", f"duplicate ids: {', '.join(dup)}"))
    if not ids:
        errors.append(FieldError("roads.features", "no road"))
    if errors:
        raise InvalidInput("invalid gates problem", errors[:MAX_ERRORS])
    frame = LocalFrame.around([boundary, *geoms])
    roads = [frame.project(g) for g in geoms]
    poly = frame.project(boundary)
    # Entering: some of the road inside, some outside (a road ending on the line is not).
    entering = np.flatnonzero(shapely.relate_pattern(np.asarray(roads, dtype=object), poly,
                                                     "T*T******")).tolist()
    if not entering:
        raise InvalidInput.on("roads", "no road crosses the boundary, so none enters the city: "
                              "check that the roads reach outside it and the boundary is the "
                              "city's")
    return _Scene(frame, ids, roads, entering, poly)


def _candidates(scene: _Scene, step: float, depth: float) -> tuple[np.ndarray, np.ndarray]:
    """Reader positions (metres) and how far inside, along the road, each one stands."""
    edge = scene.boundary.boundary
    spots: dict[tuple[float, float], float] = {}

    def add(x: float, y: float, inside: float) -> None:
        key = (round(x, 1), round(y, 1))  # the same spot reached from two roads is one spot
        spots[key] = min(inside, spots.get(key, math.inf))

    offsets = np.arange(1, int(depth // step) + 1) * step
    for r in scene.entering:
        parts = lines_of(scene.roads[r])
        for part in map(shapely.LineString, parts):
            for x, y in shapely.get_coordinates(part.intersection(edge)):
                add(float(x), float(y), 0.0)
                s0 = part.project(shapely.Point(x, y))
                for sign in (-1.0, 1.0):
                    s = s0 + sign * offsets
                    s = s[(s >= 0) & (s <= part.length)]
                    if not s.size:
                        continue
                    pts = shapely.get_coordinates(shapely.line_interpolate_point(part, s))
                    inside = shapely.contains_xy(scene.boundary, pts[:, 0], pts[:, 1])
                    for (px, py), d in zip(pts[inside], np.abs(s - s0)[inside], strict=True):
                        add(float(px), float(py), float(d))
    keys = list(spots)
    return np.array(keys, dtype=float).reshape(-1, 2), np.array([spots[k] for k in keys])


def _greedy(covers: list[list[int]], weight: np.ndarray, rank: np.ndarray, k: int | None
            ) -> list[int]:
    covered = np.zeros(len(weight), dtype=bool)
    chosen: list[int] = []
    while k is None or len(chosen) < k:
        best, best_key = -1, (0.0, 0.0)
        for p, roads in enumerate(covers):
            gain = float(weight[[r for r in roads if not covered[r]]].sum())
            key = (gain, -float(rank[p]))
            if gain > 0 and key > best_key:
                best, best_key = p, key
        if best < 0:
            break
        chosen.append(best)
        covered[covers[best]] = True
    return chosen


def solve(problem: GatesProblem) -> GatesResult:
    t0 = time.perf_counter()
    scene = _scene(problem)
    spots, inside = _candidates(scene, problem.step_m, problem.depth_m)
    entering = scene.entering
    tree = STRtree(np.asarray([scene.roads[r] for r in entering], dtype=object))
    spot_i, road_i = tree.query(shapely.points(spots), predicate="dwithin",
                                distance=problem.reach_m)
    covers: list[list[int]] = [[] for _ in range(len(spots))]
    for p, r in zip(spot_i.tolist(), road_i.tolist(), strict=True):
        covers[p].append(r)
    weight = np.array([problem.roads.features[r].properties.weight for r in entering])
    # Nearer the boundary is better at equal count: rank in steps inside, 0 on the line.
    rank = np.rint(inside / problem.step_m).astype(np.int64)
    max_rank = int(rank.max(initial=0))
    # Each reader costs `unit`; the ranks of all readers together stay below one unit, so the
    # count comes first and the nearness only breaks ties.
    unit = max_rank * len(entering) + 1

    model = cp_model.CpModel()
    z = [model.new_bool_var(f"z{p}") for p in range(len(spots))]
    watchers: list[list[Any]] = [[] for _ in entering]
    for p, roads in enumerate(covers):
        for r in roads:
            watchers[r].append(z[p])
    cost = cp_model.LinearExpr.weighted_sum(z, (unit + rank).tolist())
    greedy = _greedy(covers, weight, rank, problem.count)
    solver = cp_solver(problem.time_limit_s)
    for p, var in enumerate(z):
        model.add_hint(var, p in greedy)
    lower = None
    chosen: list[int] | None = None
    if problem.count is None:
        for ws in watchers:
            model.add_bool_or(ws)  # each entering road has its own crossing spot, so never empty
        model.minimize(cost)
        status = solver.solve(model)
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            chosen = [p for p, var in enumerate(z) if solver.boolean_value(var)]
            lower = int(solver.best_objective_bound + 1e-6) // unit
    else:
        total = float(weight.sum())
        w_int = np.maximum(1, np.rint(weight / total * WEIGHT_SCALE)).astype(np.int64)
        y = [model.new_bool_var(f"y{r}") for r in range(len(entering))]
        for r, ws in enumerate(watchers):
            model.add(cp_model.LinearExpr.sum(ws) >= y[r])
        model.add(cp_model.LinearExpr.sum(z) <= problem.count)
        covered_hint = {r for p in greedy for r in covers[p]}
        for r, var in enumerate(y):
            model.add_hint(var, r in covered_hint)
        gain = cp_model.LinearExpr.weighted_sum(y, w_int.tolist())
        model.maximize(gain)
        status = solver.solve(model)
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            chosen = [p for p, var in enumerate(z) if solver.boolean_value(var)]
            # Second pass: keep that weight, with the fewest readers, nearest the boundary.
            model.clear_hints()  # type: ignore[no-untyped-call]
            for p, var in enumerate(z):
                model.add_hint(var, p in chosen)
            model.add(gain >= round(solver.objective_value))
            model.minimize(cost)
            solver.parameters.max_time_in_seconds = max(
                1.0, problem.time_limit_s - solver.wall_time)
            if solver.solve(model) in (cp_model.OPTIMAL, cp_model.FEASIBLE):
                chosen = [p for p, var in enumerate(z) if solver.boolean_value(var)]
    name = solver.status_name(status)
    if chosen is None:
        chosen, name = greedy, f"{name} (greedy kept)"
    solve_s = time.perf_counter() - t0

    def covered_by(picks: list[int]) -> dict[int, int]:
        out: dict[int, int] = {}
        for p in picks:
            for r in covers[p]:
                out.setdefault(r, p)
        return out

    if problem.count is not None:
        mine = float(weight[list(covered_by(chosen))].sum())
        if mine < float(weight[list(covered_by(greedy))].sum()):
            chosen, name = greedy, f"{name} (greedy kept: solver stopped below it)"
    elif len(chosen) > len(greedy):
        chosen, name = greedy, f"{name} (greedy kept: solver stopped above it)"

    chosen = sorted(chosen, key=lambda p: (inside[p], spots[p, 0], spots[p, 1]))
    by_road = covered_by(chosen)
    label = {p: f"R{n}" for n, p in enumerate(chosen, start=1)}
    lonlat = scene.frame.lonlat(spots)
    readers = [Reader(id=label[p], lon=round(float(lonlat[p, 0]), 7),
                      lat=round(float(lonlat[p, 1]), 7),
                      roads=[scene.road_ids[entering[r]] for r in covers[p]],
                      on_boundary=bool(inside[p] == 0), inside_m=round(float(inside[p]), 1))
               for p in chosen]
    position = {road: r for r, road in enumerate(entering)}
    states = []
    for i, f in enumerate(problem.roads.features):
        r = position.get(i)
        p = by_road.get(r) if r is not None else None
        states.append(RoadState(id=f.properties.id, name=f.properties.name,
                                weight=f.properties.weight, entering=r is not None,
                                covered=p is not None, reader=label[p] if p is not None else None,
                                geometry=f.geometry))
    total_w = float(weight.sum())
    covered_w = float(weight[list(by_road)].sum())
    greedy_w = float(weight[list(covered_by(greedy))].sum())
    minimum = problem.count is None
    return GatesResult(
        mode="minimum" if minimum else "budget", count=problem.count, readers=readers,
        roads=states,
        not_entering=[scene.road_ids[i] for i in range(len(scene.road_ids))
                      if i not in position],
        status=name,
        proven_minimum=len(chosen) if minimum and name == "OPTIMAL" else None,
        lower_bound=lower if minimum else None, entering_roads=len(entering),
        covered_roads=len(by_road), total_weight=total_w, covered_weight=covered_w,
        covered_pct=100.0 * covered_w / total_w, greedy_readers=len(greedy),
        greedy_covered_weight=greedy_w, candidates=len(spots), reach_m=problem.reach_m,
        solve_s=solve_s)


def to_geojson(result: GatesResult) -> dict[str, Any]:
    """Readers as points, roads flagged entering/covered with the reader that covers them."""
    features: list[dict[str, Any]] = [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [r.lon, r.lat]},
         "properties": {"role": "reader", **r.model_dump(exclude={"lon", "lat"})}}
        for r in result.readers]
    features += [{"type": "Feature", "geometry": s.geometry,
                  "properties": {"role": "road", **s.model_dump(exclude={"geometry"})}}
                 for s in result.roads]
    return {"type": "FeatureCollection", "features": features, "summary": {
        "mode": result.mode, "readers": len(result.readers), "status": result.status,
        "proven_minimum": result.proven_minimum, "entering_roads": result.entering_roads,
        "covered_roads": result.covered_roads, "covered_pct": result.covered_pct,
        "not_entering": result.not_entering}}


def summary(result: GatesResult) -> str:
    what = ("fewest readers covering every entering road" if result.mode == "minimum"
            else f"best coverage with {result.count} readers")
    lines = [
        f"varchi / gates: {what}",
        f"lettori / readers: {len(result.readers)} (greedy {result.greedy_readers}); "
        f"solver {result.status}"
        + (f", proven minimum {result.proven_minimum}" if result.proven_minimum is not None
           else ""),
        f"strade entranti coperte / entering roads covered: {result.covered_roads} of "
        f"{result.entering_roads}, weight {result.covered_weight:,.1f} of "
        f"{result.total_weight:,.1f} ({result.covered_pct:.1f} %; greedy "
        f"{result.greedy_covered_weight:,.1f})",
    ]
    for r in result.readers:
        where = "on the boundary" if r.on_boundary else f"{r.inside_m:.0f} m inside"
        lines.append(f"  {r.id}  {r.lat:.6f}, {r.lon:.6f}  {where}: {', '.join(r.roads)}")
    if result.not_entering:
        lines.append(f"non entranti / not entering ({len(result.not_entering)}): "
                     f"{', '.join(result.not_entering)}")
    lines.append(f"{result.candidates} candidate spots, reach {result.reach_m:g} m, "
                 f"{result.solve_s:.2f} s")
    return "\n".join(lines)


def render_png(problem: GatesProblem, result: GatesResult, path: str | Path) -> None:
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    fig = Figure(figsize=(10, 10), dpi=110)
    ax = fig.add_subplot()
    boundary = area_geometry(problem.boundary, "boundary")
    for ring in rings(boundary):
        ax.plot(ring[:, 0], ring[:, 1], color="#4d4d4d", linewidth=1.2, linestyle="--")
    colour = {(True, True): "#1a9850", (True, False): "#d73027", (False, False): "#969696"}
    for key, c in colour.items():
        segs = [seg for s in result.roads if (s.entering, s.covered) == key
                for seg in lines_of(shape(s.geometry))]
        if segs:
            ax.add_collection(LineCollection(segs, colors=c, linewidths=1.8))
    if result.readers:
        ax.scatter([r.lon for r in result.readers], [r.lat for r in result.readers], s=60,
                   color="#2166ac", marker="s", edgecolors="white", zorder=5)
        for r in result.readers:
            ax.annotate(r.id, (r.lon, r.lat), textcoords="offset points", xytext=(5, 5),
                        fontsize=8)
    lat = boundary.centroid.y
    ax.autoscale_view()
    ax.set_aspect(1.0 / math.cos(math.radians(lat)))
    ax.ticklabel_format(useOffset=False)
    ax.set_xlabel("lon")
    ax.set_ylabel("lat")
    ax.legend(handles=[
        Line2D([], [], color="#4d4d4d", linestyle="--", label="Confine / Boundary"),
        Line2D([], [], color=colour[True, True], label="Entrante coperta / Entering, covered"),
        Line2D([], [], color=colour[True, False],
               label="Entrante scoperta / Entering, uncovered"),
        Line2D([], [], color=colour[False, False], label="Non entrante / Not entering"),
        Line2D([], [], marker="s", color="#2166ac", linestyle="",
               label="Lettori targhe / Plate readers"),
    ], loc="upper right", fontsize=8, framealpha=0.9)
    ax.set_title(f"Varchi lettura targhe / Plate-reader gates: {len(result.readers)} lettori / "
                 f"readers, {result.covered_roads}/{result.entering_roads} strade entranti / "
                 f"entering roads ({result.covered_pct:.1f} %)\n{result.status}", fontsize=10)
    fig.tight_layout()
    write_png(fig, path)

