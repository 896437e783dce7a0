"""Health, metrics, OpenAPI, and the purpose rule for personal data."""

from __future__ import annotations

from urllib.parse import quote

import sqlalchemy as sa

from conftest import World


def test_health_is_open(world: World) -> None:
    r = world.client.get("/api/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"
    assert r.json()["database"] == world.db.dialect


def test_metrics_are_prometheus_text(world: World) -> None:
    world.client.get("/api/devices/CAM-A1", headers=world.headers("admin"))
    r = world.client.get("/api/metrics", headers=world.headers("admin"))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    # The route template, not the id, labels the request.
    assert 'route="/api/devices/{device_id}",status="200"' in text
    assert "CAM-A1" not in text
    assert 'vigila_devices{kind="camera",status="active"} 4.0' in text
    assert world.client.get("/api/metrics", headers=world.headers("operator")).status_code == 403


def test_openapi_describes_problem_errors_and_auth(world: World) -> None:
    spec = world.client.get("/api/openapi.json").json()
    assert spec["info"]["title"] == "Vigila"
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    assert world.client.get("/api/nowhere").headers["content-type"] == "application/problem+json"


def test_personal_data_needs_a_purpose(world: World) -> None:
    h = world.headers("dpo")
    r = world.client.get("/api/audit", headers=h)
    assert r.status_code == 428
    assert "Vigila-Purpose" in r.json()["detail"]
    r = world.client.get("/api/audit", headers={**h, "Vigila-Purpose": "boh",
                                                "Vigila-Reference": "RG 1/2026"})
    assert r.status_code == 422 and r.json()["field"] == "Vigila-Purpose"
    r = world.client.get("/api/audit", headers={**h, "Vigila-Purpose": "controllo accessi",
                                                "Vigila-Reference": ""})
    assert r.status_code == 422 and r.json()["field"] == "Vigila-Reference"
    # Italian text travels percent-encoded in the header and is logged as written.
    why = "verifica richiesta dell'autorità giudiziaria"
    r = world.client.get("/api/audit?limit=1", headers={
        **h, "Vigila-Purpose": quote(why), "Vigila-Reference": "Proc. 77/2026"})
    assert r.status_code == 200
    last = world.client.get("/api/audit?action=audit.read&limit=1000", headers={
        **h, "Vigila-Purpose": quote(why), "Vigila-Reference": "Proc. 77/2026"}).json()["items"]
    assert last[0]["purpose"] == why and last[0]["reference"] == "Proc. 77/2026"
    # Raw UTF-8 (what curl sends when typed) is read as meant, not as Latin-1 mojibake.
    raw = world.client.get("/api/audit?limit=1", headers=[
        ("Authorization", h["Authorization"]), ("Vigila-Purpose", why.encode()),
        ("Vigila-Reference", b"Proc. 78/2026")])
    assert raw.status_code == 200
    with world.db.read() as conn:
        stored = conn.execute(sa.text("SELECT purpose FROM audit_log WHERE reference = "
                                      "'Proc. 78/2026'")).scalar_one()
    assert stored == why
    bad = world.client.get("/api/audit?limit=1", headers={
        **h, "Vigila-Purpose": "verifica %FF%FE", "Vigila-Reference": "Proc. 79/2026"})
    assert bad.status_code == 422 and bad.json()["field"] == "Vigila-Purpose"


def test_api_docs_work_offline(world: World) -> None:
    page = world.client.get("/api/docs")
    assert page.status_code == 200
    assert "/api/docs/static/swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower()
    js = world.client.get("/api/docs/static/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 500_000
