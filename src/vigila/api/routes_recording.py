"""Camera health, retention and legal holds over HTTP: thin calls into vigila.recording."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import StringConstraints

from vigila import recording
from vigila.access import Principal
from vigila.api.deps import Installation, installation, principal
from vigila.core.text import NoNul
from vigila.recording import CameraHealth, Hold, HoldIn, HoldRelease, Retention, RetentionIn

router = APIRouter(prefix="/api", tags=["recording"])
CameraId = Annotated[str, Path(max_length=64), StringConstraints(max_length=64), NoNul]
HoldId = Annotated[int, Path(ge=1, le=2**62)]


@router.get("/recording/health", response_model=list[CameraHealth],
            summary="Health of every camera in your zones, as its recorder last reported it")
def list_health(who: Principal = Depends(principal),
                inst: Installation = Depends(installation)) -> list[CameraHealth]:
    with inst.db.read() as conn:
        return recording.list_health(conn, who)


@router.get("/recording/health/{camera_id}", response_model=CameraHealth)
def get_health(camera_id: CameraId, who: Principal = Depends(principal),
               inst: Installation = Depends(installation)) -> CameraHealth:
    with inst.db.read() as conn:
        return recording.list_health(conn, who, camera_id)[0]


@router.get("/retention", response_model=list[Retention],
            summary="Retention of every camera in your zones (its own, or the default)")
def list_retention(who: Principal = Depends(principal),
                   inst: Installation = Depends(installation)) -> list[Retention]:
    with inst.db.read() as conn:
        return recording.list_retention(conn, who, inst.settings.retention_days)


@router.put("/retention/{camera_id}", response_model=Retention,
            summary="Set a camera's retention in days (audited; past 7 days, give the reason)")
def set_retention(camera_id: CameraId, body: RetentionIn, who: Principal = Depends(principal),
                  inst: Installation = Depends(installation)) -> Retention:
    with inst.db.write() as conn:
        return recording.set_retention(conn, who, camera_id, body, inst.settings.retention_days)


@router.get("/holds", response_model=list[Hold],
            summary="Legal holds touching your zones")
def list_holds(active: Annotated[bool | None, Query()] = None,
               who: Principal = Depends(principal),
               inst: Installation = Depends(installation)) -> list[Hold]:
    with inst.db.read() as conn:
        return recording.list_holds(conn, who, active=active)


@router.post("/holds", response_model=Hold, status_code=201,
             summary="Put cameras' video in a time window under a legal hold (audited)")
def create_hold(body: HoldIn, who: Principal = Depends(principal),
                inst: Installation = Depends(installation)) -> Hold:
    with inst.db.write() as conn:
        return recording.create_hold(conn, who, body)


@router.get("/holds/{hold_id}", response_model=Hold)
def get_hold(hold_id: HoldId, who: Principal = Depends(principal),
             inst: Installation = Depends(installation)) -> Hold:
    with inst.db.read() as conn:
        return recording.get_hold(conn, who, hold_id)


@router.post("/holds/{hold_id}/release", response_model=Hold,
             summary="Release a legal hold (supervisors; audited)")
def release_hold(hold_id: HoldId, body: HoldRelease, who: Principal = Depends(principal),
                 inst: Installation = Depends(installation)) -> Hold:
    with inst.db.write() as conn:
        return recording.release_hold(conn, who, hold_id, body)
