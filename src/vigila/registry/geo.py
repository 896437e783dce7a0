"""GeoJSON checks for zones: a valid Polygon or MultiPolygon in WGS 84, nothing else."""

from __future__ import annotations

import sys
from typing import Any

from shapely.geometry import shape
from shapely.validation import explain_validity

from vigila.core.errors import InvalidInput

MAX_VERTICES = 20_000


def check_position(p: Any, where: str) -> None:
    """A GeoJSON position [lon, lat(, elevation)] in range; the error names where it stands."""
    if not isinstance(p, list) or len(p) not in (2, 3):
        raise InvalidInput.on(where, "a position is [lon, lat]")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in p):
        raise InvalidInput.on(where, "coordinates must be numbers")
    lon, lat = p[0], p[1]
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise InvalidInput.on(where, f"[{lon}, {lat}] is outside lon -180..180, lat -90..90")
    if len(p) == 3 and not -sys.float_info.max <= p[2] <= sys.float_info.max:
        raise InvalidInput.on(where, "the elevation must be a finite number")


def _rings(rings: Any, where: str) -> int:
    if not isinstance(rings, list) or not rings:
        raise InvalidInput.on(where, "a polygon is a non-empty list of linear rings")
    count = 0
    for i, ring in enumerate(rings):
        at = f"{where}[{i}]"
        if not isinstance(ring, list) or len(ring) < 4:
            raise InvalidInput.on(at, "a linear ring has at least 4 positions")
        for j, p in enumerate(ring):
            check_position(p, f"{at}[{j}]")
        if len({len(p) for p in ring}) > 1:
            raise InvalidInput.on(at, "mixes [lon, lat] and [lon, lat, elevation] positions")
        if ring[0][:2] != ring[-1][:2]:
            raise InvalidInput.on(at, "a linear ring must end where it starts")
        count += len(ring)
    return count


def check_zone_geometry(geometry: Any, field: str = "geometry") -> dict[str, Any]:
    """Return the geometry if it is a usable zone; otherwise say what is wrong and where."""
    if not isinstance(geometry, dict):
        raise InvalidInput.on(field, "must be a GeoJSON geometry object")
    kind = geometry.get("type")
    coords = geometry.get("coordinates")
    if kind == "Polygon":
        vertices = _rings(coords, f"{field}.coordinates")
    elif kind == "MultiPolygon":
        if not isinstance(coords, list) or not coords:
            raise InvalidInput.on(f"{field}.coordinates", "a MultiPolygon lists polygons")
        vertices = sum(_rings(p, f"{field}.coordinates[{i}]") for i, p in enumerate(coords))
    else:
        raise InvalidInput.on(f"{field}.type", f"must be Polygon or MultiPolygon, not {kind!r}")
    if vertices > MAX_VERTICES:
        raise InvalidInput.on(f"{field}.coordinates", f"at most {MAX_VERTICES} positions")
    extra = set(geometry) - {"type", "coordinates", "bbox"}
    if extra:
        raise InvalidInput.on(field, f"unexpected members: {', '.join(sorted(extra))}")
    geom = shape(geometry)
    if not geom.is_valid:
        raise InvalidInput.on(field, f"invalid polygon: {explain_validity(geom)}")
    if geom.is_empty or geom.area == 0:
        raise InvalidInput.on(field, "the polygon has no area")
    return {"type": kind, "coordinates": coords}
