"""Alarm delivery: from the bus to a real Mosquitto, to consoles over server-sent events,
and to webhooks, within a second; a broker that is away, a receiver that fails, a console
that falls behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
import sqlalchemy as sa
from alarmkit import SseClient, bus_of, insert_alarm, raise_alarm, seed
from paho.mqtt.enums import CallbackAPIVersion

from conftest import CONSOLE, PURPOSE, World
from liveserver import serving
from mosquitto import Mosquitto, free_port
from vigila.access.tables import audit_log
from vigila.alarms import (
    AlarmDispatcher,
    AlarmHub,
    MqttPublisher,
    signature,
    topic_for,
    workflow,
)
from vigila.core import Event, EventBus
from vigila.reads.models import ALARM_TOPIC, AlarmOutcome

MQTT_TIMEOUT_S = 5.0


@pytest.fixture(scope="module")
def broker() -> Iterator[Mosquitto]:
    with Mosquitto() as server:
        yield server


@pytest.fixture
def alarm_world(world: World) -> World:
    seed(world.db)
    return world


def wait_until(check: Any, timeout_s: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


class Subscriber:
    """A paho client in the test, as a control-room integration would subscribe."""

    def __init__(self, port: int, topic: str = "vigila/alarms/#", *,
                 client_id: str = "", clean_session: bool = True) -> None:
        self.messages: queue.Queue[tuple[str, bytes, float]] = queue.Queue()
        self.subscribed = threading.Event()
        self.topic = topic
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  clean_session=clean_session)
        self.client.on_connect = lambda c, *_: c.subscribe(self.topic, qos=1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = lambda _c, _u, m: self.messages.put(
            (m.topic, m.payload, time.perf_counter()))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.subscribed.wait(5), "the test subscriber did not subscribe"

    def next(self, timeout_s: float = MQTT_TIMEOUT_S) -> tuple[str, bytes, float]:
        return self.messages.get(timeout=timeout_s)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# --- MQTT ----------------------------------------------------------------------------------

def test_alarm_reaches_an_mqtt_subscriber_within_a_second(alarm_world: World,
                                                          broker: Mosquitto) -> None:
    world = alarm_world
    bus = EventBus()
    dispatcher = AlarmDispatcher(replace(world.settings, mqtt_url=broker.url), world.db, bus)
    dispatcher.start()
    sub = Subscriber(broker.port)
    try:
        assert dispatcher.mqtt is not None
        wait_until(lambda: dispatcher.mqtt is not None and dispatcher.mqtt.connected,
                   what="the dispatcher's MQTT connection")
        payload = insert_alarm(world.db, "LPR-B1")
        sent = time.perf_counter()
        bus.publish(Event(ALARM_TOPIC, payload))
        topic, body, got = sub.next()
        latency = got - sent
        print(f"\nMQTT latency on {world.db.dialect}: {latency * 1000:.1f} ms")
        assert latency < 1.0
        assert topic == "vigila/alarms/zona-b/LPR-B1"
        assert json.loads(body) == payload

        # A change goes to .../changed, with the alarm as it now is.
        with world.db.write() as conn:
            acked = workflow.acknowledge(conn, CONSOLE, payload["id"])
        workflow.announce(bus, acked)
        topic, body, _ = sub.next()
        assert topic == "vigila/alarms/zona-b/LPR-B1/changed"
        changed = json.loads(body)
        assert changed["id"] == payload["id"] and changed["state"] == "acknowledged"
        assert "device_name" not in changed  # an Alarm, not an AlarmEvent

        other = raise_alarm(world.db, bus, "LPR-A1", plate="ZZ999ZZ")
        topic, body, _ = sub.next()
        assert topic == "vigila/alarms/zona-a/LPR-A1" and json.loads(body) == other
        wait_until(lambda: dispatcher.status().mqtt.published == 3, what="three PUBACKs")
        status = dispatcher.status().mqtt
        assert status.connected and status.queued == 0 and status.dropped == 0
    finally:
        sub.close()
        dispatcher.stop()


def test_broker_down_at_first_then_started_still_delivers(alarm_world: World,
                                                          tmp_path: Path) -> None:
    """Buffered, not lost: the alarm waits in the publisher's queue for the broker."""
    world = alarm_world
    port, persist = free_port(), tmp_path / "mosquitto"
    # The control room's subscriber has a persistent session, so the broker keeps what
    # arrives while it is away; it subscribes once, to a broker then stopped.
    with Mosquitto(port, persist):
        first = Subscriber(port, client_id="control-room", clean_session=False)
        first.close()
    bus = EventBus()
    dispatcher = AlarmDispatcher(replace(world.settings, mqtt_url=f"mqtt://127.0.0.1:{port}"),
                                 world.db, bus)
    assert dispatcher.mqtt is not None
    dispatcher.mqtt.client.reconnect_delay_set(1, 1)
    dispatcher.start()
    try:
        payload = raise_alarm(world.db, bus, "LPR-B1")
        wait_until(lambda: dispatcher.status().mqtt.queued == 1, what="the alarm queued")
        status = dispatcher.status().mqtt
        assert not status.connected and status.published == 0 and status.dropped == 0
        with Mosquitto(port, persist):
            started = time.perf_counter()
            sub = Subscriber(port, client_id="control-room", clean_session=False)
            try:
                topic, body, got = sub.next(10)
                print(f"\nbuffered alarm delivered {got - started:.2f} s after the broker "
                      f"started ({world.db.dialect})")
                assert topic == "vigila/alarms/zona-b/LPR-B1"
                assert json.loads(body) == payload
                wait_until(lambda: dispatcher.status().mqtt.published == 1, what="PUBACK")
                assert dispatcher.status().mqtt.queued == 0
            finally:
                sub.close()
    finally:
        dispatcher.stop()


def test_a_full_mqtt_buffer_counts_and_shows_what_it_drops() -> None:
    port = free_port()  # nothing listens there
    publisher = MqttPublisher(f"mqtt://127.0.0.1:{port}", max_queued=2).start()
    try:
        data = {"id": 1, "zone_id": None, "device_id": "LPR-X"}
        assert publisher.publish("alarm", data)
        assert publisher.publish("alarm", {**data, "id": 2})
        assert not publisher.publish("alarm", {**data, "id": 3})
        status = publisher.status()
        assert (status.queued, status.dropped, status.connected) == (2, 1, False)
        assert status.last_error and "queue" in status.last_error.lower()
    finally:
        publisher.stop(flush_s=0)


def test_topics() -> None:
    assert topic_for("alarm", {"zone_id": "centro", "device_id": "LPR-1"}) == \
        "vigila/alarms/centro/LPR-1"
    assert topic_for("alarm", {"zone_id": None, "device_id": "LPR-1"}) == \
        "vigila/alarms/no-zone/LPR-1"
    assert topic_for("alarm-changed", {"zone_id": "a", "device_id": "d"}) == \
        "vigila/alarms/a/d/changed"
    assert topic_for("alarm", {"zone_id": "a/#", "device_id": "+"}) == "vigila/alarms/a__/_"


# --- server-sent events --------------------------------------------------------------------

@pytest.fixture
def live(alarm_world: World) -> Iterator[str]:
    """The world's own app (its dispatcher already started) served by uvicorn on loopback."""
    app = alarm_world.client.app
    app.state.vigila.alarms.hub.heartbeat_s = 0.3  # type: ignore[attr-defined]
    with serving(app, timeout_graceful_shutdown=2) as url:
        yield url


def stream(world: World, url: str, who: str, purpose: bool = True,
           **headers: str) -> SseClient:
    h = world.headers(who, **(PURPOSE if purpose else {})) | headers
    return SseClient(f"{url}/api/alarms/stream", h).start()


def test_sse_reaches_the_zones_granted_and_no_other(alarm_world: World, live: str) -> None:
    world = alarm_world
    everyone = stream(world, live, "operator")
    zone_a = stream(world, live, "operator_a")
    try:
        assert everyone.status == 200 and zone_a.status == 200
        sent = time.perf_counter()
        b = raise_alarm(world.db, bus_of(world), "LPR-B1")
        event = everyone.next()
        print(f"\nSSE latency on {world.db.dialect}: {(event.at - sent) * 1000:.1f} ms")
        assert event.at - sent < 1.0
        assert (event.name, event.id, json.loads(event.data)) == ("alarm", str(b["id"]), b)
        a = raise_alarm(world.db, bus_of(world), "LPR-A1", plate="CD456EF")
        assert json.loads(everyone.next().data) == a
        assert json.loads(zone_a.next().data) == a  # and not b, which came first

        # The workflow's changes follow, filtered alike.
        r = world.client.post(f"/api/alarms/{b['id']}/acknowledge",
                              headers=world.headers("operator"))
        assert r.status_code == 200, r.text
        changed = everyone.next()
        assert changed.name == "alarm-changed" and changed.id is None
        assert json.loads(changed.data)["state"] == "acknowledged"
        assert zone_a.none_within(0.5)
    finally:
        everyone.close()
        zone_a.close()
    opened = _audit(world, "alarm.stream")
    assert [(e["actor"], e["purpose"]) for e in opened] == [
        ("operator", PURPOSE["text"]), ("operator_a", PURPOSE["text"])]


def test_sse_resumes_from_last_event_id(alarm_world: World, live: str) -> None:
    world = alarm_world
    first = raise_alarm(world.db, bus_of(world), "LPR-A1")
    missed_b = raise_alarm(world.db, bus_of(world), "LPR-B1", plate="EF789GH")
    missed_a = raise_alarm(world.db, bus_of(world), "LPR-A1", plate="GH012IJ")
    zone_a = stream(world, live, "operator_a", **{"Last-Event-ID": str(first["id"])})
    try:
        event = zone_a.next()
        assert (event.id, json.loads(event.data)) == (str(missed_a["id"]), missed_a)
        live_one = raise_alarm(world.db, bus_of(world), "LPR-A1", plate="IJ345KL")
        assert json.loads(zone_a.next().data) == live_one  # once, though replay could race
        assert zone_a.none_within(0.3)
    finally:
        zone_a.close()
    assert missed_b["zone_id"] == "zona-b"


def test_sse_refusals_and_the_session_ending(alarm_world: World, live: str) -> None:
    world = alarm_world
    for who, purpose, status in (("operator", False, 428), ("admin", True, 403),
                                 ("dpo", True, 403), ("judge", True, 403)):
        client = stream(world, live, who, purpose)
        assert client.status == status, who
        client.close()
    r = world.client.get("/api/alarms/stream", headers={"Vigila-Purpose": "x" * 10})
    assert r.status_code == 401
    bad = stream(world, live, "operator", **{"Last-Event-ID": "nope"})
    assert bad.status == 422
    bad.close()
    # A logout ends an open stream at the next keep-alive.
    token = world.login("operator")
    client = SseClient(f"{live}/api/alarms/stream", {"Authorization": f"Bearer {token}",
                       "Vigila-Purpose": PURPOSE["text"],
                       "Vigila-Reference": PURPOSE["reference"]}).start()
    try:
        assert world.client.post("/api/auth/logout",
                                 headers={"Authorization": f"Bearer {token}"}).status_code < 300
        wait_until(lambda: client.ended, 5, "the stream to end")
    finally:
        client.close()


def test_a_slow_console_is_cut_off_and_the_others_are_not() -> None:
    async def scenario() -> tuple[list[bytes], int]:
        hub = AlarmHub(queue_size=3, heartbeat_s=60)
        slow = hub.stream(CONSOLE)
        fast = hub.stream(CONSOLE)
        await slow.__anext__()  # subscribed; then reads nothing more
        await fast.__anext__()
        got = []
        for n in range(1, 6):  # the fast one keeps up, the slow one falls behind
            hub.publish("alarm", {"id": n, "zone_id": "zona-a"})
            got.append(await fast.__anext__())
        with pytest.raises(StopAsyncIteration):
            await slow.__anext__()
        subscribers = hub.status().subscribers
        await fast.aclose()
        return got, subscribers + hub.status().cut * 10

    got, counts = asyncio.run(scenario())
    assert [g.split(b"\n")[1] for g in got] == [f"id: {n}".encode() for n in range(1, 6)]
    assert counts == 1 + 10  # the fast one still subscribed, the slow one cut once


# --- webhooks ------------------------------------------------------------------------------

class Receiver:
    """A webhook receiver on loopback that answers `fail` errors first, then 204."""

    def __init__(self, fail: int = 0) -> None:
        self.requests: queue.Queue[tuple[dict[str, str], bytes, int, float]] = queue.Queue()
        self.fail = fail
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = 500 if outer.fail > 0 else 204
                outer.fail -= 1
                outer.requests.put((dict(self.headers), body, status, time.perf_counter()))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def next(self, timeout_s: float = 5.0) -> tuple[dict[str, str], bytes, int, float]:
        return self.requests.get(timeout=timeout_s)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_webhooks_signed_filtered_and_retried(alarm_world: World) -> None:
    world = alarm_world
    sender = world.client.app.state.vigila.alarms.webhooks  # type: ignore[attr-defined]
    sender.retry_delays = (0.05, 0.1, 0.2)
    signed, flaky, zone_a_only, picky = Receiver(), Receiver(fail=2), Receiver(), Receiver()
    secret = "una-chiave-segreta-lunga"
    admin = world.headers("admin")
    try:
        for hook in ({"url": signed.url, "secret": secret}, {"url": flaky.url},
                     {"url": zone_a_only.url, "zone_id": "zona-a"},
                     {"url": picky.url, "min_priority": 90}):
            r = world.client.post("/api/webhooks", json=hook, headers=admin)
            assert r.status_code == 201, r.text
        sent = time.perf_counter()
        payload = raise_alarm(world.db, bus_of(world), "LPR-B1", priority=80)

        headers, body, status, got = signed.next()
        print(f"\nwebhook latency on {world.db.dialect}: {(got - sent) * 1000:.1f} ms")
        assert got - sent < 1.0 and status == 204
        assert json.loads(body) == payload
        assert headers["Vigila-Event"] == "alarm"
        assert headers["Content-Type"] == "application/json"
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert headers["Vigila-Signature"] == expected == signature(secret, body)

        attempts = [flaky.next() for _ in range(3)]
        assert [a[2] for a in attempts] == [500, 500, 204]
        assert len({a[0]["Vigila-Delivery"] for a in attempts}) == 1  # one delivery, retried
        assert all(a[1] == attempts[0][1] for a in attempts)
        assert "Vigila-Signature" not in attempts[0][0]
        assert flaky.requests.empty()

        wait_until(lambda: sender.status().delivered == 2, what="two deliveries")
        time.sleep(0.3)  # nothing more comes: not to the other zone, not below the minimum
        assert zone_a_only.requests.empty() and picky.requests.empty()
        assert flaky.requests.empty()
        s = sender.status()
        assert (s.delivered, s.retried, s.failed, s.queued) == (2, 2, 0, 0)
        entries = _audit(world, "alarm.webhook.deliver")
        assert sorted(e["recipient"] for e in entries) == sorted([signed.url, flaky.url])
        assert {e["resource"] for e in entries} == {f"alarm/{payload['id']}"}
        assert {e["actor"] for e in entries} == {"system"}

        # Changes go too, under their own event name.
        r = world.client.post(f"/api/alarms/{payload['id']}/acknowledge",
                              headers=world.headers("supervisor"))
        assert r.status_code == 200
        headers, body, _, _ = signed.next()
        assert headers["Vigila-Event"] == "alarm-changed"
        assert json.loads(body)["acknowledged_by"] == world.user_ids["supervisor"]
    finally:
        for receiver in (signed, flaky, zone_a_only, picky):
            receiver.close()


def test_a_receiver_that_never_answers_well_is_given_up_and_audited(alarm_world: World) -> None:
    world = alarm_world
    sender = world.client.app.state.vigila.alarms.webhooks  # type: ignore[attr-defined]
    sender.retry_delays = (0.05, 0.05)
    broken, fine = Receiver(fail=100), Receiver()
    try:
        for url in (broken.url, fine.url):
            r = world.client.post("/api/webhooks", json={"url": url},
                                  headers=world.headers("admin"))
            assert r.status_code == 201
        raise_alarm(world.db, bus_of(world), "LPR-A1")
        assert fine.next()[2] == 204  # not held up by the broken one
        wait_until(lambda: sender.status().failed == 1, what="the delivery given up")
        assert [broken.next()[2] for _ in range(3)] == [500, 500, 500]
        failed = [e for e in _audit(world, "alarm.webhook.deliver") if e["outcome"] == "failed"]
        assert len(failed) == 1 and failed[0]["recipient"] == broken.url
        assert failed[0]["detail"]["attempts"] == 3
    finally:
        broken.close()
        fine.close()


def _audit(world: World, action: str) -> list[dict[str, Any]]:
    with world.db.read() as conn:
        rows = conn.execute(sa.select(audit_log).where(audit_log.c.action == action)
                            .order_by(audit_log.c.seq)).mappings()
        return [dict(r) for r in rows]


def test_outcomes_are_the_three_named() -> None:
    assert {o.value for o in AlarmOutcome} == {"stopped", "not_found", "misread"}
