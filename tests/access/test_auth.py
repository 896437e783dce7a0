"""Log-in, sessions, throttling, and the rule that every endpoint but health needs a session."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from conftest import PASSWORD, World
from vigila.access import hasher
from vigila.access.tables import login_throttle, sessions, users
from vigila.core import Settings
from vigila.core.timeutil import utcnow


def test_login_issues_an_opaque_token_stored_only_as_a_hash(world: World) -> None:
    token = world.login("operator")
    with world.db.read() as conn:
        stored = list(conn.execute(sa.select(sessions.c.token_hash)).scalars())
    assert token not in stored
    assert hashlib.sha256(token.encode()).hexdigest() in stored
    me = world.client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json()["username"] == "operator"
    assert me.json()["roles"] == ["operator"]


def test_passwords_are_argon2id_with_default_parameters(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url="sqlite://")
    digest = hasher(settings).hash(PASSWORD)
    assert digest.startswith("$argon2id$v=19$m=65536,t=3,p=2$")


def test_stored_password_is_argon2id(world: World) -> None:
    with world.db.read() as conn:
        digests = list(conn.execute(sa.select(users.c.password_hash)).scalars())
    assert digests and all(d.startswith("$argon2id$") for d in digests)
    assert not any(PASSWORD in d for d in digests)


def test_wrong_password_and_unknown_user_look_the_same(world: World) -> None:
    a = world.client.post("/api/auth/login", json={"username": "operator", "password": "nope"})
    b = world.client.post("/api/auth/login", json={"username": "ghost", "password": "nope"})
    assert a.status_code == b.status_code == 401
    assert a.json()["detail"] == b.json()["detail"]
    assert a.headers["content-type"] == "application/problem+json"


def test_logout_revokes_the_token(world: World) -> None:
    token = world.login("operator")
    h = {"Authorization": f"Bearer {token}"}
    assert world.client.post("/api/auth/logout", headers=h).status_code == 204
    assert world.client.get("/api/auth/me", headers=h).status_code == 401


def test_expired_session_is_refused(world: World) -> None:
    token = world.login("operator")
    with world.db.write() as conn:
        conn.execute(sessions.update().where(
            sessions.c.token_hash == hashlib.sha256(token.encode()).hexdigest())
            .values(expires_at=utcnow() - timedelta(seconds=1)))
    r = world.client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"


def test_repeated_failures_are_throttled_even_with_the_right_password(world: World) -> None:
    for _ in range(world.settings.login_max_failures):
        r = world.client.post("/api/auth/login", json={"username": "operator", "password": "x"})
        assert r.status_code == 401
    r = world.client.post("/api/auth/login", json={"username": "operator", "password": PASSWORD})
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1
    # Case does not get round it, and the lock is on the record.
    r = world.client.post("/api/auth/login", json={"username": "OPERATOR", "password": PASSWORD})
    assert r.status_code == 429
    with world.db.read() as conn:
        outcomes = list(conn.execute(sa.text(
            "SELECT outcome FROM audit_log WHERE action = 'auth.login' ORDER BY seq")).scalars())
    assert outcomes.count("failed") == world.settings.login_max_failures
    assert outcomes.count("throttled") == 2


def test_a_lock_holds_for_one_client_only(world: World) -> None:
    for _ in range(world.settings.login_max_failures):
        world.client.post("/api/auth/login", json={"username": "operator", "password": "x"})
    creds = {"username": "operator", "password": PASSWORD}
    assert world.client.post("/api/auth/login", json=creds).status_code == 429
    # The control room's own console is elsewhere: guesses from one host do not lock it out.
    from fastapi.testclient import TestClient

    with TestClient(world.client.app, client=("10.0.0.9", 50000)) as other:
        assert other.post("/api/auth/login", json=creds).status_code == 200


def test_an_administrator_resets_a_password_without_the_old_one(world: World) -> None:
    r = world.client.patch(f"/api/users/{world.user_ids['operator']}",
                           json={"password": "reset by the admin"}, headers=world.headers("admin"))
    assert r.status_code == 200, r.text
    assert world.login("operator", "reset by the admin")


def test_lock_expires_and_success_clears_the_count(world: World) -> None:
    for _ in range(world.settings.login_max_failures):
        world.client.post("/api/auth/login", json={"username": "operator", "password": "x"})
    with world.db.write() as conn:
        conn.execute(login_throttle.update().values(locked_until=utcnow() - timedelta(seconds=1)))
    assert world.login("operator")
    with world.db.read() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM login_throttle")).scalar() == 0


def test_disabling_a_user_ends_their_sessions(world: World) -> None:
    h_op = world.headers("operator")
    r = world.client.patch(f"/api/users/{world.user_ids['operator']}", json={"active": False},
                           headers=world.headers("admin"))
    assert r.status_code == 200
    assert world.client.get("/api/auth/me", headers=h_op).status_code == 401
    r = world.client.post("/api/auth/login", json={"username": "operator", "password": PASSWORD})
    assert r.status_code == 401


def test_changing_the_password_ends_sessions(world: World) -> None:
    h = world.headers("operator")
    uid = world.user_ids["operator"]
    new = {"password": "a new long passphrase"}
    # A stolen session alone cannot take the account over: the current password is asked.
    r = world.client.patch(f"/api/users/{uid}", json=new, headers=h)
    assert r.status_code == 422 and r.json()["field"] == "current_password"
    r = world.client.patch(f"/api/users/{uid}", json={**new, "current_password": "wrong one"},
                           headers=h)
    assert r.status_code == 422
    r = world.client.patch(f"/api/users/{uid}", json={**new, "current_password": PASSWORD},
                           headers=h)
    assert r.status_code == 200, r.text
    assert world.client.get("/api/auth/me", headers=h).status_code == 401
    assert world.login("operator", "a new long passphrase")


def test_short_password_is_refused(world: World) -> None:
    r = world.client.post("/api/users", headers=world.headers("admin"), json={
        "username": "nuovo", "full_name": "Nuovo", "agency_id": "pl-test",
        "roles": ["operator"], "password": "short"})
    assert r.status_code == 422
    assert r.json()["field"] == "password"


def test_every_endpoint_but_health_needs_a_session(world: World) -> None:
    spec = world.client.get("/api/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    checked = 0
    for path, ops in spec["paths"].items():
        for method in ops:
            url = path.replace("{device_id}", "CAM-A1").replace("{zone_id}", "zona-a") \
                .replace("{agency_id}", "pl-test").replace("{user_id}", "1")
            for headers in ({}, {"Authorization": "Bearer not-a-token"}):
                r = world.client.request(method.upper(), url, headers=headers)
                if path in ("/api/health", "/api/auth/login"):
                    assert r.status_code != 401, (method, path)
                else:
                    assert r.status_code == 401, (method, path, r.status_code)
                    assert r.headers["content-type"] == "application/problem+json"
                checked += 1
    assert checked > 40
