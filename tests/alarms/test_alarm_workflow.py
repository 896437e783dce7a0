"""The alarm workflow over HTTP: list and read with a purpose, acknowledge, close with an
outcome, all audited and inside the user's zones; and the webhooks administrators set up.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from alarmkit import insert_alarm, seed

from conftest import PURPOSE, World
from vigila.access.tables import audit_log
from vigila.core.timeutil import iso, utcnow
from vigila.reads.tables import webhooks

PROBLEM = "application/problem+json"


@pytest.fixture
def alarm_world(world: World) -> World:
    seed(world.db)
    return world


def assert_problem(r: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    if field is not None:
        assert body.get("field") == field, body
    return body


def audit_rows(world: World, action: str) -> list[dict[str, Any]]:
    with world.db.read() as conn:
        rows = conn.execute(sa.select(audit_log).where(audit_log.c.action == action)
                            .order_by(audit_log.c.seq)).mappings()
        return [dict(r) for r in rows]


def post(world: World, who: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return world.client.post(path, json=body, headers=world.headers(who))


def test_acknowledge_then_close_with_an_outcome(alarm_world: World) -> None:
    world = alarm_world
    alarm = insert_alarm(world.db, "LPR-B1")
    path = f"/api/alarms/{alarm['id']}"
    r = post(world, "operator", path + "/acknowledge")
    assert r.status_code == 200, r.text
    acked = r.json()
    assert acked["state"] == "acknowledged"
    assert acked["acknowledged_by"] == world.user_ids["operator"]
    assert acked["acknowledged_at"] and acked["device_name"] == "Dispositivo LPR-B1"

    r = post(world, "supervisor", path + "/close", {"outcome": "stopped",
                                                    "note": " fermato in via Roma "})
    assert r.status_code == 200, r.text
    closed = r.json()
    assert (closed["state"], closed["outcome"], closed["note"]) == ("closed", "stopped",
                                                                    "fermato in via Roma")
    assert closed["closed_by"] == world.user_ids["supervisor"] and closed["closed_at"]
    assert closed["acknowledged_by"] == world.user_ids["operator"]

    (ack,) = audit_rows(world, "alarm.acknowledge")
    assert (ack["actor"], ack["resource"]) == ("operator", f"alarm/{alarm['id']}")
    assert ack["detail"] == {"from": "new", "to": "acknowledged"}
    (done,) = audit_rows(world, "alarm.close")
    assert done["actor"] == "supervisor"
    assert done["detail"] == {"from": "acknowledged", "to": "closed", "outcome": "stopped",
                              "note": True}

    got = world.client.get(path, headers=world.headers("operator", **PURPOSE))
    assert got.status_code == 200 and got.json() == closed
    (read,) = audit_rows(world, "alarm.read")
    assert (read["purpose"], read["reference"]) == (PURPOSE["text"], PURPOSE["reference"])


def test_wrong_transitions_are_conflicts(alarm_world: World) -> None:
    world = alarm_world
    alarm = insert_alarm(world.db, "LPR-A1")
    path = f"/api/alarms/{alarm['id']}"
    body = assert_problem(post(world, "operator", path + "/close", {"outcome": "misread"}),
                          409, "state")
    assert "acknowledge it first" in body["detail"]
    assert post(world, "operator", path + "/acknowledge").status_code == 200
    body = assert_problem(post(world, "operator_a", path + "/acknowledge"), 409, "state")
    assert "acknowledged already" in body["detail"]
    assert post(world, "operator", path + "/close", {"outcome": "not_found"}).status_code == 200
    for action, json in (("/acknowledge", None), ("/close", {"outcome": "stopped"})):
        body = assert_problem(post(world, "operator", path + action, json), 409)
        assert "closed" in body["detail"]
    assert len(audit_rows(world, "alarm.close")) == 1


def test_close_refuses_bad_input(alarm_world: World) -> None:
    world = alarm_world
    alarm = insert_alarm(world.db, "LPR-A1")
    path = f"/api/alarms/{alarm['id']}"
    assert post(world, "operator", path + "/acknowledge").status_code == 200
    for body, field in (({"outcome": "arrested"}, "body.outcome"), ({}, "body.outcome"),
                        ({"outcome": None}, "body.outcome"),
                        ({"outcome": "stopped", "note": "x" * 1001}, "body.note"),
                        ({"outcome": "stopped", "note": "a\x00b"}, "body.note"),
                        ({"outcome": "stopped", "extra": 1}, "body.extra")):
        assert_problem(post(world, "operator", path + "/close", body), 422, field)
    assert_problem(world.client.post(path + "/close", content=b"{", headers={
        **world.headers("operator"), "Content-Type": "application/json"}), 400)
    assert audit_rows(world, "alarm.close") == []


def test_another_zones_alarm_is_not_found(alarm_world: World) -> None:
    world = alarm_world
    hidden = insert_alarm(world.db, "LPR-B1")
    missing = hidden["id"] + 1000
    for suffix, body in (("/acknowledge", None), ("/close", {"outcome": "stopped"})):
        a = post(world, "operator_a", f"/api/alarms/{hidden['id']}{suffix}", body)
        b = post(world, "operator_a", f"/api/alarms/{missing}{suffix}", body)
        assert_problem(a, 404)
        assert a.text.replace(str(hidden["id"]), "<ID>") == \
            b.text.replace(str(missing), "<ID>")
    h = world.headers("operator_a", **PURPOSE)
    assert_problem(world.client.get(f"/api/alarms/{hidden['id']}", headers=h), 404)
    listed = world.client.get("/api/alarms", headers=h)
    assert listed.status_code == 200 and listed.json()["items"] == []
    assert insert_alarm(world.db, "LPR-A1")["id"] in \
        [a["id"] for a in world.client.get("/api/alarms", headers=h).json()["items"]]
    with world.db.read() as conn:
        state = conn.execute(sa.text("SELECT state FROM alarms WHERE id = :i"),
                             {"i": hidden["id"]}).scalar()
    assert state == "new"


def test_roles_without_alarms_handle_are_refused(alarm_world: World) -> None:
    world = alarm_world
    alarm = insert_alarm(world.db, "LPR-A1")
    for who in ("admin", "investigator", "dpo", "judge", "reader"):
        assert_problem(post(world, who, f"/api/alarms/{alarm['id']}/acknowledge"), 403)
        assert_problem(post(world, who, f"/api/alarms/{alarm['id']}/close",
                            {"outcome": "stopped"}), 403)
    assert audit_rows(world, "alarm.acknowledge") == []


def test_reading_needs_a_purpose_and_personal_read(alarm_world: World) -> None:
    world = alarm_world
    alarm = insert_alarm(world.db, "LPR-A1")
    for path in ("/api/alarms", f"/api/alarms/{alarm['id']}", "/api/alarms/stream"):
        assert_problem(world.client.get(path, headers=world.headers("operator")), 428)
        assert_problem(world.client.get(path, headers=world.headers("admin", **PURPOSE)), 403)
        assert_problem(world.client.get(path), 401)
    assert audit_rows(world, "alarm.list") == [] and audit_rows(world, "alarm.stream") == []


def test_list_filters_pages_and_is_audited(alarm_world: World) -> None:
    world = alarm_world
    ids = [insert_alarm(world.db, d, plate=f"AB{n:03d}CD")["id"]
           for n, d in enumerate(["LPR-A1", "LPR-B1", "LPR-A1", "LPR-B1", "LPR-A1"])]
    assert post(world, "operator", f"/api/alarms/{ids[0]}/acknowledge").status_code == 200
    h = world.headers("operator", **PURPOSE)

    def listed(**params: Any) -> dict[str, Any]:
        r = world.client.get("/api/alarms", params=params, headers=h)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    assert [a["id"] for a in listed()["items"]] == ids[::-1]
    assert [a["id"] for a in listed(state="acknowledged")["items"]] == [ids[0]]
    assert [a["id"] for a in listed(state="new")["items"]] == ids[:0:-1]
    assert listed(since=iso(utcnow() + timedelta(minutes=1)))["items"] == []
    assert len(listed(since=iso(utcnow() - timedelta(minutes=1)))["items"]) == 5
    seen, cursor = [], None
    while True:
        page = listed(limit=2, **({"cursor": cursor} if cursor else {}))
        seen += [a["id"] for a in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen == ids[::-1]
    first = listed(limit=1)["items"][0]
    assert {"device_name", "lat", "lon", "hotlist_name", "received_at"} <= set(first)
    assert first["hotlist_name"] == "Veicoli rubati"
    entries = audit_rows(world, "alarm.list")
    assert entries and all(e["purpose"] == PURPOSE["text"] for e in entries)
    assert entries[1]["detail"]["state"] == "acknowledged"
    for bad in ({"state": "open"}, {"limit": 0}, {"limit": 1001}, {"cursor": "zzz"},
                {"since": "yesterday"}, {"since": "0001-01-01T00:00:00+01:00"}):
        assert_problem(world.client.get("/api/alarms", params=bad, headers=h), 422)
    assert_problem(world.client.get(f"/api/alarms/{2**63}", headers=h), 422)


def test_delivery_status_for_administrators(alarm_world: World) -> None:
    world = alarm_world
    r = world.client.get("/api/alarms/delivery", headers=world.headers("admin"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["running"] and body["mqtt"] == {**body["mqtt"], "enabled": False}
    assert set(body) == {"running", "queued", "dropped", "mqtt", "webhooks", "streams"}
    assert_problem(world.client.get("/api/alarms/delivery", headers=world.headers("operator")),
                   403)
    metrics = world.client.get("/api/metrics", headers=world.headers("admin"))
    assert "vigila_alarm_mqtt_connected 0.0" in metrics.text
    assert 'vigila_alarm_deliveries_total{channel="webhooks",result="failed"} 0.0' in metrics.text


# --- webhooks ------------------------------------------------------------------------------

def test_webhook_crud_keeps_the_secret(alarm_world: World) -> None:
    world = alarm_world
    admin = world.headers("admin")
    r = world.client.post("/api/webhooks", headers=admin, json={
        "url": "https://centrale.example/allarmi", "secret": "s" * 32, "zone_id": "zona-a",
        "min_priority": 50})
    assert r.status_code == 201, r.text
    hook = r.json()
    assert hook["has_secret"] is True and "secret" not in hook
    assert (hook["zone_id"], hook["min_priority"], hook["active"]) == ("zona-a", 50, True)
    listed = world.client.get("/api/webhooks", headers=admin).json()
    assert listed == [hook] and "s" * 32 not in str(listed)
    (created,) = audit_rows(world, "webhook.create")
    assert created["detail"]["secret"] is True and "s" * 32 not in str(created)
    assert world.client.delete(f"/api/webhooks/{hook['id']}", headers=admin).status_code == 204
    assert_problem(world.client.delete(f"/api/webhooks/{hook['id']}", headers=admin), 404)
    assert world.client.get("/api/webhooks", headers=admin).json() == []
    assert len(audit_rows(world, "webhook.delete")) == 1


BAD_WEBHOOKS: list[tuple[dict[str, Any], str]] = [
    ({"url": "ftp://centrale.example/x"}, "body.url"),
    ({"url": "file:///etc/passwd"}, "body.url"),
    ({"url": "javascript:alert(1)"}, "body.url"),
    ({"url": "centrale.example/x"}, "body.url"),
    ({"url": "http://"}, "body.url"),
    ({"url": "http://centrale.example:99999/"}, "body.url"),
    ({"url": "http://centrale .example/"}, "body.url"),
    ({"url": ""}, "body.url"),
    ({"url": "https://x.example/" + "a" * 1024}, "body.url"),
    ({"url": "https://x.example/", "secret": "short"}, "body.secret"),
    ({"url": "https://x.example/", "min_priority": 101}, "body.min_priority"),
    ({"url": "https://x.example/", "zone_id": "zona-z"}, "zone_id"),
    ({"url": "https://x.example/", "unknown": 1}, "body.unknown"),
]


def test_webhook_bad_input_is_422(alarm_world: World) -> None:
    world = alarm_world
    for body, field in BAD_WEBHOOKS:
        r = world.client.post("/api/webhooks", headers=world.headers("admin"), json=body)
        assert_problem(r, 422, field)
    with world.db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(webhooks)).scalar() == 0


def test_webhooks_follow_zones_and_roles(alarm_world: World) -> None:
    world = alarm_world
    admin, admin_a = world.headers("admin"), world.headers("admin_a")
    b = world.client.post("/api/webhooks", headers=admin,
                          json={"url": "http://127.0.0.1:9/b", "zone_id": "zona-b"}).json()
    every = world.client.post("/api/webhooks", headers=admin,
                              json={"url": "http://127.0.0.1:9/all"}).json()
    # An administrator of zona-a only: no webhook for every zone, none for zona-b, and
    # the others' are neither listed nor deletable.
    assert_problem(world.client.post("/api/webhooks", headers=admin_a,
                                     json={"url": "http://127.0.0.1:9/a"}), 403)
    assert_problem(world.client.post("/api/webhooks", headers=admin_a, json={
        "url": "http://127.0.0.1:9/a", "zone_id": "zona-b"}), 422, "zone_id")
    r = world.client.post("/api/webhooks", headers=admin_a,
                          json={"url": "http://127.0.0.1:9/a", "zone_id": "zona-a"})
    assert r.status_code == 201, r.text
    a = r.json()
    assert world.client.get("/api/webhooks", headers=admin_a).json() == [a]
    assert [h["id"] for h in world.client.get("/api/webhooks", headers=admin).json()] == \
        [b["id"], every["id"], a["id"]]
    for hidden in (b, every):
        assert_problem(world.client.delete(f"/api/webhooks/{hidden['id']}", headers=admin_a),
                       404)
    for who in ("operator", "supervisor", "dpo", "investigator"):
        h = world.headers(who)
        assert_problem(world.client.get("/api/webhooks", headers=h), 403)
        assert_problem(world.client.post("/api/webhooks", headers=h,
                                         json={"url": "http://127.0.0.1:9/x"}), 403)
        assert_problem(world.client.delete(f"/api/webhooks/{a['id']}", headers=h), 403)
