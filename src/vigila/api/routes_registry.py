"""Agencies, zones and devices over HTTP: thin calls into vigila.registry."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import PlainTextResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, StringConstraints
from starlette.concurrency import run_in_threadpool

from vigila import registry
from vigila.access import Principal
from vigila.api.deps import Installation, installation, principal
from vigila.core import FieldError, UnsupportedMediaType
from vigila.core.pagination import Page
from vigila.core.text import NoNul
from vigila.registry import (
    Agency,
    AgencyIn,
    AgencyPatch,
    Device,
    DeviceFilter,
    DeviceIn,
    DeviceKind,
    DevicePatch,
    DeviceStatus,
    ImportReport,
    Zone,
    ZoneIn,
    ZonePatch,
)

router = APIRouter(prefix="/api", tags=["registry"])
Limit = Annotated[int, Query(ge=1, le=1000)]
Id = Annotated[str, StringConstraints(max_length=64), NoNul]


@router.get("/agencies", response_model=list[Agency])
def list_agencies(who: Principal = Depends(principal),
                  inst: Installation = Depends(installation)) -> list[Agency]:
    with inst.db.read() as conn:
        return registry.list_agencies(conn, who)


@router.post("/agencies", response_model=Agency, status_code=201)
def create_agency(body: AgencyIn, who: Principal = Depends(principal),
                  inst: Installation = Depends(installation)) -> Agency:
    with inst.db.write() as conn:
        return registry.create_agency(conn, who, body)


@router.get("/agencies/{agency_id}", response_model=Agency)
def get_agency(agency_id: Id, who: Principal = Depends(principal),
               inst: Installation = Depends(installation)) -> Agency:
    with inst.db.read() as conn:
        return registry.get_agency(conn, who, agency_id)


@router.patch("/agencies/{agency_id}", response_model=Agency)
def update_agency(agency_id: Id, body: AgencyPatch, who: Principal = Depends(principal),
                  inst: Installation = Depends(installation)) -> Agency:
    with inst.db.write() as conn:
        return registry.update_agency(conn, who, agency_id, body)


@router.get("/zones", response_model=list[Zone])
def list_zones(who: Principal = Depends(principal),
               inst: Installation = Depends(installation)) -> list[Zone]:
    with inst.db.read() as conn:
        return registry.list_zones(conn, who)


@router.get("/zones.geojson", summary="Zones as a GeoJSON FeatureCollection")
def export_zones(who: Principal = Depends(principal),
                 inst: Installation = Depends(installation)) -> dict[str, Any]:
    with inst.db.read() as conn:
        return registry.zones_geojson(registry.list_zones(conn, who))


@router.post("/zones", response_model=Zone, status_code=201)
def create_zone(body: ZoneIn, who: Principal = Depends(principal),
                inst: Installation = Depends(installation)) -> Zone:
    with inst.db.write() as conn:
        return registry.create_zone(conn, who, body)


@router.get("/zones/{zone_id}", response_model=Zone)
def get_zone(zone_id: Id, who: Principal = Depends(principal),
             inst: Installation = Depends(installation)) -> Zone:
    with inst.db.read() as conn:
        return registry.get_zone(conn, who, zone_id)


@router.patch("/zones/{zone_id}", response_model=Zone)
def update_zone(zone_id: Id, body: ZonePatch, who: Principal = Depends(principal),
                inst: Installation = Depends(installation)) -> Zone:
    with inst.db.write() as conn:
        return registry.update_zone(conn, who, zone_id, body)


@router.delete("/zones/{zone_id}", status_code=204)
def delete_zone(zone_id: Id, who: Principal = Depends(principal),
                inst: Installation = Depends(installation)) -> None:
    with inst.db.write() as conn:
        registry.delete_zone(conn, who, zone_id)


def device_filter(
    kind: DeviceKind | None = None,
    status: DeviceStatus | None = None,
    zone_id: Id | None = None,
    agency_id: Id | None = None,
    recording_server_id: Id | None = None,
    q: Annotated[str, StringConstraints(max_length=100), NoNul] | None = Query(
        default=None, description="text in the device id or name"),
    include_retired: bool = False,
) -> DeviceFilter:
    return DeviceFilter(kind, status, zone_id, agency_id, recording_server_id, q, include_retired)


@router.get("/devices", response_model=Page[Device])
def list_devices(flt: DeviceFilter = Depends(device_filter), cursor: str | None = None,
                 limit: Limit = 100, who: Principal = Depends(principal),
                 inst: Installation = Depends(installation)) -> Page[Device]:
    with inst.db.read() as conn:
        return registry.list_devices(conn, who, flt, cursor, limit)


@router.get("/devices.csv", response_class=PlainTextResponse,
            responses={200: {"content": {"text/csv": {}}}})
def export_devices_csv(flt: DeviceFilter = Depends(device_filter),
                       who: Principal = Depends(principal),
                       inst: Installation = Depends(installation)) -> StreamingResponse:
    with inst.db.read() as conn:
        text = registry.devices_csv(registry.iter_devices(conn, who, flt))
    return StreamingResponse(iter([text]), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="devices.csv"'})


@router.get("/devices.geojson", summary="Devices as a GeoJSON FeatureCollection of points")
def export_devices_geojson(flt: DeviceFilter = Depends(device_filter),
                           who: Principal = Depends(principal),
                           inst: Installation = Depends(installation)) -> dict[str, Any]:
    with inst.db.read() as conn:
        return registry.devices_geojson(registry.iter_devices(conn, who, flt))


@router.post("/devices", response_model=Device, status_code=201)
def create_device(body: DeviceIn, who: Principal = Depends(principal),
                  inst: Installation = Depends(installation)) -> Device:
    with inst.db.write() as conn:
        return registry.create_device(conn, who, body, inst.bus)


@router.get("/devices/{device_id}", response_model=Device)
def get_device(device_id: Id, who: Principal = Depends(principal),
               inst: Installation = Depends(installation)) -> Device:
    with inst.db.read() as conn:
        return registry.get_device(conn, who, device_id)


@router.patch("/devices/{device_id}", response_model=Device)
def update_device(device_id: Id, body: DevicePatch, who: Principal = Depends(principal),
                  inst: Installation = Depends(installation)) -> Device:
    with inst.db.write() as conn:
        return registry.update_device(conn, who, device_id, body, inst.bus)


class Retirement(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, StringConstraints(max_length=500), NoNul] | None = None


@router.post("/devices/{device_id}/retire", response_model=Device)
def retire_device(device_id: Id, body: Retirement = Body(default_factory=Retirement),
                  who: Principal = Depends(principal),
                  inst: Installation = Depends(installation)) -> Device:
    with inst.db.write() as conn:
        return registry.retire_device(conn, who, device_id, body.reason, inst.bus)


_IMPORT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/geo+json": {"schema": {"type": "object"}},
        },
    }
}


@router.post("/device-imports", response_model=ImportReport, openapi_extra=_IMPORT_BODY,
             responses={422: {"description": "rows with errors; nothing imported"}})
async def import_devices(
    request: Request,
    good_rows: bool = Query(default=False, description="import the valid rows, report the rest"),
    who: Principal = Depends(principal),
    inst: Installation = Depends(installation),
) -> ImportReport:
    """Import devices from CSV (text/csv) or GeoJSON (application/geo+json), all or nothing."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    if ctype in ("text/csv", "application/csv"):
        rows = registry.parse_csv(raw)
    elif ctype in ("application/geo+json", "application/json"):
        rows = registry.parse_geojson(raw)
    else:
        why = f"{ctype or 'none'} is not accepted"
        raise UnsupportedMediaType("send text/csv or application/geo+json",
                                   [FieldError("content-type", why)])
    report = await run_in_threadpool(_import, inst, who, rows, good_rows, ctype)
    if not report.committed:
        raise registry.rejected(report)
    return report


def _import(inst: Installation, who: Principal, rows: list[registry.Row],
            good_rows: bool, source: str) -> ImportReport:
    with inst.db.write() as conn:
        return registry.import_devices(conn, who, rows, good_rows=good_rows, source=source)
