"""Search over HTTP: roles, purpose, zones, problem+json, GeoJSON, audit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from search_city import SINCE, T0, UNTIL, audit_entries, populate

from conftest import CONSOLE, PASSWORD, PURPOSE, World
from vigila.access import Role, hasher, users

PROBLEM = "application/problem+json"
RANGE: dict[str, Any] = {"since": SINCE.isoformat(), "until": UNTIL.isoformat()}
Rows = dict[str, list[dict[str, Any]]]


@pytest.fixture
def city(world: World) -> Rows:
    rows = populate(world.db)
    # A zone-restricted investigator (operator_a may not search at all).
    with world.db.write() as conn:
        users.create(conn, CONSOLE, users.UserCreate(
            username="investigator_a", full_name="Investigatore A", agency_id="pl-test",
            roles=[Role.INVESTIGATOR], zone_ids=["zona-a"], password=PASSWORD),
            hasher(world.settings))
    world.tokens["investigator_a"] = world.login("investigator_a")
    return rows


def get(world: World, path: str, who: str = "investigator", purpose: bool = True,
        **params: Any) -> httpx.Response:
    headers = world.headers(who, **PURPOSE) if purpose else world.headers(who)
    response: httpx.Response = world.client.get(path, params=params, headers=headers)
    return response


def problem(r: httpx.Response, status: int, field: str | None = None) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    if field is not None:
        assert r.json()["field"] == field, r.text


def test_search(world: World, city: Rows) -> None:
    r = get(world, "/api/transits", plate="ab 123 cd", **RANGE)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [t["device_id"] for t in body["items"]] == ["LPR-B1", "LPR-A3", "LPR-A2", "LPR-A1"]
    assert body["next_cursor"] is None
    first = body["items"][-1]
    assert first["time"] == "2026-03-02T08:00:00Z" and first["zone_id"] == "zona-a"
    assert first["device_name"] == "Dispositivo LPR-A1" and first["distance"] is None
    r = get(world, "/api/transits", "investigator_a", plate="AB123CD", **RANGE)
    assert [t["device_id"] for t in r.json()["items"]] == ["LPR-A3", "LPR-A2", "LPR-A1"]
    r = get(world, "/api/transits", pattern="?B123CD", device=["LPR-A1", "LPR-B2"], **RANGE)
    assert [t["plate"] for t in r.json()["items"]] == ["XB123CD", "AB123CD"]
    r = get(world, "/api/transits", plate="AB123CD", zone=["zona-b"], direction="inbound",
            **RANGE)
    assert [t["device_id"] for t in r.json()["items"]] == ["LPR-B1"]
    r = get(world, "/api/transits", plate="AB123CD", fuzzy="true", limit=2, **RANGE)
    body = r.json()
    assert [(t["plate"], t["distance"]) for t in body["items"]] == [("A8123CD", 1),
                                                                    ("AB123CD", 0)]
    r = get(world, "/api/transits", plate="AB123CD", fuzzy="true", limit=2,
            cursor=body["next_cursor"], **RANGE)
    assert [t["device_id"] for t in r.json()["items"]] == ["LPR-A3", "LPR-A2"]


def test_search_refusals(world: World, city: Rows) -> None:
    path = "/api/transits"
    problem(get(world, path, purpose=False, plate="AB123CD"), 428)
    problem(get(world, path, "operator_a", plate="AB123CD"), 403)
    problem(get(world, path, "admin", plate="AB123CD"), 403)
    problem(get(world, path, "dpo", plate="AB123CD"), 403)
    problem(get(world, path), 422, "plate")
    problem(get(world, path, plate="AB123CD", pattern="AB*"), 422, "plate")
    problem(get(world, path, pattern="AB*", fuzzy="true"), 422, "fuzzy")
    problem(get(world, path, pattern="*?*"), 422, "pattern")
    problem(get(world, path, plate="AB#12"), 422, "plate")
    problem(get(world, path, plate="AB123CD", since=UNTIL.isoformat(),
                until=SINCE.isoformat()), 422, "since")
    problem(get(world, path, plate="AB123CD", since="2026-03-02T08:00:00"), 422, "query.since")
    problem(get(world, path, pattern="*CD", since=(T0 - timedelta(days=30)).isoformat(),
                until=T0.isoformat()), 422, "since")
    problem(get(world, path, plate="AB123CD", limit=1001), 422, "query.limit")
    problem(get(world, path, plate="AB123CD", cursor="bogus"), 422, "cursor")
    problem(get(world, path, plate="AB123CD", since="0001-01-01T00:00:00+01:00"), 422, "since")
    problem(get(world, path, plate="AB123CD", until="0001-01-01T00:00:00Z"), 422, "since")
    # A number is not a time (pydantic would read it as seconds since 1970); the fuzz found it.
    problem(get(world, path, plate="AB123CD", until="0"), 422, "query.until")
    problem(get(world, path, plate="AB123CD", since="1764000000.5"), 422, "query.since")


def test_one_transit(world: World, city: Rows) -> None:
    at_b1 = city["AB123CD"][3]["id"]
    r = get(world, f"/api/transits/{at_b1}")
    assert r.status_code == 200 and r.json()["device_id"] == "LPR-B1", r.text
    problem(get(world, f"/api/transits/{at_b1}", "investigator_a"), 404)
    problem(get(world, f"/api/transits/{at_b1}", purpose=False), 428)
    problem(get(world, "/api/transits/not-a-uuid"), 422)
    r = get(world, f"/api/transits/{city['AB123CD'][0]['id']}", "investigator_a")
    assert r.status_code == 200 and r.json()["zone_id"] == "zona-a"


def test_route(world: World, city: Rows) -> None:
    r = get(world, "/api/plates/AB 123 CD/route", **RANGE)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/geo+json")
    geo = r.json()
    assert geo["type"] == "FeatureCollection" and geo["plate"] == "AB123CD"
    kinds = [(f["geometry"]["type"], f["properties"]["kind"]) for f in geo["features"]]
    assert kinds == [("Point", "transit")] * 4 + [("LineString", "route")]
    assert [f["properties"]["time"] for f in geo["features"][:4]] == [
        "2026-03-02T08:00:00Z", "2026-03-02T08:05:00Z", "2026-03-02T08:10:00Z",
        "2026-03-02T08:20:00Z"]
    r = get(world, "/api/plates/AB123CD/route", "investigator_a", **RANGE)
    assert [f["properties"].get("device_id") for f in r.json()["features"]] == [
        "LPR-A1", "LPR-A2", "LPR-A3", None]
    problem(get(world, "/api/plates/AB123CD/route", "operator"), 403)
    problem(get(world, "/api/plates/AB123CD/route", purpose=False), 428)
    problem(get(world, "/api/plates/AB*/route"), 422, "plate")
    entry = audit_entries(world.db, "plates.route")[0]
    assert entry["actor"] == "investigator" and entry["purpose"] == PURPOSE["text"]
    assert entry["reference"] == PURPOSE["reference"]


def test_convoy(world: World, city: Rows) -> None:
    r = get(world, "/api/plates/AB123CD/convoy", window_seconds=60, min_readers=2, **RANGE)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [(c["plate"], c["readers"]) for c in body["companions"]] == [
        ("CC111CC", 3), ("EE333EE", 2)]
    assert body["target_transits"] == 4 and body["window_seconds"] == 60
    r = get(world, "/api/plates/AB123CD/convoy", **RANGE)  # defaults: 60 s, 3 readers
    assert [c["plate"] for c in r.json()["companions"]] == ["CC111CC"]
    r = get(world, "/api/plates/AB123CD/convoy", "investigator_a", min_readers=4, **RANGE)
    assert r.json()["companions"] == [] and r.json()["target_readers"] == 3
    problem(get(world, "/api/plates/AB123CD/convoy", window_seconds=0), 422,
            "query.window_seconds")
    problem(get(world, "/api/plates/AB123CD/convoy", window_seconds=3601), 422,
            "query.window_seconds")
    problem(get(world, "/api/plates/AB123CD/convoy", min_readers=1), 422, "query.min_readers")
    problem(get(world, "/api/plates/AB123CD/convoy", "supervisor", purpose=False), 428)
    problem(get(world, "/api/plates/AB123CD/convoy", "judge"), 403)
    entries = audit_entries(world.db, "plates.convoy")
    assert len(entries) == 3 and entries[0]["detail"]["plates"] == ["CC111CC", "EE333EE"]
    assert all(e["purpose"] == PURPOSE["text"] for e in entries)


def test_openapi_documents_the_routes(world: World) -> None:
    doc = world.client.get("/api/openapi.json").json()
    route = doc["paths"]["/api/plates/{plate}/route"]["get"]
    assert "application/geo+json" in route["responses"]["200"]["content"]
    params = {p["name"] for p in doc["paths"]["/api/transits"]["get"]["parameters"]}
    assert {"plate", "pattern", "fuzzy", "since", "until", "device", "zone", "direction",
            "limit", "cursor", "vigila-purpose", "vigila-reference"} <= params
