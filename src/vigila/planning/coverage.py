"""Camera placement: the sites, headings and models that cover the most of what matters.

This is the maximal covering location problem (Church and ReVelle, 1974). Every candidate
(site, heading, model) sees a set of target sample points; choose at most one per site, within
a budget in cameras and/or euros, so that the weight seen is as large as possible. CP-SAT
solves it exactly, or to a proven gap when the time limit cuts it short; a greedy pick by
marginal weight per euro runs beside it, as the baseline to compare with and as the solver's
first solution, so the answer is never worse than greedy.

Geometry is worked in a local metric frame: an equirectangular projection around the middle
of the input (x = R cos(lat0) dlon, y = R dlat, R = 6 371 008.8 m). Within 10 km of that middle
its scale error stays below 0.2 % (under 20 cm at a 100 m camera range), far inside what a
range figure means; a city fits. Bearings are degrees clockwise from north. A camera sees a
point within its range, within half its field of view either side of its heading, when the
straight line between them crosses no building's interior (grazing a wall does not block).

Lines and areas are sampled: points every `sample_spacing_m` along a line, on a grid of that
spacing inside an area; a target's weight is split across its samples, so a camera that sees
half a street covers half its weight. Samples that exactly the same options see are merged
into one solver variable, and an option that another at the same site beats (sees no less,
costs no more) is dropped: both keep the optimum and shrink the model severalfold.

CP-SAT wants integers: the weight still to be covered is scaled to a total of 10^9 and each
group rounded (at least 1), so rounding moves the objective by under 10^-9 of the total per
group; every weight reported is recomputed in floating point from the chosen cameras. The gap
is (bound - found) / bound on the weight the new cameras add, in the solver's integers.

A candidate outside `area`, or (without an area) farther than its longest camera range from
every target, is an error naming it: usually a swapped lon/lat or a layer in the wrong CRS.
"""

from __future__ import annotations

import heapq
import json
import math
import os
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Generic, Literal, TypeVar

import numpy as np
import numpy.typing as npt
import shapely
import yaml  # type: ignore[import-untyped]  # PyYAML ships no type hints
from ortools.sat.python import cp_model
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from shapely.geometry import shape
from shapely.strtree import STRtree

from vigila.core.errors import FieldError, InvalidInput
from vigila.core.text import NoNul
from vigila.registry.geo import check_position, check_zone_geometry
from vigila.registry.service import field_errors

__all__ = [
    "Budget",
    "Camera",
    "CameraModel",
    "CoverageProblem",
    "CoverageResult",
    "LocalFrame",
    "Plan",
    "StrictModel",
    "TargetCoverage",
    "cp_solver",
    "load_problem",
    "parse_problem",
    "render_png",
    "solve",
    "summary",
    "to_geojson",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

EARTH_RADIUS_M = 6_371_008.8  # IUGG mean radius
ANY_HEADINGS = tuple(float(h) for h in range(0, 360, 30))
MAX_SAMPLES = 500_000  # beyond this the spacing is too fine for the area: say so, don't thrash
MAX_ERRORS = 50  # a broken file lists its first faults, not ten thousand of them
WEIGHT_SCALE = 1e9  # solver weights: the free weight is scaled to this total, then rounded
_ANGLE_EPS = 1e-9


# --- input ------------------------------------------------------------------


class StrictModel(BaseModel):
    """Unknown members are errors, not silently dropped."""

    # NaN and infinity are refused at the edge: a NaN range would silently cover nothing.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def _id_text(value: Any) -> Any:
    """GIS tools often write integer ids; they are names here."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


FeatureId = Annotated[str, BeforeValidator(_id_text),
                      StringConstraints(min_length=1, max_length=200, strip_whitespace=True),
                      NoNul]
Label = Annotated[str, StringConstraints(max_length=200, strip_whitespace=True), NoNul]
P = TypeVar("P", bound=BaseModel)


class Feature(StrictModel, Generic[P]):
    type: Literal["Feature"]
    geometry: dict[str, Any]  # checked by _geometry, which names the coordinate at fault
    properties: P
    id: str | int | None = None
    bbox: list[float] | None = None

    @field_validator("properties", mode="before")
    @classmethod
    def _null_properties(cls, v: Any) -> Any:
        return {} if v is None else v  # GeoJSON allows "properties": null


class FeatureCollection(StrictModel, Generic[P]):
    type: Literal["FeatureCollection"]
    features: list[Feature[P]]
    name: str | None = None  # QGIS writes the layer name here
    crs: dict[str, Any] | None = None  # ... and a CRS member: must say WGS 84 lon/lat
    bbox: list[float] | None = None

    @field_validator("crs")
    @classmethod
    def _wgs84(cls, crs: dict[str, Any] | None) -> dict[str, Any] | None:
        props = crs.get("properties") if crs is not None else None
        name = str(props.get("name", "")) if isinstance(props, dict) else ""
        if crs is not None and not (name.endswith("CRS84") or name.endswith("4326")):
            raise ValueError(f"coordinates must be WGS 84 lon/lat (CRS84), not {name or crs!r}")
        return crs


class CameraModel(StrictModel):
    """A camera type: how far and how wide it sees usefully, and what it costs installed."""

    id: FeatureId
    name: Label | None = None
    range_m: float
    fov_deg: float
    price_eur: float = Field(ge=0)

    @field_validator("range_m")
    @classmethod
    def _range(cls, v: float) -> float:
        if v <= 0:
            raise ValueError(f"a camera's range is more than 0 m, not {v}")
        return v

    @field_validator("fov_deg")
    @classmethod
    def _fov(cls, v: float) -> float:
        if not 0 < v <= 360:
            raise ValueError(f"a field of view is more than 0 and at most 360 degrees, not {v}")
        return v


class Budget(StrictModel):
    """How many new cameras and/or how many euros; at least one of the two."""

    count: int | None = None
    eur: float | None = None

    @model_validator(mode="after")
    def _something(self) -> Budget:
        if self.count is None and self.eur is None:
            raise ValueError("give a budget: count (cameras), eur, or both")
        if self.count is not None and self.count < 1:
            raise ValueError(f"budget.count is {self.count}: a budget below one camera buys "
                             "nothing")
        if self.eur is not None and self.eur <= 0:
            raise ValueError(f"budget.eur is {self.eur}: a budget below one camera buys nothing")
        return self


class CandidateProps(StrictModel):
    id: FeatureId
    name: Label | None = None
    headings: list[float] | Literal["any"] = "any"
    models: list[FeatureId] | None = None  # None: every model may go here

    @field_validator("headings")
    @classmethod
    def _headings(cls, v: list[float] | str) -> list[float] | str:
        if isinstance(v, list):
            if not v:
                raise ValueError('list at least one heading, or "any"')
            return sorted({h % 360.0 for h in v})
        return v

    @field_validator("models")
    @classmethod
    def _some_model(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and not v:
            raise ValueError("list at least one model id, or leave models out for all")
        return v


class TargetProps(StrictModel):
    id: FeatureId
    name: Label | None = None
    weight: float = Field(gt=0)
    kind: Label | None = None  # school, square, gate, street...


class ExistingProps(StrictModel):
    id: FeatureId
    name: Label | None = None
    heading: float | None = None  # needed unless the model sees all round
    model: FeatureId


class BuildingProps(BaseModel):
    # Footprints come from OSM or the cadastre with their own attributes; none is read here,
    # so none is refused.
    model_config = ConfigDict(extra="allow")


class CoverageProblem(StrictModel):
    """One placement question, as a single JSON or YAML document."""

    candidates: FeatureCollection[CandidateProps]
    targets: FeatureCollection[TargetProps]
    models: list[CameraModel] = Field(min_length=1)
    budget: Budget
    buildings: FeatureCollection[BuildingProps] | None = None
    existing: FeatureCollection[ExistingProps] | None = None
    area: dict[str, Any] | None = None  # GeoJSON Polygon/MultiPolygon, or a Feature holding one
    sample_spacing_m: float = Field(default=20.0, ge=1.0, le=1000.0)
    time_limit_s: float = Field(default=50.0, gt=0, le=3600)


# --- output -----------------------------------------------------------------


class Camera(StrictModel):
    site_id: str
    lon: float
    lat: float
    heading_deg: float
    model: str
    range_m: float
    fov_deg: float
    cost_eur: float
    # Weight in its view that existing cameras do not already cover; where two new cameras
    # overlap, each counts it (the plan's total counts it once).
    covered_weight: float
    existing: bool = False


class Plan(StrictModel):
    method: str
    cameras: list[Camera]
    cost_eur: float
    covered_weight: float  # existing cameras' coverage included
    covered_pct: float


class TargetCoverage(StrictModel):
    id: str
    kind: str | None
    weight: float
    covered_weight: float  # under the chosen plan, existing cameras included
    geometry: dict[str, Any]


class CoverageResult(StrictModel):
    exact: Plan  # the answer: CP-SAT's, or greedy's when the solver stopped below it
    greedy: Plan
    source: str
    status: str  # CP-SAT's: OPTIMAL, FEASIBLE, UNKNOWN
    best_bound: float | None  # upper bound on the covered weight (existing included)
    gap_pct: float | None  # (bound - found) / bound, on the weight the new cameras add
    total_weight: float
    existing_weight: float
    budget: Budget
    existing: list[Camera]
    targets: list[TargetCoverage]
    candidates: int
    options: int  # (site, heading, model) triples that see something new
    samples: int
    groups: int  # samples merged when the same options see them: the solver's variables
    precompute_s: float
    greedy_s: float
    solve_s: float
    time_limit_s: float


# --- reading ----------------------------------------------------------------


def _parse_text(raw: bytes, yaml_text: bool, where: str) -> Any:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput.on(where, f"not UTF-8 text (byte {exc.start})") from exc
    try:
        if yaml_text:
            return yaml.safe_load(text)
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput.on(where, f"not JSON: {exc.msg} at line {exc.lineno}") from exc
    except yaml.YAMLError as exc:
        raise InvalidInput.on(where, f"not YAML: {exc}") from exc
    except RecursionError as exc:
        raise InvalidInput.on(where, "nested too deeply") from exc
    except ValueError as exc:  # Python refuses integers of more than 4300 digits
        raise InvalidInput.on(where, f"not usable: {exc}") from exc


def _read(path: Path, where: str) -> Any:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidInput.on(where, f"cannot read {path}: {exc.strerror or exc}") from exc
    return _parse_text(raw, path.suffix.lower() in (".yaml", ".yml"), where)


def read_document(path: str | Path, linked: Iterable[str]) -> dict[str, Any]:
    """A JSON or YAML object; a member named in `linked` may instead be the path of a
    GeoJSON file, relative to the document, so layers exported from a GIS need no pasting."""
    p = Path(path)
    doc = _read(p, "file")
    if not isinstance(doc, dict):
        raise InvalidInput.on("file", "a problem document is a JSON or YAML object")
    for name in linked:
        value = doc.get(name)
        if isinstance(value, str):
            doc[name] = _read(p.parent / value, name)
    return doc


def _invalid(detail: str, errors: list[FieldError]) -> InvalidInput:
    return InvalidInput(detail, errors[:MAX_ERRORS])


def parse_problem(doc: Any) -> CoverageProblem:
    """Validate a problem document (already parsed), geometry and cross-references included."""
    try:
        problem = CoverageProblem.model_validate(doc)
    except ValidationError as exc:
        raise _invalid("invalid coverage problem", field_errors(exc)) from exc
    _scene(problem)  # geometry, ids, budget against prices, candidates' places
    return problem


def load_problem(path: str | Path) -> CoverageProblem:
    """Read and check a problem file (JSON, or YAML by its .yaml/.yml extension)."""
    linked = ("candidates", "targets", "buildings", "existing", "area")
    return parse_problem(read_document(path, linked))


# --- geometry ---------------------------------------------------------------

# How deep positions are nested in each geometry type we read (polygons go to the registry).
_DEPTH = {"Point": 0, "MultiPoint": 1, "LineString": 1, "MultiLineString": 2}


def _positions(coords: Any, depth: int, where: str) -> int:
    if depth == 0:
        check_position(coords, where)
        return 1
    if not isinstance(coords, list) or not coords:
        raise InvalidInput.on(where, "expected a non-empty list of coordinates")
    return sum(_positions(c, depth - 1, f"{where}[{i}]") for i, c in enumerate(coords))


def parse_geometry(geometry: Any, allowed: Sequence[str], field: str) -> Any:
    """A checked GeoJSON geometry as a shapely geometry (lon/lat); faults name the coordinate."""
    if not isinstance(geometry, dict):
        raise InvalidInput.on(field, "must be a GeoJSON geometry object")
    kind = geometry.get("type")
    if kind not in allowed:
        raise InvalidInput.on(f"{field}.type", f"must be {' or '.join(allowed)}, not {kind!r}")
    if kind in ("Polygon", "MultiPolygon"):
        check_zone_geometry(geometry, field)
        return shape(geometry)
    coords: Any = geometry.get("coordinates")
    _positions(coords, _DEPTH[str(kind)], f"{field}.coordinates")
    extra = set(geometry) - {"type", "coordinates", "bbox"}
    if extra:
        raise InvalidInput.on(field, f"unexpected members: {', '.join(sorted(extra))}")
    if kind == "LineString" and len(coords) < 2:
        raise InvalidInput.on(f"{field}.coordinates", "a LineString has at least 2 positions")
    if kind == "MultiLineString":
        for i, line in enumerate(coords):
            if len(line) < 2:
                raise InvalidInput.on(f"{field}.coordinates[{i}]",
                                      "a LineString has at least 2 positions")
    geom = shape(geometry)
    if kind in ("LineString", "MultiLineString") and geom.length == 0:
        raise InvalidInput.on(f"{field}.coordinates", "the line has no length")
    return geom


def area_geometry(value: Any, field: str) -> Any:
    """A Polygon/MultiPolygon given bare or inside a Feature."""
    if isinstance(value, dict) and value.get("type") == "Feature":
        return parse_geometry(value.get("geometry"), ("Polygon", "MultiPolygon"),
                              f"{field}.geometry")
    return parse_geometry(value, ("Polygon", "MultiPolygon"), field)


@dataclass(frozen=True)
class LocalFrame:
    """Equirectangular projection around (lon0, lat0): metres east and north."""

    lon0: float
    lat0: float

    @property
    def _mx(self) -> float:
        return math.radians(1.0) * EARTH_RADIUS_M * math.cos(math.radians(self.lat0))

    @property
    def _my(self) -> float:
        return math.radians(1.0) * EARTH_RADIUS_M

    @classmethod
    def around(cls, geoms: Iterable[Any]) -> LocalFrame:
        boxes = np.array([g.bounds for g in geoms], dtype=float)
        if boxes.size == 0:
            return cls(0.0, 0.0)
        return cls(float((boxes[:, 0].min() + boxes[:, 2].max()) / 2),
                   float((boxes[:, 1].min() + boxes[:, 3].max()) / 2))

    def xy(self, lonlat: FloatArray) -> FloatArray:
        out = np.empty_like(lonlat, dtype=float)
        out[:, 0] = (lonlat[:, 0] - self.lon0) * self._mx
        out[:, 1] = (lonlat[:, 1] - self.lat0) * self._my
        return out

    def lonlat(self, xy: FloatArray) -> FloatArray:
        out = np.empty_like(xy, dtype=float)
        out[:, 0] = self.lon0 + xy[:, 0] / self._mx
        out[:, 1] = self.lat0 + xy[:, 1] / self._my
        return out

    def project(self, geom: Any) -> Any:
        return shapely.transform(geom, self.xy)

    def unproject(self, geom: Any) -> Any:
        return shapely.transform(geom, self.lonlat)


def sector(lon: float, lat: float, heading_deg: float, fov_deg: float, range_m: float,
           step_deg: float = 5.0) -> dict[str, Any]:
    """A camera's field of view as a GeoJSON Polygon: a circular sector of radius range_m."""
    frame = LocalFrame(lon, lat)
    n = max(2, math.ceil(fov_deg / step_deg) + 1)
    full = fov_deg >= 360
    angles = np.linspace(heading_deg - fov_deg / 2, heading_deg + fov_deg / 2, n,
                         endpoint=not full)
    rad = np.radians(angles)
    arc = np.column_stack([range_m * np.sin(rad), range_m * np.cos(rad)])
    ring = arc if full else np.vstack([[0.0, 0.0], arc])
    ring = np.vstack([ring, ring[:1]])
    coords = np.round(frame.lonlat(ring), 7).tolist()
    return {"type": "Polygon", "coordinates": [coords]}


def _sample(geom: Any, spacing: float) -> tuple[FloatArray, FloatArray]:
    """Sample points (metres) of a target and the share of its weight each carries."""
    kind = geom.geom_type
    if kind == "Point":
        return np.array([[geom.x, geom.y]]), np.ones(1)
    if kind == "MultiPoint":
        pts = shapely.get_coordinates(geom)
        return pts, np.full(len(pts), 1.0 / len(pts))
    if kind in ("LineString", "MultiLineString"):
        parts = list(geom.geoms) if kind == "MultiLineString" else [geom]
        total = sum(p.length for p in parts)
        chunks, shares = [], []
        for part in parts:
            if part.length == 0:
                continue
            n = max(1, math.ceil(part.length / spacing - 1e-6))  # 100 m at 10 m: 10, not 11
            at = (np.arange(n) + 0.5) * (part.length / n)  # the middle of n equal pieces
            chunks.append(shapely.get_coordinates(shapely.line_interpolate_point(part, at)))
            shares.append(np.full(n, part.length / n / total))
        return np.vstack(chunks), np.concatenate(shares)
    minx, miny, maxx, maxy = geom.bounds
    xs = np.arange(minx + spacing / 2, maxx, spacing)
    ys = np.arange(miny + spacing / 2, maxy, spacing)
    grid_x, grid_y = np.meshgrid(xs, ys)
    gx, gy = grid_x.ravel(), grid_y.ravel()
    inside = shapely.contains_xy(geom, gx, gy)
    if not inside.any():  # smaller than the grid: one point stands for it
        p = geom.representative_point()
        return np.array([[p.x, p.y]]), np.ones(1)
    pts = np.column_stack([gx[inside], gy[inside]])
    return pts, np.full(len(pts), 1.0 / len(pts))


@dataclass
class _Scene:
    """The problem in metres, checked, with its targets sampled."""

    frame: LocalFrame
    models: list[CameraModel]
    site_ids: list[str]
    sites: FloatArray  # (n, 2) metres
    site_lonlat: FloatArray
    site_models: list[list[int]]
    site_headings: list[list[float]]
    samples: FloatArray  # (m, 2) metres
    sample_weight: FloatArray
    sample_target: IntArray
    target_weight: FloatArray
    blockers: list[Any]  # building polygons, metres
    existing_ids: list[str]
    existing_xy: FloatArray
    existing_lonlat: FloatArray
    existing_heading: list[float]
    existing_model: list[int]


def repeated_ids(ids: Sequence[str]) -> list[str]:
    """Ids given more than once, in order of first repetition."""
    seen: set[str] = set()
    dup: list[str] = []
    for i in ids:
        if i in seen and i not in dup:
            dup.append(i)
        seen.add(i)
    return dup


def _names(ids: Sequence[str], limit: int = 20) -> str:
    shown = ", ".join(ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def _collect(errors: list[FieldError], fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except InvalidInput as exc:
        errors.extend(exc.errors)
        return None


def _scene(problem: CoverageProblem) -> _Scene:
    errors: list[FieldError] = []
    model_index = {m.id: i for i, m in enumerate(problem.models)}

    for name, ids in (("models", [m.id for m in problem.models]),
                      ("candidates", [f.properties.id for f in problem.candidates.features]),
                      ("targets", [f.properties.id for f in problem.targets.features]),
                      ("existing", [f.properties.id for f in (problem.existing.features
                                                              if problem.existing else [])])):
        dup = repeated_ids(ids)
        if dup:
            errors.append(FieldError(name, f"duplicate ids: {_names(dup)}"))
    if not problem.candidates.features:
        errors.append(FieldError("candidates.features", "no candidate site"))
    if not problem.targets.features:
        errors.append(FieldError("targets.features", "no target"))

    cheapest = min(problem.models, key=lambda m: m.price_eur)
    if problem.budget.eur is not None and problem.budget.eur < cheapest.price_eur:
        errors.append(FieldError(
            "budget.eur", f"{problem.budget.eur:g} EUR is below one camera: the cheapest model, "
            f"{cheapest.id!r}, costs {cheapest.price_eur:g} EUR"))

    site_geoms: list[Any] = []
    site_models: list[list[int]] = []
    for i, f in enumerate(problem.candidates.features):
        where = f"candidates.features.{i}"
        site_geoms.append(_collect(errors, parse_geometry, f.geometry, ("Point",),
                                   f"{where}.geometry"))
        allowed = f.properties.models
        unknown = [m for m in allowed or [] if m not in model_index]
        if unknown:
            errors.append(FieldError(f"{where}.properties.models",
                                     f"candidate {f.properties.id!r}: no model {_names(unknown)}"))
        site_models.append(sorted({model_index[m] for m in allowed if m in model_index})
                           if allowed is not None else list(range(len(problem.models))))
    target_geoms = [_collect(errors, parse_geometry, f.geometry,
                             ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon",
                              "MultiPolygon"), f"targets.features.{i}.geometry")
                    for i, f in enumerate(problem.targets.features)]
    building_geoms = [_collect(errors, parse_geometry, f.geometry, ("Polygon", "MultiPolygon"),
                               f"buildings.features.{i}.geometry")
                      for i, f in enumerate(problem.buildings.features if problem.buildings
                                            else [])]
    existing = problem.existing.features if problem.existing else []
    existing_geoms = [_collect(errors, parse_geometry, f.geometry, ("Point",),
                               f"existing.features.{i}.geometry")
                      for i, f in enumerate(existing)]
    for i, cam in enumerate(existing):
        if cam.properties.model not in model_index:
            errors.append(FieldError(f"existing.features.{i}.properties.model",
                                     f"camera {cam.properties.id!r}: no model "
                                     f"{cam.properties.model!r}"))
        elif (cam.properties.heading is None
              and problem.models[model_index[cam.properties.model]].fov_deg < 360):
            errors.append(FieldError(f"existing.features.{i}.properties.heading",
                                     f"camera {cam.properties.id!r}: where does it look? "
                                     "(degrees clockwise from north)"))
    area = None if problem.area is None else _collect(errors, area_geometry, problem.area, "area")
    if errors:
        raise _invalid("invalid coverage problem", errors)

    frame = LocalFrame.around([*site_geoms, *target_geoms])
    site_ids = [f.properties.id for f in problem.candidates.features]
    site_lonlat = np.array([[g.x, g.y] for g in site_geoms], dtype=float)
    sites = frame.xy(site_lonlat)
    blockers = [frame.project(g) for g in building_geoms]
    targets_m = [frame.project(g) for g in target_geoms]

    # Candidates in places that make no sense are the user's mistake, not something to drop.
    if blockers:
        tree = STRtree(blockers)
        inside, _ = tree.query(shapely.points(sites), predicate="within")
        if inside.size:
            bad = [site_ids[i] for i in sorted(set(inside.tolist()))]
            errors.append(FieldError("candidates",
                                     f"inside a building (no view from there): {_names(bad)}"))
        ex_pts = np.array([[g.x, g.y] for g in existing_geoms], dtype=float).reshape(-1, 2)
        ex_in, _ = tree.query(shapely.points(frame.xy(ex_pts)), predicate="within")
        if ex_in.size:
            bad = [existing[i].properties.id for i in sorted(set(ex_in.tolist()))]
            errors.append(FieldError("existing", f"inside a building: {_names(bad)}"))
    if area is not None:
        outside = [site_ids[i] for i, g in enumerate(site_geoms) if not area.covers(g)]
        if outside:
            errors.append(FieldError("candidates", f"outside the area: {_names(outside)}"))
    else:
        reach = np.array([max((problem.models[m].range_m for m in ms), default=0.0)
                          for ms in site_models])
        near = np.zeros(len(site_ids), dtype=bool)
        pts = shapely.points(sites)
        target_tree = STRtree(targets_m)
        for r in np.unique(reach):
            sel = np.flatnonzero(reach == r)
            hit, _ = target_tree.query(pts[sel], predicate="dwithin", distance=float(r))
            near[sel[hit]] = True
        far = [site_ids[i] for i in np.flatnonzero(~near)]
        if far:
            errors.append(FieldError(
                "candidates", "outside every target's neighbourhood (no target within the "
                f"range of the models allowed there): {_names(far)}"))
    if errors:
        raise _invalid("invalid coverage problem", errors)

    spacing = problem.sample_spacing_m
    pts_list, w_list, t_list = [], [], []
    count = 0
    for t, (geom, target) in enumerate(zip(targets_m, problem.targets.features, strict=True)):
        pts, share = _sample(geom, spacing)
        count += len(pts)
        if count > MAX_SAMPLES:
            raise InvalidInput.on("sample_spacing_m", f"{spacing:g} m makes more than "
                                  f"{MAX_SAMPLES} sample points; use a larger spacing")
        pts_list.append(pts)
        w_list.append(share * target.properties.weight)
        t_list.append(np.full(len(pts), t, dtype=np.int64))

    headings = [ANY_HEADINGS if f.properties.headings == "any" else tuple(f.properties.headings)
                for f in problem.candidates.features]
    ex_lonlat = np.array([[g.x, g.y] for g in existing_geoms], dtype=float).reshape(-1, 2)
    return _Scene(
        frame=frame, models=list(problem.models), site_ids=site_ids, sites=sites,
        site_lonlat=site_lonlat, site_models=site_models,
        site_headings=[list(h) for h in headings],
        samples=np.vstack(pts_list), sample_weight=np.concatenate(w_list),
        sample_target=np.concatenate(t_list),
        target_weight=np.array([f.properties.weight for f in problem.targets.features]),
        blockers=blockers, existing_ids=[f.properties.id for f in existing],
        existing_xy=frame.xy(ex_lonlat), existing_lonlat=ex_lonlat,
        existing_heading=[(f.properties.heading or 0.0) % 360.0 for f in existing],
        existing_model=[model_index[f.properties.model] for f in existing])


# --- who sees what ------------------------------------------------------------


@dataclass
class _Sightlines:
    """Every (site, sample) pair within reach and in plain view, grouped by site."""

    start: IntArray  # pairs of site i are [start[i], start[i+1])
    sample: IntArray
    dist: FloatArray
    bearing: FloatArray

    def of(self, i: int) -> slice:
        return slice(int(self.start[i]), int(self.start[i + 1]))


def _sightlines(sites: FloatArray, reach: FloatArray, samples: FloatArray,
                blockers: list[Any]) -> _Sightlines:
    # Distances first (cheap, numpy, on a strip of samples sorted by x), then the line of
    # sight only for the pairs that survive: that is where the time would go.
    order = np.argsort(samples[:, 0], kind="stable")
    xs = samples[order, 0]
    site_of, sample_of = [], []
    for i in range(len(sites)):
        sx, sy = sites[i]
        r = reach[i]
        lo, hi = np.searchsorted(xs, [sx - r, sx + r + 1e-9])
        idx = order[lo:hi]
        dx = samples[idx, 0] - sx
        dy = samples[idx, 1] - sy
        keep = idx[dx * dx + dy * dy <= r * r + 1e-9]
        sample_of.append(np.sort(keep))
        site_of.append(np.full(len(keep), i, dtype=np.int64))
    site_idx = np.concatenate(site_of) if site_of else np.empty(0, np.int64)
    sample_idx = np.concatenate(sample_of).astype(np.int64) if sample_of else np.empty(0,
                                                                                      np.int64)
    delta = samples[sample_idx] - sites[site_idx]
    dist = np.hypot(delta[:, 0], delta[:, 1])
    bearing = np.degrees(np.arctan2(delta[:, 0], delta[:, 1])) % 360.0
    if blockers and len(site_idx):
        moving = np.flatnonzero(dist > 0)
        segs = shapely.linestrings(np.stack([sites[site_idx[moving]], samples[sample_idx[moving]]],
                                            axis=1))
        walls = np.asarray(blockers, dtype=object)
        seg_i, wall_i = STRtree(walls).query(segs, predicate="intersects")
        # Through a building's interior is blocked; along a wall or grazing a corner is not.
        through = shapely.relate_pattern(segs[seg_i], walls[wall_i], "T********")
        blocked = np.zeros(len(site_idx), dtype=bool)
        blocked[moving[seg_i[through]]] = True
        seen = ~blocked
        site_idx, sample_idx = site_idx[seen], sample_idx[seen]
        dist, bearing = dist[seen], bearing[seen]
    start = np.searchsorted(site_idx, np.arange(len(sites) + 1)).astype(np.int64)
    return _Sightlines(start, sample_idx, dist, bearing)


def _in_view(lines: _Sightlines, i: int, headings: Sequence[float], model: CameraModel
             ) -> list[IntArray]:
    """Samples that site i sees with this model, for each heading."""
    s = lines.of(i)
    d, b, idx = lines.dist[s], lines.bearing[s], lines.sample[s]
    near = d <= model.range_m + 1e-9
    if model.fov_deg >= 360:
        return [idx[near] for _ in headings]
    off = np.abs((b[None, :] - np.asarray(headings)[:, None] + 180.0) % 360.0 - 180.0)
    # A sample at the camera's own foot is seen whatever the heading.
    ok = near[None, :] & ((off <= model.fov_deg / 2 + _ANGLE_EPS) | (d[None, :] == 0))
    return [idx[row] for row in ok]


@dataclass
class _Options:
    site: IntArray
    heading: FloatArray
    model: IntArray
    price_cents: IntArray
    covers: list[IntArray]  # sample indices each option sees, less what existing cameras see


def _options(scene: _Scene, covered_before: BoolArray) -> _Options:
    reach = np.array([max((scene.models[m].range_m for m in ms), default=0.0)
                      for ms in scene.site_models])
    lines = _sightlines(scene.sites, reach, scene.samples, scene.blockers)
    site, heading, model, price, covers = [], [], [], [], []
    for i, models in enumerate(scene.site_models):
        if lines.start[i] == lines.start[i + 1]:
            continue
        for m in models:
            cam = scene.models[m]
            # A full circle looks the same whichever way it points: one heading will do.
            heads = [0.0] if cam.fov_deg >= 360 else scene.site_headings[i]
            for h, seen in zip(heads, _in_view(lines, i, heads, cam), strict=True):
                new = seen[~covered_before[seen]]
                if new.size:
                    site.append(i)
                    heading.append(h)
                    model.append(m)
                    price.append(round(cam.price_eur * 100))
                    covers.append(new)
    return _Options(np.array(site, dtype=np.int64), np.array(heading, dtype=float),
                    np.array(model, dtype=np.int64), np.array(price, dtype=np.int64), covers)


def _existing_view(scene: _Scene) -> tuple[BoolArray, list[float]]:
    covered = np.zeros(len(scene.samples), dtype=bool)
    weights: list[float] = []
    if not scene.existing_ids:
        return covered, weights
    reach = np.array([scene.models[m].range_m for m in scene.existing_model])
    lines = _sightlines(scene.existing_xy, reach, scene.samples, scene.blockers)
    for i, (h, m) in enumerate(zip(scene.existing_heading, scene.existing_model, strict=True)):
        seen = _in_view(lines, i, [h], scene.models[m])[0]
        weights.append(float(scene.sample_weight[seen].sum()))
        covered[seen] = True
    return covered, weights


def _group(covers: list[IntArray], weights: FloatArray
           ) -> tuple[FloatArray, list[IntArray], IntArray]:
    """Merge the items that exactly the same options see into one (weights add up).

    Returns the groups' weights, each option's groups, and each item's group (-1: unseen).
    Samples along a street mostly share their viewers, so this shrinks the model a lot.
    """
    n_opt = len(covers)
    item_group = np.full(len(weights), -1, dtype=np.int64)
    if n_opt == 0:
        return np.zeros(0), [], item_group
    opt = np.repeat(np.arange(n_opt, dtype=np.int64), [len(c) for c in covers])
    item = np.concatenate(covers).astype(np.int64)
    order = np.lexsort((opt, item))
    item, opt = item[order], opt[order]
    starts = np.flatnonzero(np.r_[True, item[1:] != item[:-1]])
    ends = np.r_[starts[1:], len(item)]
    signature: dict[bytes, int] = {}
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        item_group[item[s]] = signature.setdefault(opt[s:e].tobytes(), len(signature))
    n_groups = len(signature)
    seen = item_group >= 0
    group_weight = np.bincount(item_group[seen], weights=weights[seen],
                               minlength=n_groups).astype(np.float64)
    pairs = np.unique(opt * n_groups + item_group[item])
    owner, grp = pairs // n_groups, pairs % n_groups
    cuts = np.cumsum(np.bincount(owner, minlength=n_opt))[:-1]
    return group_weight, list(np.split(grp, cuts)), item_group


def _undominated(site: IntArray, price: IntArray, covers: list[IntArray]) -> IntArray:
    """Drop an option when another at the same site sees all it sees for no more money.

    Safe: the two compete for the same site, so swapping one for the other keeps every
    budget and loses nothing. Across sites it would not be (the better site may be taken).
    """
    keep: list[int] = []
    by_site: dict[int, list[int]] = {}
    for o, s in enumerate(site.tolist()):
        by_site.setdefault(s, []).append(o)
    for opts in by_site.values():
        sets = {o: frozenset(covers[o].tolist()) for o in opts}
        kept: list[int] = []
        for o in sorted(opts, key=lambda o: (-len(sets[o]), price[o], o)):
            if not any(price[k] <= price[o] and sets[o] <= sets[k] for k in kept):
                kept.append(o)
        keep.extend(kept)
    return np.array(sorted(keep), dtype=np.int64)


# --- choosing ---------------------------------------------------------------


def _greedy(site: IntArray, price: IntArray, covers: list[IntArray], weight: FloatArray,
            budget: Budget) -> list[int]:
    """Best marginal weight per euro (per camera without a euro budget), lazily re-evaluated:
    a pick's gain only shrinks as others are picked, so a stale top that still beats the next
    stale key after re-evaluation is the true best (Minoux's accelerated greedy)."""
    per_euro = budget.eur is not None
    left_cents = round(budget.eur * 100) if budget.eur is not None else None
    left_count = budget.count
    covered = np.zeros(len(weight), dtype=bool)
    used_sites: set[int] = set()

    def key(o: int) -> tuple[float, float]:
        g = covers[o]
        gain = float(weight[g[~covered[g]]].sum())
        if per_euro:
            return (gain / price[o] if price[o] > 0 else math.inf if gain > 0 else 0.0), gain
        return gain, gain

    heap = [(-k[0], -k[1], o) for o in range(len(covers)) for k in [key(o)]]
    heapq.heapify(heap)
    chosen: list[int] = []
    while heap and (left_count is None or left_count > 0):
        _, _, o = heapq.heappop(heap)
        if int(site[o]) in used_sites or (left_cents is not None and price[o] > left_cents):
            continue  # for good: sites stay taken and money only runs down
        ratio, gain = key(o)
        if gain <= 0:
            continue
        if heap and (-ratio, -gain, o) > heap[0]:
            heapq.heappush(heap, (-ratio, -gain, o))
            continue
        chosen.append(o)
        used_sites.add(int(site[o]))
        covered[covers[o]] = True
        if left_cents is not None:
            left_cents -= int(price[o])
        if left_count is not None:
            left_count -= 1
    return chosen


def cp_solver(time_limit_s: float) -> cp_model.CpSolver:
    """CP-SAT on two workers, its full-problem worker being the one with the full LP.

    Covering constraints (y <= x1 + x2 + ...) become clauses in presolve, and the default LP
    worker leaves clauses out of its relaxation: its bound then stays near the sum of all
    weights (a 72 % gap after 50 s on the benchmark). `max_lp` linearises them, and the LP
    relaxation of a covering problem is tight enough to prove the optimum in seconds there.
    """
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit_s
    solver.parameters.num_workers = 2
    solver.parameters.subsolvers.append("max_lp")
    return solver


@dataclass
class _Exact:
    chosen: list[int] | None
    status: str
    bound: int | None


def _cp_sat(site: IntArray, price: IntArray, covers: list[IntArray], weight_int: IntArray,
            budget: Budget, hint: list[int], time_limit_s: float) -> _Exact:
    model = cp_model.CpModel()
    x = [model.new_bool_var(f"x{o}") for o in range(len(covers))]
    y = [model.new_bool_var(f"y{g}") for g in range(len(weight_int))]
    by_site: dict[int, list[Any]] = {}
    for o, s in enumerate(site.tolist()):
        by_site.setdefault(s, []).append(x[o])
    for xs in by_site.values():
        if len(xs) > 1:
            model.add_at_most_one(xs)
    viewers: list[list[Any]] = [[] for _ in y]
    for o, groups in enumerate(covers):
        for g in groups.tolist():
            viewers[g].append(x[o])
    for g, vs in enumerate(viewers):
        model.add(cp_model.LinearExpr.sum(vs) >= y[g])  # counts only if a chosen option sees it
    if budget.count is not None:
        model.add(cp_model.LinearExpr.sum(x) <= budget.count)
    if budget.eur is not None:
        model.add(cp_model.LinearExpr.weighted_sum(x, price.tolist())
                  <= round(budget.eur * 100))
    model.maximize(cp_model.LinearExpr.weighted_sum(y, weight_int.tolist()))
    picked = set(hint)
    seen = np.zeros(len(y), dtype=bool)
    for o in hint:
        seen[covers[o]] = True
    for o, var in enumerate(x):
        model.add_hint(var, o in picked)
    for g, var in enumerate(y):
        model.add_hint(var, bool(seen[g]))
    solver = cp_solver(time_limit_s)
    status = solver.solve(model)
    name = solver.status_name(status)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return _Exact(None, name, None)
    chosen = [o for o, var in enumerate(x) if solver.boolean_value(var)]
    return _Exact(chosen, name, math.floor(solver.best_objective_bound + 1e-6))


def solve(problem: CoverageProblem) -> CoverageResult:
    """Place cameras: CP-SAT's answer beside greedy's, never worse than greedy."""
    t0 = time.perf_counter()
    scene = _scene(problem)
    covered_before, existing_weights = _existing_view(scene)
    opts = _options(scene, covered_before)
    # Two passes of grouping around the dominance filter: first so the subset tests are over
    # few groups, then again because dropping options lets more groups merge.
    g1_weight, g1_covers, _ = _group(opts.covers, scene.sample_weight)
    keep = _undominated(opts.site, opts.price_cents, g1_covers)
    site, price = opts.site[keep], opts.price_cents[keep]
    group_weight, covers, _ = _group([g1_covers[o] for o in keep.tolist()], g1_weight)
    precompute_s = time.perf_counter() - t0

    t1 = time.perf_counter()
    greedy = _greedy(site, price, covers, group_weight, problem.budget)
    greedy_s = time.perf_counter() - t1

    t2 = time.perf_counter()
    free = float(group_weight.sum())
    scale = WEIGHT_SCALE / free if free > 0 else 1.0
    weight_int = np.maximum(1, np.rint(group_weight * scale)).astype(np.int64)
    if covers:
        exact = _cp_sat(site, price, covers, weight_int, problem.budget, greedy,
                        problem.time_limit_s)
    else:  # nothing left to see: the empty plan is optimal
        exact = _Exact([], "OPTIMAL", 0)
    solve_s = time.perf_counter() - t2

    def seen_weight(chosen: list[int], w: npt.NDArray[Any]) -> Any:
        mask = np.zeros(len(w), dtype=bool)
        for o in chosen:
            mask[covers[o]] = True
        return w[mask].sum()

    greedy_w = float(seen_weight(greedy, group_weight))
    if exact.chosen is None:
        answer, source = greedy, "greedy (solver found no solution in time)"
    elif float(seen_weight(exact.chosen, group_weight)) + 1e-9 * max(free, 1.0) < greedy_w:
        answer = greedy
        source = ("greedy (solver timed out below it)" if exact.status != "OPTIMAL"
                  else "greedy (equal to the optimum but for weight rounding)")
    else:
        answer, source = exact.chosen, "exact"
    gap = None
    best_bound = None
    existing_weight = float(scene.sample_weight[covered_before].sum())
    if exact.bound is not None:
        found = int(seen_weight(answer, weight_int))
        bound = max(exact.bound, found)  # the float bound may sit a hair below the optimum
        gap = 100.0 * (bound - found) / bound if bound > 0 else 0.0
        best_bound = existing_weight + bound / scale

    original = keep  # final option index -> index into opts
    total = float(scene.target_weight.sum())

    def plan(method: str, chosen: list[int]) -> tuple[Plan, BoolArray]:
        mask = covered_before.copy()
        cams = []
        for o in sorted(chosen, key=lambda o: (int(site[o]), o)):
            k = int(original[o])
            i, cam = int(opts.site[k]), scene.models[int(opts.model[k])]
            mask[opts.covers[k]] = True
            cams.append(Camera(
                site_id=scene.site_ids[i], lon=float(scene.site_lonlat[i, 0]),
                lat=float(scene.site_lonlat[i, 1]), heading_deg=float(opts.heading[k]),
                model=cam.id, range_m=cam.range_m, fov_deg=cam.fov_deg, cost_eur=cam.price_eur,
                covered_weight=float(scene.sample_weight[opts.covers[k]].sum())))
        weight = float(scene.sample_weight[mask].sum())
        return Plan(method=method, cameras=cams, cost_eur=sum(c.cost_eur for c in cams),
                    covered_weight=weight,
                    covered_pct=100.0 * weight / total if total > 0 else 0.0), mask

    exact_plan, mask = plan("exact" if source == "exact" else "greedy", answer)
    greedy_plan, _ = plan("greedy", greedy)
    per_target = np.bincount(scene.sample_target, weights=np.where(mask, scene.sample_weight, 0),
                             minlength=len(scene.target_weight))
    existing_cams = []
    for i, cam_id in enumerate(scene.existing_ids):
        cam = scene.models[scene.existing_model[i]]
        existing_cams.append(Camera(
            site_id=cam_id, lon=float(scene.existing_lonlat[i, 0]),
            lat=float(scene.existing_lonlat[i, 1]), heading_deg=scene.existing_heading[i],
            model=cam.id, range_m=cam.range_m, fov_deg=cam.fov_deg, cost_eur=0.0,
            covered_weight=existing_weights[i], existing=True))
    return CoverageResult(
        exact=exact_plan, greedy=greedy_plan, source=source, status=exact.status,
        best_bound=best_bound, gap_pct=gap, total_weight=total, existing_weight=existing_weight,
        budget=problem.budget, existing=existing_cams,
        targets=[TargetCoverage(id=f.properties.id, kind=f.properties.kind,
                                weight=f.properties.weight,
                                covered_weight=min(float(per_target[t]), f.properties.weight),
                                geometry=f.geometry)
                 for t, f in enumerate(problem.targets.features)],
        candidates=len(scene.site_ids), options=len(covers), samples=len(scene.samples),
        groups=len(group_weight), precompute_s=precompute_s, greedy_s=greedy_s,
        solve_s=solve_s, time_limit_s=problem.time_limit_s)


# --- reporting ----------------------------------------------------------------


def _state(t: TargetCoverage) -> str:
    share = t.covered_weight / t.weight
    return "yes" if share >= 1 - 1e-9 else "partial" if share > 1e-9 else "no"


def to_geojson(result: CoverageResult) -> dict[str, Any]:
    """Targets flagged covered/partial/no, the chosen and existing cameras, their views."""
    features: list[dict[str, Any]] = []
    for t in result.targets:
        features.append({"type": "Feature", "geometry": t.geometry, "properties": {
            "role": "target", "id": t.id, "kind": t.kind, "weight": t.weight,
            "covered_weight": round(t.covered_weight, 6),
            "covered_fraction": round(t.covered_weight / t.weight, 6),
            "covered": _state(t)}})
    for cam in [*result.exact.cameras, *result.existing]:
        props = cam.model_dump(exclude={"lon", "lat"})
        props["role"] = "existing_camera" if cam.existing else "camera"
        features.append({"type": "Feature", "properties": props,
                         "geometry": {"type": "Point", "coordinates": [cam.lon, cam.lat]}})
        features.append({"type": "Feature", "properties": {
            "role": "field_of_view", "site_id": cam.site_id, "existing": cam.existing},
            "geometry": sector(cam.lon, cam.lat, cam.heading_deg, cam.fov_deg, cam.range_m)})
    return {"type": "FeatureCollection", "features": features, "summary": {
        "covered_weight": result.exact.covered_weight,
        "covered_pct": result.exact.covered_pct,
        "greedy_covered_weight": result.greedy.covered_weight,
        "greedy_covered_pct": result.greedy.covered_pct,
        "total_weight": result.total_weight, "status": result.status,
        "gap_pct": result.gap_pct, "source": result.source}}


def summary(result: CoverageResult) -> str:
    """A short table: exact beside greedy."""
    e, g = result.exact, result.greedy
    rows = [
        ("", "esatto/exact", "greedy"),
        ("telecamere / cameras", str(len(e.cameras)), str(len(g.cameras))),
        ("costo / cost (EUR)", f"{e.cost_eur:,.0f}", f"{g.cost_eur:,.0f}"),
        ("peso coperto / covered weight", f"{e.covered_weight:,.2f}", f"{g.covered_weight:,.2f}"),
        ("copertura / coverage", f"{e.covered_pct:.1f} %", f"{g.covered_pct:.1f} %"),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i])
                       for i, c in enumerate(r)) for r in rows]
    gap = "n/a" if result.gap_pct is None else f"{result.gap_pct:.2f} %"
    bound = "n/a" if result.best_bound is None else f"{result.best_bound:,.2f}"
    lines.append(f"solver {result.status}, bound {bound}, gap {gap}, answer: {result.source}")
    lines.append(f"total weight {result.total_weight:,.2f}, already covered by existing cameras "
                 f"{result.existing_weight:,.2f}")
    lines.append(f"{result.candidates} candidates, {result.options} options, {result.samples} "
                 f"samples in {result.groups} groups; precompute {result.precompute_s:.2f} s, "
                 f"greedy {result.greedy_s:.2f} s, solve {result.solve_s:.2f} s")
    return "\n".join(lines)


def write_png(fig: Any, path: str | Path) -> None:
    """Write a matplotlib figure as PNG atomically: a crash leaves no half-written map."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    target = Path(path)
    FigureCanvasAgg(fig)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".png", dir=target.parent or ".")
    try:
        with os.fdopen(fd, "wb") as out:
            fig.savefig(out, format="png", dpi=fig.dpi)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def rings(geom: Any) -> list[FloatArray]:
    """The outer rings of a (multi)polygon, for drawing."""
    parts = geom.geoms if geom.geom_type == "MultiPolygon" else [geom]
    return [np.asarray(p.exterior.coords) for p in parts]


def lines_of(geom: Any) -> list[FloatArray]:
    parts = geom.geoms if geom.geom_type == "MultiLineString" else [geom]
    return [np.asarray(p.coords) for p in parts]


_COLOURS = {"yes": "#1a9850", "partial": "#fdae61", "no": "#d73027"}


def render_png(problem: CoverageProblem, result: CoverageResult, path: str | Path) -> None:
    """A map: buildings grey, targets by coverage, views as wedges, existing cameras apart."""
    from matplotlib.collections import LineCollection, PolyCollection
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    fig = Figure(figsize=(10, 10), dpi=110)
    ax = fig.add_subplot()
    polys: dict[str, list[FloatArray]] = {k: [] for k in _COLOURS}
    lines: dict[str, list[FloatArray]] = {k: [] for k in _COLOURS}
    points: dict[str, list[FloatArray]] = {k: [] for k in _COLOURS}
    lat0 = []
    for t in result.targets:
        geom = shape(t.geometry)
        state = _state(t)
        lat0.append(geom.centroid.y)
        if geom.geom_type in ("Polygon", "MultiPolygon"):
            polys[state].extend(rings(geom))
        elif geom.geom_type in ("LineString", "MultiLineString"):
            lines[state].extend(lines_of(geom))
        else:
            points[state].append(shapely.get_coordinates(geom))
    if problem.buildings:
        walls = [r for f in problem.buildings.features for r in rings(shape(f.geometry))]
        ax.add_collection(PolyCollection(walls, facecolors="#bdbdbd", edgecolors="#969696",
                                         linewidths=0.3, zorder=1))
    if problem.area is not None:
        area = area_geometry(problem.area, "area")
        for r in rings(area):
            ax.plot(r[:, 0], r[:, 1], color="#4d4d4d", linewidth=0.8, linestyle="--", zorder=1)
    for state, colour in _COLOURS.items():
        if polys[state]:
            ax.add_collection(PolyCollection(polys[state], facecolors=colour, alpha=0.45,
                                             edgecolors=colour, zorder=2))
        if lines[state]:
            ax.add_collection(LineCollection(lines[state], colors=colour, linewidths=1.6,
                                             zorder=3))
        if points[state]:
            pts = np.vstack(points[state])
            ax.scatter(pts[:, 0], pts[:, 1], s=9, color=colour, zorder=4)
    unused = {c.site_id for c in result.exact.cameras}
    spare = np.array([f.geometry["coordinates"][:2] for f in problem.candidates.features
                      if f.properties.id not in unused]).reshape(-1, 2)
    ax.scatter(spare[:, 0], spare[:, 1], s=4, color="#737373", marker=".", zorder=5)
    for cams, colour in ((result.exact.cameras, "#2166ac"), (result.existing, "#762a83")):
        wedges = [np.asarray(sector(c.lon, c.lat, c.heading_deg, c.fov_deg,
                                    c.range_m)["coordinates"][0]) for c in cams]
        if wedges:
            ax.add_collection(PolyCollection(wedges, facecolors=colour, alpha=0.15,
                                             edgecolors=colour, linewidths=0.4, zorder=5))
            ax.scatter([c.lon for c in cams], [c.lat for c in cams], s=22, color=colour,
                       marker="^" if cams is result.existing else "o", edgecolors="white",
                       linewidths=0.5, zorder=6)
    ax.autoscale_view()
    mid = float(np.mean(lat0)) if lat0 else 0.0
    ax.set_aspect(1.0 / math.cos(math.radians(mid)))  # a metre is a metre both ways
    ax.ticklabel_format(useOffset=False)
    ax.set_xlabel("lon")
    ax.set_ylabel("lat")
    ax.legend(handles=[
        Patch(color=_COLOURS["yes"], label="Coperto / Covered"),
        Patch(color=_COLOURS["partial"], label="Parziale / Partial"),
        Patch(color=_COLOURS["no"], label="Scoperto / Uncovered"),
        Patch(color="#bdbdbd", label="Edifici / Buildings"),
        Line2D([], [], marker="o", color="#2166ac", linestyle="",
               label="Telecamere nuove / New cameras"),
        Line2D([], [], marker="^", color="#762a83", linestyle="",
               label="Telecamere esistenti / Existing cameras"),
        Patch(color="#2166ac", alpha=0.3, label="Campo visivo / Field of view"),
        Line2D([], [], marker=".", color="#737373", linestyle="",
               label="Siti candidati / Candidate sites"),
    ], loc="upper right", fontsize=8, framealpha=0.9)
    e, g = result.exact, result.greedy
    ax.set_title(f"Copertura / Coverage: {e.covered_pct:.1f} % ({result.source}) - "
                 f"greedy {g.covered_pct:.1f} %\n"
                 f"{len(e.cameras)} telecamere nuove / new cameras, {e.cost_eur:,.0f} EUR; "
                 f"{result.status}"
                 + ("" if result.gap_pct is None else f", gap {result.gap_pct:.2f} %"),
                 fontsize=10)
    fig.tight_layout()
    write_png(fig, path)
