"""Legal holds: a judicial or police request that keeps video from being deleted.

A hold names the request (authority, reference, date), the cameras and a time window.
Every segment of those cameras that overlaps the window is kept — by the retention purge
and by the disk guard alike — until a supervisor releases the hold. Creating and
releasing are audited in the same transaction as the change.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy.engine import Connection

from vigila.access import Permission, Principal, audit
from vigila.core import Conflict, InvalidInput, NotFound
from vigila.core.text import NoNul
from vigila.core.timeutil import as_utc, iso, utcnow
from vigila.recording.tables import legal_hold_cameras, legal_holds, segments
from vigila.registry.models import DeviceId
from vigila.registry.tables import devices

Text200 = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True),
                    NoNul]
LongText = Annotated[str, StringConstraints(max_length=2000, strip_whitespace=True), NoNul]
MAX_CAMERAS = 500


def _plausible(value: datetime) -> datetime:
    # Far-off years overflow date arithmetic and mean a typing error anyway.
    if not 2000 <= value.year <= 2100:
        raise ValueError("must be between the years 2000 and 2100")
    return value


Instant = Annotated[AwareDatetime, AfterValidator(_plausible)]


class HoldIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    authority: Text200 = Field(description="who asked, e.g. 'Procura della Repubblica di Prato'")
    reference: Text200 = Field(description="the request's reference (protocollo, RGNR ...)")
    request_date: date
    cameras: list[DeviceId] = Field(min_length=1, max_length=MAX_CAMERAS)
    start: Instant
    end: Instant
    notes: LongText | None = None


class HoldRelease(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Text200


class Hold(BaseModel):
    id: int
    authority: str
    reference: str
    request_date: date
    cameras: list[str]
    start: datetime
    end: datetime
    notes: str | None
    created_by: str
    created_at: datetime
    released_by: str | None
    released_at: datetime | None
    release_reason: str | None
    active: bool
    segments: int = Field(description="indexed segments the hold keeps now")


def held_clause(seg: sa.Table = segments) -> sa.ColumnElement[bool]:
    """True for a segment that an active hold protects: one query for purge and disk alike."""
    return sa.exists(
        sa.select(1).select_from(legal_hold_cameras.join(
            legal_holds, legal_holds.c.id == legal_hold_cameras.c.hold_id))
        .where(legal_hold_cameras.c.camera_id == seg.c.camera_id,
               legal_holds.c.released_at.is_(None),
               legal_holds.c.start < seg.c.end, legal_holds.c.end > seg.c.start))


def _visible_cameras(conn: Connection, actor: Principal, ids: list[str]) -> set[str]:
    return set(conn.execute(sa.select(devices.c.id).where(
        devices.c.id.in_(ids), actor.zone_clause(devices.c.zone_id))).scalars())


def _hold(conn: Connection, actor: Principal, row: Any) -> Hold:
    # Only the cameras the actor may see: a shared hold must not name another zone's.
    cameras = sorted(conn.execute(
        sa.select(legal_hold_cameras.c.camera_id).select_from(legal_hold_cameras.join(
            devices, devices.c.id == legal_hold_cameras.c.camera_id))
        .where(legal_hold_cameras.c.hold_id == row.id,
               actor.zone_clause(devices.c.zone_id))).scalars())
    kept = conn.execute(sa.select(sa.func.count()).select_from(segments).where(
        segments.c.camera_id.in_(cameras), segments.c.start < row.end,
        segments.c.end > row.start)).scalar_one() if row.released_at is None else 0
    return Hold(id=row.id, authority=row.authority, reference=row.reference,
                request_date=row.request_date, cameras=cameras, start=row.start, end=row.end,
                notes=row.notes, created_by=row.created_by, created_at=row.created_at,
                released_by=row.released_by, released_at=row.released_at,
                release_reason=row.release_reason, active=row.released_at is None,
                segments=kept)


def _scope(actor: Principal) -> sa.ColumnElement[bool]:
    """Holds with at least one camera in the actor's zones."""
    return sa.exists(sa.select(1).select_from(legal_hold_cameras.join(
        devices, devices.c.id == legal_hold_cameras.c.camera_id)).where(
        legal_hold_cameras.c.hold_id == legal_holds.c.id, actor.zone_clause(devices.c.zone_id)))


def create_hold(conn: Connection, actor: Principal, data: HoldIn) -> Hold:
    actor.require(Permission.HOLDS_CREATE)
    start, end = as_utc(data.start), as_utc(data.end)
    if end <= start:
        raise InvalidInput.on("end", "the end must come after the start")
    cameras = sorted(set(data.cameras))
    missing = sorted(set(cameras) - _visible_cameras(conn, actor, cameras))
    if missing:  # outside the actor's zones reads as unknown, like everywhere else
        raise NotFound(f"no such camera: {', '.join(missing[:10])}")
    now = utcnow()
    hold_id = conn.execute(legal_holds.insert().values(
        authority=data.authority, reference=data.reference, request_date=data.request_date,
        start=start, end=end, notes=data.notes, created_by=actor.username,
        created_at=now).returning(legal_holds.c.id)).scalar_one()
    conn.execute(legal_hold_cameras.insert(),
                 [{"hold_id": hold_id, "camera_id": camera} for camera in cameras])
    audit.record(conn, actor, "hold.create", f"hold:{hold_id}", detail={
        "authority": data.authority, "reference": data.reference,
        "request_date": data.request_date.isoformat(), "cameras": cameras,
        "start": iso(start), "end": iso(end)})
    return get_hold(conn, actor, hold_id)


def get_hold(conn: Connection, actor: Principal, hold_id: int) -> Hold:
    if not (actor.can(Permission.HOLDS_CREATE) or actor.can(Permission.HOLDS_MANAGE)):
        actor.require(Permission.HOLDS_MANAGE)
    row = conn.execute(sa.select(legal_holds).where(
        legal_holds.c.id == hold_id, _scope(actor))).first()
    if row is None:
        raise NotFound(f"no such hold: {hold_id}")
    return _hold(conn, actor, row)


def list_holds(conn: Connection, actor: Principal, *, active: bool | None = None,
               camera: str | None = None) -> list[Hold]:
    if not (actor.can(Permission.HOLDS_CREATE) or actor.can(Permission.HOLDS_MANAGE)):
        actor.require(Permission.HOLDS_MANAGE)
    q = sa.select(legal_holds).where(_scope(actor)).order_by(legal_holds.c.id)
    if active is not None:
        q = q.where(legal_holds.c.released_at.is_(None) if active
                    else legal_holds.c.released_at.is_not(None))
    if camera is not None:
        q = q.where(sa.exists(sa.select(1).where(
            legal_hold_cameras.c.hold_id == legal_holds.c.id,
            legal_hold_cameras.c.camera_id == camera)))
    return [_hold(conn, actor, row) for row in conn.execute(q).all()]


def release_hold(conn: Connection, actor: Principal, hold_id: int, data: HoldRelease) -> Hold:
    actor.require(Permission.HOLDS_MANAGE)
    hold = get_hold(conn, actor, hold_id)
    if not hold.active:
        raise Conflict(f"hold {hold_id} was already released on {iso(hold.released_at)}"
                       if hold.released_at else f"hold {hold_id} was already released")
    now = utcnow()
    # The WHERE on released_at makes two concurrent releases land once.
    done = conn.execute(legal_holds.update().where(
        legal_holds.c.id == hold_id, legal_holds.c.released_at.is_(None)).values(
        released_by=actor.username, released_at=now, release_reason=data.reason)).rowcount
    if not done:
        raise Conflict(f"hold {hold_id} was already released")
    audit.record(conn, actor, "hold.release", f"hold:{hold_id}", detail={
        "reference": hold.reference, "cameras": hold.cameras, "reason": data.reason,
        "segments_no_longer_held": hold.segments})
    return get_hold(conn, actor, hold_id)
