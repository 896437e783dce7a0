"""Alarms for the tests, raised as the ingest raises them: rows first, then the bus.

A transit and its alarm are written to the database, and the alarm's `AlarmEvent` is
published on the installation's bus after the commit, as vigila.reads.ingest does.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from conftest import CONSOLE, World, device
from vigila import hotlists, registry
from vigila.alarms import workflow
from vigila.core import Event, EventBus
from vigila.core.timeutil import utcnow
from vigila.plates import lookalike_key
from vigila.reads.models import ALARM_TOPIC
from vigila.reads.tables import alarms, transits
from vigila.registry.tables import devices
from vigila.store import Database

HOTLIST = "rubate"


def seed(db: Database) -> None:
    """A stolen-vehicle list, and a plate reader in zona-a beside the world's LPR-B1."""
    with db.write() as conn:
        hotlists.create_hotlist(conn, CONSOLE, hotlists.HotlistIn(
            id=HOTLIST, name="Veicoli rubati", kind=hotlists.HotlistKind.STOLEN,
            agency_id="pl-test", priority=80))
        registry.create_device(conn, CONSOLE, registry.DeviceIn.model_validate(
            device("LPR-A1", "zona-a", "plate_reader", anpr_vendor="tattile", lane=1,
                   direction="inbound", recording_server_id="NVR-A")))


def insert_alarm(db: Database, device_id: str, plate: str = "AB123CD",
                 priority: int = 80) -> dict[str, Any]:
    """A transit and the alarm it raised, committed; returns the AlarmEvent payload."""
    now = utcnow()
    transit_id = uuid.uuid4()
    with db.write() as conn:
        zone = conn.execute(devices.select().where(devices.c.id == device_id)).one().zone_id
        conn.execute(transits.insert().values(
            id=transit_id, device_id=device_id, plate=plate, plate_key=lookalike_key(plate),
            plate_raw=plate, format_id="it", country="IT", confidence=0.93, time=now,
            received_at=now, direction="inbound", lane=1, event_id=uuid.uuid4().hex,
            vendor="generic", flags="", hit=True))
        key = conn.execute(alarms.insert().values(
            transit_id=transit_id, device_id=device_id, zone_id=zone, hotlist_id=HOTLIST,
            hotlist_kind="stolen", plate=plate, read=plate, match="exact", priority=priority,
            reason="furto", time=now, created_at=now, state="new")).inserted_primary_key
        assert key is not None
        (event,) = workflow.raised_after(conn, CONSOLE, key[0] - 1, 1)
    return event.model_dump(mode="json")


def raise_alarm(db: Database, bus: EventBus, device_id: str, **kw: Any) -> dict[str, Any]:
    payload = insert_alarm(db, device_id, **kw)
    bus.publish(Event(ALARM_TOPIC, payload))
    return payload


def bus_of(world: World) -> EventBus:
    bus: EventBus = world.client.app.state.vigila.bus  # type: ignore[attr-defined]
    return bus


@dataclass
class SseEvent:
    name: str
    id: str | None
    data: str
    at: float  # time.perf_counter() when its blank line arrived


@dataclass
class SseClient:
    """A stream read in a thread, event by event; it hangs up when told, at a keep-alive."""

    url: str
    headers: dict[str, str]
    events: queue.Queue[SseEvent] = field(default_factory=queue.Queue)
    status: int | None = None
    ended: bool = False
    ready: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self, timeout_s: float = 10.0) -> SseClient:
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        assert self.ready.wait(timeout_s), "the stream did not open"
        return self

    def _read(self) -> None:
        try:
            with httpx.Client(timeout=httpx.Timeout(10.0, read=60.0), trust_env=False) as http, \
                    http.stream("GET", self.url, headers=self.headers) as r:
                self.status = r.status_code
                if r.status_code != 200:
                    r.read()
                    self.ready.set()
                    return
                name, ident, data = "message", None, []
                for line in r.iter_lines():
                    if self._stop.is_set():
                        return
                    if line.startswith("retry:"):
                        self.ready.set()
                    elif line.startswith("event:"):
                        name = line[6:].strip()
                    elif line.startswith("id:"):
                        ident = line[3:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].strip())
                    elif line == "" and data:
                        self.events.put(SseEvent(name, ident, "\n".join(data),
                                                 time.perf_counter()))
                        name, ident, data = "message", None, []
        finally:
            self.ended = True
            self.ready.set()

    def next(self, timeout_s: float = 5.0) -> SseEvent:
        return self.events.get(timeout=timeout_s)

    def none_within(self, seconds: float) -> bool:
        try:
            event = self.events.get(timeout=seconds)
        except queue.Empty:
            return True
        raise AssertionError(f"unexpected event {event}")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
