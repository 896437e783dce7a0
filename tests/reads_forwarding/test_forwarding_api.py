"""The forwarding queue, transit counts and reads' retention over HTTP: roles, purpose,
zones, audit."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from conftest import PURPOSE, World
from vigila.access.tables import audit_log
from vigila.reads.tables import forward_queue, transit_counts

PROBLEM = "application/problem+json"
NOW = datetime.now(UTC).replace(microsecond=0)


def dead_letter(world: World, reader: str) -> int:
    tid = uuid.uuid4()
    with world.db.write() as conn:
        return int(conn.execute(forward_queue.insert().returning(forward_queue.c.id).values(
            transit_id=tid, payload={"id": str(tid), "plate": "AB123CD", "reader": reader},
            state="dead", attempts=3, next_attempt_at=NOW - timedelta(minutes=5),
            last_error="HTTP 400: targa non valida", created_at=NOW - timedelta(hours=1)))
            .scalar_one())


def test_status_and_dead_letters_are_for_administrators_with_a_purpose(world: World) -> None:
    a, b = dead_letter(world, "CAM-A1"), dead_letter(world, "LPR-B1")
    r = world.client.get("/api/forwarding/status", headers=world.headers("admin"))
    assert r.status_code == 200, r.text
    assert r.json() | {"oldest_pending_at": None} == {
        "pending": 0, "due": 0, "sent": 0, "dead": 2, "oldest_pending_at": None,
        "oldest_pending_seconds": None, "enabled": False, "format": "json"}
    for who in ("operator", "supervisor", "dpo"):
        r = world.client.get("/api/forwarding/status", headers=world.headers(who))
        assert r.status_code == 403 and r.headers["content-type"].startswith(PROBLEM)

    path = "/api/forwarding/dead-letters"
    assert world.client.get(path, headers=world.headers("operator", **PURPOSE)).status_code \
        == 403
    r = world.client.get(path, headers=world.headers("admin"))
    assert r.status_code == 428 and r.headers["content-type"].startswith(PROBLEM)
    r = world.client.get(path, headers=world.headers("admin", **PURPOSE))
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [i["id"] for i in items] == [a, b] and items[1]["payload"]["plate"] == "AB123CD"
    assert items[0]["last_error"] == "HTTP 400: targa non valida"
    # An administrator of zona-a sees only the dead letters of zona-a's readers (art. 25).
    r = world.client.get(path, headers=world.headers("admin_a", **PURPOSE))
    assert [i["id"] for i in r.json()["items"]] == [a]
    r = world.client.get(path, params={"limit": 1}, headers=world.headers("admin", **PURPOSE))
    assert len(r.json()["items"]) == 1 and r.json()["next_cursor"]
    r = world.client.get(path, params={"cursor": r.json()["next_cursor"]},
                         headers=world.headers("admin", **PURPOSE))
    assert [i["id"] for i in r.json()["items"]] == [b]
    with world.db.read() as conn:
        reads = conn.execute(sa.select(audit_log).where(
            audit_log.c.action == "forwarding.dead_letters.read")).mappings().all()
    assert len(reads) == 4 and {e["purpose"] for e in reads} == {PURPOSE["text"]}
    assert {e["actor"] for e in reads} == {"admin", "admin_a"}


def test_requeue(world: World) -> None:
    a, b = dead_letter(world, "CAM-A1"), dead_letter(world, "LPR-B1")
    path = "/api/forwarding/dead-letters/requeue"
    r = world.client.post(path, json={"ids": [a]}, headers=world.headers("operator"))
    assert r.status_code == 403
    for body in ({"ids": []}, {"ids": [0]}, {"ids": [a], "all": True}, {}):
        r = world.client.post(path, json=body, headers=world.headers("admin"))
        assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM), body
    r = world.client.post(path, json={"ids": [b]}, headers=world.headers("admin_a"))
    assert r.status_code == 200 and r.json() == {"requeued": 0}  # another zone's reader
    r = world.client.post(path, json={"ids": [a, b, 2**40]}, headers=world.headers("admin"))
    assert r.status_code == 200 and r.json() == {"requeued": 2}
    status = world.client.get("/api/forwarding/status", headers=world.headers("admin")).json()
    assert (status["pending"], status["dead"], status["due"]) == (2, 0, 2)
    with world.db.read() as conn:
        done = conn.execute(sa.select(audit_log.c.actor, audit_log.c.detail).where(
            audit_log.c.action == "forwarding.requeue").order_by(audit_log.c.seq)).all()
    assert [(actor, detail["requeued"]) for actor, detail in done] == [
        ("admin_a", []), ("admin", [a, b])]


def test_transit_counts_are_scoped_and_hold_no_plate(world: World) -> None:
    hour = NOW.replace(minute=0, second=0)
    with world.db.write() as conn:
        for device in ("CAM-A1", "LPR-B1"):
            for n in range(3):
                conn.execute(transit_counts.insert().values(
                    device_id=device, hour=hour - timedelta(hours=n),
                    direction="inbound" if n else "", count=10 + n))
    path = "/api/transit-counts"
    r = world.client.get(path, headers=world.headers("operator"))
    assert r.status_code == 200 and len(r.json()) == 6, r.text
    assert r.json()[-1] == {"device_id": "LPR-B1", "hour": hour.isoformat().replace(
        "+00:00", "Z"), "direction": None, "count": 10}
    r = world.client.get(path, headers=world.headers("operator_a"))
    assert {c["device_id"] for c in r.json()} == {"CAM-A1"}
    r = world.client.get(path, params={"device": ["LPR-B1"]},
                         headers=world.headers("operator_a"))
    assert r.status_code == 200 and r.json() == []
    since = (hour - timedelta(hours=1)).replace(tzinfo=None).isoformat()  # naive: UTC
    r = world.client.get(path, params={"device": ["LPR-B1", "CAM-X"], "since": since},
                         headers=world.headers("dpo"))
    assert [(c["device_id"], c["count"]) for c in r.json()] == [("LPR-B1", 11), ("LPR-B1", 10)]
    r = world.client.get(path, params={"since": hour.isoformat(), "until": hour.isoformat()},
                         headers=world.headers("operator"))
    assert r.status_code == 422 and r.json()["field"] == "until"
    r = world.client.get(path, params={"until": "0001-01-01T00:00:00"},
                         headers=world.headers("operator"))
    assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM)
    assert world.client.get(path, headers=world.headers("judge")).status_code == 403


def test_reads_retention_for_any_user(world: World) -> None:
    for who in ("judge", "reader", "dpo"):
        r = world.client.get("/api/retention/reads", headers=world.headers(who))
        assert r.status_code == 200, r.text
    rules = {rule["category"]: rule for rule in r.json()}
    assert rules["unmatched"]["value"] == 24 and rules["unmatched"]["unit"] == "hours"
    assert rules["counts"]["value"] == 1825
    assert world.client.get("/api/retention/reads").status_code == 401
    # The recording retention next door is untouched.
    assert world.client.get("/api/retention", headers=world.headers("admin")).status_code \
        == 200
