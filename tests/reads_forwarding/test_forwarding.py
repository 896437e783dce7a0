"""Forwarding upstream against a real HTTP server on loopback that fails half the requests,
takes a batch and then never answers, refuses one: nothing lost, nothing accepted twice."""

from __future__ import annotations

import dataclasses
import json
import random
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from vigila.access import Principal, Purpose, Role
from vigila.access.tables import audit_log
from vigila.core import Forbidden, Settings
from vigila.reads import forwarding
from vigila.reads.cli import reads_app
from vigila.reads.forwarding import Forwarder
from vigila.reads.tables import forward_queue
from vigila.store import Database

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
DEVICE = {"id": "LPR-B1", "name": "Porta Nord", "zone_id": "zona-b", "lat": 43.895,
          "lon": 11.115}
ADMIN = Principal(1, "admin", "pl-test", frozenset({Role.ADMINISTRATOR}), True)
WHY = Purpose("verifica invio al sistema nazionale", "ticket 42")


@dataclass
class Seen:
    number: int
    key: str
    content_type: str
    ids: list[str]
    answer: str
    body: bytes


@dataclass
class Upstream:
    """A national system: stores each transit once (by id), misbehaves as `script` says.

    script(request number) -> "ok" | "fail" (500) | "busy" (429, Retry-After: 120) |
    "stall" (takes the batch, answers only after the client gave up) | "reject" (400).
    """

    script: Callable[[int], str]
    stall_s: float = 1.0
    url: str = ""
    stored: Counter[str] = field(default_factory=Counter)  # id -> times stored: 1 at most
    taken: Counter[str] = field(default_factory=Counter)  # id -> times a request took it
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, ctype: str, key: str, body: bytes) -> tuple[int, str]:
        if ctype.startswith("application/xml"):
            ids = [t.findtext("id") or "" for t in ET.fromstring(body).iter("transit")]
        else:
            ids = [t["id"] for t in json.loads(body)["transits"]]
        with self.lock:
            answer = self.script(len(self.seen) + 1)
            self.seen.append(Seen(len(self.seen) + 1, key, ctype, ids, answer, body))
            if answer in ("ok", "stall"):
                for tid in ids:
                    self.taken[tid] += 1
                    if tid not in self.stored:  # deduplicated by transit id
                        self.stored[tid] += 1
        return {"ok": (200, "ok"), "stall": (200, "ok"), "fail": (500, "errore interno"),
                "busy": (429, "troppe richieste"), "reject": (400, "targa non valida")}[answer]


def _handler(upstream: Upstream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status, text = upstream.handle(self.headers["Content-Type"],
                                           self.headers["Idempotency-Key"], body)
            if upstream.seen[-1].answer == "stall":
                time.sleep(upstream.stall_s)
            try:
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", "120")
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(text.encode())
            except OSError:
                pass  # the client gave up waiting

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    up = Upstream(script=lambda n: "ok")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(up))
    up.url = f"http://127.0.0.1:{server.server_address[1]}/scntt/transiti"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield up
    server.shutdown()
    server.server_close()


def forwarder(db: Database, settings: Settings, url: str, fmt: str = "json",
              **kwargs: Any) -> Forwarder:
    return Forwarder(db, dataclasses.replace(settings, forward_url=url, forward_format=fmt),
                     rng=random.Random(7), **kwargs)


def transit(n: int, **extra: Any) -> dict[str, Any]:
    return {"id": uuid.uuid4(), "device_id": "LPR-B1", "plate": f"AB{n:03d}CD",
            "country": "IT", "confidence": 0.93, "time": NOW - timedelta(seconds=n),
            "direction": "inbound", "lane": 2, "vendor": "tattile", **extra}


def enqueue(db: Database, items: list[dict[str, Any]], now: datetime = NOW) -> int:
    with db.write() as conn:
        return forwarding.enqueue(conn, [(t, DEVICE) for t in items], now)


def states(db: Database) -> dict[str, str]:
    with db.read() as conn:
        return {str(r.transit_id): r.state for r in conn.execute(
            sa.select(forward_queue.c.transit_id, forward_queue.c.state))}


def drain(fwd: Forwarder, db: Database, start: datetime = NOW, rounds: int = 60) -> datetime:
    """run_once until nothing is pending, ten minutes later each time (no sleeping)."""
    now = start
    for _ in range(rounds):
        fwd.run_once(now)
        if "pending" not in states(db).values():
            return now
        now += timedelta(minutes=10)
    raise AssertionError(f"still pending: {Counter(states(db).values())}")


def test_enqueue_is_idempotent_and_in_the_callers_transaction(db: Database) -> None:
    items = [transit(n) for n in range(3)]
    assert enqueue(db, items) == 3
    assert enqueue(db, [*items, transit(9)]) == 1
    with pytest.raises(RuntimeError), db.write() as conn:
        forwarding.enqueue(conn, [(transit(10), DEVICE)], NOW)
        raise RuntimeError("the ingest's transaction fails")
    assert len(states(db)) == 4
    with db.read() as conn:
        row = conn.execute(sa.select(forward_queue).where(
            forward_queue.c.transit_id == items[0]["id"])).one()
    assert row.payload == {
        "id": str(items[0]["id"]), "plate": "AB000CD", "country": "IT",
        "time": "2026-11-20T12:00:00Z", "reader": "LPR-B1", "lat": 43.895, "lon": 11.115,
        "direction": "inbound", "lane": 2, "confidence": 0.93, "vendor": "tattile"}
    assert (row.state, row.attempts) == ("pending", 0)


def test_half_failing_upstream_gets_everything_exactly_once(db: Database, settings: Settings,
                                                            upstream: Upstream) -> None:
    # Every other request fails; the fourth is taken, but answered after the client gave up.
    upstream.script = lambda n: "stall" if n == 4 else ("fail" if n % 2 else "ok")
    upstream.stall_s = 0.8
    items = [transit(n) for n in range(23)]
    enqueue(db, items)
    fwd = forwarder(db, settings, upstream.url, batch_size=5, timeout=0.3)
    drain(fwd, db)

    ids = {str(t["id"]) for t in items}
    assert set(states(db).values()) == {"sent"} and set(states(db)) == ids  # nothing lost
    assert upstream.stored == Counter(dict.fromkeys(ids, 1))  # each accepted exactly once
    stalled = next(s for s in upstream.seen if s.answer == "stall")
    # The only copies the upstream ever got are of the batch whose answer was lost, sent
    # again whole, with the same Idempotency-Key.
    twice = {tid for tid, n in upstream.taken.items() if n > 1}
    assert twice == set(stalled.ids) and max(upstream.taken.values()) == 2
    again = [s for s in upstream.seen if s.number > stalled.number and set(s.ids) & twice]
    assert all(s.key == stalled.key and sorted(s.ids) == sorted(stalled.ids) for s in again)
    assert stalled.key == forwarding.batch_key([(t, NOW) for t in stalled.ids])
    assert len({s.key for s in upstream.seen}) == 5  # five batches, one key each
    assert sum(s.answer == "fail" for s in upstream.seen) >= 5
    # Each batch delivered is a transfer: audited once, with its transits and recipient.
    with db.read() as conn:
        sent = conn.execute(sa.select(audit_log).where(
            audit_log.c.action == "forwarding.sent")).mappings().all()
    assert len(sent) == 5 and {e["actor"] for e in sent} == {"system:forwarding"}
    assert sorted(t for e in sent for t in e["detail"]["transits"]) == sorted(ids)
    assert {e["recipient"] for e in sent} == {"127.0.0.1"}
    with db.read() as conn:
        attempts = {tid: n for tid, n in conn.execute(
            sa.select(forward_queue.c.transit_id, forward_queue.c.attempts))}
    assert {attempts[uuid.UUID(t)] for t in stalled.ids} == {2}


def test_a_refused_batch_is_dead_at_once_and_requeue_sends_it(
        db: Database, settings: Settings, upstream: Upstream) -> None:
    upstream.script = lambda n: "reject" if n == 1 else "ok"
    items = [transit(n) for n in range(3)]
    enqueue(db, items)
    fwd = forwarder(db, settings, upstream.url)
    report = fwd.run_once(NOW)
    assert (report.requests, report.dead, report.sent) == (1, 3, 0)
    with db.read() as conn:
        status = forwarding.status(conn, NOW)
    assert (status.pending, status.dead, status.oldest_pending_at) == (0, 3, None)
    assert fwd.run_once(NOW + timedelta(hours=1)).requests == 0  # dead letters stay put

    operator = Principal(2, "op", "pl-test", frozenset({Role.OPERATOR}), True)
    with db.write() as conn:
        with pytest.raises(Forbidden):
            forwarding.dead_letters(conn, operator, WHY)
        page = forwarding.dead_letters(conn, ADMIN, WHY, limit=2)
        rest = forwarding.dead_letters(conn, ADMIN, WHY, cursor=page.next_cursor)
    letters = page.items + rest.items
    assert len(page.items) == 2 and rest.next_cursor is None and len(letters) == 3
    assert {str(d.transit_id) for d in letters} == {str(t["id"]) for t in items}
    assert letters[0].last_error == "HTTP 400: targa non valida"
    assert letters[0].attempts == 1 and letters[0].payload["plate"] == "AB000CD"

    with db.write() as conn:
        assert forwarding.requeue(conn, ADMIN, [d.id for d in letters] + [10**9],
                                  NOW + timedelta(hours=1)) == 3
        assert forwarding.requeue(conn, ADMIN, [letters[0].id]) == 0  # not dead any more
    assert fwd.run_once(NOW + timedelta(hours=2)).sent == 3
    assert upstream.stored == Counter({str(t["id"]): 1 for t in items})
    # Queued anew: the same transits, a new key (an upstream may have kept the refusal).
    assert sorted(upstream.seen[1].ids) == sorted(upstream.seen[0].ids)
    assert upstream.seen[1].key != upstream.seen[0].key
    with db.read() as conn:
        actions = Counter(conn.execute(sa.select(audit_log.c.action)).scalars())
        read = conn.execute(sa.select(audit_log).where(
            audit_log.c.action == "forwarding.dead_letters.read")).mappings().first()
    assert actions["forwarding.requeue"] == 2 and actions["forwarding.dead_letters.read"] == 2
    assert read is not None and read["purpose"] == WHY.text and read["reference"] == "ticket 42"


def test_xml_body_parses_and_carries_every_field(db: Database, settings: Settings,
                                                 upstream: Upstream) -> None:
    full = transit(1)
    sparse = transit(2, country=None, confidence=None, direction=None, lane=None,
                     vendor="a<b>&\"c\" \x01]]>")
    enqueue(db, [full, sparse])
    assert forwarder(db, settings, upstream.url, "xml").run_once(NOW).sent == 2
    seen = upstream.seen[0]
    assert seen.content_type == "application/xml; charset=utf-8"
    root = ET.fromstring(seen.body)
    assert root.tag == "transits"
    got = {t.findtext("id"): {c.tag: c.text for c in t} for t in root.iter("transit")}
    assert got[str(full["id"])] == {
        "id": str(full["id"]), "plate": "AB001CD", "country": "IT",
        "time": "2026-11-20T11:59:59Z", "reader": "LPR-B1", "lat": "43.895", "lon": "11.115",
        "direction": "inbound", "lane": "2", "confidence": "0.93", "vendor": "tattile"}
    assert got[str(sparse["id"])] == {
        "id": str(sparse["id"]), "plate": "AB002CD", "time": "2026-11-20T11:59:58Z",
        "reader": "LPR-B1", "lat": "43.895", "lon": "11.115", "vendor": "a<b>&\"c\" ]]>"}
    assert [tuple(t) for t in root] and all(c.tag in forwarding.FIELDS
                                             for t in root for c in t)
    assert seen.key == forwarding.batch_key([(t, NOW) for t in seen.ids])


def test_json_body(db: Database, settings: Settings, upstream: Upstream) -> None:
    item = transit(1, plate="ÄB123CD")
    enqueue(db, [item])
    forwarder(db, settings, upstream.url).run_once(NOW)
    seen = upstream.seen[0]
    assert seen.content_type == "application/json"
    doc = json.loads(seen.body)
    assert list(doc) == ["transits"] and doc["transits"][0]["plate"] == "ÄB123CD"
    assert list(doc["transits"][0]) == list(forwarding.FIELDS)


def test_backoff_grows_to_the_cap_then_dead(db: Database, settings: Settings,
                                            upstream: Upstream) -> None:
    upstream.script = lambda n: "fail"
    enqueue(db, [transit(1)])
    fwd = forwarder(db, settings, upstream.url)
    now, delays = NOW, []
    for attempt in range(1, forwarding.MAX_ATTEMPTS + 1):
        assert fwd.run_once(now).requests == 1
        with db.read() as conn:
            row = conn.execute(sa.select(forward_queue)).one()
        assert row.attempts == attempt
        if row.state == "dead":
            break
        delays.append((row.next_attempt_at - now).total_seconds())
        assert fwd.run_once(row.next_attempt_at - timedelta(seconds=0.01)).requests == 0
        now = row.next_attempt_at
    assert row.state == "dead" and attempt == forwarding.MAX_ATTEMPTS
    assert row.last_error == f"HTTP 500: errore interno (after {attempt} attempts)"
    assert 1 <= delays[0] <= 1.2 and all(1 <= d <= 300 for d in delays)
    assert delays[:9] == sorted(delays[:9]) and len(set(delays[:9])) == 9  # grows ...
    assert all(d >= 240 for d in delays[9:])  # ... to five minutes, with jitter
    rng = random.Random(1)
    assert all(forwarding.retry_delay(n, rng) < forwarding.retry_delay(n + 1, rng)
               for n in range(1, 8))


def test_busy_upstream_is_given_its_retry_after(db: Database, settings: Settings,
                                                upstream: Upstream) -> None:
    upstream.script = lambda n: "busy"
    enqueue(db, [transit(1)])
    forwarder(db, settings, upstream.url).run_once(NOW)
    with db.read() as conn:
        row = conn.execute(sa.select(forward_queue)).one()
    assert row.state == "pending" and row.next_attempt_at == NOW + timedelta(seconds=120)
    assert row.last_error == "HTTP 429: troppe richieste"


def test_unreachable_upstream_is_retried(db: Database, settings: Settings) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_address[1]
    server.server_close()  # nothing listens there now
    enqueue(db, [transit(1)])
    report = forwarder(db, settings, f"http://127.0.0.1:{port}/x").run_once(NOW)
    assert (report.requests, report.retried, report.dead) == (1, 1, 0)
    with db.read() as conn:
        row = conn.execute(sa.select(forward_queue)).one()
    assert row.state == "pending" and "ConnectionRefusedError" in (row.last_error or "")


def test_background_thread_sends_and_stops(db: Database, settings: Settings,
                                           upstream: Upstream) -> None:
    enqueue(db, [transit(n) for n in range(4)], datetime.now(UTC))
    fwd = forwarder(db, settings, upstream.url).start()
    try:
        deadline = time.monotonic() + 10
        while set(states(db).values()) != {"sent"} and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        fwd.stop()
    assert set(states(db).values()) == {"sent"} and len(upstream.stored) == 4


def test_configuration_is_checked(db: Database, settings: Settings) -> None:
    with pytest.raises(ValueError, match="off"):
        Forwarder(db, settings)
    with pytest.raises(ValueError, match="json or xml"):
        forwarder(db, settings, "http://127.0.0.1:9/", "csv")
    with pytest.raises(ValueError, match="http"):
        forwarder(db, settings, "ftp://127.0.0.1/")


def test_forward_commands(db: Database, settings: Settings, upstream: Upstream,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    enqueue(db, [transit(n) for n in range(2)], datetime.now(UTC))
    monkeypatch.setenv("VIGILA_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("VIGILA_DATABASE_URL", settings.database_url)
    runner = CliRunner()
    result = runner.invoke(reads_app, ["forward-status"])
    assert result.exit_code == 0 and "forwarding off" in result.output
    assert "pending 2 (due 2)" in result.output
    assert runner.invoke(reads_app, ["forward-run"]).exit_code == 2
    monkeypatch.setenv("VIGILA_FORWARD_URL", upstream.url)
    result = runner.invoke(reads_app, ["forward-run"])
    assert result.exit_code == 0 and "sent 2" in result.output, result.output
    assert "sent 2" in runner.invoke(reads_app, ["forward-status"]).output
