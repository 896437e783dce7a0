"""Simulated cameras (vigila.sim.cameras): a real RTSP server read by real ffmpeg, on loopback.

Needs Debian's GStreamer RTSP server under /usr/bin/python3 and ffmpeg
(scripts/install-system.sh installs both).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from vigila.core import InvalidInput, NotFound
from vigila.sim import clip
from vigila.sim.cameras import CameraSimulator, SimulatorError, camera_ids
from vigila.sim.cli import sim_app
from vigila.vision.anpr.detect import find_text
from vigila.vision.anpr.models import pp_ocr
from vigila.vision.anpr.recognise import PlateCharacters, crop_line, read_lines

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sim-cache")
    for spec in (clip.MAIN, clip.SUB):
        clip.ensure_clip(path, spec)
    return path


@pytest.fixture(scope="module")
def sim(cache_dir: Path) -> Iterator[CameraSimulator]:
    with CameraSimulator(camera_ids(3), cache_dir=cache_dir) as simulator:
        yield simulator


def ffprobe_json(*args: str, timeout: float = 20) -> dict[str, object]:
    result = subprocess.run(["ffprobe", "-v", "error", "-of", "json", *args],
                            capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, result.stderr
    out: dict[str, object] = json.loads(result.stdout)
    return out


def probe_stream(url: str) -> dict[str, object]:
    info = ffprobe_json("-rtsp_transport", "tcp", "-show_entries",
                        "stream=codec_name,width,height,r_frame_rate", url)
    streams = info["streams"]
    assert isinstance(streams, list) and len(streams) == 1, info
    stream: dict[str, object] = streams[0]
    return stream


def reader(url: str, out: Path, seconds: float) -> subprocess.Popen[str]:
    """ffmpeg copying the stream (no decoding) into an MPEG-TS file."""
    return subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
         "-rtsp_transport", "tcp", "-i", url, "-c", "copy", "-t", str(seconds),
         "-f", "mpegts", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def packet_pts(path: Path) -> list[float]:
    info = ffprobe_json("-select_streams", "v", "-show_entries", "packet=pts_time", str(path))
    packets = info["packets"]
    assert isinstance(packets, list)
    return [float(p["pts_time"]) for p in packets]


def wait_for_data(path: Path, proc: subprocess.Popen[str], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.stat().st_size > 100_000):
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "no data from the simulated camera"
        time.sleep(0.1)


def test_clip_is_cached_and_well_formed(cache_dir: Path) -> None:
    main = clip.ensure_clip(cache_dir, clip.MAIN)
    before = main.stat().st_mtime_ns
    assert clip.ensure_clip(cache_dir, clip.MAIN) == main
    assert main.stat().st_mtime_ns == before  # made once
    assert not list(cache_dir.glob(".*.tmp"))
    info = ffprobe_json("-show_entries", "stream=codec_name,profile,width,height,"
                        "r_frame_rate,has_b_frames", str(main))
    assert info["streams"] == [{"codec_name": "h264", "profile": "High", "width": 1920,
                                "height": 1080, "r_frame_rate": "25/1", "has_b_frames": 0}]
    mbps = main.stat().st_size * 8 / clip.MAIN.seconds / 1e6
    assert 3.0 < mbps < 5.0, f"{mbps:.2f} Mbit/s"
    frames = ffprobe_json("-show_entries", "packet=flags", str(main))["packets"]
    assert isinstance(frames, list) and len(frames) == clip.MAIN.seconds * clip.MAIN.fps
    keys = [i for i, f in enumerate(frames) if f["flags"].startswith("K")]
    assert keys == list(range(0, len(frames), clip.MAIN.fps * clip.MAIN.gop_seconds))


def test_the_time_code_is_burned_in(cache_dir: Path) -> None:
    """Read back by the project's own OCR models: frame 37 at 25 fps is 00:00:01:12."""
    main = clip.ensure_clip(cache_dir, clip.MAIN)
    detector, recogniser = pp_ocr(1)
    chars = PlateCharacters(recogniser.charset)
    read = []
    for frame in (0, 37, 299):
        raw = subprocess.run(
            ["ffmpeg", "-v", "error", "-i", str(main), "-vf", f"select=eq(n\\,{frame})",
             "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "bgr24", "-"],
            capture_output=True, check=True, timeout=60).stdout
        image = np.frombuffer(raw, np.uint8).reshape(clip.MAIN.height, clip.MAIN.width, 3)
        corner = np.ascontiguousarray(image[-200:, :700])  # bottom left, where it is drawn
        lines = [b for b in find_text(detector, corner, 700) if b.height > 30]
        readings = read_lines(recogniser, chars, [crop_line(corner, b) for b in lines])
        read.append({r.text for r in readings})  # the plate alphabet: colons read as gaps
    assert ["00000000" in read[0], "00000112" in read[1], "00001124" in read[2]] == [
        True, True, True], read


def test_streams_are_1080p25_h264_and_sub_360p(sim: CameraSimulator) -> None:
    assert sim.url("CAM-0002") == f"rtsp://127.0.0.1:{sim.port}/CAM-0002/main"
    assert probe_stream(sim.url("CAM-0001")) == {
        "codec_name": "h264", "width": 1920, "height": 1080, "r_frame_rate": "25/1"}
    sub = probe_stream(sim.url("CAM-0003", sub=True))
    assert (sub["width"], sub["height"], sub["r_frame_rate"]) == (640, 360, "25/1")


@pytest.mark.slow
def test_reading_past_the_loop_keeps_timestamps_running(
        sim: CameraSimulator, tmp_path: Path) -> None:
    seconds = 25  # the clip is 12 s: the reader crosses the loop boundary twice
    out = tmp_path / "cam.ts"
    proc = reader(sim.url("CAM-0001"), out, seconds)
    _, errors = proc.communicate(timeout=seconds + 20)
    assert proc.returncode == 0 and errors == "", errors
    pts = packet_pts(out)
    steps = [b - a for a, b in itertools.pairwise(pts)]
    assert min(steps) > 0, "PTS not strictly increasing"
    assert max(steps) <= 1.0, f"PTS jump of {max(steps):.3f} s"
    assert seconds - 1 <= pts[-1] - pts[0] <= seconds + 1
    assert abs(len(pts) - seconds * 25) <= 25
    print(f"\nloop check: {len(pts)} packets over {pts[-1] - pts[0]:.2f} s, "
          f"steps {min(steps):.6f}..{max(steps):.3f} s")


def test_drop_cuts_clients_off_and_restore_brings_the_camera_back(
        sim: CameraSimulator, tmp_path: Path) -> None:
    out, beside = tmp_path / "before.ts", tmp_path / "beside.ts"
    proc = reader(sim.url("CAM-0002"), out, 60)
    # A client of another camera, on the same replay, reads through the drop.
    other = reader(sim.url("CAM-0001"), beside, 8)
    try:
        wait_for_data(out, proc)
        wait_for_data(beside, other)
        dropped_at = time.monotonic()
        sim.drop("CAM-0002")
        assert other.poll() is None  # still reading
        proc.wait(timeout=5)  # the reader ends within seconds, not at its 60 s
        print(f"\nreader ended {time.monotonic() - dropped_at:.2f} s after the drop")
        _, errors = other.communicate(timeout=25)
    finally:
        for running in (proc, other):
            if running.poll() is None:
                running.kill()
                running.wait()
    assert other.returncode == 0 and errors == "", errors
    pts = packet_pts(beside)
    # -t counts from the first packet, the copy from the first key frame: 6-8 s.
    assert 5.5 <= pts[-1] - pts[0] <= 8.5 and max(b - a for a, b in itertools.pairwise(pts)) < 0.1
    assert sim.states() == {"CAM-0001": "up", "CAM-0002": "down", "CAM-0003": "up"}
    refused = subprocess.run(
        ["ffprobe", "-v", "error", "-rtsp_transport", "tcp", sim.url("CAM-0002")],
        capture_output=True, text=True, timeout=20, check=False)
    assert refused.returncode != 0 and "404" in refused.stderr, refused.stderr
    # The other cameras are untouched.
    assert probe_stream(sim.url("CAM-0003"))["codec_name"] == "h264"

    sim.restore("CAM-0002")
    assert sim.states()["CAM-0002"] == "up"
    again = tmp_path / "after.ts"
    proc = reader(sim.url("CAM-0002"), again, 3)
    _, errors = proc.communicate(timeout=25)
    assert proc.returncode == 0 and errors == "", errors
    assert len(packet_pts(again)) >= 50


def test_control_errors(sim: CameraSimulator) -> None:
    with pytest.raises(NotFound):
        sim.drop("CAM-9999")
    with pytest.raises(NotFound):
        sim.url("nope")
    sim.restore("CAM-0001")  # restoring a camera that is up changes nothing
    assert sim.states()["CAM-0001"] == "up"
    with pytest.raises(InvalidInput):
        CameraSimulator(["CAM-1", "CAM-1"])
    with pytest.raises(InvalidInput):
        CameraSimulator(["../etc"])


def test_missing_gstreamer_is_named(cache_dir: Path) -> None:
    # The venv's Python has no gi: the server exits and the error names the packages.
    with pytest.raises(SimulatorError, match=r"gir1\.2-gst-rtsp-server-1\.0"):
        CameraSimulator(["CAM-1"], cache_dir=cache_dir, python=Path(sys.executable)).start()
    with pytest.raises(SimulatorError, match="python3-gi"):
        CameraSimulator(["CAM-1"], cache_dir=cache_dir, python=Path("/nonexistent/python3")
                        ).start()


@pytest.mark.slow
def test_one_replay_serves_every_stream_for_a_fraction_of_a_percent(
        cache_dir: Path, tmp_path: Path) -> None:
    count, window = 10, 10.0
    with CameraSimulator(camera_ids(count), cache_dir=cache_dir, sub_streams=False) as many:
        outs = [tmp_path / f"{camera_id}.ts" for camera_id in many.cameras]
        readers = [reader(many.url(camera_id), out, window + 6)
                   for camera_id, out in zip(many.cameras, outs, strict=True)]
        try:
            for out, proc in zip(outs, readers, strict=True):
                wait_for_data(out, proc)
            time.sleep(1)  # past the start-up
            stat = Path(f"/proc/{many.pid}/stat")

            def cpu_seconds() -> float:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime

            start_cpu, start = cpu_seconds(), time.monotonic()
            time.sleep(window)
            used, elapsed = cpu_seconds() - start_cpu, time.monotonic() - start
            assert all(proc.poll() is None for proc in readers), "a reader stopped early"
        finally:
            for proc in readers:
                proc.kill()
                proc.wait()
    per_stream = 100 * used / elapsed / count
    print(f"\nRTSP server CPU: {100 * used / elapsed:.1f} % of a core for {count} streams, "
          f"{per_stream:.2f} % per stream")
    # A pipeline per camera cost 0.6-1.1 % a stream on this kind of machine,
    # transcoding some 40 %; the one shared replay about 0.1 % a client.
    assert per_stream < 0.5, f"{per_stream:.2f} % of a core per stream: a pipeline each?"


def test_cli(cache_dir: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(sim_app, ["--help"])
    assert result.exit_code == 0 and "cameras" in result.output
    result = runner.invoke(sim_app, ["cameras", "--help"])
    assert result.exit_code == 0 and "--ids" in result.output
    result = runner.invoke(
        sim_app, ["cameras", "--ids", "CAM-G01,CAM-0007", "--port", "0", "--no-sub",
                  "--cache-dir", str(cache_dir)],
        input="list\ndrop CAM-0007\nlist\nrestore CAM-0007\nfrobnicate\nquit\n")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("CAM-G01\trtsp://127.0.0.1:") and lines[0].endswith("/CAM-G01/main")
    assert lines[2:] == ["CAM-G01\tup", "CAM-0007\tup", "CAM-0007\tdown",
                         "CAM-G01\tup", "CAM-0007\tdown", "CAM-0007\tup"]
    assert "restore ID" in result.stderr  # the unknown command got the help line
    result = runner.invoke(sim_app, ["cameras", "2", "--ids", "A,B,C"])
    assert result.exit_code != 0 and "--ids names 3" in result.output
