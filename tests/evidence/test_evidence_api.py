"""Evidence over HTTP on both databases: export, download, public key, who may do what."""

from __future__ import annotations

from pathlib import Path

import pytest
from footage import (
    AUTHORITY,
    END,
    REFERENCE,
    START,
    add_investigator_a,
    ffmpeg_missing,
    make_segments,
    record,
)

from conftest import PURPOSE, World
from vigila.access import audit
from vigila.evidence import packages_dir, verify_package

pytestmark = pytest.mark.skipif(ffmpeg_missing, reason="ffmpeg and ffprobe are needed")
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return make_segments(tmp_path_factory.mktemp("footage"))


@pytest.fixture
def recorded(world: World, files: list[Path]) -> World:
    record(world.db, world.settings.recordings_root, files)
    return world


def body(*cameras: str, **changes: object) -> dict[str, object]:
    return {"cameras": list(cameras), "start": START.isoformat(),
            "end": END.isoformat().replace("+00:00", "Z"), "reference": REFERENCE,
            "authority": AUTHORITY, **changes}


def test_round_trip(recorded: World, tmp_path: Path) -> None:
    world = recorded
    as_investigator = world.headers("investigator", **PURPOSE)
    r = world.client.post("/api/evidence", json=body("CAM-A1", "CAM-B1"),
                          headers=as_investigator)
    assert r.status_code == 201, r.text
    made = r.json()
    name = made["package"]
    assert made["download"] == f"/api/evidence/{name}"
    assert made["reference"] == REFERENCE and made["authority"] == AUTHORITY
    a1, b1 = made["cameras"]
    assert (a1["camera"], a1["video"], a1["sources"]) == ("CAM-A1", True, 3)
    assert a1["start"].startswith("2026-11-25T10:00:00")  # the key frame before 10:00:01
    assert b1["gaps"] == [{"start": "2026-11-25T10:00:04Z", "end": "2026-11-25T10:00:08Z",
                           "reason": "connection refused"}]

    r = world.client.get(made["download"], headers=as_investigator)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    assert f'filename="{name}.zip"' in r.headers["content-disposition"]
    archive = tmp_path / "received.zip"
    archive.write_bytes(r.content)

    r = world.client.get("/api/evidence/public-key", headers=world.headers("judge"))
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-pem-file"
    assert r.text.startswith("-----BEGIN PUBLIC KEY-----")
    report = verify_package(archive, r.content)
    assert report.ok, report.problems
    assert report.key_id == r.headers["vigila-key-id"] == made["key_id"]
    assert report.custody is not None and report.custody.operator == "investigator"

    with world.db.read() as conn:
        [download] = audit.entries(conn, audit.AuditQuery(action="evidence.download"), 10)
        [exported] = audit.entries(conn, audit.AuditQuery(action="evidence.export"), 10)
    assert download["actor"] == "investigator" and download["purpose"] == PURPOSE["text"]
    assert download["detail"]["manifest_sha256"] == made["manifest_sha256"]
    assert exported["detail"]["manifest_sha256"] == made["manifest_sha256"]


def test_who_may_export_and_download(recorded: World) -> None:
    world = recorded
    a_only = add_investigator_a(world)
    # No permission: 403; no purpose: 428.
    for who in ("judge", "operator_a", "admin"):
        r = world.client.post("/api/evidence", json=body("CAM-A1"),
                              headers=world.headers(who, **PURPOSE))
        assert r.status_code == 403, (who, r.text)
    r = world.client.post("/api/evidence", json=body("CAM-A1"),
                          headers=world.headers("investigator"))
    assert r.status_code == 428
    # Another zone's camera is not found, and nothing is written.
    r = world.client.post("/api/evidence", json=body("CAM-A1", "CAM-B1"),
                          headers=world.headers(a_only, **PURPOSE))
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    assert not packages_dir(world.settings).exists()

    both = world.client.post("/api/evidence", json=body("CAM-A1", "CAM-B1"),
                             headers=world.headers("investigator", **PURPOSE)).json()["download"]
    only_a = world.client.post("/api/evidence", json=body("CAM-A1"),
                               headers=world.headers("investigator", **PURPOSE)).json()["download"]
    # A package is for its maker, or for whoever holds all its cameras' zones.
    assert world.client.get(both, headers=world.headers(a_only, **PURPOSE)).status_code == 404
    assert world.client.get(only_a, headers=world.headers(a_only, **PURPOSE)).status_code == 200
    assert world.client.get(both, headers=world.headers("supervisor", **PURPOSE)).status_code == 200
    assert world.client.get(both, headers=world.headers("judge", **PURPOSE)).status_code == 403
    assert world.client.get(both, headers=world.headers("supervisor")).status_code == 428
    with world.db.read() as conn:
        downloads = audit.entries(conn, audit.AuditQuery(action="evidence.download"), 10)
    assert [d["actor"] for d in downloads] == ["investigator_a", "supervisor"]


def test_bad_requests(recorded: World) -> None:
    world = recorded
    headers = world.headers("investigator", **PURPOSE)
    for change, status in (({"start": "2026-11-25T10:00:00"}, 422),  # no zone
                           ({"cameras": []}, 422), ({"cameras": ["../x"]}, 422),
                           ({"reference": "x"}, 422), ({"extra": 1}, 422),
                           ({"end": "2026-11-26T10:00:02Z"}, 422),  # over 4 hours
                           ({"end": START.isoformat()}, 422),
                           ({"start": "2026-11-20T10:00:00Z",
                             "end": "2026-11-20T10:01:00Z"}, 404)):  # no video
        r = world.client.post("/api/evidence", json=body("CAM-A1", **change), headers=headers)
        assert r.status_code == status, (change, r.text)
        assert r.headers["content-type"] == PROBLEM
    for name in ("..", "..%2F..%2Fetc", "a.b", "-leading", "x" * 101,
                 "nothing-20260101T000000Z"):
        r = world.client.get(f"/api/evidence/{name}", headers=headers)
        assert r.status_code in (404, 422), (name, r.status_code)
    r = world.client.get("/api/evidence/public-key")
    assert r.status_code == 401
    assert not packages_dir(world.settings).exists()
