"""Playback without HTTP: the HLS playlist, the MPEG-TS remux, grants (SQLite and PostgreSQL).

Segments are real: encoded once with ffmpeg and cut by its segment muxer with the
recorder's options (fragmented MP4, timestamps reset per file, each opening on a key
frame), then indexed with `insert_segment`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from vigila.core import Conflict, Forbidden, InvalidInput, NotFound
from vigila.recording import Segment
from vigila.recording import playback as pb
from vigila.recording.index import insert_segment
from vigila.recording.probe import file_digest, probe_duration
from vigila.store import Database

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
                                reason="ffmpeg and ffprobe are needed")

T0 = datetime(2026, 11, 25, 10, 0, 0, tzinfo=UTC)
CAM = "CAM-P1"
FPS = 25
MUXER = ["-f", "segment", "-segment_time", "2", "-reset_timestamps", "1",
         "-segment_format", "mp4",
         "-segment_format_options", "movflags=+frag_keyframe+empty_moov+default_base_moof"]


@pytest.fixture(scope="module")
def pieces(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three 2 s fragmented MP4 segments (320x240, 25 fps, a key frame every second)."""
    folder = tmp_path_factory.mktemp("pieces")
    source = folder / "source.h264"
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi",
                    "-i", f"testsrc2=size=320x240:rate={FPS}", "-t", "6", "-c:v", "libx264",
                    "-preset", "veryfast", "-bf", "0", "-g", str(FPS), "-keyint_min", str(FPS),
                    "-sc_threshold", "0", "-pix_fmt", "yuv420p", "-f", "h264", str(source)],
                   check=True, timeout=60)
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-r", str(FPS), "-i", str(source),
                    "-map", "0:v:0", "-c", "copy", *MUXER, str(folder / "%03d.mp4")],
                   check=True, timeout=60)
    found = sorted(folder.glob("*.mp4"))
    assert len(found) == 3
    return found


def place(db: Database, root: Path, camera: str, start: datetime, source: Path) -> Segment:
    """Copy a segment file into the recording layout at `start` and index it."""
    rel = f"{camera}/{start:%Y-%m-%d}/{start:%H}/{start:%M.%S}.mp4"
    target = root / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    duration = probe_duration(target)
    assert duration is not None
    size, digest = file_digest(target)
    segment = Segment(camera, start, start + timedelta(seconds=duration), size, rel, digest)
    with db.write() as conn:
        assert insert_segment(conn, segment)
    return segment


@pytest.fixture
def recorded(db: Database, tmp_path: Path, pieces: list[Path]) -> tuple[Path, list[Segment]]:
    """0-6 s back to back, a 4 s outage, then 10-12 s (the first piece again)."""
    root = tmp_path / "rec"
    starts = [T0, T0 + timedelta(seconds=2), T0 + timedelta(seconds=4),
              T0 + timedelta(seconds=10)]
    sources = [*pieces, pieces[0]]
    return root, [place(db, root, CAM, s, p) for s, p in zip(starts, sources, strict=True)]


def tags(text: str, name: str) -> list[str]:
    return [line.split(":", 1)[1] for line in text.splitlines() if line.startswith(f"#{name}:")]


def probe(data: bytes | Path, *entries: str) -> dict[str, Any]:
    source = "pipe:0" if isinstance(data, bytes) else str(data)
    result = subprocess.run(["ffprobe", "-v", "error", "-of", "json", "-show_entries",
                             ":".join(entries), source],
                            input=data if isinstance(data, bytes) else None,
                            capture_output=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    out: dict[str, Any] = json.loads(result.stdout)
    return out


def nal_units(data: bytes, demuxer: str) -> list[bytes]:
    """The H.264 NAL units inside a file, but access unit delimiters (type 9), which the
    MPEG-TS muxer adds: what a decoder gets."""
    result = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-f", demuxer, "-i", "pipe:0",
                             "-map", "0:v:0", "-c", "copy", "-bsf:v", "h264_mp4toannexb",
                             "-f", "h264", "pipe:1"],
                            input=data, capture_output=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    units = [u for u in re.split(rb"\x00\x00\x00?\x01", result.stdout) if u]
    assert len(units) > 50
    return [u for u in units if u[0] & 0x1F != 9]


# --- the playlist ---------------------------------------------------------------------


def test_playlist_dates_are_the_indexed_starts(db: Database,
                                               recorded: tuple[Path, list[Segment]]) -> None:
    _, segs = recorded
    with db.read() as conn:
        items = pb.playlist_segments(conn, CAM, T0 + timedelta(seconds=1),
                                     T0 + timedelta(minutes=1))
    assert [i.start for i in items] == [s.start for s in segs]  # the first overlaps the start
    text = pb.media_playlist(items, pb.segment_uri("G"), T0 + timedelta(seconds=1))
    lines = text.splitlines()
    assert lines[:5] == ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2",
                         "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-PLAYLIST-TYPE:VOD"]
    assert lines[-1] == "#EXT-X-ENDLIST"
    assert tags(text, "EXT-X-START") == ["TIME-OFFSET=1.000,PRECISE=YES"]
    dates = tags(text, "EXT-X-PROGRAM-DATE-TIME")
    assert dates == ["2026-11-25T10:00:00.000Z", "2026-11-25T10:00:02.000Z",
                     "2026-11-25T10:00:04.000Z", "2026-11-25T10:00:10.000Z"]
    assert [datetime.fromisoformat(d) for d in dates] == [s.start for s in segs]
    durations = [float(v.rstrip(",")) for v in tags(text, "EXTINF")]
    assert durations == pytest.approx([s.duration for s in segs], abs=0.001)
    assert durations == pytest.approx([2.0] * 4, abs=0.05)
    uris = [line for line in lines if line and not line.startswith("#")]
    assert uris == [f"segments/{i.id}.ts?grant=G" for i in items]
    # One discontinuity, at the outage, just before the segment after it.
    assert text.count("#EXT-X-DISCONTINUITY") == 1
    assert lines[lines.index("#EXT-X-DISCONTINUITY") + 1] == \
        "#EXT-X-PROGRAM-DATE-TIME:2026-11-25T10:00:10.000Z"


def test_playlist_seams() -> None:
    def item(n: int, start: float, end: float) -> pb.PlaylistSegment:
        return pb.PlaylistSegment(n, T0 + timedelta(seconds=start), T0 + timedelta(seconds=end),
                                  f"x/{n}.mp4", "0" * 64)

    text = pb.media_playlist([item(1, 0, 10.04), item(2, 10.05, 20), item(3, 19.5, 29.2),
                              item(4, 29.2, 30)], pb.segment_uri("G"))
    # 10 ms apart: continuous; 0.5 s of overlap: timestamps go back, a seam.
    assert text.count("#EXT-X-DISCONTINUITY") == 1
    # Rounded up, not to the nearest: RFC 8216 allows either, old players want the longest.
    assert "#EXT-X-TARGETDURATION:11" in text
    assert "#EXT-X-START" not in text
    empty = pb.media_playlist([], pb.segment_uri("G"))
    assert empty.splitlines()[-1] == "#EXT-X-ENDLIST"
    assert "#EXTINF" not in empty


@pytest.mark.parametrize(("start", "end", "field"), [
    (datetime(2026, 11, 25, 10), T0, "start"),  # naive
    (T0, datetime(2026, 11, 25, 11), "end"),
    (datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))), T0, "start"),  # year 0
    (T0, T0, "end"),
    (T0, T0 - timedelta(seconds=1), "end"),
    (T0, T0 + pb.MAX_PLAYLIST + timedelta(seconds=1), "end"),
])
def test_range_checks_name_the_field(start: datetime, end: datetime, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        pb.check_range(start, end, pb.MAX_PLAYLIST)
    assert caught.value.errors[0].field == field


def test_range_is_answered_in_utc() -> None:
    rome = datetime.fromisoformat("2026-11-25T11:00:00+01:00")
    assert pb.check_range(rome, rome + pb.MAX_PLAYLIST, pb.MAX_PLAYLIST) == (
        T0, T0 + pb.MAX_PLAYLIST)


# --- the media --------------------------------------------------------------------------


def test_segment_remux_is_a_stream_copy_with_running_timestamps(
        db: Database, recorded: tuple[Path, list[Segment]]) -> None:
    root, segs = recorded
    with db.read() as conn:
        items = pb.playlist_segments(conn, CAM, T0, T0 + timedelta(minutes=1))
    third = items[2]
    data = pb.segment_ts(root, third, 4.0)
    info = probe(data, "format=format_name", "stream=codec_name,width,height",
                 "packet=pts_time,flags")
    assert info["format"]["format_name"] == "mpegts"
    assert (info["streams"][0]["codec_name"], info["streams"][0]["width"]) == ("h264", 320)
    packets = info["packets"]
    assert len(packets) == 2 * FPS
    assert "K" in packets[0]["flags"]  # opens on a key frame
    first = float(packets[0]["pts_time"])
    # The offset, plus the TS muxer's fixed 1.4 s head start (the same for every segment).
    assert first == pytest.approx(4.0 + 1.4, abs=0.001)
    # Nothing decoded nor re-encoded: the very same H.264 bytes as in the recorded file.
    original = (root / segs[2].path).read_bytes()
    assert nal_units(data, "mpegts") == nal_units(original, "mp4")


def test_segment_remux_refuses_altered_and_missing_files(
        db: Database, recorded: tuple[Path, list[Segment]]) -> None:
    root, segs = recorded
    with db.read() as conn:
        items = pb.playlist_segments(conn, CAM, T0, T0 + timedelta(minutes=1))
    target = root / segs[1].path
    data = bytearray(target.read_bytes())
    data[-100] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(Conflict, match="SHA-256"):
        pb.segment_ts(root, items[1], 2.0)
    (root / segs[0].path).unlink()
    with pytest.raises(NotFound, match="no longer on disk"):
        pb.segment_ts(root, items[0], 0.0)
    outside = pb.PlaylistSegment(99, T0, T0, "../../etc/passwd", "0" * 64)
    with pytest.raises(Conflict, match="outside"):
        pb.segment_ts(root, outside, 0.0)


# --- grants -------------------------------------------------------------------------------


def test_grant_key_is_private_and_stable(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    key = pb.grant_key(keys)
    assert len(key) == 32
    path = keys / pb.GRANT_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert pb.grant_key(keys) == key
    assert os.listdir(keys) == [pb.GRANT_KEY_FILE]  # no temporary file left behind
    assert pb.grant_key(tmp_path / "other") != key


def test_grant_round_trip_tamper_and_expiry(tmp_path: Path) -> None:
    key = pb.grant_key(tmp_path)
    grant = pb.Grant(7, "ab" * 8, CAM, T0, T0 + timedelta(hours=1), T0 - timedelta(seconds=3),
                     T0 + timedelta(hours=2))
    token = pb.sign_grant(key, grant)
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", token)  # safe in a query string
    assert pb.open_grant(key, token, T0) == grant

    body, mac = token.split(".")
    other = pb.sign_grant(key, pb.Grant(7, "ab" * 8, "CAM-P2", T0, T0 + timedelta(hours=1),
                                        T0, T0 + timedelta(hours=2)))
    forged = [
        f"{other.split('.')[0]}.{mac}",  # another camera's body under this signature
        f"{body}.{mac[:-2]}AA",
        f"{body}x.{mac}",
        body, "", ".", "not base64!.???", "é.é",
        pb.sign_grant(b"k" * 32, grant),  # another installation's key
    ]
    for token_ in forged:
        with pytest.raises(Forbidden, match="not a valid"):
            pb.open_grant(key, token_, T0)
    with pytest.raises(Forbidden, match="expired"):
        pb.open_grant(key, token, T0 + timedelta(hours=2))
