"""Retention, legal holds and the disk guard, on SQLite and PostgreSQL.

Segments here are small files with index rows, so the rules can be checked exactly:
which segment goes, which stays, what the audit trail says.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from conftest import CONSOLE, World
from vigila.access import Principal, Role, audit
from vigila.access.tables import audit_log
from vigila.core import Conflict, Forbidden, InvalidInput, NotFound
from vigila.recording import (
    HoldIn,
    HoldRelease,
    RecordingService,
    RetentionIn,
    Segment,
    ServiceOptions,
    create_hold,
    enforce_disk,
    list_holds,
    purge_expired,
    release_hold,
    set_retention,
)
from vigila.recording.index import insert_segment
from vigila.recording.tables import segments
from vigila.store import Database

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SEG = timedelta(minutes=10)


def investigator(zones: list[str] | None = None) -> Principal:
    return Principal(1, "inv", "pl-test", frozenset({Role.INVESTIGATOR}), zones is None,
                     frozenset(zones or []))


def supervisor() -> Principal:
    return Principal(2, "sup", "pl-test", frozenset({Role.SUPERVISOR}), True)


def lay(db: Database, root: Path, camera: str, start: datetime, count: int,
        size: int = 1000) -> list[Segment]:
    """`count` back-to-back segments from `start`, each a file of `size` bytes."""
    out = []
    with db.write() as conn:
        for n in range(count):
            s = start + n * SEG
            rel = f"{camera}/{s:%Y-%m-%d}/{s:%H}/{s:%M.%S}.mp4"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(b"\0" * size)
            seg = Segment(camera, s, s + SEG, size, rel, "0" * 64)
            insert_segment(conn, seg)
            out.append(seg)
    return out


def indexed(db: Database) -> set[str]:
    with db.read() as conn:
        return set(conn.execute(sa.select(segments.c.path)).scalars())


def on_disk(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*.mp4")}


def audit_entries(db: Database, action: str) -> list[dict[str, Any]]:
    with db.read() as conn:
        rows = conn.execute(sa.select(audit_log).where(audit_log.c.action == action)
                            .order_by(audit_log.c.seq)).mappings().all()
    return [dict(r) for r in rows]


def hold(db: Database, cameras: list[str], start: datetime, end: datetime,
         who: Principal | None = None) -> int:
    with db.write() as conn:
        return create_hold(conn, who or investigator(), HoldIn(
            authority="Procura della Repubblica di Prato", reference="RGNR 4321/2026",
            request_date=date(2026, 11, 1), cameras=cameras, start=start, end=end)).id


def test_purge_deletes_exactly_the_expired_unheld_segments(world: World, tmp_path: Path) -> None:
    db, root = world.db, tmp_path / "rec"
    # CAM-A1 on the 7-day default, CAM-B1 on 2 days; 24 segments each from 9 days ago.
    a1 = lay(db, root, "CAM-A1", NOW - timedelta(days=9), 24)
    b1 = lay(db, root, "CAM-B1", NOW - timedelta(days=9), 12) + lay(
        db, root, "CAM-B1", NOW - timedelta(days=1), 6)
    with db.write() as conn:
        set_retention(conn, CONSOLE, "CAM-B1", RetentionIn(days=2), 7)
    # A hold over the 5th to 8th segment of CAM-A1 (one boundary overlap each side).
    held_id = hold(db, ["CAM-A1"], a1[4].start + timedelta(minutes=5),
                   a1[7].end - timedelta(minutes=5))

    report = purge_expired(db, root, default_days=7, now=NOW)

    cut_a = NOW - timedelta(days=7)
    expected_kept = {s.path for s in a1 if s.end > cut_a or 4 <= a1.index(s) <= 7}
    expected_kept |= {s.path for s in b1 if s.end > NOW - timedelta(days=2)}
    assert indexed(db) == expected_kept
    assert on_disk(root) == expected_kept  # files and rows agree
    assert report.deleted == {"CAM-A1": 20, "CAM-B1": 12}
    assert report.held_kept == 4
    assert report.freed_bytes == 32 * 1000
    entries = audit_entries(db, "recording.purge")
    assert {e["resource"] for e in entries} == {"camera:CAM-A1", "camera:CAM-B1"}
    assert sum(e["detail"]["segments"] for e in entries) == 32
    assert all(e["actor"] == "system:retention" for e in entries)
    # A purge twice deletes nothing more.
    assert purge_expired(db, root, default_days=7, now=NOW).total == 0
    # Released, the held segments follow retention again.
    with db.write() as conn:
        release_hold(conn, supervisor(), held_id, HoldRelease(reason="procedimento archiviato"))
    assert purge_expired(db, root, default_days=7, now=NOW).deleted == {"CAM-A1": 4}
    assert on_disk(root) == indexed(db)


def test_the_recording_service_purges_on_its_own(world: World) -> None:
    """No one calls purge: the service's maintenance loop does, again and again."""
    root, db = world.settings.recordings_root, world.db
    options = ServiceOptions(tick_seconds=0.1, purge_every_seconds=0.5, streams={})
    with RecordingService(db, world.settings, options=options) as service:
        deadline = time.monotonic() + 10
        while service.last_purge is None:  # its first pass, on an empty index
            assert time.monotonic() < deadline, "the service never purged"
            time.sleep(0.05)
        # Laid after that pass: only a later, periodic one can take them.
        now = datetime.now(UTC)
        old = lay(db, root, "CAM-A1", now - timedelta(days=9), 3)
        fresh = lay(db, root, "CAM-A1", now - timedelta(days=1), 2)
        while indexed(db) != {s.path for s in fresh}:
            assert time.monotonic() < deadline, f"still indexed: {indexed(db)}"
            time.sleep(0.05)
    assert on_disk(root) == {s.path for s in fresh}
    [entry] = audit_entries(db, "recording.purge")
    assert (entry["actor"], entry["resource"]) == ("system:retention", "camera:CAM-A1")
    assert entry["detail"]["segments"] == len(old)


def test_a_segment_straddling_the_cutoff_stays(world: World, tmp_path: Path) -> None:
    db, root = world.db, tmp_path / "rec"
    cut = NOW - timedelta(days=7)
    straddling = lay(db, root, "CAM-A1", cut - timedelta(minutes=5), 1)[0]
    report = purge_expired(db, root, default_days=7, now=NOW)
    assert report.total == 0
    assert indexed(db) == {straddling.path}


def test_a_missing_file_does_not_stop_the_purge(world: World, tmp_path: Path) -> None:
    db, root = world.db, tmp_path / "rec"
    old = lay(db, root, "CAM-A1", NOW - timedelta(days=10), 3)
    (root / old[1].path).unlink()  # a crash after the file went, before the row did
    report = purge_expired(db, root, default_days=7, now=NOW)
    assert report.total == 3 and report.missing_files == 1
    assert indexed(db) == set()


def test_disk_quota_deletes_oldest_unheld_and_never_held(world: World, tmp_path: Path) -> None:
    db, root = world.db, tmp_path / "rec"
    a1 = lay(db, root, "CAM-A1", NOW - timedelta(hours=4), 10, size=100_000)
    b1 = lay(db, root, "CAM-B1", NOW - timedelta(hours=4) + timedelta(minutes=1), 10,
             size=100_000)
    hold(db, ["CAM-A1"], a1[0].start, a1[2].end)  # the three oldest of CAM-A1 are evidence
    # 2 MB on disk; quota 1.5 MB at 90 %: the guard frees down to 95 % of 1.35 MB.
    report = enforce_disk(db, root, quota_bytes=1_500_000, high_water_percent=90)
    kept = indexed(db)
    assert {s.path for s in a1[:3]} <= kept, "held video was deleted"
    assert not report.only_held_left
    assert report.usage.used <= 1_350_000
    # The oldest unheld went first: no unheld segment remains older than a deleted one.
    gone = [s for s in a1[3:] + b1 if s.path not in kept]
    stayed = [s for s in a1[3:] + b1 if s.path in kept]
    assert gone and max(s.start for s in gone) < min(s.start for s in stayed)
    assert on_disk(root) == kept
    assert {e["actor"] for e in audit_entries(db, "recording.purge")} == {"system:disk"}


def test_disk_with_only_held_video_left_deletes_nothing(world: World, tmp_path: Path) -> None:
    db, root = world.db, tmp_path / "rec"
    a1 = lay(db, root, "CAM-A1", NOW - timedelta(hours=2), 6, size=100_000)
    hold(db, ["CAM-A1"], a1[0].start, a1[-1].end)
    report = enforce_disk(db, root, quota_bytes=300_000, high_water_percent=90)
    assert report.only_held_left
    assert report.purge.total == 0
    assert indexed(db) == on_disk(root) == {s.path for s in a1}


def test_disk_under_the_mark_is_left_alone(world: World, tmp_path: Path) -> None:
    db, root = world.db, tmp_path / "rec"
    lay(db, root, "CAM-A1", NOW - timedelta(hours=2), 3)
    report = enforce_disk(db, root, quota_bytes=10_000, high_water_percent=90)
    assert report.purge.total == 0 and not report.usage.over
    with pytest.raises(InvalidInput):
        enforce_disk(db, root, quota_bytes=10_000, high_water_percent=100)


def test_holds_are_zone_scoped_permissioned_and_audited(world: World) -> None:
    db = world.db
    start, end = NOW - timedelta(days=1), NOW
    with db.write() as conn, pytest.raises(NotFound):  # CAM-B1 is outside zona-a
        create_hold(conn, investigator(["zona-a"]), HoldIn(
            authority="Procura", reference="R1", request_date=date(2026, 11, 1),
            cameras=["CAM-A1", "CAM-B1"], start=start, end=end))
    assert audit_entries(db, "hold.create") == []
    operator = Principal(3, "op", "pl-test", frozenset({Role.OPERATOR}), True)
    with db.write() as conn, pytest.raises(Forbidden):
        create_hold(conn, operator, HoldIn(
            authority="Procura", reference="R1", request_date=date(2026, 11, 1),
            cameras=["CAM-A1"], start=start, end=end))
    with db.write() as conn, pytest.raises(InvalidInput):
        create_hold(conn, investigator(), HoldIn(
            authority="Procura", reference="R1", request_date=date(2026, 11, 1),
            cameras=["CAM-A1"], start=end, end=start))
    hold_id = hold(db, ["CAM-A1", "CAM-A2"], start, end, investigator(["zona-a"]))
    entry = audit_entries(db, "hold.create")[0]
    assert entry["actor"] == "inv" and entry["resource"] == f"hold:{hold_id}"
    assert entry["detail"]["reference"] == "RGNR 4321/2026"
    assert entry["detail"]["cameras"] == ["CAM-A1", "CAM-A2"]
    shared = hold(db, ["CAM-A1", "CAM-B1"], start, end)
    with db.read() as conn:  # zona-b only: the zona-a hold is not there at all
        assert [h.id for h in list_holds(conn, investigator(["zona-b"]))] == [shared]
        mine = {h.id: h.cameras for h in list_holds(conn, investigator(["zona-a"]))}
    # A hold over both zones shows each user only the cameras of their own zones.
    assert mine == {hold_id: ["CAM-A1", "CAM-A2"], shared: ["CAM-A1"]}
    with db.write() as conn, pytest.raises(Forbidden):  # investigators cannot release
        release_hold(conn, investigator(), hold_id, HoldRelease(reason="x"))
    with db.write() as conn:
        released = release_hold(conn, supervisor(), hold_id, HoldRelease(reason="archiviato"))
    assert not released.active and released.released_by == "sup"
    with db.write() as conn, pytest.raises(Conflict):
        release_hold(conn, supervisor(), hold_id, HoldRelease(reason="again"))
    (entry,) = audit_entries(db, "hold.release")
    assert entry["detail"]["reason"] == "archiviato"
    with db.read() as conn:
        assert audit.verify(conn).ok


def test_retention_past_seven_days_needs_its_legal_basis(world: World) -> None:
    with world.db.write() as conn, pytest.raises(InvalidInput) as err:
        set_retention(conn, CONSOLE, "CAM-A1", RetentionIn(days=30), 7)
    assert err.value.errors[0].field == "reason"
    with world.db.write() as conn:
        r = set_retention(conn, CONSOLE, "CAM-A1", RetentionIn(
            days=30, reason="richiesta Questura per area a rischio, prot. 77/2026"), 7)
    assert r.days == 30
    (entry,) = audit_entries(world.db, "retention.set")
    assert entry["detail"] == {"days": 30, "before": 7,
                               "reason": "richiesta Questura per area a rischio, prot. 77/2026"}
    with world.db.write() as conn, pytest.raises(NotFound):  # a plate reader has no video
        set_retention(conn, CONSOLE, "LPR-B1", RetentionIn(days=3), 7)


def test_holds_and_retention_over_http(world: World) -> None:
    c = world.client
    body = {"authority": "Procura della Repubblica di Prato", "reference": "RGNR 99/2026",
            "request_date": "2026-11-02", "cameras": ["CAM-A1"],
            "start": "2026-11-19T08:00:00Z", "end": "2026-11-19T09:00:00Z"}
    r = c.post("/api/holds", json=body, headers=world.headers("operator"))
    assert r.status_code == 403
    r = c.post("/api/holds", json=body, headers=world.headers("investigator"))
    assert r.status_code == 201, r.text
    hold_id = r.json()["id"]
    assert r.json()["active"] is True and r.json()["cameras"] == ["CAM-A1"]
    r = c.post("/api/holds", json={**body, "start": "2026-11-19T08:00:00"},
               headers=world.headers("investigator"))
    assert r.status_code == 422  # a time without its zone
    assert c.get("/api/holds", headers=world.headers("supervisor")).json()[0]["id"] == hold_id
    r = c.post(f"/api/holds/{hold_id}/release", json={"reason": "x"},
               headers=world.headers("investigator"))
    assert r.status_code == 403
    r = c.post(f"/api/holds/{hold_id}/release", json={"reason": "archiviato"},
               headers=world.headers("supervisor"))
    assert r.status_code == 200 and r.json()["active"] is False
    r = c.post(f"/api/holds/{hold_id}/release", json={"reason": "archiviato"},
               headers=world.headers("supervisor"))
    assert r.status_code == 409
    assert c.get("/api/holds/999", headers=world.headers("supervisor")).status_code == 404

    r = c.put("/api/retention/CAM-A1", json={"days": 3}, headers=world.headers("admin_a"))
    assert r.status_code == 200 and r.json()["days"] == 3
    r = c.put("/api/retention/CAM-B1", json={"days": 3}, headers=world.headers("admin_a"))
    assert r.status_code == 404  # outside zona-a
    r = c.put("/api/retention/CAM-A1", json={"days": 3}, headers=world.headers("operator"))
    assert r.status_code == 403
    listing = {x["camera_id"]: x for x in c.get(
        "/api/retention", headers=world.headers("admin_a")).json()}
    assert listing["CAM-A1"]["days"] == 3 and not listing["CAM-A1"]["default"]
    assert listing["CAM-A2"] == {**listing["CAM-A2"], "days": 7, "default": True}
    assert "CAM-B1" not in listing
