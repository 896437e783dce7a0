"""The vendor endpoints end to end: a Hikvision ISAPI push and a Tattile message become
transits with their pictures, once, for the registry device named in the URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from conftest import World
from vigila.reads.tables import transits

SAMPLES = Path(__file__).resolve().parent.parent / "reads_adapters" / "samples"
PROBLEM = "application/problem+json"


def push(world: World, vendor: str, body: bytes, ctype: str, device: str = "LPR-B1",
         who: str = "reader") -> Any:
    return world.client.post(f"/api/reads/{vendor}/{device}", content=body,
                             headers={**world.headers(who), "Content-Type": ctype})


def stored(world: World) -> list[Any]:
    with world.db.read() as conn:
        return list(conn.execute(sa.select(transits)).mappings())


def test_hikvision_multipart_push(world: World) -> None:
    body = (SAMPLES / "hikvision_anpr_multipart.bin").read_bytes()
    ctype = "multipart/form-data; boundary=boundary"
    r = push(world, "hikvision", body, ctype)
    assert r.status_code == 200, r.text
    assert r.json()["stored"] == 1 and r.json()["results"][0]["flags"] == ["late"]
    [t] = stored(world)
    assert (t["device_id"], t["plate"], t["vendor"]) == ("LPR-B1", "GF123XZ", "hikvision")
    assert t["event_id"] == "7d3c0f7e-5b21-4c8e-9a43-2f61d0b8a915"
    assert t["time"].isoformat() == "2026-11-24T07:15:02+00:00"
    root = world.settings.read_images_root
    assert (root / t["plate_image"]).read_bytes() == (SAMPLES / "hik_plate.jpg").read_bytes()
    assert (root / t["context_image"]).read_bytes()[:3] == b"\xff\xd8\xff"
    assert t["extra"]["vendor_device"]  # the camera's own identity, kept for the record
    again = push(world, "hikvision", body, ctype)
    assert again.json()["duplicates"] == 1 and len(stored(world)) == 1


def test_a_picture_over_the_limit_costs_the_picture_not_the_read(world: World) -> None:
    body = (SAMPLES / "hikvision_anpr_multipart.bin").read_bytes()
    scene = (SAMPLES / "hik_scene.jpg").read_bytes()
    assert body.count(scene) == 1
    huge = scene + bytes(world.settings.reads_max_image_bytes)
    r = push(world, "hikvision", body.replace(scene, huge),
             "multipart/form-data; boundary=boundary")
    assert r.status_code == 200 and r.json()["stored"] == 1, r.text
    assert "context_image_refused" in r.json()["results"][0]["flags"]
    [t] = stored(world)
    assert t["plate"] == "GF123XZ" and t["plate_image"] and t["context_image"] is None


def test_hikvision_heartbeat_and_faults(world: World) -> None:
    beat = (SAMPLES / "hikvision_heartbeat.xml").read_bytes()
    r = push(world, "hikvision", beat, "application/xml")
    assert r.status_code == 200 and r.json()["stored"] == 0, r.text
    xml = (SAMPLES / "hikvision_anpr.xml").read_bytes()
    for body, ctype, status in (
            (b"<EventNotificationAlert><oops", "application/xml", 422),
            (xml, "text/plain", 415),
            (b"", "application/xml", 422),
            (b"--x\r\n\r\n--x--", "multipart/form-data", 422)):
        r = push(world, "hikvision", body, ctype)
        assert r.status_code == status and r.headers["content-type"].startswith(PROBLEM), r.text
    r = push(world, "hikvision", xml, "application/xml", device="NESSUNO")
    assert r.status_code == 422 and r.json()["field"] == "device", r.text
    r = push(world, "hikvision", xml, "application/xml", who="operator")
    assert r.status_code == 403
    assert stored(world) == []


def test_tattile_message(world: World) -> None:
    body = (SAMPLES / "tattile_transit.xml").read_bytes()
    r = push(world, "tattile", body, "application/xml")
    assert r.status_code == 200 and r.json()["stored"] == 1, r.text
    [t] = stored(world)
    assert (t["plate"], t["vendor"], t["device_id"]) == ("EZ482KL", "tattile", "LPR-B1")
    assert t["time"].isoformat() == "2026-07-14T16:42:07.350000+00:00"  # 18:42 in Rome, CEST
    assert t["plate_image"] is not None and t["context_image"] is not None
    assert push(world, "tattile", body, "application/xml").json()["duplicates"] == 1
    broken = body.replace(b"<DATE>2026-07-14</DATE>", b"<DATE>14/07/2026</DATE>")
    r = push(world, "tattile", broken, "application/xml")
    assert r.status_code == 422 and r.json()["field"] == "DATE", r.text


def test_a_bad_transit_among_several_costs_only_itself(world: World) -> None:
    one = (SAMPLES / "tattile_transit.xml").read_bytes().split(b"?>", 1)[1].strip()
    other = one.replace(b"<TRANSIT_ID>48213</TRANSIT_ID>", b"<TRANSIT_ID>48214</TRANSIT_ID>")
    bad = other.replace(b"<DATE>2026-07-14</DATE>", b"<DATE>14/07/2026</DATE>")
    r = push(world, "tattile", b"<TRANSITS>" + one + bad + b"</TRANSITS>", "application/xml")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["stored"], body["rejected"]) == (1, 1)
    [fault] = [x for x in body["results"] if x["status"] == "rejected"]
    assert fault["index"] == 1 and fault["errors"][0]["field"] == "TRANSIT[1].DATE"
    assert [t["plate"] for t in stored(world)] == ["EZ482KL"]
