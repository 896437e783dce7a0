"""Minimisation of plate reads: each purpose keeps its data as long as it needs, no longer.

Garante decisions 752/2025 and 531/2025: transits of vehicles nobody is looking for must not
be kept "just in case". So the retention is per purpose (see `retention_table`):

- a transit that matched no hotlist goes after `reads_unmatched_hours` (24);
- a hit stays with its alarms until the case is closed, then `reads_closed_days` (30) more;
  whatever its state, it goes after `reads_hit_max_days` (365); its alarms go with it;
- hourly counts per reader (no plate) stay `reads_counts_days` (5 years), for traffic
  statistics;
- the upstream queue holds a copy of the plate: a row goes once it is sent, a dead letter
  7 days after it died, a pending row 7 days after its last attempt (forwarding is off).

`purge` deletes in batches of `BATCH` rows, one short transaction each, so a table of ten
million rows is never locked for long. Image files go first, in the transaction that then
deletes their rows: a crash between the two leaves rows whose files are gone, which the next
purge removes (and counts as missing); never a file without its row, which nothing would
delete. Each batch is audited in its own transaction (actor `system:minimisation`, counts
per category and per reader). A run that deletes nothing writes nothing: the trail records
erasures; that the purge runs is shown by its report and the service's health.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection

from vigila.access import Permission, Principal, audit
from vigila.core import InvalidInput, Settings
from vigila.core.timeutil import iso, utcnow
from vigila.reads.tables import alarms, forward_queue, transit_counts, transits
from vigila.registry.tables import devices
from vigila.store import Database

BATCH = 1000  # rows deleted per transaction
FORWARD_KEEP_DAYS = 7  # dead letters, and pending rows nobody tries to send
MAX_COUNT_ROWS = 50_000  # one answer of hourly counts
MAX_COUNT_DEVICES = 100
ACTOR = "system:minimisation"
ACTION = "reads.purge"

# Purge categories, in the order a run goes through them.
UNMATCHED = "unmatched"
HITS_OVER_AGE = "hits_over_age"
HITS_CLOSED = "hits_closed"
COUNTS = "counts"
FORWARD_SENT = "forward_sent"
FORWARD_DEAD = "forward_dead"
FORWARD_STALE = "forward_stale"
CATEGORIES = (UNMATCHED, HITS_OVER_AGE, HITS_CLOSED, COUNTS, FORWARD_SENT, FORWARD_DEAD,
              FORWARD_STALE)


# --- what is kept, and why ------------------------------------------------------

class RetentionRule(BaseModel):
    """One purpose's retention: what is kept, how long, the setting, the legal basis."""

    category: str = Field(description="the purge category that enforces it")
    data: str = Field(description="what is kept")
    purpose: str
    keep: str = Field(description="the rule, in words")
    value: int = Field(description="the value in force")
    unit: str = Field(description="hours | days")
    default: int
    setting: str | None = Field(default=None, description="the environment variable, if any")
    legal_basis: str
    to_confirm: bool = Field(description="the basis or the default is a project choice the "
                                         "data-protection officer must confirm")


_GARANTE = ("Garante per la protezione dei dati personali, decisions 752/2025 and 531/2025: "
            "transits of vehicles that are not wanted must not be kept beyond what the purpose "
            "needs")
_STORAGE_LIMIT = ("storage limitation: kept no longer than the purpose needs (D.Lgs. 51/2018 "
                  "art. 3, principles of processing; GDPR art. 5(1)(e) where the GDPR applies)")


def retention_table(settings: Settings) -> list[RetentionRule]:
    """Each purpose's retention with the values in force, for the API and the docs."""
    s = settings
    return [
        RetentionRule(
            category=UNMATCHED, data="transits that matched no hotlist: plate, time, "
            "reader, images", purpose="a hotlist entry added late, an urgent search",
            keep=f"deleted {s.reads_unmatched_hours} hours after arrival",
            value=s.reads_unmatched_hours, unit="hours", default=24,
            setting="VIGILA_READS_UNMATCHED_HOURS",
            legal_basis=f"{_GARANTE}; {_STORAGE_LIMIT}. The 24 hours are the project's "
            "default, to be confirmed by the DPO.", to_confirm=True),
        RetentionRule(
            category=HITS_CLOSED, data="transits that matched a hotlist (hits), with their "
            "alarms", purpose="the case the alarm opened: the stop, its report, an appeal",
            keep=f"until every alarm of the transit is closed, then {s.reads_closed_days} days",
            value=s.reads_closed_days, unit="days", default=30,
            setting="VIGILA_READS_CLOSED_DAYS",
            legal_basis=f"{_STORAGE_LIMIT}. The 30 days after closing (for objections and "
            "review) are a project choice, to be confirmed by the DPO.", to_confirm=True),
        RetentionRule(
            category=HITS_OVER_AGE, data="hits and their alarms, whatever the alarm's state",
            purpose="an upper bound: a case that needs the data longer takes it into its own "
            "file", keep=f"deleted {s.reads_hit_max_days} days after arrival",
            value=s.reads_hit_max_days, unit="days", default=365,
            setting="VIGILA_READS_HIT_MAX_DAYS",
            legal_basis=f"{_STORAGE_LIMIT}; a time limit with periodic review (Directive (EU) "
            "2016/680 art. 5). The 365 days are a project choice, to be confirmed by the DPO.",
            to_confirm=True),
        RetentionRule(
            category=COUNTS, data="transits per reader, UTC hour and direction: no plate, no "
            "image", purpose="traffic statistics and planning",
            keep=f"deleted {s.reads_counts_days} days after the hour",
            value=s.reads_counts_days, unit="days", default=1825,
            setting="VIGILA_READS_COUNTS_DAYS",
            legal_basis="aggregated, with no identifier: not personal data (GDPR recital 26). "
            "At quiet hours a count can be 1; whether that could single out a vehicle "
            "combined with other information, and so the 5 years, is for the DPO to confirm.",
            to_confirm=True),
        RetentionRule(
            category=FORWARD_SENT, data="the copy of a transit queued for the national system",
            purpose="delivery upstream", keep="deleted by the first purge after it is sent",
            value=0, unit="days", default=0,
            legal_basis="the copy serves delivery only; once delivered the recipient holds it "
            f"under its own responsibility. {_STORAGE_LIMIT}.", to_confirm=False),
        RetentionRule(
            category=FORWARD_DEAD, data="transits the national system refused or could not "
            "be reached for (dead letters)", purpose="an administrator fixes the cause and "
            "sends them again", keep=f"deleted {FORWARD_KEEP_DAYS} days after they failed",
            value=FORWARD_KEEP_DAYS, unit="days", default=FORWARD_KEEP_DAYS,
            legal_basis=f"{_STORAGE_LIMIT}. The {FORWARD_KEEP_DAYS} days (a long weekend and the "
            "administrator's reaction) are a project choice, to be confirmed by the DPO.",
            to_confirm=True),
        RetentionRule(
            category=FORWARD_STALE, data="queued transits nobody tried to send (forwarding "
            "switched off)", purpose="delivery upstream, once forwarding is back",
            keep=f"deleted {FORWARD_KEEP_DAYS} days after their last attempt",
            value=FORWARD_KEEP_DAYS, unit="days", default=FORWARD_KEEP_DAYS,
            legal_basis=f"{_STORAGE_LIMIT}. A project choice, to be confirmed by the DPO.",
            to_confirm=True),
    ]


# --- hourly counts ----------------------------------------------------------------

class TransitCount(BaseModel):
    device_id: str
    hour: datetime = Field(description="the UTC hour the count starts")
    direction: str | None = Field(description="inbound | outbound; null when the reader "
                                              "gave none")
    count: int


def hourly_counts(conn: Connection, who: Principal, device_ids: list[str] | None,
                  since: datetime, until: datetime) -> list[TransitCount]:
    """Transits per reader and hour in [since, until), in the actor's zones; no plate."""
    who.require(Permission.REGISTRY_READ)
    if since >= until:
        raise InvalidInput.on("until", "must be after since")
    if device_ids is not None and len(device_ids) > MAX_COUNT_DEVICES:
        raise InvalidInput.on("device", f"at most {MAX_COUNT_DEVICES} readers")
    tc = transit_counts.c
    q = (sa.select(tc.device_id, tc.hour, tc.direction, tc.count)
         .select_from(transit_counts.join(devices, devices.c.id == tc.device_id))
         .where(who.zone_clause(devices.c.zone_id), tc.hour >= since, tc.hour < until))
    if device_ids is not None:
        q = q.where(tc.device_id.in_(sorted(set(device_ids))))
    rows = conn.execute(q.order_by(tc.hour, tc.device_id, tc.direction)
                        .limit(MAX_COUNT_ROWS + 1)).all()
    if len(rows) > MAX_COUNT_ROWS:
        raise InvalidInput.on("since", f"more than {MAX_COUNT_ROWS} counts: narrow the range "
                              "or name the readers")
    return [TransitCount(device_id=r.device_id, hour=r.hour, direction=r.direction or None,
                         count=r.count) for r in rows]


# --- the purge ----------------------------------------------------------------------

@dataclass
class PurgeReport:
    """What one purge run deleted."""

    now: datetime
    deleted: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0))
    devices: dict[str, Counter[str]] = field(default_factory=dict)  # category -> reader -> rows
    alarms: int = 0  # alarm rows deleted with their hits
    images: int = 0  # image files deleted
    missing_images: int = 0  # rows whose file was already gone
    audit_entries: int = 0

    @property
    def total(self) -> int:
        return sum(self.deleted.values())

    def add(self, category: str, rows: int, per_device: Counter[str]) -> None:
        self.deleted[category] += rows
        self.devices.setdefault(category, Counter()).update(per_device)
        self.audit_entries += 1


def purge(db: Database, settings: Settings, now: datetime | None = None) -> PurgeReport:
    """Delete what has outlived its purpose (see the module's docstring); audited per batch."""
    now = now or utcnow()
    report = PurgeReport(now)
    root = settings.read_images_root
    t, a = transits.c, alarms.c

    cutoff = now - timedelta(hours=settings.reads_unmatched_hours)
    # A transit with an alarm is a hit whatever its flag says: never deleted as unmatched.
    _purge_transits(db, root, report, UNMATCHED, cutoff, f"reads_unmatched_hours="
                    f"{settings.reads_unmatched_hours}",
                    (t.hit == sa.false()) & (t.received_at < cutoff)
                    & ~sa.exists().where(a.transit_id == t.id))

    cutoff = now - timedelta(days=settings.reads_hit_max_days)
    _purge_transits(db, root, report, HITS_OVER_AGE, cutoff,
                    f"reads_hit_max_days={settings.reads_hit_max_days}",
                    (t.hit == sa.true()) & (t.received_at < cutoff))

    cutoff = now - timedelta(days=settings.reads_closed_days)
    still_needed = sa.exists().where(a.transit_id == t.id, (a.state != "closed")
                                     | a.closed_at.is_(None) | (a.closed_at >= cutoff))
    # received_at < cutoff uses the (hit, received_at) index; every alarm closed before the
    # cut-off implies it, and it also lets a hit with no alarm at all go after the same time.
    _purge_transits(db, root, report, HITS_CLOSED, cutoff,
                    f"reads_closed_days={settings.reads_closed_days}",
                    (t.hit == sa.true()) & (t.received_at < cutoff) & ~still_needed)

    _purge_counts(db, report, now - timedelta(days=settings.reads_counts_days),
                  f"reads_counts_days={settings.reads_counts_days}")

    fq = forward_queue.c
    keep = now - timedelta(days=FORWARD_KEEP_DAYS)
    _purge_queue(db, report, FORWARD_SENT, "sent: the upstream holds it now",
                 fq.state == "sent")
    _purge_queue(db, report, FORWARD_DEAD, f"dead for {FORWARD_KEEP_DAYS} days",
                 (fq.state == "dead") & (fq.next_attempt_at < keep))
    _purge_queue(db, report, FORWARD_STALE, f"no attempt for {FORWARD_KEEP_DAYS} days",
                 (fq.state == "pending") & (fq.next_attempt_at < keep))
    return report


def _purge_transits(db: Database, root: Path, report: PurgeReport, category: str,
                    cutoff: datetime, rule: str, where: sa.ColumnElement[bool]) -> None:
    t = transits.c
    while True:
        folders: set[Path] = set()
        with db.write() as conn:
            q = (sa.select(t.id, t.device_id, t.received_at, t.plate_image, t.context_image)
                 .where(where).order_by(t.received_at).limit(BATCH))
            if conn.dialect.name == "postgresql":
                q = q.with_for_update(skip_locked=True)  # a row being changed waits a run
            rows = conn.execute(q).all()
            if not rows:
                return
            images = missing = 0
            for row in rows:
                for rel in (row.plate_image, row.context_image):
                    if not rel:
                        continue
                    gone = _unlink(root, rel)
                    if gone is None:
                        continue
                    if gone:
                        images += 1
                        folders.add((root / rel).parent)
                    else:
                        missing += 1
            ids = [row.id for row in rows]
            n_alarms = conn.execute(alarms.delete().where(alarms.c.transit_id.in_(ids))).rowcount
            conn.execute(transits.delete().where(t.id.in_(ids)))
            per_device = Counter(row.device_id for row in rows)
            detail: dict[str, Any] = {
                "category": category, "rows": len(rows), "devices": dict(sorted(
                    per_device.items())), "images": images, "missing_images": missing,
                "cutoff": iso(cutoff), "rule": rule,
                "oldest_received": iso(min(row.received_at for row in rows)),
                "newest_received": iso(max(row.received_at for row in rows))}
            if n_alarms:
                detail["alarms"] = n_alarms
            audit.record(conn, None, ACTION, f"transits:{category}", actor_name=ACTOR,
                         detail=detail)
        report.add(category, len(rows), per_device)
        report.alarms += n_alarms
        report.images += images
        report.missing_images += missing
        for folder in folders:
            _prune_dirs(folder, root)
        if len(rows) < BATCH:
            return


def _unlink(root: Path, rel: str) -> bool | None:
    """True: deleted; False: already gone; None: not a path the ingest writes, left alone."""
    if ".." in Path(rel).parts or Path(rel).is_absolute():
        return None
    try:
        os.unlink(root / rel)
    except FileNotFoundError:
        return False
    return True


def _prune_dirs(folder: Path, root: Path) -> None:
    """Remove the now empty day and month folders (YYYY/MM/DD), never the root."""
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def _purge_counts(db: Database, report: PurgeReport, cutoff: datetime, rule: str) -> None:
    """Per reader, along the primary key (device_id, hour, ...): no scan of the table."""
    tc = transit_counts.c
    while True:
        with db.write() as conn:
            per_device: Counter[str] = Counter()
            for device_id in conn.execute(sa.select(devices.c.id).order_by(devices.c.id)
                                          ).scalars().all():
                room = BATCH - per_device.total()
                if room <= 0:
                    break
                hours = conn.execute(sa.select(tc.hour).where(
                    tc.device_id == device_id, tc.hour < cutoff).order_by(tc.hour)
                    .limit(room)).scalars().all()
                if not hours:
                    continue
                # Up to the last hour taken, all directions: a few rows past `room` at most.
                per_device[device_id] = conn.execute(transit_counts.delete().where(
                    tc.device_id == device_id, tc.hour < cutoff, tc.hour <= hours[-1])).rowcount
            rows = per_device.total()
            if not rows:
                return
            audit.record(conn, None, ACTION, "transit_counts", actor_name=ACTOR, detail={
                "category": COUNTS, "rows": rows, "devices": dict(sorted(per_device.items())),
                "cutoff": iso(cutoff), "rule": rule})
        report.add(COUNTS, rows, per_device)
        if rows < BATCH:
            return


def _purge_queue(db: Database, report: PurgeReport, category: str, rule: str,
                 where: sa.ColumnElement[bool]) -> None:
    fq = forward_queue.c
    while True:
        with db.write() as conn:
            rows = conn.execute(sa.select(fq.id, fq.payload).where(where).order_by(fq.id)
                                .limit(BATCH)).all()
            if not rows:
                return
            conn.execute(forward_queue.delete().where(fq.id.in_([r.id for r in rows])))
            per_device = Counter(_reader(r.payload) for r in rows)
            audit.record(conn, None, ACTION, f"forward_queue:{category}", actor_name=ACTOR,
                         detail={"category": category, "rows": len(rows), "rule": rule,
                                 "devices": dict(sorted(per_device.items()))})
        report.add(category, len(rows), per_device)
        if len(rows) < BATCH:
            return


def _reader(payload: Any) -> str:
    reader = payload.get("reader") if isinstance(payload, dict) else None
    return str(reader) if reader is not None else "?"
