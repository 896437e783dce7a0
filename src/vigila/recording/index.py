"""The recording index in the database: a sink for the recorder, a rescan, a timeline.

`DatabaseSink` takes the recorder's segments and gaps; a segment's path is unique, so
re-adding one (a rescan after a crash, a retried write) is a no-op. `rescan` walks the
recording root (``<camera>/<YYYY-MM-DD>/<HH>/<MM.SS>.mp4``, UTC start) and indexes what
the index misses; a file ffprobe cannot read is moved under ``.quarantine/``, never
deleted. `timeline` answers what is recorded for one camera between two instants.
"""

from __future__ import annotations

import itertools
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from vigila.core import InvalidInput
from vigila.recording.probe import file_digest, probe_duration
from vigila.recording.recorder import GAPS_FILE, INDEX_FILE, Gap, Segment, check_camera_id
from vigila.recording.tables import recording_gaps, segments
from vigila.store import Database

QUARANTINE_DIR = ".quarantine"
CONTIGUOUS = timedelta(seconds=1)  # segments closer than this make one span
HOLE_REASON = "no recording"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_HOUR = re.compile(r"\d{2}")
_FILE = re.compile(r"(\d{2})\.(\d{2})(?:-\d{1,6})?\.mp4")  # -N: two segments in one second


# --- writing ------------------------------------------------------------------


def insert_segment(conn: Connection, segment: Segment) -> bool:
    """Index one segment; False (and nothing written) when its path is already indexed."""
    values = {"camera_id": segment.camera, "start": segment.start, "end": segment.end,
              "duration": segment.duration, "bytes": segment.bytes, "path": segment.path,
              "sha256": segment.sha256}
    # ON CONFLICT DO NOTHING: two writers racing on one path never fail, never duplicate.
    stmt: Any
    if conn.dialect.name == "postgresql":
        stmt = postgresql.insert(segments).values(values).on_conflict_do_nothing(
            index_elements=["path"])
    elif conn.dialect.name == "sqlite":
        stmt = sqlite.insert(segments).values(values).on_conflict_do_nothing(
            index_elements=["path"])
    else:  # pragma: no cover - Vigila runs on SQLite and PostgreSQL only
        known = conn.execute(sa.select(segments.c.id).where(segments.c.path == segment.path))
        if known.first() is not None:
            return False
        stmt = segments.insert().values(values)
    return bool(conn.execute(stmt).rowcount)


def insert_gap(conn: Connection, gap: Gap) -> bool:
    """Record one outage; False when the very same one (camera, start, end) is recorded."""
    same = sa.select(recording_gaps.c.id).where(
        recording_gaps.c.camera_id == gap.camera, recording_gaps.c.start == gap.start,
        recording_gaps.c.end == gap.end)
    if conn.execute(same).first() is not None:
        return False
    conn.execute(recording_gaps.insert().values(
        camera_id=gap.camera, start=gap.start, end=gap.end, reason=gap.reason[:64]))
    return True


class DatabaseSink:
    """A `SegmentSink` writing into the ``segments`` and ``recording_gaps`` tables."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add_segment(self, segment: Segment) -> None:
        with self.db.write() as conn:
            insert_segment(conn, segment)

    def add_gap(self, gap: Gap) -> None:
        with self.db.write() as conn:
            insert_gap(conn, gap)


# --- rescanning the disk ---------------------------------------------------------


@dataclass
class RescanReport:
    indexed: int = 0
    already_known: int = 0
    quarantined: int = 0
    ignored: int = 0
    quarantined_paths: list[str] = field(default_factory=list)  # where they came from
    ignored_paths: list[str] = field(default_factory=list)


def _start_of(date: str, hour: str, name: str) -> datetime | None:
    """The UTC start a segment's path names, or None when it is no real time."""
    match = _FILE.fullmatch(name)
    if not (match and _DATE.fullmatch(date) and _HOUR.fullmatch(hour)):
        return None
    try:
        return datetime.strptime(f"{date} {hour}:{match[1]}:{match[2]}",
                                 "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def _candidates(root: Path, report: RescanReport) -> list[tuple[str, datetime, Path]]:
    """(camera, start, file) for each plain file laid out as a segment; the rest ignored.

    Symbolic links are never followed: a link could lead the rescan out of the root.
    Hidden entries (``.quarantine``, the recorder's ``.partial``) and the recorder's own
    JSON Lines files are skipped without comment.
    """
    found: list[tuple[str, datetime, Path]] = []

    def ignore(path: Path) -> None:
        report.ignored += 1
        report.ignored_paths.append(path.relative_to(root).as_posix())

    def entries(folder: Path) -> list[os.DirEntry[str]]:
        with os.scandir(folder) as it:
            return sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)

    for cam in entries(root):
        path = root / cam.name
        if cam.name in (INDEX_FILE, GAPS_FILE) and cam.is_file(follow_symlinks=False):
            continue
        try:
            check_camera_id(cam.name)
        except InvalidInput:
            ignore(path)
            continue
        if not cam.is_dir(follow_symlinks=False):
            ignore(path)
            continue
        for day in entries(path):
            if not (day.is_dir(follow_symlinks=False) and _DATE.fullmatch(day.name)):
                ignore(path / day.name)
                continue
            for hour in entries(path / day.name):
                if not (hour.is_dir(follow_symlinks=False) and _HOUR.fullmatch(hour.name)):
                    ignore(path / day.name / hour.name)
                    continue
                for file in entries(path / day.name / hour.name):
                    full = path / day.name / hour.name / file.name
                    start = _start_of(day.name, hour.name, file.name)
                    if start is None or not file.is_file(follow_symlinks=False):
                        ignore(full)
                        continue
                    found.append((cam.name, start, full))
    return found


def _quarantine(root: Path, path: Path) -> Path:
    """Move a file to ``<root>/.quarantine/<same relative path>``; never overwrite one."""
    target = root / QUARANTINE_DIR / path.relative_to(root)
    target.parent.mkdir(parents=True, exist_ok=True)
    number = 1
    final = target
    while final.exists():
        final = target.with_name(f"{target.name}.{number}")
        number += 1
    os.replace(path, final)
    return final


def rescan(db: Database, root: Path, *, ffprobe: str = "ffprobe") -> RescanReport:
    """Index the segments under `root` that the index misses; quarantine unreadable ones."""
    report = RescanReport()
    if not root.is_dir():
        return report
    known: dict[str, set[str]] = {}  # camera -> indexed paths, read once per camera
    for camera, start, path in _candidates(root, report):
        relative = path.relative_to(root).as_posix()
        if camera not in known:
            with db.read() as conn:
                known[camera] = set(conn.execute(
                    sa.select(segments.c.path).where(segments.c.camera_id == camera)).scalars())
        if relative in known[camera]:
            report.already_known += 1
            continue
        duration = probe_duration(path, ffprobe) if path.stat().st_size > 0 else None
        if duration is None:
            _quarantine(root, path)
            report.quarantined += 1
            report.quarantined_paths.append(relative)
            continue
        size, digest = file_digest(path)
        segment = Segment(camera, start, start + timedelta(seconds=duration), size, relative,
                          digest)
        with db.write() as conn:
            if insert_segment(conn, segment):
                report.indexed += 1
            else:  # indexed meanwhile by a running recorder
                report.already_known += 1
    return report


# --- the timeline -----------------------------------------------------------------


@dataclass(frozen=True)
class TimelineEntry:
    """A recorded span (contiguous segments) or a gap, clipped to the asked range."""

    kind: Literal["span", "gap"]
    start: datetime
    end: datetime
    segments: int = 0  # spans: how many segments it joins
    reason: str = ""  # gaps: the recorder's reason, or HOLE_REASON for an unexplained hole

    @property
    def duration(self) -> float:
        return (self.end - self.start).total_seconds()


def _subtract(start: datetime, end: datetime,
              covers: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """The parts of [start, end) that none of `covers` (sorted by start) overlaps."""
    pieces = []
    cursor = start
    for c_start, c_end in covers:
        if c_end <= cursor or c_start >= end:
            continue
        if c_start > cursor:
            pieces.append((cursor, c_start))
        cursor = max(cursor, c_end)
        if cursor >= end:
            break
    if cursor < end:
        pieces.append((cursor, end))
    return pieces


def timeline(conn: Connection, camera_id: str, start: datetime,
             end: datetime) -> list[TimelineEntry]:
    """Spans and gaps of one camera in [start, end), in time order; [] when nothing is there."""
    check_camera_id(camera_id)
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidInput.on("start", "times need a zone (UTC)")
    if end <= start:
        raise InvalidInput.on("end", "the end must come after the start")
    rows = conn.execute(
        sa.select(segments.c.start, segments.c.end)
        .where(segments.c.camera_id == camera_id, segments.c.start < end,
               segments.c.end > start)
        .order_by(segments.c.start, segments.c.end)).all()
    spans: list[list[Any]] = []  # [start, end, count]
    for s_start, s_end in rows:
        if spans and s_start <= spans[-1][1] + CONTIGUOUS:
            spans[-1][1] = max(spans[-1][1], s_end)
            spans[-1][2] += 1
        else:
            spans.append([s_start, s_end, 1])
    gap_rows = conn.execute(
        sa.select(recording_gaps.c.start, recording_gaps.c.end, recording_gaps.c.reason)
        .where(recording_gaps.c.camera_id == camera_id, recording_gaps.c.start < end,
               recording_gaps.c.end > start)
        .order_by(recording_gaps.c.start)).all()

    entries = [TimelineEntry("span", max(s, start), min(e, end), segments=n)
               for s, e, n in spans]
    entries += [TimelineEntry("gap", max(g_start, start), min(g_end, end), reason=reason)
                for g_start, g_end, reason in gap_rows if g_end > g_start]
    # Holes between spans that no recorded gap explains.
    covers = sorted((max(g_start, start), min(g_end, end)) for g_start, g_end, _ in gap_rows)
    for before, after in itertools.pairwise(spans):
        for h_start, h_end in _subtract(before[1], after[0], covers):
            entries.append(TimelineEntry("gap", h_start, h_end, reason=HOLE_REASON))
    entries.sort(key=lambda entry: (entry.start, entry.end, entry.kind))
    return entries
