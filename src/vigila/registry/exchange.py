"""Bulk exchange: devices as CSV or GeoJSON points, zones as GeoJSON polygons."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from typing import Any

from vigila.core.errors import FieldError, InvalidInput
from vigila.registry.models import DEVICE_COLUMNS, Device, ImportReport, Zone

MAX_ROWS = 50_000
# Set by the server and written by the exports; an import leaves them out, so an
# export can be edited and imported again.
READ_ONLY = frozenset({"created_at", "updated_at", "retired_at"})
# A row's number as the user sees it, with its fields or what makes it unreadable.
Row = tuple[int, dict[str, Any] | FieldError]


def _text(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8-sig")  # Excel writes a BOM; accept it
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"the {what} is not UTF-8 (byte {exc.start} is 0x{raw[exc.start]:02x}): "
            "save it as UTF-8 and try again",
            [FieldError("file", f"not UTF-8 at byte {exc.start}")],
        ) from exc


def parse_csv(raw: bytes) -> list[Row]:
    """Rows numbered as a spreadsheet shows them (the header is row 1); empty cells are unset."""
    reader = csv.reader(io.StringIO(_text(raw, "CSV"), newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration as exc:
        raise InvalidInput.on("file", "the CSV is empty") from exc
    except csv.Error as exc:
        raise InvalidInput.on("file", f"not a readable CSV: {exc}") from exc
    unknown = [h for h in header if h not in DEVICE_COLUMNS]
    if unknown:
        raise InvalidInput(f"unknown columns: {', '.join(unknown)}",
                           [FieldError(h, "unknown column", 1) for h in unknown])
    if len(set(header)) != len(header):
        raise InvalidInput.on("header", "a column appears twice")
    rows: list[Row] = []
    try:
        for number, cells in enumerate(reader, start=2):
            if not any(c.strip() for c in cells):
                continue
            if len(rows) >= MAX_ROWS:
                raise InvalidInput.on("file", f"at most {MAX_ROWS} rows per import")
            if len(cells) != len(header):
                why = f"{len(cells)} cells; the header has {len(header)}"
                rows.append((number, FieldError("(row)", why, number)))
                continue
            rows.append((number, {h: c.strip() for h, c in zip(header, cells, strict=True)
                                  if c.strip() != ""}))
    except csv.Error as exc:
        why = f"not a readable CSV near row {reader.line_num}: {exc}"
        raise InvalidInput.on("file", why) from exc
    return rows


def parse_geojson(raw: bytes) -> list[Row]:
    """Point features; rows are numbered by feature, from 1."""
    try:
        doc = json.loads(_text(raw, "GeoJSON"))
    except json.JSONDecodeError as exc:
        raise InvalidInput.on("file", f"not JSON: {exc.msg} at line {exc.lineno}") from exc
    except RecursionError as exc:
        raise InvalidInput.on("file", "not usable JSON: nested too deeply") from exc
    except ValueError as exc:  # Python refuses integers of more than 4300 digits
        raise InvalidInput.on("file", "not usable JSON: a number has too many digits") from exc
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" or not isinstance(
            doc.get("features"), list):
        raise InvalidInput.on("type", "expected a GeoJSON FeatureCollection")
    if len(doc["features"]) > MAX_ROWS:
        raise InvalidInput.on("features", f"at most {MAX_ROWS} features per import")
    rows: list[Row] = []
    for number, feature in enumerate(doc["features"], start=1):
        if not isinstance(feature, dict):
            rows.append((number, FieldError("(feature)", "not a Feature object", number)))
            continue
        props = feature.get("properties") or {}
        geom = feature.get("geometry") or {}
        if not isinstance(props, dict) or not isinstance(geom, dict):
            why = "properties and geometry must be objects"
            rows.append((number, FieldError("(feature)", why, number)))
            continue
        coords = geom.get("coordinates")
        if geom.get("type") != "Point" or not isinstance(coords, list) or len(coords) < 2:
            rows.append((number, FieldError("geometry", "a device is a GeoJSON Point", number)))
            continue
        fields = {k: v for k, v in props.items() if k not in READ_ONLY}
        rows.append((number, {**fields, "lon": coords[0], "lat": coords[1]}))
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return str(getattr(value, "value", value))


def devices_csv(items: Iterable[Device]) -> str:
    """The same columns the import reads, so an export can be edited and re-imported."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(DEVICE_COLUMNS)
    for d in items:
        data = d.model_dump(mode="json")
        writer.writerow([_cell(data.get(c)) for c in DEVICE_COLUMNS])
    return out.getvalue()


def devices_geojson(items: Iterable[Device]) -> dict[str, Any]:
    features = []
    for d in items:
        props = d.model_dump(mode="json")
        lon, lat = props.pop("lon"), props.pop("lat")
        features.append({"type": "Feature", "id": d.id,
                         "geometry": {"type": "Point", "coordinates": [lon, lat]},
                         "properties": props})
    return {"type": "FeatureCollection", "features": features}


def zones_geojson(items: Iterable[Zone]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": z.id, "geometry": z.geometry,
         "properties": z.model_dump(mode="json", exclude={"geometry"})}
        for z in items
    ]}


def rejected(report: ImportReport) -> InvalidInput:
    """The error a refused import raises: every bad row, its field and why."""
    errors = [FieldError(str(e["field"]), str(e["message"]), e.get("row")) for e in report.errors]
    first = errors[0]
    return InvalidInput(
        f"{len({e.row for e in errors})} of {report.rows} rows have errors (first: row "
        f"{first.row}, {first.field}: {first.message}); nothing was imported. "
        "Fix them, or import only the good rows with good_rows=true.",
        errors,
    )
