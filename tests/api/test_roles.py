"""Roles over HTTP: each role may do what vigila.access.roles grants it, and nothing more.

The expected status of most cells is derived from ROLE_PERMISSIONS, so the table and the
policy cannot drift apart; a few literal rows pin the policy itself. A refused write
changes nothing, and a rejected one is never half applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from conftest import ACCOUNTS, PASSWORD, PURPOSE, World, device
from vigila.access.roles import ROLE_PERMISSIONS, Permission, Role
from vigila.access.tables import audit_log

P = Permission
PROBLEM = "application/problem+json"
JSON = "application/json"
# One all-zones user per role (the judge has no zones, and needs none for what it may do).
ROLE_USER: dict[Role, str] = {
    Role.ADMINISTRATOR: "admin", Role.OPERATOR: "operator", Role.INVESTIGATOR: "investigator",
    Role.SUPERVISOR: "supervisor", Role.DPO: "dpo", Role.JUDICIAL_VIEWER: "judge",
    Role.READER: "reader",
}
SQUARE_C = {"type": "Polygon", "coordinates": [[[11.13, 43.89], [11.14, 43.89], [11.14, 43.90],
                                                [11.13, 43.90], [11.13, 43.89]]]}
CSV_ONE = ("id,kind,name,lat,lon,zone_id,agency_id\n"
           "CAM-A7,camera,Nuova,43.875,11.095,zona-a,pl-test\n")


@dataclass(frozen=True)
class Op:
    """One request, the permission it needs (None: any logged-in user) and its success."""

    name: str
    method: str
    path: str
    needs: Permission | None
    ok: int
    json: dict[str, Any] | None = None
    csv: str | None = None
    purpose: bool = False
    media: str = JSON
    denied: frozenset[int] = frozenset({403})


OPS: tuple[Op, ...] = (
    Op("me", "GET", "/api/auth/me", None, 200),
    Op("list devices", "GET", "/api/devices", P.REGISTRY_READ, 200),
    Op("get device", "GET", "/api/devices/CAM-A1", P.REGISTRY_READ, 200),
    Op("list zones", "GET", "/api/zones", P.REGISTRY_READ, 200),
    Op("create device", "POST", "/api/devices", P.REGISTRY_WRITE, 201,
       json=device("CAM-A9", "zona-a")),
    Op("patch device", "PATCH", "/api/devices/CAM-A1", P.REGISTRY_WRITE, 200,
       json={"name": "Piazza Grande"}),
    Op("retire device", "POST", "/api/devices/CAM-A2/retire", P.REGISTRY_WRITE, 200,
       json={"reason": "guasto"}),
    Op("import devices", "POST", "/api/device-imports", P.REGISTRY_WRITE, 200, csv=CSV_ONE),
    Op("create zone", "POST", "/api/zones", P.REGISTRY_WRITE, 201,
       json={"id": "zona-c", "name": "ZONA-C", "kind": "periphery", "geometry": SQUARE_C}),
    Op("create agency", "POST", "/api/agencies", P.REGISTRY_WRITE, 201,
       json={"id": "cc-test", "name": "Carabinieri di Prova", "kind": "carabinieri"}),
    Op("list users", "GET", "/api/users", P.USERS_READ, 200),
    Op("create user", "POST", "/api/users", P.USERS_WRITE, 201,
       json={"username": "nuovo.utente", "full_name": "Nuovo Utente", "agency_id": "pl-test",
             "roles": ["operator"], "zone_ids": ["zona-a"], "password": PASSWORD}),
    Op("audit with purpose", "GET", "/api/audit", P.AUDIT_READ, 200, purpose=True),
    # The purpose is asked for before the permission is checked, so a role that may not
    # read the audit at all is told either; see the report.
    Op("audit without purpose", "GET", "/api/audit", P.AUDIT_READ, 428,
       denied=frozenset({403, 428})),
    Op("audit verify", "GET", "/api/audit/verify", P.AUDIT_VERIFY, 200),
    Op("audit export", "GET", "/api/audit/export", P.AUDIT_READ, 200, purpose=True,
       media="application/x-ndjson"),
    Op("audit export without purpose", "GET", "/api/audit/export", P.AUDIT_READ, 428,
       denied=frozenset({403, 428})),
    Op("metrics", "GET", "/api/metrics", P.METRICS_READ, 200, media="text/plain"),
)
OP = {op.name: op for op in OPS}

# Policy pinned by hand: each must agree with the derivation, and with the API.
LITERAL: tuple[tuple[str, str, int], ...] = (
    ("operator", "create device", 403),
    ("operator", "patch device", 403),
    ("admin", "create device", 201),
    ("admin", "list users", 200),
    ("dpo", "audit with purpose", 200),
    ("dpo", "audit without purpose", 428),
    ("dpo", "create user", 403),
    ("investigator", "audit with purpose", 403),
    ("supervisor", "metrics", 200),
    ("supervisor", "create user", 403),
    ("admin", "audit with purpose", 403),
    ("admin", "audit verify", 200),
    ("judge", "list devices", 403),
    ("judge", "me", 200),
)


def expected(role: Role, op: Op) -> frozenset[int]:
    if op.needs is None or op.needs in ROLE_PERMISSIONS[role]:
        return frozenset({op.ok})
    return op.denied


def call(world: World, who: str | None, op: Op) -> httpx.Response:
    headers = {} if who is None else world.headers(who, **(PURPOSE if op.purpose else {}))
    if op.csv is not None:
        return world.client.request(op.method, op.path, content=op.csv.encode(),
                                    headers={**headers, "Content-Type": "text/csv"})
    return world.client.request(op.method, op.path, json=op.json, headers=headers)


def shape_errors(r: httpx.Response, media: str) -> list[str]:
    """What is wrong with the form of a response: problem+json for errors, else `media`."""
    ctype = r.headers.get("content-type", "")
    if r.status_code < 400:
        return [] if ctype.startswith(media) else [f"content-type {ctype!r}, not {media}"]
    if not ctype.startswith(PROBLEM):
        return [f"error as {ctype!r}, not {PROBLEM}"]
    body = r.json()
    missing = {"type", "title", "status", "detail"} - set(body)
    out = [f"problem without {sorted(missing)}"] if missing else []
    if body.get("status") != r.status_code:
        out.append(f"problem status {body.get('status')} != {r.status_code}")
    return out


# --- the table itself ------------------------------------------------------

def test_every_role_has_a_user_in_the_world() -> None:
    assert set(ROLE_USER) == set(Role)
    for role, user in ROLE_USER.items():
        assert ACCOUNTS[user][0] == [role], user


@pytest.mark.parametrize(("user", "op_name", "status"), LITERAL)
def test_literal_rows_agree_with_the_policy(user: str, op_name: str, status: int) -> None:
    (role,) = ACCOUNTS[user][0]
    assert status in expected(role, OP[op_name]), (user, op_name)


def test_table_is_not_vacuous() -> None:
    """Every op is allowed to some role and (but /me) refused to another."""
    for op in OPS:
        outcomes = {status for role in Role for status in expected(role, op)}
        assert op.ok in outcomes, op.name
        assert op.needs is None or 403 in outcomes, op.name


# --- against the API -------------------------------------------------------

@pytest.mark.parametrize("role", list(Role), ids=[r.value for r in Role])
def test_role_matrix(world: World, role: Role) -> None:
    who = ROLE_USER[role]
    wrong = []
    for op in OPS:
        r = call(world, who, op)
        want = expected(role, op)
        if r.status_code not in want:
            wrong.append(f"{op.method} {op.path} ({op.name}): {r.status_code}, "
                         f"expected {sorted(want)}: {r.text[:200]}")
        wrong += [f"{op.name}: {e}" for e in shape_errors(r, op.media)]
    assert wrong == [], f"{who} ({role.value}):\n" + "\n".join(wrong)


def test_literal_rows_against_the_api(world: World) -> None:
    for user, op_name, status in LITERAL:
        r = call(world, user, OP[op_name])
        assert r.status_code == status, (user, op_name, r.text)
        assert shape_errors(r, OP[op_name].media) == [], (user, op_name)


def test_no_session_is_401_everywhere(world: World) -> None:
    for op in OPS:
        r = call(world, None, op)
        assert r.status_code == 401, (op.name, r.text)
        assert shape_errors(r, op.media) == [], op.name
        assert r.headers.get("www-authenticate") == "Bearer", op.name
    bogus = {"Authorization": "Bearer not-a-token"}
    r = world.client.get("/api/devices", headers=bogus)
    assert r.status_code == 401 and shape_errors(r, JSON) == []


def test_stream_password_only_for_registry_writers(world: World) -> None:
    for role, who in ROLE_USER.items():
        if P.REGISTRY_READ not in ROLE_PERMISSIONS[role]:
            continue
        url = "rtsp://user:***@127.0.0.1:8554/a1"
        if P.REGISTRY_WRITE in ROLE_PERMISSIONS[role]:
            url = "rtsp://user:secret@127.0.0.1:8554/a1"
        h = world.headers(who)
        one = world.client.get("/api/devices/CAM-A1", headers=h).json()
        listed = world.client.get("/api/devices", params={"q": "CAM-A1"}, headers=h).json()
        exported = world.client.get("/api/devices.csv", params={"q": "CAM-A1"}, headers=h).text
        assert one["main_stream_url"] == url, who
        assert listed["items"][0]["main_stream_url"] == url, who
        assert url in exported, who
        if "***" in url:
            assert "secret" not in exported, who


# --- refused and rejected writes leave no trace ----------------------------

def snapshot(world: World) -> dict[str, Any]:
    """Everything a write could touch, as the all-seeing administrator reads it."""
    h = world.headers("admin")
    get = world.client.get
    with world.db.read() as conn:
        changes = conn.execute(
            sa.select(audit_log.c.seq, audit_log.c.action, audit_log.c.resource)
            .where(audit_log.c.outcome == "ok", ~audit_log.c.action.like("auth.%"),
                   ~audit_log.c.action.like("audit.%"))
            .order_by(audit_log.c.seq)).all()
    return {
        "devices": get("/api/devices", params={"include_retired": "true"}, headers=h).json(),
        "zones": get("/api/zones", headers=h).json(),
        "agencies": get("/api/agencies", headers=h).json(),
        "users": get("/api/users", headers=h).json(),
        "logged changes": [tuple(c) for c in changes],
    }


# (user, method, path, json body or CSV text, the permission it lacks)
REFUSED: tuple[tuple[str, str, str, dict[str, Any] | str, Permission], ...] = (
    ("operator", "PATCH", "/api/devices/CAM-A1", {"name": "Rinominata"}, P.REGISTRY_WRITE),
    ("judge", "PATCH", "/api/devices/CAM-A1", {"name": "Rinominata"}, P.REGISTRY_WRITE),
    ("investigator", "POST", "/api/devices/CAM-A1/retire", {"reason": "no"}, P.REGISTRY_WRITE),
    ("supervisor", "POST", "/api/devices", device("CAM-A9", "zona-a"), P.REGISTRY_WRITE),
    ("dpo", "POST", "/api/device-imports", CSV_ONE, P.REGISTRY_WRITE),
    ("operator", "POST", "/api/zones", OP["create zone"].json or {}, P.REGISTRY_WRITE),
    ("operator", "DELETE", "/api/zones/zona-a", {}, P.REGISTRY_WRITE),
    ("supervisor", "PATCH", "/api/agencies/pl-test", {"name": "Altra"}, P.REGISTRY_WRITE),
    ("supervisor", "POST", "/api/users", OP["create user"].json or {}, P.USERS_WRITE),
    ("dpo", "PATCH", "/api/users/{operator}", {"roles": ["administrator"]}, P.USERS_WRITE),
    ("investigator", "PATCH", "/api/users/{investigator}", {"all_zones": False,
                                                           "roles": ["administrator"]},
     P.USERS_WRITE),
)


def test_refused_write_changes_nothing(world: World) -> None:
    before = snapshot(world)
    for who, method, path, body, lacks in REFUSED:
        (role,) = ACCOUNTS[who][0]
        assert lacks not in ROLE_PERMISSIONS[role], (who, lacks)  # the case is a refusal
        url = path.format(**world.user_ids)
        if isinstance(body, str):
            r = world.client.request(method, url, content=body.encode(),
                                     headers={**world.headers(who), "Content-Type": "text/csv"})
        else:
            r = world.client.request(method, url, json=body or None, headers=world.headers(who))
        assert r.status_code == 403, (who, method, url, r.text)
        assert shape_errors(r, JSON) == [], (who, method, url)
        assert lacks.value in r.json()["detail"], (who, method, url)
        assert snapshot(world) == before, (who, method, url)


# (method, path, json body or CSV text, the field named) — each mixes good and bad.
REJECTED: tuple[tuple[str, str, dict[str, Any] | str, str], ...] = (
    ("PATCH", "/api/devices/CAM-A1", {"name": "Nuovo", "recording_server_id": "CAM-A2"},
     "recording_server_id"),
    ("PATCH", "/api/devices/CAM-A1", {"name": "Nuovo", "status": "retired"}, "status"),
    ("PATCH", "/api/devices/CAM-A1", {"name": "Nuovo", "zone_id": "zona-zz"}, "zone_id"),
    ("PATCH", "/api/devices/CAM-A1", {"name": "Nuovo", "lat": 91}, "body.lat"),
    ("POST", "/api/device-imports",
     CSV_ONE + "CAM-A8,camera,Altra,43.875,11.095,zona-a,nessuna\n", "agency_id"),
    ("POST", "/api/users", {**(OP["create user"].json or {}), "zone_ids": ["zona-zz"]},
     "zone_ids"),
    ("PATCH", "/api/users/{operator}", {"full_name": "Cambiato", "zone_ids": ["zona-zz"]},
     "zone_ids"),
    ("PATCH", "/api/zones/zona-a", {"name": "Nuovo", "geometry": {"type": "Point"}},
     "geometry.type"),
)


def test_rejected_write_is_not_half_applied(world: World) -> None:
    before = snapshot(world)
    for method, path, body, named in REJECTED:
        url = path.format(**world.user_ids)
        h = world.headers("admin")
        if isinstance(body, str):
            r = world.client.request(method, url, content=body.encode(),
                                     headers={**h, "Content-Type": "text/csv"})
        else:
            r = world.client.request(method, url, json=body, headers=h)
        assert r.status_code == 422, (method, url, r.text)
        assert shape_errors(r, JSON) == [], (method, url)
        assert named in {e["field"] for e in r.json()["errors"]}, (method, url, r.text)
        assert snapshot(world) == before, (method, url)


def test_refusal_comes_before_the_lookup(world: World) -> None:
    """A role without the permission learns nothing of ids: same answer, found or not."""
    h = world.headers("operator")
    answers = {world.client.patch(f"/api/devices/{device_id}", json={"name": "X"},
                                  headers=h).text for device_id in ("CAM-A1", "CAM-Z9")}
    assert len(answers) == 1
    (text,) = answers
    assert '"status":403' in text and "registry.write" in text
