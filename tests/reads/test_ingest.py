"""Plate reads in over HTTP: single, batch, multipart; idempotent; hits raise alarms.

Every test runs on SQLite and PostgreSQL (the `world` fixture). The world's reader is
LPR-B1 in zona-b; a second one, LPR-A1 in zona-a, is added where a test needs two.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from PIL import Image

from conftest import World, device
from vigila.api.app import create_app
from vigila.core import EventBus
from vigila.core.events import Event
from vigila.reads import ALARM_TOPIC, Ingest, RawRead, forwarding
from vigila.reads.tables import alarms, forward_queue, transit_counts, transits

PROBLEM = "application/problem+json"
LIST = {"id": "furti", "name": "Veicoli rubati", "kind": "stolen", "agency_id": "pl-test",
        "priority": 80, "policy": "one_substitution"}


def jpeg(size: tuple[int, int] = (120, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 200, 30)).save(out, "JPEG")
    return out.getvalue()


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def read(plate: str = "AB123CD", **extra: Any) -> dict[str, Any]:
    return {"plate": plate, "device": "LPR-B1", "time": now().isoformat(), **extra}


def post(world: World, body: Any, who: str = "reader") -> httpx.Response:
    return world.client.post("/api/reads", json=body, headers=world.headers(who))


def stolen(world: World, *plates: str) -> None:
    r = world.client.post("/api/hotlists", json=LIST, headers=world.headers("supervisor"))
    assert r.status_code == 201, r.text
    for plate in plates:
        r = world.client.post("/api/hotlists/furti/entries", headers=world.headers("supervisor"),
                              json={"plate": plate, "reason": "furto denunciato"})
        assert r.status_code == 201, r.text


def rows(world: World, table: sa.Table) -> list[Any]:
    with world.db.read() as conn:
        return list(conn.execute(sa.select(table)).mappings())


def test_a_single_read_is_stored_as_a_transit(world: World) -> None:
    r = post(world, read("ab-123 cd", confidence=0.93, direction="inbound", lane=1,
                         event_id="evt-1", country="it"))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "stored" and body["alarms"] == [] and body["flags"] == []
    [t] = rows(world, transits)
    assert (t["plate"], t["plate_raw"], t["format_id"], t["country"]) == (
        "AB123CD", "ab-123 cd", "it_car", "IT")
    assert (t["direction"], t["lane"], t["confidence"], t["hit"]) == ("inbound", 1, 0.93, False)
    assert str(t["id"]) == body["transit_id"] and t["event_id"] == "evt-1"
    [c] = rows(world, transit_counts)
    assert (c["device_id"], c["direction"], c["count"]) == ("LPR-B1", "inbound", 1)
    assert c["hour"] == t["time"].replace(minute=0, second=0)


def test_a_retried_read_is_stored_once(world: World) -> None:
    first = post(world, read(event_id="evt-7"))
    again = post(world, read(event_id="evt-7"))
    assert first.status_code == 201 and again.status_code == 200, again.text
    assert again.json()["status"] == "duplicate"
    assert again.json()["transit_id"] == first.json()["transit_id"]
    # Without an event id, the same device, time and plate derive the same one.
    body = read("EF456GH")
    assert post(world, body).status_code == 201
    assert post(world, body).json()["status"] == "duplicate"
    batch = post(world, {"reads": [read("XY999ZZ", event_id="b1"),
                                   read("XY999ZZ", event_id="b1")]}).json()
    assert [x["status"] for x in batch["results"]] == ["stored", "duplicate"]
    assert len(rows(world, transits)) == 3
    assert sum(c["count"] for c in rows(world, transit_counts)) == 3


def test_a_batch_keeps_the_good_reads_and_names_the_bad(world: World) -> None:
    future = (now() + timedelta(hours=2)).isoformat()
    batch = [
        read("AB123CD"),
        read(""),  # empty plate
        read("!!!!"),  # no plate characters at all
        read("ZZZZZZZZZZZZZZZZZZZZ"),  # absurd
        read("CD456EF", time=future),
        read("CD456EF", time="1970-01-01T00:00:00+00:00"),
        read("CD456EF", device="NESSUNO"),
        read("CD456EF", device="CAM-A1"),  # a camera, not a plate reader
        read("CD456EF", time="2026-11-24T10:00:00"),  # no time zone
        read("GH789JK", images=[{"kind": "plate", "data": "***"}]),
        {"plate": "AB123CD"},  # no device, no time
        read("EF321GH", colour="red"),  # unknown field
        read("LM555NP", confidence=1.5),
        read("ZH12345", country="ch"),  # a Swiss plate: stored
    ]
    r = post(world, {"reads": batch})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    status = [x["status"] for x in results]
    assert status == ["stored"] + ["rejected"] * 12 + ["stored"], status
    fields = [{e["field"] for e in x["errors"]} for x in results]
    assert fields == [set(), *({f"reads[{i}].plate"} for i in (1, 2, 3)),
                      {"reads[4].time"}, {"reads[5].time"}, {"reads[6].device"},
                      {"reads[7].device"}, {"reads[8].time"}, {"reads[9].images[0].data"},
                      {"reads[10].device", "reads[10].time"}, {"reads[11].colour"},
                      {"reads[12].confidence"}, set()]
    messages = " ".join(e["message"] for x in results for e in x["errors"])
    assert "future" in messages and "before 2000" in messages and "NESSUNO" in messages
    stored = {t["plate"]: t for t in rows(world, transits)}
    assert set(stored) == {"AB123CD", "ZH12345"}
    assert stored["ZH12345"]["country"] == "CH"


def test_reads_off_the_calendar_and_odd_countries(world: World) -> None:
    r = post(world, {"reads": [read(time="9999-12-31T23:00:00-05:00"),
                               read(time="0001-01-01T00:00:00+05:00"),
                               read("AB123CD")]})
    assert r.status_code == 200, r.text
    assert [x["status"] for x in r.json()["results"]] == ["rejected", "rejected", "stored"]
    assert "outside the years 1 to 9999" in r.json()["results"][0]["errors"][0]["message"]


def test_an_overlapping_retry_in_another_order_is_stored_once(world: World) -> None:
    a = post(world, {"reads": [read("AB123CD", event_id="o-1"), read("CD456EF", event_id="o-2")]})
    b = post(world, {"reads": [read("CD456EF", event_id="o-2"), read("AB123CD", event_id="o-1")]})
    assert a.json()["stored"] == 2 and b.json()["duplicates"] == 2
    assert {x["transit_id"] for x in a.json()["results"]} == {
        x["transit_id"] for x in b.json()["results"]}


@pytest.mark.parametrize("body, status", [
    (b"{not json", 422), (b"[]", 422), (b'{"reads": []}', 422),
    (b'{"plate": "AB123CD", "lane": ' + b"1" * 5000 + b"}", 422), (b"[" * 100_000, 422),
    (b'{"reads": [], "x": 1}', 422), (b'"AB123CD"', 422)])
def test_bodies_that_are_not_reads(world: World, body: bytes, status: int) -> None:
    r = world.client.post("/api/reads", content=body, headers={
        **world.headers("reader"), "Content-Type": "application/json"})
    assert r.status_code == status and r.headers["content-type"].startswith(PROBLEM), r.text
    assert rows(world, transits) == []


def test_a_single_bad_read_is_a_problem(world: World) -> None:
    r = post(world, read("CD456EF", device="NESSUNO"))
    assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["field"] == "device" and "NESSUNO" in r.json()["detail"]
    r = world.client.post("/api/reads", content=b"plate=AB", headers={
        **world.headers("reader"), "Content-Type": "text/plain"})
    assert r.status_code == 415


def test_only_readers_post_reads(world: World) -> None:
    for who in ("operator", "investigator", "admin", "dpo"):
        assert post(world, read(), who).status_code == 403
    assert world.client.post("/api/reads", json=read()).status_code == 401
    assert rows(world, transits) == []


def test_images_are_stored_on_disk_with_their_hash(world: World) -> None:
    crop, scene = jpeg(), jpeg((640, 360))
    r = post(world, read(images=[
        {"kind": "plate", "data": base64.b64encode(crop).decode()},
        {"kind": "context", "data": base64.b64encode(scene).decode()}]))
    assert r.status_code == 201, r.text
    [t] = rows(world, transits)
    root = world.settings.read_images_root
    assert (root / t["plate_image"]).read_bytes() == crop
    assert (root / t["context_image"]).read_bytes() == scene
    assert t["plate_image_sha256"] == hashlib.sha256(crop).hexdigest()
    assert t["context_image"].endswith("-context.jpg") and str(t["id"]) in t["context_image"]


def test_a_broken_picture_costs_the_picture_not_the_read(world: World) -> None:
    big = b"\xff\xd8\xff" + bytes(world.settings.reads_max_image_bytes)
    r = post(world, read(images=[
        {"kind": "plate", "data": base64.b64encode(b"GIF89a not a jpeg").decode()},
        {"kind": "context", "data": base64.b64encode(big).decode()}]))
    assert r.status_code == 201, r.text
    assert r.json()["flags"] == ["plate_image_refused", "context_image_refused"]
    [t] = rows(world, transits)
    assert t["plate_image"] is None and t["flags"] == "plate_image_refused,context_image_refused"
    assert not world.settings.read_images_root.exists() or not any(
        world.settings.read_images_root.rglob("*.*"))


def test_a_100_mb_picture_is_refused_whole_with_a_clear_error(world: World) -> None:
    # Past the server's body limit (20 MiB by default) nothing is parsed: one clear 413.
    huge = b"\xff\xd8\xff" + bytes(100 * 1024 * 1024)
    r = world.client.post("/api/reads", headers=world.headers("reader"),
                          data={"read": json.dumps(read(event_id="mp-huge"))},
                          files={"plate_image": ("crop.jpg", huge, "image/jpeg")})
    assert r.status_code == 413, r.text
    assert r.json()["field"] == "body" and "exceeds" in r.json()["detail"]
    assert rows(world, transits) == []


def test_multipart_read_with_its_pictures(world: World) -> None:
    crop = jpeg()
    r = world.client.post("/api/reads", headers=world.headers("reader"),
                          data={"read": json.dumps(read(event_id="mp-1"))},
                          files={"plate_image": ("crop.jpg", crop, "image/jpeg")})
    assert r.status_code == 201, r.text
    [t] = rows(world, transits)
    assert (world.settings.read_images_root / t["plate_image"]).read_bytes() == crop
    r = world.client.post("/api/reads", headers=world.headers("reader"),
                          data={"nothing": "here"}, files={"x": ("a", b"b", "text/plain")})
    assert r.status_code == 422 and r.json()["field"] == "read"


def test_a_hit_raises_an_alarm_published_after_commit(world: World) -> None:
    stolen(world, "AB123CD", "EF456GH")
    seen: list[Event] = []
    bus = world.client.app.state.vigila.bus  # type: ignore[attr-defined]

    def on_alarm(event: Event) -> None:
        with world.db.read() as conn:  # committed before the event: visible to others
            found = conn.execute(sa.select(alarms.c.id)
                                 .where(alarms.c.id == event.data["id"])).first()
        assert found is not None
        seen.append(event)

    bus.subscribe(ALARM_TOPIC, on_alarm)
    r = post(world, {"reads": [read("AB123CD", direction="outbound"),
                               read("EF4S6GH"),  # one look-alike away (5/S)
                               read("LM000NP")]})
    assert r.status_code == 200, r.text
    assert r.json()["alarms"] == 2
    results = r.json()["results"]
    assert len(results[0]["alarms"]) == 1 and len(results[1]["alarms"]) == 1
    assert results[2]["alarms"] == []
    by_read = {e.data["read"]: e.data for e in seen}
    assert set(by_read) == {"AB123CD", "EF4S6GH"}
    exact, fuzzy = by_read["AB123CD"], by_read["EF4S6GH"]
    assert (exact["match"], exact["plate"], exact["zone_id"], exact["state"]) == (
        "exact", "AB123CD", "zona-b", "new")
    assert (fuzzy["match"], fuzzy["plate"], fuzzy["priority"]) == ("lookalike", "EF456GH", 80)
    assert exact["device_name"] == "Dispositivo LPR-B1" and exact["direction"] == "outbound"
    assert exact["hotlist_name"] == "Veicoli rubati" and exact["reason"] == "furto denunciato"
    hits = {t["plate"]: t["hit"] for t in rows(world, transits)}
    assert hits == {"AB123CD": True, "EF4S6GH": True, "LM000NP": False}
    assert len(rows(world, alarms)) == 2


def test_each_read_is_answered_with_its_own_alarms(world: World) -> None:
    """The batch's alarms are inserted in one statement: each read still gets the ids of
    its own alarms, one per list that holds its plate."""
    stolen(world, "AB123CD", "EF456GH")
    local = {**LIST, "id": "locale", "name": "Segnalati", "kind": "local", "priority": 40}
    r = world.client.post("/api/hotlists", json=local, headers=world.headers("supervisor"))
    assert r.status_code == 201, r.text
    r = world.client.post("/api/hotlists/locale/entries", headers=world.headers("supervisor"),
                          json={"plate": "EF456GH", "reason": "segnalato"})
    assert r.status_code == 201, r.text
    plates = ["EF456GH", "LM000NP", "AB123CD", "EF456GH"]
    r = post(world, {"reads": [read(p, event_id=f"e{i}") for i, p in enumerate(plates)]})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [len(x["alarms"]) for x in results] == [2, 0, 1, 2]
    stored = {a["id"]: a for a in rows(world, alarms)}
    assert len(stored) == 5
    for plate, result in zip(plates, results, strict=True):
        for alarm_id in result["alarms"]:
            assert str(stored[alarm_id]["transit_id"]) == result["transit_id"]
            assert stored[alarm_id]["read"] == plate
    assert {stored[i]["hotlist_id"] for i in results[0]["alarms"]} == {"furti", "locale"}


def test_a_retired_reader_is_refused(world: World) -> None:
    r = world.client.post("/api/devices", headers=world.headers("admin"),
                          json=device("LPR-A1", "zona-a", "plate_reader"))
    assert r.status_code == 201, r.text
    assert post(world, read(device="LPR-A1")).status_code == 201
    r = world.client.post("/api/devices/LPR-A1/retire", json={"reason": "dismesso"},
                          headers=world.headers("admin"))
    assert r.status_code == 200
    ingest = world.client.app.state.vigila.ingest  # type: ignore[attr-defined]
    ingest.device_cache_seconds = 0  # the cache lives 5 s; do not wait for it
    r = post(world, read("CD456EF", device="LPR-A1"))
    assert r.status_code == 422 and r.json()["field"] == "device"


def test_transits_are_queued_upstream_once_when_forwarding_is_on(world: World) -> None:
    settings = dataclasses.replace(world.settings, forward_url="http://127.0.0.1:9/scntt")
    ingest = Ingest(world.db, settings, EventBus(), enqueue=forwarding.enqueue)
    batch = [RawRead("AB123CD", "LPR-B1", now(), event_id="f-1"),
             RawRead("CD456EF", "LPR-B1", now(), event_id="f-2")]
    assert ingest.ingest(batch).stored == 2
    assert ingest.ingest(batch).duplicates == 2
    queued = rows(world, forward_queue)
    assert sorted(q["payload"]["plate"] for q in queued) == ["AB123CD", "CD456EF"]
    assert {q["state"] for q in queued} == {"pending"}
    # Off by default: the world's own ingest queues nothing.
    assert post(world, read("EF456GH")).status_code == 201
    assert len(rows(world, forward_queue)) == 2


def test_a_blank_vendor_country_is_no_country(world: World) -> None:
    ingest = Ingest(world.db, world.settings, EventBus())
    report = ingest.ingest([RawRead("AB123CD", "LPR-B1", now(), country=" ")])
    assert report.stored == 1 and report.results[0].flags == []
    [t] = rows(world, transits)
    assert t["country"] == "IT"


def test_multipart_with_json_too_deep_is_refused(world: World) -> None:
    r = world.client.post("/api/reads", headers=world.headers("reader"),
                          data={"read": "[" * 100_000},
                          files={"plate_image": ("crop.jpg", jpeg(), "image/jpeg")})
    assert r.status_code == 422 and r.json()["field"] == "read", r.text


def test_the_one_pass_parse_reads_what_the_long_way_reads() -> None:
    """A valid body is parsed by pydantic-core in one pass; one bad read sends the whole body
    the long way (json.loads, then a validation per read). Both give the same reads."""
    from vigila.api.routes_reads import _json_reads

    at = now().isoformat()
    good = [{"plate": "ab 123 cd", "device": "LPR-B1", "time": at, "event_id": "e1",
             "confidence": 0.9, "direction": "inbound", "lane": 2, "country": "it",
             "images": [{"kind": "plate", "data": base64.b64encode(jpeg()).decode()}]},
            {"plate": "ZZ999ZZ", "device": "LPR-B1", "time": at}]
    fast, single = _json_reads(json.dumps({"reads": good}).encode())
    assert not single and all(isinstance(r, RawRead) for r in fast)
    slow, _ = _json_reads(json.dumps({"reads": [*good, {"plate": 7}]}).encode())
    assert slow[:2] == fast and not isinstance(slow[2], RawRead)
    assert fast[0].country == "IT" and fast[0].images[0].data == jpeg()
    one, single = _json_reads(json.dumps(good[1]).encode())
    assert single and one == fast[1:]


def test_a_restarted_server_has_its_hotlists_loaded_before_the_first_read(
        world: World) -> None:
    """A million entries take seconds to load: the server loads them at start, so the
    first alarm after a restart is not that much later than the others."""
    stolen(world, "AB123CD", "EF456GH")
    app = create_app(world.settings, world.db, migrate=False)
    matcher = app.state.vigila.ingest.matcher
    assert matcher.entries == 0  # nothing loaded before the start
    with TestClient(app):
        assert matcher.entries == 2  # loaded by the start, no read posted yet
        assert set(matcher.revisions) == {"furti"}
