"""Clips from indexed segments: real ffmpeg, real files; the index on SQLite and PostgreSQL.

The segments are made once per module the way the recorder makes them (stream copy of
the simulated cameras' clip into the segment muxer, fragmented MP4, timestamps reset):
three 4 s segments, a key frame every 2 s, 25 frames a second.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from vigila.core import Conflict, InvalidInput, NotFound
from vigila.recording.clips import SegmentRef, cut_clip, segments_for
from vigila.recording.index import insert_segment
from vigila.recording.probe import file_digest
from vigila.recording.recorder import Segment
from vigila.sim import clip as sim_clip
from vigila.store import Database

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
                                reason="ffmpeg and ffprobe are needed")

T0 = datetime(2026, 11, 25, 10, 0, 0, tzinfo=UTC)
FPS = 25
GOP = 2 * FPS
SEGMENT = 4  # seconds
SMALL = sim_clip.ClipSpec("clips-test", 320, 240, seconds=12, bitrate_kbps=300, font_size=16)
OTHER = sim_clip.ClipSpec("clips-test-other", 352, 288, seconds=4, bitrate_kbps=300,
                          font_size=16)
RECORDER_MUX = ["-f", "segment", "-reset_timestamps", "1", "-segment_format", "mp4",
                "-segment_format_options",
                "movflags=+frag_keyframe+empty_moov+default_base_moof"]


def _segment(raw: Path, folder: Path) -> list[Path]:
    """Split a raw H.264 clip into 4 s fragmented MP4s with the recorder's muxer options."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-framerate", str(FPS), "-i", str(raw),
                    "-map", "0:v:0", "-c", "copy", *RECORDER_MUX,
                    "-segment_time", str(SEGMENT), str(folder / "seg-%03d.mp4")],
                   check=True, timeout=60)
    return sorted(folder.glob("seg-*.mp4"))


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    base = tmp_path_factory.mktemp("clips")
    cache = base / "cache"
    return {"small": _segment(sim_clip.ensure_clip(cache, SMALL), base / "small"),
            "other": _segment(sim_clip.ensure_clip(cache, OTHER), base / "other")}


def _place(root: Path, camera: str, files: list[Path], first: datetime) -> list[SegmentRef]:
    """Files laid out as the recorder lays them out, one after the other from `first`."""
    refs = []
    at = first
    for source in files:
        relative = f"{camera}/{at:%Y-%m-%d}/{at:%H}/{at:%M.%S}.mp4"
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        size, digest = file_digest(target)
        refs.append(SegmentRef(camera, relative, at, at + timedelta(seconds=SEGMENT), size,
                               digest))
        at += timedelta(seconds=SEGMENT)
    return refs


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "rec"


@pytest.fixture
def refs(root: Path, made: dict[str, list[Path]]) -> list[SegmentRef]:
    return _place(root, "CAM-1", made["small"], T0)


def probe(path: Path, entries: str) -> dict[str, Any]:
    result = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-of", "json",
                             "-show_entries", entries, str(path)],
                            capture_output=True, text=True, timeout=30, check=True)
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def packets(path: Path) -> list[tuple[float, bool]]:
    data = probe(path, "packet=pts_time,flags")
    return sorted((float(p["pts_time"]), "K" in p["flags"]) for p in data["packets"])


def stream(path: Path) -> dict[str, Any]:
    info: dict[str, Any] = probe(path, "stream=codec_name,profile,width,height")["streams"][0]
    return info


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_segments_for_overlap_order_and_validation(db: Database) -> None:
    def row(camera: str, start: float, end: float, name: str) -> Segment:
        return Segment(camera, at(start), at(end), 100, f"{camera}/{name}.mp4", "0" * 64)

    with db.write() as conn:
        for seg in (row("CAM-1", 8, 12, "c"), row("CAM-1", 0, 4, "a"), row("CAM-1", 4, 8, "b"),
                    row("CAM-2", 0, 4, "x")):
            insert_segment(conn, seg)
    with db.read() as conn:
        found = segments_for(conn, "CAM-1", at(3), at(8))
        assert [r.path for r in found] == ["CAM-1/a.mp4", "CAM-1/b.mp4"]  # [start, end)
        assert found[0] == SegmentRef("CAM-1", "CAM-1/a.mp4", at(0), at(4), 100, "0" * 64)
        assert segments_for(conn, "CAM-1", at(12), at(20)) == []
        with pytest.raises(InvalidInput, match="camera"):
            segments_for(conn, "../CAM-1", at(0), at(4))
        with pytest.raises(InvalidInput, match="zone"):
            segments_for(conn, "CAM-1", datetime(2026, 11, 25), at(4))
        with pytest.raises(InvalidInput, match="after the start"):
            segments_for(conn, "CAM-1", at(4), at(4))


def test_clip_is_a_stream_copy_across_segments(root: Path, refs: list[SegmentRef],
                                               tmp_path: Path) -> None:
    out = tmp_path / "out" / "clip.mp4"
    made = cut_clip(root, refs, at(3.1), at(9.5), out)

    # It starts on the key frame at or before the start, and reaches the end.
    assert made.start == at(2)
    assert made.end == at(9.52)  # the frame at 9.48 s lasts until 9.52 s
    assert made.sources == refs
    assert made.path == out and made.bytes == out.stat().st_size
    assert (made.bytes, made.sha256) == file_digest(out)

    # Same codec, profile and picture: nothing was re-encoded.
    assert stream(out) == stream(root / refs[0].path)
    frames = packets(out)
    assert frames[0] == (0.0, True)
    expected = (made.end - made.start).total_seconds() * FPS
    assert len(frames) == round(expected) == 188
    assert abs(len(frames) - (at(9.5) - at(3.1)).total_seconds() * FPS) <= GOP
    # Continuous timestamps across the two segment joins (each segment restarts at 0).
    steps = {round(b[0] - a[0], 6) for a, b in itertools.pairwise(frames)}
    assert steps == {1 / FPS}
    assert [t for t, key in frames if key] == [0.0, 2.0, 4.0, 6.0]

    data = out.read_bytes()
    assert b"moof" not in data  # an ordinary MP4, not fragmented
    assert data.index(b"moov") < data.index(b"mdat")  # +faststart: plays while it downloads
    decoded = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(out), "-f", "null",
                              "-"], capture_output=True, text=True, timeout=60, check=False)
    assert decoded.returncode == 0 and decoded.stderr == ""
    assert not list(out.parent.glob(".*"))  # no temporary files left behind


def test_clip_edges_and_holes(root: Path, refs: list[SegmentRef], tmp_path: Path) -> None:
    # A range starting before the video starts with it; a range on a key frame starts there.
    early = cut_clip(root, refs, at(-30), at(1), tmp_path / "early.mp4")
    assert (early.start, early.end, early.sources) == (at(0), at(1), refs[:1])
    exact = cut_clip(root, refs, at(4), at(12), tmp_path / "exact.mp4")
    assert (exact.start, exact.end, exact.sources) == (at(4), at(12), refs[1:])
    # A hole (the middle segment missing from the index) is closed up in the file.
    holed = cut_clip(root, [refs[0], refs[2]], at(0), at(12), tmp_path / "holed.mp4")
    assert (holed.start, holed.end) == (at(0), at(12))
    frames = packets(tmp_path / "holed.mp4")
    assert len(frames) == 8 * FPS
    assert {round(b[0] - a[0], 6) for a, b in itertools.pairwise(frames)} == {0.04}


def test_tampered_or_missing_source_is_refused(root: Path, refs: list[SegmentRef],
                                               tmp_path: Path) -> None:
    target = root / refs[1].path
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    out = tmp_path / "clip.mp4"
    with pytest.raises(Conflict, match=f"{refs[1].path} does not match the index"):
        cut_clip(root, refs, at(0), at(12), out)
    assert not out.exists()
    # Without the damaged segment the clip is cut as usual.
    assert cut_clip(root, refs[:1], at(0), at(3), out).sources == refs[:1]

    target.unlink()
    with pytest.raises(Conflict, match=f"{refs[1].path} is missing"):
        cut_clip(root, refs, at(0), at(12), tmp_path / "other.mp4")
    assert not (tmp_path / "other.mp4").exists()


def test_paths_cannot_leave_the_root(root: Path, refs: list[SegmentRef],
                                     tmp_path: Path) -> None:
    outside = tmp_path / "outside.mp4"
    shutil.copyfile(root / refs[0].path, outside)
    size, digest = file_digest(outside)
    for path in ("../outside.mp4", "/etc/passwd", "CAM-1/./x.mp4", "CAM-1\\..\\x.mp4",
                 "CAM-1/x.mp4\nfile '/etc/passwd'"):
        bad = SegmentRef("CAM-1", path, at(0), at(4), size, digest)
        with pytest.raises(InvalidInput, match="not a plain relative path"):
            cut_clip(root, [bad], at(0), at(4), tmp_path / "clip.mp4")
    # A link inside the root is not followed, wherever it leads.
    link = root / "CAM-1" / "2026-11-25" / "10" / "59.00.mp4"
    link.symlink_to(outside)
    linked = SegmentRef("CAM-1", link.relative_to(root).as_posix(), at(0), at(4), size, digest)
    for verify in (True, False):
        with pytest.raises(InvalidInput, match="link"):
            cut_clip(root, [linked], at(0), at(4), tmp_path / "clip.mp4", verify=verify)
    assert not (tmp_path / "clip.mp4").exists()


def test_no_video_and_mixed_formats(root: Path, refs: list[SegmentRef],
                                    made: dict[str, list[Path]], tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no video"):
        cut_clip(root, [], at(0), at(4), tmp_path / "clip.mp4")
    with pytest.raises(NotFound, match="no video for CAM-1"):  # the index overlaps, files do not
        cut_clip(root, refs[:1], at(4.5), at(6), tmp_path / "clip.mp4")
    other = _place(root, "CAM-1", made["other"], at(12))
    with pytest.raises(Conflict, match="differ in format"):
        cut_clip(root, [*refs, *other], at(10), at(14), tmp_path / "clip.mp4")
    with pytest.raises(InvalidInput, match="one camera"):
        cut_clip(root, [refs[0], replace(refs[1], camera="CAM-2")], at(0), at(8),
                 tmp_path / "clip.mp4")
