"""Camera health as the recorders last reported it, zone-scoped for the API and CLI."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection

from vigila.access import Permission, Principal
from vigila.core import NotFound
from vigila.core.timeutil import utcnow
from vigila.recording.tables import camera_health
from vigila.registry.models import DeviceKind, DeviceStatus
from vigila.registry.tables import devices

STALE_AFTER = timedelta(seconds=30)  # a recorder reports every few seconds


class CameraHealth(BaseModel):
    camera_id: str
    name: str
    zone_id: str | None
    state: str = Field(description="online, connecting, offline, disk_full, stopped, "
                                   "or not_recorded when no recorder reports it")
    stale: bool = Field(description="the last report is older than "
                                    f"{int(STALE_AFTER.total_seconds())} s: its recorder is "
                                    "not running")
    server_id: str | None = None
    fps: float | None = None
    bitrate_bps: float | None = None
    last_frame_at: datetime | None = None
    last_segment_end: datetime | None = None
    offline_since: datetime | None = None
    last_error: str | None = None
    updated_at: datetime | None = None


def list_health(conn: Connection, actor: Principal, camera_id: str | None = None,
                now: datetime | None = None) -> list[CameraHealth]:
    """Every active camera in the actor's zones, with its last reported health."""
    actor.require(Permission.REGISTRY_READ)
    now = now or utcnow()
    q = (sa.select(devices.c.id, devices.c.name, devices.c.zone_id, camera_health)
         .select_from(devices.outerjoin(camera_health,
                                        camera_health.c.camera_id == devices.c.id))
         .where(devices.c.kind.in_([DeviceKind.CAMERA.value, DeviceKind.CAMERA_ANPR.value]),
                devices.c.status != DeviceStatus.RETIRED.value,
                actor.zone_clause(devices.c.zone_id))
         .order_by(devices.c.id))
    if camera_id is not None:
        q = q.where(devices.c.id == camera_id)
    out = []
    for row in conn.execute(q).all():
        reported = row.updated_at is not None
        out.append(CameraHealth(
            camera_id=row.id, name=row.name, zone_id=row.zone_id,
            state=row.state if reported else "not_recorded",
            stale=reported and now - row.updated_at > STALE_AFTER,
            server_id=row.server_id, fps=row.fps, bitrate_bps=row.bitrate_bps,
            last_frame_at=row.last_frame_at, last_segment_end=row.last_segment_end,
            offline_since=row.offline_since, last_error=row.last_error,
            updated_at=row.updated_at))
    if camera_id is not None and not out:
        raise NotFound(f"no such camera: {camera_id}")
    return out
