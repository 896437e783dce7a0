"""Reads in: validate, store as transits, match against the hotlists, raise alarms.

One call takes a batch (a single read is a batch of one) and answers per read: stored, a
duplicate of one already stored (same device and reader event id), or rejected with the
fields at fault. A bad read never costs the good ones beside it.

The order of work keeps the alarm path short and nothing half-done:
  1. validate each read in memory (device, plate grammar, time, images);
  2. write the images to disk, named after the transit ids minted here;
  3. one write transaction: transits, their alarms, the hourly counts, the upstream queue;
  4. after the commit, publish each alarm on the bus (console, MQTT, webhooks listen there).
If the transaction fails, the images written in step 2 are removed.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from vigila.core import EventBus, FieldError, InvalidInput, Settings
from vigila.core.events import Event
from vigila.core.timeutil import utc_instant
from vigila.hotlists import Hit, HotlistMatcher
from vigila.plates import PlateFormat, classify, lookalike_key, normalise
from vigila.plates.grammar import best_format
from vigila.reads.models import (
    ALARM_TOPIC,
    AlarmEvent,
    AlarmState,
    IngestReport,
    ReadDirection,
    ReadResult,
)
from vigila.reads.raw import RawImage, RawRead
from vigila.reads.tables import alarms, transit_counts, transits
from vigila.registry.models import PLATE_READING, DeviceStatus
from vigila.registry.tables import devices
from vigila.store import Database, UTCDateTime

log = logging.getLogger(__name__)

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)  # a reader whose clock says 1970 has lost it
LATE_AFTER = timedelta(hours=1)  # a read older than this on arrival is flagged "late"
MAX_PLATE_CHARS = 16
_IMAGE_TYPES = ((b"\xff\xd8\xff", "jpg"), (b"\x89PNG\r\n\x1a\n", "png"))

# Enqueues transits for the national system, in the ingest's transaction (see forwarding).
Enqueue = Callable[[Connection, Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]], datetime],
                   int]


@dataclass(frozen=True)
class _Device:
    id: str
    name: str
    zone_id: str | None
    lat: float
    lon: float


@dataclass
class _Accepted:
    index: int
    row: dict[str, Any]
    device: _Device
    images: list[tuple[str, RawImage, str]]  # (kind, image, extension)
    flags: list[str]
    hits: list[Hit] = field(default_factory=list)


class _Entropy(threading.local):
    """Random bytes from the OS, drawn many ids' worth at a time, per thread.

    os.urandom lets go of the GIL around its system call and must take it back while the
    other request threads hold it: one call per id cost 287 µs (3.4 alone) with one busy
    thread beside it, most of a 1,000-read batch's time under load.
    """

    def __init__(self) -> None:
        self.buffer = b""
        self.at = 0

    def take(self, n: int) -> bytes:
        if self.at + n > len(self.buffer):
            self.buffer, self.at = os.urandom(max(n, 4096)), 0
        self.at += n
        return self.buffer[self.at - n:self.at]


_entropy = _Entropy()


def _fresh_entropy() -> None:
    global _entropy
    _entropy = _Entropy()  # a forked child must not reuse its parent's bytes


os.register_at_fork(after_in_child=_fresh_entropy)


def time_ordered_id() -> uuid.UUID:
    """A UUID version 7 (RFC 9562): milliseconds since 1970, then random bits.

    Transit ids follow arrival, so their primary-key index grows at its right edge instead
    of taking a random page per insert: at a million transits and more, a random UUID
    made every insert touch a cold page.
    """
    ms = time.time_ns() // 1_000_000
    value = (ms & (2**48 - 1)) << 80 | int.from_bytes(_entropy.take(10))
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # the RFC's variant
    return uuid.UUID(int=value)


def image_extension(data: bytes) -> str | None:
    """'jpg' or 'png' from the bytes themselves: a declared content type proves nothing."""
    for magic, ext in _IMAGE_TYPES:
        if data.startswith(magic):
            return ext
    return None


def derived_event_id(device: str, at: datetime, plate: str) -> str:
    """For readers that send no event id: the same read retried derives the same id."""
    digest = hashlib.sha256(f"{device}|{at.isoformat()}|{plate}".encode()).hexdigest()
    return "~" + digest[:40]


class Ingest:
    """The ingest of one installation: share one, it holds the matcher and a device cache."""

    def __init__(self, db: Database, settings: Settings, bus: EventBus,
                 matcher: HotlistMatcher | None = None, *, enqueue: Enqueue | None = None,
                 refresh_seconds: float = 0.5, device_cache_seconds: float = 5.0) -> None:
        self.db = db
        self.settings = settings
        self.bus = bus
        self.matcher = matcher or HotlistMatcher(db)
        self.enqueue = enqueue
        self.refresh_seconds = refresh_seconds
        self.device_cache_seconds = device_cache_seconds
        self._refreshed = 0.0
        self._skew = timedelta(seconds=settings.reads_max_clock_skew_seconds)
        self._devices: dict[str, tuple[float, _Device]] = {}
        self._lock = threading.Lock()
        # SQLite has one writer: batches arriving together queue here, in this process,
        # instead of in SQLite's busy handler, whose sleeps (up to 100 ms each) left the
        # database idle while a batch waited, and made a batch's latency a lottery.
        self._sqlite_writer = threading.Lock() if db.dialect == "sqlite" else None

    # -- the one entry point ------------------------------------------------------------

    def ingest(self, reads: Sequence[RawRead | InvalidInput], *,
               device_id: str | None = None, now: datetime | None = None) -> IngestReport:
        """Store a batch. An `InvalidInput` in `reads` stands for a read that could not even
        be parsed; it is reported at its index. `device_id` overrides each read's device
        (the vendor endpoints name the registry device in their URL)."""
        received = now or datetime.now(UTC)
        self._refresh_matcher()
        results: dict[int, ReadResult] = {}
        accepted: list[_Accepted] = []
        ids = [r.device if device_id is None else device_id
               for r in reads if isinstance(r, RawRead)]
        known = self._devices_named(ids)
        seen: dict[tuple[str, str], int] = {}
        for i, read in enumerate(reads):
            if isinstance(read, InvalidInput):
                results[i] = _rejected(i, read.errors or [FieldError("read", read.detail)])
                continue
            if device_id is not None:
                read = _with_device(read, device_id)
            try:
                item = self._validate(i, read, known, received)
            except InvalidInput as exc:
                results[i] = _rejected(i, exc.errors or [FieldError("read", exc.detail)])
                continue
            key = (item.row["device_id"], item.row["event_id"])
            if key in seen:  # the same event twice in one batch: store it once
                results[i] = ReadResult(index=i, status="duplicate", flags=["same_batch"])
                continue
            seen[key] = i
            accepted.append(item)

        stored: list[tuple[_Accepted, list[int]]] = []
        if accepted:
            stored = self._store(accepted, results, received)
        for item, alarm_ids in stored:
            results[item.index] = ReadResult(index=item.index, status="stored",
                                              transit_id=item.row["id"], flags=item.flags,
                                              alarms=alarm_ids)
        ordered = [results[i] for i in range(len(reads))]
        report = IngestReport(
            stored=sum(r.status == "stored" for r in ordered),
            duplicates=sum(r.status == "duplicate" for r in ordered),
            rejected=sum(r.status == "rejected" for r in ordered),
            alarms=sum(len(r.alarms) for r in ordered),
            results=ordered)
        return report

    # -- validation ---------------------------------------------------------------------

    def _validate(self, index: int, read: RawRead, known: Mapping[str, _Device],
                  received: datetime) -> _Accepted:
        errors: list[FieldError] = []
        flags: list[str] = []
        device = known.get(read.device)
        if device is None:
            errors.append(FieldError("device", f"no active plate reader {read.device!r} "
                                               "in the registry"))
        plate = ""
        format_id = "generic"
        country = None
        try:
            plate = normalise(read.plate)
            if len(plate) > MAX_PLATE_CHARS:
                raise InvalidInput.on("plate", f"{len(plate)} characters: no plate is that long")
            country, format_id, more = _classify(plate, read.country)
            flags += more
        except InvalidInput as exc:
            errors += exc.errors or [FieldError("plate", exc.detail)]
        at = read.time
        if at is None:
            errors.append(FieldError("time", "missing: a read without its time is no transit"))
        else:
            try:
                at = utc_instant(at, "time")
            except InvalidInput as exc:
                errors += exc.errors
                at = None
        if at is not None:
            if at > received + self._skew:
                errors.append(FieldError("time", f"{at.isoformat()} is in the future: "
                                                 "check the reader's clock"))
            elif at < EARLIEST:
                errors.append(FieldError("time", f"{at.isoformat()} is before 2000: "
                                                 "the reader's clock is not set"))
            elif received - at > LATE_AFTER:
                flags.append("late")
        if read.confidence is not None and not 0 <= read.confidence <= 1:
            errors.append(FieldError("confidence", "must be between 0 and 1"))
        if read.lane is not None and not 1 <= read.lane <= 16:
            errors.append(FieldError("lane", "must be between 1 and 16"))
        direction = read.direction
        if direction is not None and direction not in ReadDirection.__members__.values():
            errors.append(FieldError("direction", "inbound, outbound or none"))
        event_id = read.event_id
        if event_id is not None and not 0 < len(event_id) <= 128:
            errors.append(FieldError("event_id", "1 to 128 characters"))
        if errors:
            raise InvalidInput(f"read {index}: " + "; ".join(
                f"{e.field}: {e.message}" for e in errors), errors)
        assert device is not None and at is not None

        images: list[tuple[str, RawImage, str]] = []
        for image in read.images:
            problem = self._image_problem(image)
            if problem is not None:  # a reader's broken picture must not cost the read
                flags.append(f"{image.kind}_image_refused")
                log.warning("read %s from %s: %s image refused: %s", index, device.id,
                            image.kind, problem)
                continue
            if any(kind == image.kind for kind, _, _ in images):
                flags.append(f"extra_{image.kind}_image_ignored")
                continue
            ext = image_extension(image.data)
            assert ext is not None
            images.append((image.kind, image, ext))
        row: dict[str, Any] = {
            "id": time_ordered_id(), "device_id": device.id, "plate": plate,
            "plate_key": lookalike_key(plate), "plate_raw": read.plate[:64],
            "format_id": format_id, "country": country, "confidence": read.confidence,
            "time": at, "received_at": received, "direction": direction, "lane": read.lane,
            "event_id": event_id or derived_event_id(device.id, at, plate),
            "vendor": read.vendor[:32], "hit": False, "extra": dict(read.extra) or None,
            "plate_image": None, "plate_image_sha256": None,
            "context_image": None, "context_image_sha256": None,
        }
        return _Accepted(index, row, device, images, flags)

    def _image_problem(self, image: RawImage) -> str | None:
        if image.kind not in ("plate", "context"):
            return f"unknown image kind {image.kind!r}"
        if len(image.data) > self.settings.reads_max_image_bytes:
            return (f"{len(image.data)} bytes, over the "
                    f"{self.settings.reads_max_image_bytes} limit")
        if image_extension(image.data) is None:
            return "neither JPEG nor PNG"
        return None

    # -- storage ------------------------------------------------------------------------

    def _store(self, accepted: list[_Accepted], results: dict[int, ReadResult],
               received: datetime) -> list[tuple[_Accepted, list[int]]]:
        for item in accepted:  # before the transaction: it holds SQLite's one writer lock
            item.hits = self.matcher.match(item.row["plate"], item.row["time"])
            item.row["hit"] = bool(item.hits)
            item.row["flags"] = ",".join(item.flags)
        written = self._write_images(accepted)
        # In key order, so two overlapping batches (a reader retrying in parallel) take the
        # unique index's locks in the same order instead of deadlocking on PostgreSQL.
        rows = sorted((a.row for a in accepted), key=lambda r: (r["device_id"], r["event_id"]))
        # Bound here, outside SQLite's one writer lock: the lock is the ingest's bottleneck
        # there, and the other batches' threads compete for the GIL while it is held.
        params = _bound_transits(self.db.engine.dialect, rows)
        try:
            with self._sqlite_writer or contextlib.nullcontext(), self.db.write() as conn:
                fresh = self._insert_new(conn, accepted, results, rows, params)
                alarm_ids = self._insert(conn, fresh, received)
        except BaseException:
            _remove(written)
            raise
        if len(fresh) < len(accepted):  # a duplicate's pictures are the stored read's already
            inserted = {item.row["id"] for item in fresh}
            for item in accepted:
                if item.row["id"] not in inserted:
                    _remove([self.settings.read_images_root / item.row[f"{kind}_image"]
                             for kind, _, _ in item.images])
        self._publish(fresh, alarm_ids, received)
        return list(zip(fresh, alarm_ids, strict=True))

    def _insert_new(self, conn: Connection, accepted: list[_Accepted],
                    results: dict[int, ReadResult], rows: Sequence[Mapping[str, Any]],
                    params: list[Any]) -> list[_Accepted]:
        """Insert the transits no earlier request stored (`rows`, bound as `params`); answer
        the others as duplicates.

        `ON CONFLICT DO NOTHING` on the (device, event id) key: served by the unique index,
        and no race between two retries of the same read.
        """
        c = transits.c
        inserted = _insert_bound(conn, rows, params)
        if inserted is None:  # the usual case: no read of the batch was stored before
            return list(accepted)
        fresh = []
        for item in accepted:
            if item.row["id"] in inserted:
                fresh.append(item)
                continue
            tid = conn.execute(sa.select(c.id).where(
                c.device_id == item.row["device_id"],
                c.event_id == item.row["event_id"])).scalar_one()
            results[item.index] = ReadResult(index=item.index, status="duplicate",
                                             transit_id=tid)
        return fresh

    def _write_images(self, accepted: list[_Accepted]) -> list[Path]:
        root = self.settings.read_images_root
        written: list[Path] = []
        try:
            for item in accepted:
                if not item.images:
                    continue
                day = item.row["time"].strftime("%Y/%m/%d")
                for kind, image, ext in item.images:
                    rel = f"{day}/{item.row['id']}-{kind}.{ext}"
                    path = root / rel
                    for attempt in (1, 2):  # the purge may remove an empty day folder
                        path.parent.mkdir(parents=True, exist_ok=True)
                        try:
                            path.write_bytes(image.data)
                            break
                        except FileNotFoundError:
                            if attempt == 2:
                                raise
                    written.append(path)
                    item.row[f"{kind}_image"] = rel
                    item.row[f"{kind}_image_sha256"] = hashlib.sha256(image.data).hexdigest()
        except OSError:
            _remove(written)
            raise
        return written

    def _insert(self, conn: Connection, accepted: list[_Accepted],
                received: datetime) -> list[list[int]]:
        rows = [{"transit_id": item.row["id"], "device_id": item.device.id,
                 "zone_id": item.device.zone_id, "hotlist_id": hit.hotlist_id,
                 "hotlist_kind": hit.kind.value, "plate": hit.plate, "read": hit.read,
                 "match": "exact" if hit.distance == 0 else "lookalike",
                 "priority": hit.priority, "reason": hit.reason, "time": item.row["time"],
                 "created_at": received, "state": AlarmState.NEW.value}
                for item in accepted for hit in item.hits]
        # One statement for the batch's alarms (ids in the rows' order), not one each: on
        # SQLite every statement under the writer lock waits to take the GIL back.
        new = iter(conn.execute(alarms.insert().returning(
            alarms.c.id, sort_by_parameter_order=True), rows).scalars().all() if rows else [])
        alarm_ids = [[next(new) for _ in item.hits] for item in accepted]
        if accepted:
            _count(conn, accepted)
        if accepted and self.enqueue is not None and self.settings.forward_url:
            self.enqueue(conn, [(a.row, _device_row(a.device)) for a in accepted], received)
        return alarm_ids

    def _publish(self, accepted: list[_Accepted], alarm_ids: list[list[int]],
                 received: datetime) -> None:
        for item, ids in zip(accepted, alarm_ids, strict=True):
            for hit, alarm_id in zip(item.hits, ids, strict=True):
                event = AlarmEvent(
                    id=alarm_id, transit_id=item.row["id"], device_id=item.device.id,
                    zone_id=item.device.zone_id, hotlist_id=hit.hotlist_id,
                    hotlist_kind=hit.kind.value, plate=hit.plate, read=hit.read,
                    match="exact" if hit.distance == 0 else "lookalike",
                    priority=hit.priority, reason=hit.reason, time=item.row["time"],
                    created_at=received, state=AlarmState.NEW, acknowledged_by=None,
                    acknowledged_at=None, outcome=None, note=None, closed_by=None,
                    closed_at=None, device_name=item.device.name, lat=item.device.lat,
                    lon=item.device.lon, direction=item.row["direction"],
                    confidence=item.row["confidence"], hotlist_name=hit.hotlist_name,
                    received_at=received)
                self.bus.publish(Event(ALARM_TOPIC, event.model_dump(mode="json")))

    # -- caches -------------------------------------------------------------------------

    def load(self) -> None:
        """Load the hotlists into the matcher now (a million entries take seconds), so that
        the first read after a start is matched as fast as the others. That read still
        looks for changes (a revision check, no reload unless a list changed)."""
        self.matcher.refresh()

    def _refresh_matcher(self) -> None:
        now = time.monotonic()
        if now - self._refreshed >= self.refresh_seconds:
            self.matcher.refresh()
            self._refreshed = now

    def _devices_named(self, ids: Sequence[str]) -> dict[str, _Device]:
        """The active plate readers among `ids`, from a short-lived cache."""
        now = time.monotonic()
        out: dict[str, _Device] = {}
        missing: set[str] = set()
        with self._lock:
            for device_id in set(ids):
                cached = self._devices.get(device_id)
                if cached is not None and now - cached[0] < self.device_cache_seconds:
                    out[device_id] = cached[1]
                else:
                    missing.add(device_id)
        if missing:
            d = devices.c
            with self.db.read() as conn:
                rows = conn.execute(
                    sa.select(d.id, d.name, d.zone_id, d.lat, d.lon)
                    .where(d.id.in_(sorted(missing)),
                           d.kind.in_([k.value for k in PLATE_READING]),
                           d.status.in_([DeviceStatus.ACTIVE.value,
                                         DeviceStatus.MAINTENANCE.value]))).all()
            with self._lock:
                for r in rows:
                    dev = _Device(r.id, r.name, r.zone_id, r.lat, r.lon)
                    self._devices[r.id] = (now, dev)
                    out[r.id] = dev
        return out


def _classify(plate: str, country: str | None) -> tuple[str | None, str, list[str]]:
    """(country, format id, flags) of a normalised plate; InvalidInput if it is no plate."""
    flags: list[str] = []
    code: str | None = None
    fmt: PlateFormat | None = None
    if country is not None and country.strip():
        code = country.strip().upper()
        try:
            fmt = best_format(plate, code)
        except InvalidInput:
            flags.append("country_without_formats")  # kept as the reader said it
            fmt = best_format(plate)
        else:
            if fmt is None and (fmt := best_format(plate)) is not None:
                flags.append("country_mismatch")
    else:
        fmt = best_format(plate)
    if fmt is not None:
        return code or fmt.country, fmt.id, flags
    if not classify(plate):  # not even the generic fallback (2-10 characters)
        raise InvalidInput.on("plate", f"{plate!r} is not a plate of any known format")
    return code, "generic", [*flags, "unknown_format"]


# The transits' columns, in the table's order: the fast insert below binds them by position.
_COLUMNS = tuple(col.name for col in transits.c)


def _insert_transits(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> set[uuid.UUID]:
    """Insert `rows` (ON CONFLICT on the device and event id DO NOTHING); the ids inserted.

    Straight to the driver: SQLAlchemy's per-row parameter handling cost more than the
    insert itself. Each value still goes through its column type's own bind processor, so
    the rows stored are the ones `transits.insert()` would store (tests compare the two).
    """
    inserted = _insert_bound(conn, rows, _bound_transits(conn.dialect, rows))
    return {row["id"] for row in rows} if inserted is None else inserted


def _bound_transits(dialect: sa.Dialect, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
    """The driver's parameters for inserting `rows`: on PostgreSQL the rows' values (see
    `_insert_bound`), on SQLite one flat list per INSERT of up to `_SQLITE_MAX_ROWS` rows."""
    binds = [(i, p, isinstance(col.type, UTCDateTime)) for i, col in enumerate(transits.c)
             if (p := col.type.dialect_impl(dialect).bind_processor(dialect)) is not None]
    # A batch's times repeat (received_at is one for all, readers send in bursts): a time
    # equal to the previous row's reuses its bound form instead of converting it again.
    last: dict[int, tuple[Any, Any]] = {}
    tuples = []
    for row in rows:
        values = [row[name] for name in _COLUMNS]
        for i, bind, is_time in binds:
            value = values[i]
            if is_time:
                before = last.get(i)
                if before is not None and before[0] == value:
                    values[i] = before[1]
                    continue
                values[i] = bind(value)
                last[i] = (value, values[i])
            else:
                values[i] = bind(value)
        tuples.append(values)
    if dialect.name == "postgresql":
        return tuples
    return [[v for values in tuples[start:start + _SQLITE_MAX_ROWS] for v in values]
            for start in range(0, len(tuples), _SQLITE_MAX_ROWS)]


def _insert_bound(conn: Connection, rows: Sequence[Mapping[str, Any]],
                  params: list[Any]) -> set[uuid.UUID] | None:
    """Insert `rows`, bound by `_bound_transits`; the ids inserted, or None if all were
    (the usual case, answered without a set of a thousand ids)."""
    dialect = conn.dialect
    raw: Any = conn.connection.dbapi_connection
    names = ", ".join(_COLUMNS)
    with contextlib.closing(raw.cursor()) as cursor:
        if dialect.name == "postgresql":
            # COPY into this session's staging table, then one INSERT from it in the key
            # order. An executemany was one round of the protocol per row, a multi-row
            # VALUES a 20,000-parameter statement psycopg re-parses, and arrays (unnest)
            # spent 20 us of Python a row quoting their text; COPY's rows are formatted in
            # psycopg's C code (11 us a row in all, measured).
            cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {_PG_STAGE} "
                           "(LIKE transits INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
            with cursor.copy(f"COPY {_PG_STAGE} ({names}) FROM STDIN") as copy:
                for values in params:
                    copy.write_row(values)
            cursor.execute(
                f"INSERT INTO transits ({names}) SELECT {names} FROM {_PG_STAGE} "
                "ORDER BY device_id, event_id ON CONFLICT (device_id, event_id) DO NOTHING")
            count = cursor.rowcount
        else:
            # Many rows per statement, not executemany: the driver lets go of the GIL around
            # every sqlite3_step, and an executemany that took it back once per row, while
            # the threads validating the next batches held it, spent most of the writer
            # lock's time waiting (with one busy thread beside it: 6,177 against 45 us a
            # row, measured).
            count = 0
            for flat in params:
                cursor.execute(_sqlite_insert(len(flat) // len(_COLUMNS)), flat)
                count += cursor.rowcount
    if count == len(rows):
        return None
    # Ids are minted by this ingest, so the ones present now are the ones just inserted.
    found: set[uuid.UUID] = set()
    ids = [row["id"] for row in rows]
    for start in range(0, len(ids), 500):
        found.update(conn.execute(sa.select(transits.c.id).where(
            transits.c.id.in_(ids[start:start + 500]))).scalars())
    return found


# PostgreSQL: a batch's transits are copied into this temporary table (one per session,
# emptied at each commit) before their INSERT.
_PG_STAGE = "vigila_transits_in"

# Rows per INSERT: 500 rows of 21 columns stay under SQLite's limit on a statement's
# parameters (32,766 since 3.32, 999 before) and parse in well under a batch's time.
_SQLITE_MAX_ROWS = 500 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999 // len(_COLUMNS)


@functools.cache
def _sqlite_insert(rows: int) -> str:
    """The multi-row INSERT of `rows` transits (cached: a few sizes recur)."""
    one = "(" + ", ".join("?" * len(_COLUMNS)) + ")"
    return (f"INSERT INTO transits ({', '.join(_COLUMNS)}) VALUES {', '.join([one] * rows)} "
            "ON CONFLICT (device_id, event_id) DO NOTHING")


def _count(conn: Connection, accepted: list[_Accepted]) -> None:
    """Add the batch to the hourly counts per reader and direction (no plate in them)."""
    counts: dict[tuple[str, datetime, str], int] = {}
    for item in accepted:
        hour = item.row["time"].replace(minute=0, second=0, microsecond=0)
        key = (item.device.id, hour, item.row["direction"] or "")
        counts[key] = counts.get(key, 0) + 1
    rows = [{"device_id": d, "hour": h, "direction": dr, "count": n}
            for (d, h, dr), n in sorted(counts.items())]
    dialect = conn.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(transit_counts)
    conn.execute(stmt.on_conflict_do_update(
        index_elements=[transit_counts.c.device_id, transit_counts.c.hour,
                        transit_counts.c.direction],
        set_={"count": transit_counts.c.count + stmt.excluded.count}), rows)


def _device_row(device: _Device) -> dict[str, Any]:
    return {"id": device.id, "name": device.name, "zone_id": device.zone_id,
            "lat": device.lat, "lon": device.lon}


def _with_device(read: RawRead, device_id: str) -> RawRead:
    extra = dict(read.extra)
    if read.device and read.device != device_id:
        extra.setdefault("vendor_device", read.device)
    return RawRead(read.plate, device_id, read.time, read.event_id, read.confidence,
                   read.direction, read.lane, read.country, read.images, read.vendor, extra)


def _rejected(index: int, errors: list[FieldError]) -> ReadResult:
    return ReadResult(index=index, status="rejected",
                      errors=[{"field": e.field, "message": e.message} for e in errors])


def _remove(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
