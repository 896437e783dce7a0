"""Forwarding transits upstream, to a national system (SCNTT-style): a queue with retries.

The ingest calls `enqueue` in its own write transaction, so a stored transit is queued or
not stored at all. The `Forwarder` sends due rows in batches, one HTTP POST per batch:

- JSON (`application/json`): ``{"transits": [{...}, ...]}``;
- XML (`application/xml; charset=utf-8`): ``<transits><transit><id>...</id>...</transit>
  </transits>``, one child element per field, an element left out when its value is null.

The fields of a transit (`FIELDS`): `id` (the transit's UUID: the upstream's key to
deduplicate), `plate`, `country`, `time` (the reader's, UTC ISO 8601), `reader` (the device
id), `lat`, `lon`, `direction`, `lane`, `confidence` (0-1), `vendor`. Each request carries
`Idempotency-Key`: a UUID derived from the batch's transit ids (and when they were queued),
the same on every attempt of the batch.

What the answer does: 2xx: the batch is sent (marked so in one transaction right after);
408, 425, 429, 5xx, a redirect, a connection error or a time-out: the batch is tried again
after 1 s, 2 s, 4 s ... capped at 5 minutes, each ±20 % (jitter), `Retry-After` honoured up
to the cap, and after `MAX_ATTEMPTS` (20: about an hour of outage) it goes to the dead
letters; any other 4xx: dead at once, with the answer in `last_error`. An administrator can
requeue dead letters (audited).

Delivery is at least once, with idempotency keys. The upstream sees a transit twice only
when it accepted a batch whose answer never arrived (a client time-out after the server
took it, or a crash between the 2xx and the commit that marks the rows sent): the batch is
then sent again with the same rows, the same Idempotency-Key and the same transit ids, so the
upstream can drop the copy. A batch tried before is claimed again as it was: its rows share
one `next_attempt_at`, set together, and `attempts > 0`. A requeued dead letter is queued
anew: a new batch and key (an upstream may have stored its refusal under the old key), the
same transit id.

One forwarder per installation. A batch is claimed in a short transaction (`FOR UPDATE SKIP
LOCKED` on PostgreSQL) that counts the attempt and leases the rows (`next_attempt_at` moved
past the request's time-out), so no database lock is held during the request, and a second
forwarder started by mistake would not send the same rows at once. For a dead letter,
`next_attempt_at` is when it died. Every batch sent is audited (a transfer: art. 21).
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import random
import re
import ssl
import threading
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from vigila import __version__
from vigila.access import Permission, Principal, Purpose, audit
from vigila.core import Settings
from vigila.core.errors import InvalidInput
from vigila.core.pagination import Page, check_limit, decode_cursor, encode_cursor
from vigila.core.timeutil import as_utc, iso, utcnow
from vigila.reads.tables import forward_queue
from vigila.registry.tables import devices
from vigila.store import Database

log = logging.getLogger(__name__)

FIELDS = ("id", "plate", "country", "time", "reader", "lat", "lon", "direction", "lane",
          "confidence", "vendor")
BATCH_SIZE = 100
TIMEOUT_S = 10.0
MAX_ATTEMPTS = 20
FIRST_DELAY_S = 1.0
MAX_DELAY_S = 300.0
INTERVAL_S = 1.0  # the background loop
MAX_BATCHES_PER_RUN = 50  # then the loop sleeps, so stop() is never kept waiting long
RETRY_STATUSES = frozenset({408, 425, 429})
ACTOR = "system:forwarding"
_KEY_NAMESPACE = uuid.UUID("6f1c1f3e-5b8e-4a53-9a53-2d8f0c7e4b11")
_ENQUEUE_CHUNK = 1000
# Characters XML 1.0 cannot carry at all, escaped or not.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


# --- what is sent ---------------------------------------------------------------

def payload_of(transit: Mapping[str, Any], device: Mapping[str, Any]) -> dict[str, Any]:
    """The document sent upstream for one transit (JSON-ready; see `FIELDS`)."""
    confidence = transit.get("confidence")
    lane = transit.get("lane")
    return {
        "id": str(transit["id"]),
        "plate": transit["plate"],
        "country": transit.get("country"),
        "time": iso(transit["time"]),
        "reader": device.get("id", transit.get("device_id")),
        "lat": float(device["lat"]),
        "lon": float(device["lon"]),
        "direction": transit.get("direction"),
        "lane": None if lane is None else int(lane),
        "confidence": None if confidence is None else float(confidence),
        "vendor": transit.get("vendor"),
    }


def enqueue(conn: Connection, items: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]],
            now: datetime) -> int:
    """Queue (transit, device) pairs in the caller's transaction; a transit queued before is
    left as it is. Returns how many rows were added."""
    rows = [{"transit_id": UUID(str(t["id"])), "payload": payload_of(t, d), "state": "pending",
             "attempts": 0, "next_attempt_at": now, "created_at": now}
            for t, d in items]
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    added = 0
    for start in range(0, len(rows), _ENQUEUE_CHUNK):
        stmt = insert(forward_queue).values(rows[start:start + _ENQUEUE_CHUNK])
        # RETURNING lists the rows inserted (rowcount is -1 for a multi-row insert on psycopg).
        added += len(conn.execute(stmt.on_conflict_do_nothing(index_elements=["transit_id"])
                                  .returning(forward_queue.c.id)).all())
    return added


def batch_key(rows: Sequence[tuple[str, datetime]]) -> str:
    """The Idempotency-Key of a batch of (transit id, queued at): the same rows give the same
    key, in any order. A requeued dead letter is queued anew, so its batch gets a new key:
    an upstream that kept the refusal under the old key would only repeat it."""
    text = "\n".join(sorted(f"{tid}@{iso(at)}" for tid, at in rows))
    return str(uuid.uuid5(_KEY_NAMESPACE, text))


def body_of(payloads: Sequence[Mapping[str, Any]], fmt: str) -> tuple[bytes, str]:
    """The request body and its Content-Type, for `fmt` json or xml."""
    if fmt == "json":
        doc = {"transits": [{k: p.get(k) for k in FIELDS} for p in payloads]}
        return (json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode(),
                "application/json")
    if fmt == "xml":
        root = ET.Element("transits")
        for p in payloads:
            item = ET.SubElement(root, "transit")
            for key in FIELDS:
                value = p.get(key)
                if value is not None:
                    ET.SubElement(item, key).text = _NOT_XML.sub("", str(value))
        return (ET.tostring(root, encoding="utf-8", xml_declaration=True),
                "application/xml; charset=utf-8")
    raise ValueError(f"forward format must be json or xml, not {fmt!r}")


def retry_delay(attempts: int, rng: random.Random | None = None) -> float:
    """Seconds before the next try after `attempts` failed ones: doubling, capped, ±20 %."""
    base = min(MAX_DELAY_S, FIRST_DELAY_S * 2.0 ** min(max(attempts - 1, 0), 30))
    return min(MAX_DELAY_S, max(FIRST_DELAY_S, base * (rng or random).uniform(0.8, 1.2)))


# --- the wire ------------------------------------------------------------------------

@dataclass(frozen=True)
class Reply:
    status: int
    text: str = ""  # the start of the body, for last_error
    retry_after: float | None = None  # seconds, from Retry-After


class Transport(Protocol):
    """POSTs a body; raises OSError (time-outs included) or http.client.HTTPException when
    no answer came."""

    def post(self, url: str, body: bytes, headers: Mapping[str, str],
             timeout: float) -> Reply: ...


class HttpTransport:
    """The standard library's HTTP client. No redirect is followed (a POST turned into a GET
    would lose the batch) and no proxy is used; credentials in the URL go as Basic auth."""

    def post(self, url: str, body: bytes, headers: Mapping[str, str],
             timeout: float) -> Reply:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(host, parts.port, timeout=timeout,
                                               context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(host, parts.port, timeout=timeout)
        sent = dict(headers)
        if parts.username is not None:
            user = urllib.parse.unquote(parts.username)
            secret = urllib.parse.unquote(parts.password or "")
            sent["Authorization"] = "Basic " + base64.b64encode(
                f"{user}:{secret}".encode()).decode()
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            conn.request("POST", target, body=body, headers=sent)
            response = conn.getresponse()
            text = response.read(2048).decode("utf-8", "replace")
            return Reply(response.status, text, _seconds(response.getheader("Retry-After")))
        finally:
            conn.close()


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: the backoff decides


def check_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"the forward URL must be http:// or https:// with a host: {url!r}")
    return url


# --- the forwarder -------------------------------------------------------------------

@dataclass
class ForwardReport:
    requests: int = 0
    sent: int = 0  # transits the upstream accepted
    retried: int = 0  # transits to try again later
    dead: int = 0  # transits moved to the dead letters
    errors: list[str] = field(default_factory=list)


class Forwarder:
    """Sends the queue upstream; `run_once` for one pass, `start`/`stop` for a thread."""

    def __init__(self, db: Database, settings: Settings, client: Transport | None = None, *,
                 batch_size: int = BATCH_SIZE, timeout: float = TIMEOUT_S,
                 max_attempts: int = MAX_ATTEMPTS, rng: random.Random | None = None) -> None:
        if not settings.forward_url:
            raise ValueError("forwarding is off: VIGILA_FORWARD_URL is not set")
        body_of([], settings.forward_format)  # refuses an unknown format now, not per batch
        self.db = db
        self.url = check_url(settings.forward_url)
        self.format = settings.forward_format
        self.client: Transport = client or HttpTransport()
        self.batch_size = batch_size
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.rng = rng or random.Random()
        self.recipient = urllib.parse.urlsplit(self.url).hostname or "upstream"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- one pass ----------------------------------------------------------------------

    def run_once(self, now: datetime | None = None) -> ForwardReport:
        """Send due batches until none is left, one fails to get through, or the cap."""
        report = ForwardReport()
        for _ in range(MAX_BATCHES_PER_RUN):
            if self._stop.is_set():
                break
            at = now or utcnow()
            rows = self._claim(at)
            if not rows:
                break
            if not self._deliver(rows, now, report):
                break  # the upstream is unwell: the next pass, not the next batch
        return report

    def _claim(self, now: datetime) -> list[Any]:
        fq = forward_queue.c
        due = (fq.state == "pending") & (fq.next_attempt_at <= now)
        with self.db.write() as conn:
            lock = conn.dialect.name == "postgresql"

            def locked(q: sa.Select[Any]) -> sa.Select[Any]:
                return q.with_for_update(skip_locked=True) if lock else q

            first = conn.execute(locked(sa.select(fq.id, fq.attempts, fq.next_attempt_at)
                                        .where(due).order_by(fq.next_attempt_at, fq.id)
                                        .limit(1))).first()
            if first is None:
                return []
            columns = (fq.id, fq.transit_id, fq.payload, fq.attempts, fq.created_at)
            if first.attempts > 0:  # tried before: the very same batch again, same key
                q = sa.select(*columns).where(fq.state == "pending", fq.attempts > 0,
                                              fq.next_attempt_at == first.next_attempt_at)
            else:
                q = sa.select(*columns).where(due, fq.attempts == 0)
            rows = list(conn.execute(locked(q.order_by(fq.id).limit(self.batch_size))).all())
            # The lease: past the request's time-out, unique to this batch (the jitter).
            lease = now + timedelta(seconds=2 * self.timeout + 30 + self.rng.random())
            conn.execute(forward_queue.update().where(fq.id.in_([r.id for r in rows]))
                         .values(attempts=fq.attempts + 1, next_attempt_at=lease))
        return rows

    def _deliver(self, rows: list[Any], now: datetime | None, report: ForwardReport) -> bool:
        key = batch_key([(str(r.transit_id), r.created_at) for r in rows])
        body, ctype = body_of([r.payload for r in rows], self.format)
        headers = {"Content-Type": ctype, "Idempotency-Key": key,
                   "User-Agent": f"vigila/{__version__}"}
        attempts = max(r.attempts for r in rows) + 1  # as counted by the claim
        report.requests += 1
        try:
            reply = self.client.post(self.url, body, headers, self.timeout)
        except (OSError, http.client.HTTPException) as exc:
            self._failed(rows, attempts, now, f"{type(exc).__name__}: {exc}", None, report)
            return False
        status = reply.status
        if 200 <= status < 300:
            self._sent(rows, key, attempts, now, report)
            return True
        error = f"HTTP {status}: {reply.text.strip()[:300]}"
        if status in RETRY_STATUSES or status >= 500 or 300 <= status < 400:
            self._failed(rows, attempts, now, error, reply.retry_after, report)
            return False
        self._dead(rows, now, error, report)
        return True

    def _sent(self, rows: list[Any], key: str, attempts: int, now: datetime | None,
              report: ForwardReport) -> None:
        fq = forward_queue.c
        at = now or utcnow()
        with self.db.write() as conn:
            n = conn.execute(forward_queue.update().where(
                fq.id.in_([r.id for r in rows]), fq.state == "pending").values(
                state="sent", sent_at=at, last_error=None)).rowcount
            audit.record(conn, None, "forwarding.sent", f"forward:{key}", actor_name=ACTOR,
                         recipient=self.recipient, detail={
                             "transits": [str(r.transit_id) for r in rows], "count": len(rows),
                             "format": self.format, "attempt": attempts})
        report.sent += n

    def _failed(self, rows: list[Any], attempts: int, now: datetime | None, error: str,
                retry_after: float | None, report: ForwardReport) -> None:
        if attempts >= self.max_attempts:
            self._dead(rows, now, f"{error} (after {attempts} attempts)", report)
            return
        fq = forward_queue.c
        at = now or utcnow()
        delay = retry_delay(attempts, self.rng)
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_DELAY_S))
        with self.db.write() as conn:
            # One next_attempt_at for the whole batch: that is how it is claimed again whole.
            conn.execute(forward_queue.update().where(
                fq.id.in_([r.id for r in rows]), fq.state == "pending").values(
                next_attempt_at=at + timedelta(seconds=delay), last_error=_clip(error)))
        report.retried += len(rows)
        report.errors.append(error)
        log.warning("forwarding: %d transits to retry in %.1f s: %s", len(rows), delay, error)

    def _dead(self, rows: list[Any], now: datetime | None, error: str,
              report: ForwardReport) -> None:
        fq = forward_queue.c
        with self.db.write() as conn:
            conn.execute(forward_queue.update().where(
                fq.id.in_([r.id for r in rows]), fq.state == "pending").values(
                state="dead", next_attempt_at=now or utcnow(), last_error=_clip(error)))
        report.dead += len(rows)
        report.errors.append(error)
        log.error("forwarding: %d transits to the dead letters: %s", len(rows), error)

    # -- the thread ----------------------------------------------------------------

    def start(self) -> Forwarder:
        if self._thread is not None and self._thread.is_alive():
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="vigila-forwarder", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout if timeout is not None else self.timeout + 5)
            if self._thread.is_alive():
                return  # still finishing its request; it stops after
            self._thread = None
        self._stop.clear()  # run_once may be called again by hand

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # the database away a moment: the loop goes on
                log.exception("forwarding: pass failed")
            self._stop.wait(INTERVAL_S)


def _clip(text: str) -> str:
    return text.replace("\x00", "")[:500]


# --- the queue seen by an administrator -----------------------------------------------

class ForwardStatus(BaseModel):
    pending: int
    due: int = Field(description="pending rows whose time has come")
    sent: int = Field(description="sent, not yet removed by the minimisation purge")
    dead: int
    oldest_pending_at: datetime | None = Field(description="when the oldest pending row "
                                                           "was queued")
    oldest_pending_seconds: float | None


class DeadLetter(BaseModel):
    id: int
    transit_id: UUID
    payload: dict[str, Any] = Field(description="the transit as it would be sent")
    attempts: int
    last_error: str | None
    created_at: datetime
    dead_since: datetime


class RequeueReport(BaseModel):
    requeued: int


def status(conn: Connection, now: datetime | None = None) -> ForwardStatus:
    """Rows per state and the age of the oldest pending one; no personal data."""
    now = now or utcnow()
    fq = forward_queue.c
    counts: dict[str, int] = {state: n for state, n in conn.execute(
        sa.select(fq.state, sa.func.count()).group_by(fq.state))}
    pending = fq.state == "pending"
    due = conn.execute(sa.select(sa.func.count()).select_from(forward_queue).where(
        pending, fq.next_attempt_at <= now)).scalar_one()
    oldest = conn.execute(sa.select(sa.func.min(fq.created_at)).where(pending)).scalar()
    oldest = None if oldest is None else as_utc(oldest)
    return ForwardStatus(
        pending=counts.get("pending", 0), due=due, sent=counts.get("sent", 0),
        dead=counts.get("dead", 0), oldest_pending_at=oldest,
        oldest_pending_seconds=None if oldest is None else
        max(0.0, (now - oldest).total_seconds()))


def _visible(conn: Connection, who: Principal) -> set[str] | None:
    """The readers whose dead letters the actor may see; None: all (art. 25)."""
    if who.all_zones:
        return None
    return set(conn.execute(sa.select(devices.c.id).where(
        who.zone_clause(devices.c.zone_id))).scalars())


def _reader_of(payload: Any) -> Any:
    return payload.get("reader") if isinstance(payload, dict) else None


def dead_letters(conn: Connection, who: Principal, why: Purpose, *, limit: int = 100,
                 cursor: str | None = None) -> Page[DeadLetter]:
    """Dead letters, oldest first, of the readers in the actor's zones. They hold plates:
    the read needs a purpose and is audited."""
    who.require(Permission.FORWARDING_MANAGE)
    check_limit(limit)
    after = decode_cursor(cursor) or 0
    if not isinstance(after, int):
        raise InvalidInput.on("cursor", "not a cursor of the dead letters")
    visible = _visible(conn, who)
    fq = forward_queue.c
    found: list[Any] = []
    while len(found) <= limit:
        chunk = conn.execute(sa.select(forward_queue).where(fq.state == "dead", fq.id > after)
                             .order_by(fq.id).limit(limit + 1 if visible is None else 500)
                             ).all()
        if not chunk:
            break
        after = chunk[-1].id
        found += [r for r in chunk if visible is None or _reader_of(r.payload) in visible]
        if visible is None:
            break
    items = [DeadLetter(id=r.id, transit_id=r.transit_id, payload=r.payload,
                        attempts=r.attempts, last_error=r.last_error, created_at=r.created_at,
                        dead_since=r.next_attempt_at) for r in found[:limit]]
    more = len(found) > limit
    audit.record(conn, who, "forwarding.dead_letters.read", "forward_queue", purpose=why,
                 detail={"returned": len(items), "cursor": cursor,
                         "ids": [i.id for i in items]})
    return Page(items=items, next_cursor=encode_cursor(items[-1].id) if more else None)


def requeue(conn: Connection, who: Principal, ids: Sequence[int],
            now: datetime | None = None) -> int:
    """Send these dead letters again (as new batches); ids not dead, or of readers outside
    the actor's zones, are left alone. Audited. Returns how many were requeued."""
    who.require(Permission.FORWARDING_MANAGE)
    fq = forward_queue.c
    wanted = sorted(set(ids))
    visible = _visible(conn, who)
    rows = conn.execute(sa.select(fq.id, fq.payload).where(
        fq.id.in_(wanted), fq.state == "dead")).all() if wanted else []
    chosen = [r.id for r in rows if visible is None or _reader_of(r.payload) in visible]
    now = now or utcnow()
    if chosen:  # queued anew: a new batch, a new Idempotency-Key
        conn.execute(forward_queue.update().where(fq.id.in_(chosen), fq.state == "dead")
                     .values(state="pending", attempts=0, next_attempt_at=now, created_at=now))
    audit.record(conn, who, "forwarding.requeue", "forward_queue",
                 detail={"asked": wanted[:1000], "requeued": chosen})
    return len(chosen)
