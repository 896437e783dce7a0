"""How long video is kept, and what goes when the disk fills.

Retention is per camera (default: the installation's, 7 days — DL 11/2009 art. 6 c. 8
for municipal urban security). The purge deletes exactly the segments that ended before
their camera's cut-off and that no active legal hold protects; each purge is audited
per camera. The disk guard deletes the oldest unheld segments once the recording root
passes its high-water mark; when only held video is left it deletes nothing and says
so, and the recording service stops new recording with an alarm.

Files go first, rows after: a crash in between leaves a row whose file is gone, which
the next purge removes. The other order could leave a file the next rescan would index
again — expired video coming back.
"""

from __future__ import annotations

import os
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy.engine import Connection

from vigila.access import Permission, Principal, audit
from vigila.core import InvalidInput, NotFound
from vigila.core.text import NoNul
from vigila.core.timeutil import iso, utcnow
from vigila.recording.holds import held_clause
from vigila.recording.tables import recording_gaps, retention_policies, segments
from vigila.registry.models import DeviceKind
from vigila.registry.tables import devices
from vigila.store import Database

LEGAL_DEFAULT_DAYS = 7  # past this a reason (the legal basis) is required
MAX_DAYS = 365
BATCH = 500  # segments deleted per transaction


class RetentionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    days: int = Field(ge=1, le=MAX_DAYS)
    reason: Annotated[str, StringConstraints(min_length=1, max_length=2000,
                                             strip_whitespace=True), NoNul] | None = Field(
        default=None, description=f"legal basis; required past {LEGAL_DEFAULT_DAYS} days")


class Retention(BaseModel):
    camera_id: str
    days: int
    default: bool = Field(description="true when the camera has no policy of its own")
    reason: str | None = None
    updated_by: str | None = None
    updated_at: datetime | None = None


_CAMERA_KINDS = (DeviceKind.CAMERA.value, DeviceKind.CAMERA_ANPR.value)


def _camera_row(conn: Connection, actor: Principal, camera_id: str) -> Any:
    row = conn.execute(sa.select(devices.c.id).where(
        devices.c.id == camera_id, devices.c.kind.in_(_CAMERA_KINDS),
        actor.zone_clause(devices.c.zone_id))).first()
    if row is None:
        raise NotFound(f"no such camera: {camera_id}")
    return row


def list_retention(conn: Connection, actor: Principal, default_days: int) -> list[Retention]:
    """Every camera in the actor's zones with its retention, its own or the default."""
    actor.require(Permission.REGISTRY_READ)
    rows = conn.execute(
        sa.select(devices.c.id, retention_policies)
        .select_from(devices.outerjoin(retention_policies,
                                       retention_policies.c.camera_id == devices.c.id))
        .where(devices.c.kind.in_(_CAMERA_KINDS), actor.zone_clause(devices.c.zone_id))
        .order_by(devices.c.id)).all()
    return [Retention(camera_id=row.id, days=row.days or default_days, default=row.days is None,
                      reason=row.reason, updated_by=row.updated_by, updated_at=row.updated_at)
            for row in rows]


def set_retention(conn: Connection, actor: Principal, camera_id: str, data: RetentionIn,
                  default_days: int) -> Retention:
    actor.require(Permission.RETENTION_MANAGE)
    _camera_row(conn, actor, camera_id)
    if data.days > LEGAL_DEFAULT_DAYS and not data.reason:
        raise InvalidInput.on("reason", f"keeping video more than {LEGAL_DEFAULT_DAYS} days "
                              "needs its legal basis (DL 11/2009 art. 6 c. 8)")
    before = conn.execute(sa.select(retention_policies.c.days).where(
        retention_policies.c.camera_id == camera_id)).scalar_one_or_none()
    now = utcnow()
    values = {"days": data.days, "reason": data.reason, "updated_by": actor.username,
              "updated_at": now}
    if before is None:
        conn.execute(retention_policies.insert().values(camera_id=camera_id, **values))
    else:
        conn.execute(retention_policies.update().where(
            retention_policies.c.camera_id == camera_id).values(**values))
    audit.record(conn, actor, "retention.set", f"camera:{camera_id}", detail={
        "days": data.days, "before": before if before is not None else default_days,
        "reason": data.reason})
    return Retention(camera_id=camera_id, days=data.days, default=False, reason=data.reason,
                     updated_by=actor.username, updated_at=now)


# --- deleting -----------------------------------------------------------------


@dataclass
class PurgeReport:
    """What a purge or the disk guard deleted, per camera."""

    reason: str
    deleted: dict[str, int] = field(default_factory=dict)  # camera -> segments
    freed_bytes: int = 0
    held_kept: int = 0  # expired (or oldest) segments a hold kept
    missing_files: int = 0  # rows whose file was already gone

    @property
    def total(self) -> int:
        return sum(self.deleted.values())


def _delete(db: Database, root: Path, rows: list[Any], report: PurgeReport,
            audit_detail: dict[str, Any]) -> None:
    """Delete segment files, then their rows, with one audit entry per camera."""
    per_camera: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        per_camera[row.camera_id].append(row)
    for camera, items in per_camera.items():
        for row in items:
            path = root / row.path
            if ".." in Path(row.path).parts or Path(row.path).is_absolute():
                continue  # never written by the recorder; not ours to delete
            try:
                os.unlink(path)
            except FileNotFoundError:
                report.missing_files += 1
        with db.write() as conn:
            conn.execute(segments.delete().where(segments.c.id.in_([r.id for r in items])))
            audit.record(conn, None, "recording.purge", f"camera:{camera}",
                         actor_name=f"system:{report.reason}", detail={
                             **audit_detail, "reason": report.reason, "segments": len(items),
                             "bytes": sum(r.bytes for r in items),
                             "first_start": iso(min(r.start for r in items)),
                             "last_end": iso(max(r.end for r in items))})
        report.deleted[camera] = report.deleted.get(camera, 0) + len(items)
        report.freed_bytes += sum(r.bytes for r in items)
        for row in items:  # empty hour and day folders go too
            _prune_dirs((root / row.path).parent, root)


def _prune_dirs(folder: Path, root: Path) -> None:
    # Never above <camera>/: the camera folder holds .partial for the running recorder.
    while folder != root and folder.parent != root:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def purge_expired(db: Database, root: Path, *, default_days: int,
                  now: datetime | None = None) -> PurgeReport:
    """Delete the segments that ended before their camera's retention cut-off, unless held."""
    now = now or utcnow()
    report = PurgeReport("retention")
    with db.read() as conn:
        cameras = list(conn.execute(sa.select(segments.c.camera_id).distinct()).scalars())
        policies = dict(conn.execute(sa.select(retention_policies.c.camera_id,
                                               retention_policies.c.days)).all())
    for camera in sorted(cameras):
        days = policies.get(camera, default_days)
        cutoff = now - timedelta(days=days)
        expired = (segments.c.camera_id == camera) & (segments.c.end <= cutoff)
        while True:
            with db.read() as conn:
                rows = list(conn.execute(
                    sa.select(segments.c.id, segments.c.camera_id, segments.c.path,
                              segments.c.bytes, segments.c.start, segments.c.end)
                    .where(expired, ~held_clause()).order_by(segments.c.start)
                    .limit(BATCH)).all())
            if not rows:
                break
            _delete(db, root, rows, report, {"days": days, "cutoff": iso(cutoff)})
        with db.write() as conn:
            report.held_kept += conn.execute(sa.select(sa.func.count()).select_from(segments)
                                             .where(expired, held_clause())).scalar_one()
            # Outages older than the cut-off say nothing any more, unless a hold covers them.
            conn.execute(recording_gaps.delete().where(
                recording_gaps.c.camera_id == camera, recording_gaps.c.end <= cutoff,
                ~held_clause(recording_gaps)))
    return report


# --- the disk ------------------------------------------------------------------


@dataclass(frozen=True)
class DiskUsage:
    used: int
    limit: int  # bytes at the high-water mark
    target: int  # the disk guard frees down to this

    @property
    def over(self) -> bool:
        return self.used > self.limit


def disk_usage(db: Database, root: Path, *, quota_bytes: int,
               high_water_percent: int) -> DiskUsage:
    """With a quota: the indexed bytes against it; else the file system's fill level."""
    if not 1 <= high_water_percent <= 99:
        raise InvalidInput.on("disk_high_water_percent", "between 1 and 99")
    if quota_bytes > 0:
        with db.read() as conn:
            used = int(conn.execute(sa.select(sa.func.coalesce(sa.func.sum(segments.c.bytes), 0)))
                       .scalar_one())
        limit = quota_bytes * high_water_percent // 100
    else:
        root.mkdir(parents=True, exist_ok=True)
        total, used_fs, _free = shutil.disk_usage(root)
        used, limit = used_fs, total * high_water_percent // 100
    # Free a further 5 % of the limit, so the guard does not run on every new segment.
    return DiskUsage(used, limit, limit - limit // 20)


@dataclass
class DiskReport:
    usage: DiskUsage
    purge: PurgeReport
    only_held_left: bool  # over the mark, and nothing left that may be deleted


def enforce_disk(db: Database, root: Path, *, quota_bytes: int,
                 high_water_percent: int) -> DiskReport:
    """Past the high-water mark, delete the oldest unheld segments down to the target."""
    usage = disk_usage(db, root, quota_bytes=quota_bytes, high_water_percent=high_water_percent)
    report = PurgeReport("disk")
    if not usage.over:
        return DiskReport(usage, report, False)
    to_free = usage.used - usage.target
    while to_free > 0:
        with db.read() as conn:
            rows = conn.execute(
                sa.select(segments.c.id, segments.c.camera_id, segments.c.path,
                          segments.c.bytes, segments.c.start, segments.c.end)
                .where(~held_clause()).order_by(segments.c.start).limit(BATCH)).all()
        if not rows:
            break
        chosen = []
        for row in rows:
            chosen.append(row)
            to_free -= row.bytes
            if to_free <= 0:
                break
        _delete(db, root, chosen, report, {"used_bytes": usage.used, "limit": usage.limit})
    after = disk_usage(db, root, quota_bytes=quota_bytes, high_water_percent=high_water_percent)
    return DiskReport(after, report, after.over)
