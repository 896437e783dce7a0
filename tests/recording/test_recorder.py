"""The standalone recorder against real simulated RTSP cameras, on loopback.

Segments are 2 s (the clip has a key frame every 2 s) to keep the run short.
Figures (segment durations, gap vs drop, resume delay, ffmpeg CPU) are printed;
``pytest -s`` shows them.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from vigila.core import InvalidInput
from vigila.recording import (
    CameraRecorder,
    JsonlSink,
    Recorder,
    camera_id_from_url,
    check_camera_id,
    check_rtsp_url,
    read_jsonl,
    redact_url,
)
from vigila.recording.cli import record_app
from vigila.recording.recorder import _explain
from vigila.recording.rtsp import Unsupported
from vigila.sim import clip
from vigila.sim.cameras import CameraSimulator, camera_ids

SEGMENT = 2.0
LAYOUT = re.compile(r"(CAM-\d{4})/\d{4}-\d{2}-\d{2}/\d{2}/\d{2}\.\d{2}(-\d+)?\.mp4")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CameraSimulator]:
    cache = tmp_path_factory.mktemp("sim-cache")
    clip.ensure_clip(cache, clip.MAIN)
    with CameraSimulator(camera_ids(4), cache_dir=cache, sub_streams=False) as simulator:
        yield simulator


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def probe(path: Path) -> dict[str, Any]:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", "-show_entries",
         "stream=codec_name,profile,width,height,r_frame_rate:format=duration,bit_rate",
         str(path)], capture_output=True, text=True, timeout=20, check=False)
    assert result.returncode == 0, result.stderr
    info: dict[str, Any] = json.loads(result.stdout)
    return info


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


ENGINES = pytest.mark.parametrize("engine", ["native", "ffmpeg"])


@ENGINES
def test_records_two_cameras_into_indexed_segments(sim: CameraSimulator, tmp_path: Path,
                                                   engine: str) -> None:
    root = tmp_path / "recordings"
    source = probe_source(sim.url("CAM-0001"))
    cameras = ["CAM-0001", "CAM-0002"]
    recorder = Recorder(root, segment_seconds=SEGMENT, engine=engine)
    recorder.add_all([(camera_id, sim.url(camera_id)) for camera_id in cameras])
    with recorder:
        wait_until(lambda: all(s["state"] == "online" for s in recorder.status().values()),
                   10, "both cameras online")
        time.sleep(1.5)  # past the probing burst: measure the steady state
        pids = {c: recorder.cameras[c].pid for c in cameras}
        before = {c: cpu_seconds(pid) for c, pid in pids.items() if pid}
        t0 = time.monotonic()
        time.sleep(7.5)
        used = {c: cpu_seconds(pids[c] or 0) - before[c] for c in before}
        elapsed = time.monotonic() - t0
        status = recorder.status()
    if engine == "ffmpeg":
        print("\nffmpeg CPU per stream (1080p25 4 Mbit/s, copy): "
              + ", ".join(f"{c} {100 * s / elapsed:.1f} %" for c, s in used.items()))
    for camera_id in cameras:
        assert status[camera_id]["state"] == "online"
        assert status[camera_id]["engine"] == engine
        assert status[camera_id]["fps"] == pytest.approx(25, abs=0.5)
        assert status[camera_id]["segments"] >= 3
        assert status[camera_id]["bitrate_bps"] > 1e6

    index = read_jsonl(root / "index.jsonl")
    assert read_jsonl(root / "gaps.jsonl") == []
    on_disk = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.mp4")
                     if ".partial" not in p.parts)
    assert sorted(entry["path"] for entry in index) == on_disk
    assert not list(root.glob("*/.partial/*.mp4"))  # everything was closed and moved
    for camera_id in cameras:
        entries = sorted((e for e in index if e["camera"] == camera_id),
                         key=lambda e: e["start"])
        assert len(entries) >= 4, entries
        durations = [e["duration"] for e in entries]
        print(f"{camera_id}: {len(entries)} segments, durations {durations}")
        for entry in entries:
            path = root / entry["path"]
            match = LAYOUT.fullmatch(entry["path"])
            assert match and match.group(1) == camera_id
            start = when(entry["start"])
            # Named by its UTC start.
            assert entry["path"].startswith(start.strftime(f"{camera_id}/%Y-%m-%d/%H/%M.%S"))
            assert entry["bytes"] == path.stat().st_size
            assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
            assert abs((when(entry["end"]) - start).total_seconds() - entry["duration"]) < 0.01
            info = probe(path)
            stream = info["streams"][0]
            # Copied, not re-encoded: the source's codec, profile, size and rate.
            for key in ("codec_name", "profile", "width", "height", "r_frame_rate"):
                assert stream[key] == source[key], (key, stream, source)
            assert abs(float(info["format"]["duration"]) - entry["duration"]) < 0.1
        for entry in entries[:-1]:  # the last one was cut short by stop()
            assert SEGMENT - 0.1 <= entry["duration"] <= SEGMENT + 2.0 + 0.1  # +1 GOP
            assert 3.0e6 < entry["bytes"] * 8 / entry["duration"] < 5.5e6  # ~4 Mbit/s source
        for first, second in itertools.pairwise(entries):
            assert abs((when(second["start"]) - when(first["end"])).total_seconds()) < 0.5


def probe_source(url: str) -> dict[str, Any]:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", "-rtsp_transport", "tcp", "-show_entries",
         "stream=codec_name,profile,width,height,r_frame_rate", url],
        capture_output=True, text=True, timeout=20, check=False)
    assert result.returncode == 0, result.stderr
    stream: dict[str, Any] = json.loads(result.stdout)["streams"][0]
    return stream


@ENGINES
def test_a_dropped_camera_leaves_one_gap_and_recording_resumes(
        sim: CameraSimulator, tmp_path: Path, engine: str) -> None:
    root = tmp_path / "recordings"
    sink = JsonlSink(root)
    camera = CameraRecorder("CAM-0003", sim.url("CAM-0003"), root, sink,
                            segment_seconds=SEGMENT, engine=engine)
    camera.start()
    try:
        wait_until(lambda: camera.segments >= 1, 12, "a first segment")
        dropped_at = datetime.now(UTC)
        sim.drop("CAM-0003")
        wait_until(lambda: camera.status()["state"] == "offline", 8, "the camera offline")
        offline = camera.status()
        assert offline["offline_since"] is not None
        time.sleep(max(0.0, 6.0 - (datetime.now(UTC) - dropped_at).total_seconds()))
        restored_at = datetime.now(UTC)
        sim.restore("CAM-0003")
        drop_seconds = (restored_at - dropped_at).total_seconds()
        wait_until(lambda: camera.gaps >= 1, 15, "the gap recorded")
        wait_until(lambda: any(when(e["start"]) >= restored_at
                               for e in read_jsonl(root / "index.jsonl")), 10,
                   "a segment after the restore")
    finally:
        camera.stop()
    gaps = read_jsonl(root / "gaps.jsonl")
    assert len(gaps) == 1, gaps
    gap = gaps[0]
    assert gap["camera"] == "CAM-0003"
    index = sorted(read_jsonl(root / "index.jsonl"), key=lambda e: e["start"])
    before = [e for e in index if when(e["start"]) < restored_at]
    after = [e for e in index if when(e["start"]) >= restored_at]
    assert before and after
    resume_delay = (when(after[0]["start"]) - restored_at).total_seconds()
    print(f"\ndrop {drop_seconds:.2f} s -> gap {gap['duration']:.2f} s "
          f"({gap['reason']}); recording resumed {resume_delay:.2f} s after the restore")
    # The gap runs from the end of the last segment to the start of the first new one.
    assert when(gap["start"]) == when(before[-1]["end"])
    assert when(gap["end"]) == when(after[0]["start"])
    assert drop_seconds - 1.0 <= gap["duration"] <= drop_seconds + 5.0
    assert 0 <= resume_delay < 5.0
    assert abs((when(gap["start"]) - dropped_at).total_seconds()) < 1.5


@ENGINES
def test_unreachable_urls_stay_offline_and_retry(sim: CameraSimulator, tmp_path: Path,
                                                 engine: str) -> None:
    root = tmp_path / "recordings"
    port = sim.url("CAM-0001").split(":")[2].split("/")[0]
    with Recorder(root, segment_seconds=SEGMENT, backoff_initial=0.2,
                  engine=engine) as recorder:
        recorder.add("REFUSED", f"rtsp://user:secret@127.0.0.1:{free_port()}/x/main").start()
        recorder.add("MISSING", f"rtsp://127.0.0.1:{port}/NO-SUCH-CAM/main").start()
        wait_until(lambda: all(s["attempts"] >= 3 for s in recorder.status().values()),
                   10, "retries")
        status = recorder.status()
    refused, missing = status["REFUSED"], status["MISSING"]
    assert refused["state"] in ("offline", "connecting")
    assert missing["state"] in ("offline", "connecting")
    assert refused["last_error"] == "connection refused"
    assert missing["last_error"] == "stream not found (404)"
    assert "secret" not in refused["url"]
    assert refused["segments"] == missing["segments"] == 0
    assert all(s["state"] == "stopped" for s in recorder.status().values())
    # Each outage is closed as a gap when the recorder stops.
    gaps = read_jsonl(root / "gaps.jsonl")
    assert sorted(g["camera"] for g in gaps) == ["MISSING", "REFUSED"]


@ENGINES
def test_a_stream_with_no_video_is_explained_and_retried(sim: CameraSimulator,
                                                         tmp_path: Path, engine: str) -> None:
    camera = CameraRecorder("CAM-0001", sim.audio_url("CAM-0001"), tmp_path, JsonlSink(tmp_path),
                            segment_seconds=SEGMENT, backoff_initial=0.2, backoff_max=0.5,
                            engine=engine)
    camera.start()
    try:
        wait_until(lambda: camera.attempts >= 3, 20, "three attempts")
        status = camera.status()
    finally:
        camera.stop()
    assert status["state"] in ("offline", "connecting")
    assert status["last_error"] == "no video stream"
    assert status["engine"] == engine  # not a reason to fall back to ffmpeg
    assert status["segments"] == 0
    assert not list(tmp_path.rglob("*.mp4"))


def test_status_while_offline(tmp_path: Path) -> None:
    camera = CameraRecorder("CAM-X", f"rtsp://127.0.0.1:{free_port()}/CAM-X/main",
                            tmp_path, JsonlSink(tmp_path), backoff_initial=0.2)
    camera.start()
    try:
        wait_until(lambda: camera.attempts >= 2, 10, "a retry")
        status = camera.status()
        assert status["state"] in ("offline", "connecting")
        assert status["offline_since"] is not None
    finally:
        camera.stop()


@pytest.mark.parametrize("url", ["http://127.0.0.1/CAM-0001", "file:///etc/passwd",
                                 "CAM-0001", "rtsp:///no-host", "-i rtsp://h/x",
                                 "concat:rtsp://h/a|rtsp://h/b"])
def test_refuses_non_rtsp_urls(url: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        check_rtsp_url(url)
    with pytest.raises(InvalidInput):
        CameraRecorder("CAM-0001", url, tmp_path, JsonlSink(tmp_path))


@pytest.mark.parametrize("camera_id", ["../x", "..", ".", "a/b", "/etc", "", ".hidden",
                                       "x" * 65, "a\x00b", "CAM 1"])
def test_refuses_path_tricks_in_camera_ids(camera_id: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        check_camera_id(camera_id)
    with pytest.raises(InvalidInput):
        Recorder(tmp_path).add(camera_id, "rtsp://127.0.0.1/x")
    assert not any(tmp_path.iterdir())


def test_camera_id_from_url() -> None:
    assert camera_id_from_url("rtsp://h:554/CAM-0001/main") == "CAM-0001"
    assert camera_id_from_url("rtsp://h/cam.7") == "cam.7"
    for url in ("rtsp://h/../x", "rtsp://h/", "rtsp://h/%2e%2e/x"):
        with pytest.raises(InvalidInput):
            camera_id_from_url(url)
    assert redact_url("rtsp://u:pw@h:1/x") == "rtsp://u:***@h:1/x"


def test_explains_ffmpeg_errors() -> None:
    assert _explain("Stream map '0:v:0' matches no streams.") == "no video stream"
    assert _explain("rtsp://h/x: Connection refused") == "connection refused"
    assert _explain("method DESCRIBE failed: 404 Not Found") == "stream not found (404)"


def test_cli_records_and_refuses(sim: CameraSimulator, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "out"
    result = runner.invoke(record_app, [sim.url("CAM-0004"), "--out", str(out),
                                        "--segment-seconds", "2", "--duration", "4.5",
                                        "--status-every", "1"])
    assert result.exit_code == 0, result.output
    assert "CAM-0004\tonline" in result.output
    index = read_jsonl(out / "index.jsonl")
    assert index and all(e["camera"] == "CAM-0004" for e in index)

    for args in (["http://example.org/cam", "--out", str(out)],
                 ["rtsp://h/x", "--id", "../x", "--out", str(out)],
                 ["rtsp://h/../etc/main", "--out", str(out)],
                 ["rtsp://h/a", "rtsp://h/b", "--id", "one", "--out", str(out)]):
        result = runner.invoke(record_app, args)
        assert result.exit_code == 2, (args, result.output)
    assert sorted(p.name for p in out.iterdir()) == ["CAM-0004", "index.jsonl"]


@pytest.fixture(scope="module")
def sample_segment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2 s fragmented MP4, like the ones ffmpeg leaves when it is killed."""
    path = tmp_path_factory.mktemp("sample") / "sample.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=160x120:rate=25", "-t", "2", "-c:v", "libx264", "-g", "25",
                    "-movflags", "+frag_keyframe+empty_moov+default_base_moof", str(path)],
                   check=True, timeout=60)
    return path


def test_a_stalled_stream_is_stopped_and_its_open_segment_kept(
        sample_segment: Path, tmp_path: Path) -> None:
    # A stand-in ffmpeg: it opens a segment, reports one frame, then hangs.
    fake = tmp_path / "fake-ffmpeg"
    fake.write_text("#!/bin/bash\n"
                    'pattern="${@: -1}"\n'
                    f'cp {sample_segment} "${{pattern/\\%06d/000000}}"\n'
                    "printf 'frame=1\\nfps=0\\nout_time_us=0\\nprogress=continue\\n' >&2\n"
                    "exec sleep 30\n")
    fake.chmod(0o755)
    root = tmp_path / "recordings"
    camera = CameraRecorder("CAM-0001", "rtsp://127.0.0.1:9/CAM-0001/main", root,
                            JsonlSink(root), segment_seconds=SEGMENT, ffmpeg=str(fake),
                            engine="ffmpeg", stall_seconds=1.0, backoff_initial=30)
    camera.start()
    try:
        wait_until(lambda: camera.segments >= 1, 10, "the open segment salvaged")
        status = camera.status()
    finally:
        camera.stop()
    assert status["state"] == "offline"
    assert status["last_error"].startswith("stalled")
    (entry,) = read_jsonl(root / "index.jsonl")
    assert abs(entry["duration"] - 2.0) < 0.1
    assert entry["sha256"] == hashlib.sha256(sample_segment.read_bytes()).hexdigest()
    assert not list((root / "CAM-0001" / ".partial").iterdir())


def test_leftovers_of_a_crashed_recorder_are_indexed(sample_segment: Path,
                                                     tmp_path: Path) -> None:
    root = tmp_path / "recordings"
    partial = root / "CAM-0001" / ".partial"
    partial.mkdir(parents=True)
    left = partial / "18c0ffee.1-000004.mp4"
    left.write_bytes(sample_segment.read_bytes())
    (partial / "18c0ffee.1-000005.mp4").write_bytes(b"")  # opened, never written: dropped
    mtime = datetime(2026, 3, 1, 10, 20, 32, tzinfo=UTC).timestamp()
    os.utime(left, (mtime, mtime))
    camera = CameraRecorder("CAM-0001", f"rtsp://127.0.0.1:{free_port()}/CAM-0001/main", root,
                            JsonlSink(root), backoff_initial=30)
    camera.start()
    try:
        wait_until(lambda: camera.segments >= 1, 10, "the leftover indexed")
    finally:
        camera.stop()
    (entry,) = read_jsonl(root / "index.jsonl")
    assert entry["path"] == "CAM-0001/2026-03-01/10/20.30.mp4"
    assert entry["end"] == "2026-03-01T10:20:32.000Z"
    assert not list(partial.iterdir())


def test_a_stream_the_native_engine_declines_goes_to_ffmpeg(
        sim: CameraSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Another codec, B-frames: the native engine raises Unsupported; "auto" hands the camera
    # to ffmpeg at once and says why, "native" keeps refusing it with the reason.
    def declines(self: CameraRecorder, session: str) -> bool:
        raise Unsupported("video codec H265")

    monkeypatch.setattr(CameraRecorder, "_run_native", declines)
    root = tmp_path / "recordings"
    auto = CameraRecorder("CAM-0002", sim.url("CAM-0002"), root, JsonlSink(root),
                          segment_seconds=SEGMENT)
    strict = CameraRecorder("CAM-0004", sim.url("CAM-0004"), root, JsonlSink(root),
                            segment_seconds=SEGMENT, engine="native", backoff_initial=0.2)
    auto.start()
    strict.start()
    try:
        wait_until(lambda: auto.segments >= 1 and strict.attempts >= 2, 15, "a segment")
    finally:
        auto.stop()
        strict.stop()
    assert auto.status()["engine"] == "ffmpeg"
    assert auto.status()["engine_note"] == "video codec H265"
    assert auto.attempts == 2 and auto.gaps == 0  # straight on, no outage for the switch
    assert strict.status()["last_error"] == "not recordable natively: video codec H265"
    assert strict.segments == 0
    with pytest.raises(InvalidInput):
        CameraRecorder("CAM-0001", sim.url("CAM-0001"), root, JsonlSink(root), engine="vlc")
