"""The recording index: DatabaseSink, rescan of the disk, the timeline (SQLite and PostgreSQL)."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from vigila.recording import DatabaseSink, Gap, Segment, rescan, timeline
from vigila.recording.index import HOLE_REASON, QUARANTINE_DIR, probe_duration
from vigila.recording.tables import segments
from vigila.store import Database

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
                                reason="ffmpeg and ffprobe are needed")

T0 = datetime(2026, 11, 25, 10, 0, 0, tzinfo=UTC)
HOUR_DIR = Path("CAM-1") / "2026-11-25" / "10"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 2 s fragmented MP4, made once."""
    out = tmp_path_factory.mktemp("clip") / "clip.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi",
         "-i", "testsrc2=size=320x240:rate=25", "-t", "2", "-c:v", "libx264", "-g", "25",
         "-movflags", "+frag_keyframe+empty_moov+default_base_moof", str(out)],
        check=True, timeout=60)
    return out


def _place(root: Path, relative: Path | str, source: Path) -> Path:
    target = root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


@pytest.fixture
def root(tmp_path: Path, clip: Path) -> Path:
    """Three consecutive segments, one garbage file, and names that must be ignored."""
    root = tmp_path / "rec"
    for second in (0, 2, 4):
        _place(root, HOUR_DIR / f"00.{second:02d}.mp4", clip)
    garbage = root / HOUR_DIR / "00.06.mp4"
    garbage.write_bytes(b"\x00\x00\x00\x18ftypnot really a video" * 50)
    _place(root, Path("bad id!") / "2026-11-25" / "10" / "00.00.mp4", clip)  # not a device id
    _place(root, HOUR_DIR / "99.99.mp4", clip)  # no such time
    outside = _place(tmp_path, "outside.mp4", clip)
    (root / HOUR_DIR / "00.08.mp4").symlink_to(outside)  # a link out of the root
    (root / "index.jsonl").write_text("")  # the JsonlSink's own file: skipped quietly
    return root


def _count(db: Database, **where: str) -> int:
    with db.read() as conn:
        query = sa.select(sa.func.count()).select_from(segments)
        for column, value in where.items():
            query = query.where(segments.c[column] == value)
        return int(conn.execute(query).scalar_one())


def test_rescan_indexes_quarantines_ignores_and_is_idempotent(db: Database, root: Path) -> None:
    report = rescan(db, root)
    assert (report.indexed, report.already_known, report.quarantined) == (3, 0, 1)
    assert sorted(report.ignored_paths) == sorted([
        "bad id!", f"{HOUR_DIR.as_posix()}/00.08.mp4", f"{HOUR_DIR.as_posix()}/99.99.mp4"])
    assert report.ignored == 3
    # The unreadable file is moved, not deleted, under the same relative path.
    assert not (root / HOUR_DIR / "00.06.mp4").exists()
    assert (root / QUARANTINE_DIR / HOUR_DIR / "00.06.mp4").is_file()
    assert report.quarantined_paths == [f"{HOUR_DIR.as_posix()}/00.06.mp4"]
    # The link's target outside the root is untouched and not indexed.
    assert (root.parent / "outside.mp4").is_file()

    with db.read() as conn:
        rows = conn.execute(sa.select(segments).order_by(segments.c.start)).mappings().all()
    assert [r["path"] for r in rows] == [f"{HOUR_DIR.as_posix()}/00.{s:02d}.mp4" for s in (0, 2, 4)]
    first = rows[0]
    assert first["camera_id"] == "CAM-1"  # not in the registry: no foreign key stops it
    assert first["start"] == T0
    assert first["duration"] == pytest.approx(2.0, abs=0.05)
    assert first["end"] == T0 + timedelta(seconds=first["duration"])
    assert first["bytes"] == (root / first["path"]).stat().st_size
    assert len(first["sha256"]) == 64

    again = rescan(db, root)
    assert (again.indexed, again.already_known, again.quarantined) == (0, 3, 0)
    assert _count(db) == 3


def test_database_sink_is_idempotent_on_path(db: Database) -> None:
    sink = DatabaseSink(db)
    segment = Segment("CAM-9", T0, T0 + timedelta(seconds=10), 1234, "CAM-9/x/10/00.00.mp4",
                      "a" * 64)
    sink.add_segment(segment)
    sink.add_segment(segment)
    assert _count(db, path=segment.path) == 1
    gap = Gap("CAM-9", T0 + timedelta(seconds=10), T0 + timedelta(seconds=20), "stream ended")
    sink.add_gap(gap)
    sink.add_gap(gap)
    with db.read() as conn:
        entries = timeline(conn, "CAM-9", T0, T0 + timedelta(minutes=1))
    assert [(e.kind, e.reason) for e in entries] == [("span", ""), ("gap", "stream ended")]


def test_timeline_spans_gaps_and_empty_ranges(db: Database, root: Path) -> None:
    rescan(db, root)
    with db.read() as conn:
        entries = timeline(conn, "CAM-1", T0 - timedelta(minutes=1), T0 + timedelta(minutes=1))
    assert len(entries) == 1
    span = entries[0]
    assert (span.kind, span.start, span.segments) == ("span", T0, 3)
    assert span.duration == pytest.approx(6.0, abs=0.1)

    sink = DatabaseSink(db)
    sink.add_gap(Gap("CAM-1", T0 + timedelta(seconds=20), T0 + timedelta(seconds=30),
                     "connection refused"))
    sink.add_segment(Segment("CAM-1", T0 + timedelta(seconds=30), T0 + timedelta(seconds=32),
                             10, "CAM-1/2026-11-25/10/00.30.mp4", "b" * 64))
    with db.read() as conn:
        entries = timeline(conn, "CAM-1", T0, T0 + timedelta(minutes=1))
        clipped = timeline(conn, "CAM-1", T0 + timedelta(seconds=1), T0 + timedelta(seconds=3))
        empty = timeline(conn, "CAM-1", T0 + timedelta(hours=1), T0 + timedelta(hours=2))
        unknown = timeline(conn, "CAM-404", T0, T0 + timedelta(minutes=1))
    assert [(e.kind, (e.start - T0).total_seconds(), round((e.end - T0).total_seconds()), e.reason)
            for e in entries] == [
        ("span", 0.0, 6, ""),
        ("gap", pytest.approx(6.0, abs=0.1), 20, HOLE_REASON),  # a hole nobody explained
        ("gap", 20.0, 30, "connection refused"),
        ("span", 30.0, 32, ""),
    ]
    assert [(e.kind, e.start, e.end) for e in clipped] == [
        ("span", T0 + timedelta(seconds=1), T0 + timedelta(seconds=3))]
    assert empty == []
    assert unknown == []


def test_truncated_fragmented_mp4_is_indexed_shorter(db: Database, tmp_path: Path,
                                                     clip: Path) -> None:
    root = tmp_path / "rec"
    data = clip.read_bytes()
    target = root / "CAM-2" / "2026-11-25" / "10" / "00.00.mp4"
    target.parent.mkdir(parents=True)
    target.write_bytes(data[: int(len(data) * 0.6)])  # a crash mid-write
    # ffprobe's format=duration still says 2.0 here: the last fragment's header survived.
    readable = probe_duration(target)
    assert readable is not None
    assert 0.5 < readable < 1.9

    report = rescan(db, root)
    assert (report.indexed, report.quarantined) == (1, 0)
    with db.read() as conn:
        duration = conn.execute(sa.select(segments.c.duration)).scalar_one()
    assert duration == pytest.approx(readable)
