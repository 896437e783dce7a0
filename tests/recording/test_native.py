"""The native engine's parts on their own: RTP de-packetisation, the fMP4 muxer, RTSP
authentication. The recorder tests run the whole engine against the simulated cameras."""

from __future__ import annotations

import hashlib
import json
import re
import socket
import struct
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from vigila.recording import JsonlSink, read_jsonl
from vigila.recording.fmp4 import sps_size
from vigila.recording.recorder import (
    MAX_FRAMES_TO_KEY,
    CameraRecorder,
    _NativeSegments,
    _Run,
)
from vigila.recording.rtsp import (
    AccessUnit,
    Depacketiser,
    RtspError,
    RtspSession,
    Unsupported,
    parse_sdp,
)


def rtp(seq: int, time: int, payload: bytes, *, marker: bool = False, pt: int = 96,
        padding: int = 0, extension: bytes | None = None) -> bytes:
    first = 0x80 | (0x20 if padding else 0) | (0x10 if extension is not None else 0)
    head = struct.pack("!BBHII", first, (0x80 if marker else 0) | pt, seq & 0xFFFF,
                       time & 0xFFFFFFFF, 0x1234)
    if extension is not None:
        head += struct.pack("!HH", 0xBEDE, len(extension) // 4) + extension
    tail = b"\x00" * (padding - 1) + bytes((padding,)) if padding else b""
    return head + payload + tail


def test_depacketiser_single_stap_a_and_fu_a() -> None:
    sps, pps = b"\x67\x42\x00\x1f\xaa", b"\x68\xce\x3c\x80"
    idr = b"\x65" + bytes(range(256)) * 10
    dep = Depacketiser(96)
    dep.push(rtp(1, 1000, b"\x18" + struct.pack("!H", len(sps)) + sps
                 + struct.pack("!H", len(pps)) + pps))  # STAP-A
    body = idr[1:]
    parts = [body[i:i + 1000] for i in range(0, len(body), 1000)]
    for n, part in enumerate(parts):  # FU-A: start, middle, end (the end carries the marker)
        header = (0x80 if n == 0 else 0) | (0x40 if n == len(parts) - 1 else 0) | 5
        dep.push(rtp(2 + n, 1000, bytes((0x60 | 28, header)) + part,
                     marker=n == len(parts) - 1, padding=3 if n == 1 else 0))
    assert len(dep.ready) == 1
    unit = dep.ready.pop()
    assert unit.time == 1000 and unit.key
    assert unit.nals == [sps, pps, idr]
    # A single-NAL frame with a header extension; another payload type is ignored.
    dep.push(rtp(2 + len(parts), 4600, b"\x41abc", marker=True, extension=b"\x00" * 8))
    dep.push(rtp(99, 8200, b"\x41zzz", marker=True, pt=97))
    (unit,) = dep.ready
    assert (unit.time, unit.nals, unit.key) == (4600, [b"\x41abc"], False)
    assert dep.lost == 0


def test_depacketiser_lost_packets_wrapping_time_and_missing_marker() -> None:
    dep = Depacketiser(96)
    start = 0xFFFFFFFF - 3599
    dep.push(rtp(65535, start, bytes((0x7C, 0x85)) + b"a" * 10))  # FU-A start
    dep.push(rtp(1, start, bytes((0x7C, 0x45)) + b"b" * 10, marker=True))  # seq 0 lost
    assert dep.lost == 1
    assert dep.ready == []  # the NAL with a hole in it was dropped
    dep.push(rtp(2, start + 3600, b"\x41one"))  # past the wrap of the 32-bit time; no marker
    dep.push(rtp(3, start + 7200, b"\x41two", marker=True))
    times = [u.time for u in dep.ready]
    assert times == [start + 3600, start + 7200]
    assert [u.nals for u in dep.ready] == [[b"\x41one"], [b"\x41two"]]
    with pytest.raises(Unsupported):
        dep.push(rtp(4, start + 10800, b"\x5d" + b"x" * 4))  # FU-B


def test_sdp_picks_the_h264_video_track() -> None:
    sdp = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=cam\r\nt=0 0\r\n"
           "m=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/48000/2\r\na=control:stream=1\r\n"
           "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
           "a=fmtp:96 packetization-mode=1;sprop-parameter-sets=Z0IAH6o=,aM48gA==\r\n"
           "a=control:stream=0\r\n")
    info = parse_sdp(sdp, "rtsp://127.0.0.1:8554/CAM-0001/main/")
    assert info.control == "rtsp://127.0.0.1:8554/CAM-0001/main/stream=0"
    assert info.payload_type == 96 and info.clock_rate == 90000
    assert info.sps == b"\x67\x42\x00\x1f\xaa" and info.pps == b"\x68\xce\x3c\x80"
    with pytest.raises(Unsupported, match="H265"):
        parse_sdp(sdp.replace("H264", "H265"), "rtsp://h/x")
    with pytest.raises(RtspError, match="no video stream"):
        parse_sdp(sdp.split("m=video")[0], "rtsp://h/x")


def annex_b_units(path: Path) -> list[AccessUnit]:
    """The access units of a raw H.264 file, timed at 25 fps."""
    data = path.read_bytes()
    nals = [n.lstrip(b"\x00") for n in re.split(b"\x00\x00\x01", data) if n.strip(b"\x00")]
    units: list[AccessUnit] = []
    current: list[bytes] = []
    for nal in nals:
        current.append(nal.rstrip(b"\x00") if nal is not nals[-1] else nal)
        if nal[0] & 0x1F in (1, 5):  # a slice ends the unit (one slice per frame here)
            units.append(AccessUnit(len(units) * 3600, current,
                                    any(n[0] & 0x1F == 5 for n in current)))
            current = []
    return units


def muxer_for(root: Path, segment_seconds: float = 10.0) -> _NativeSegments:
    """The native engine's segment writer for one session of a camera recorded into `root`."""
    camera = CameraRecorder("CAM-0001", "rtsp://127.0.0.1:9/CAM-0001/main", root,
                            JsonlSink(root), segment_seconds=segment_seconds)
    camera.partial_dir.mkdir(parents=True)
    return _NativeSegments(camera, _Run("s", None), "s")


@pytest.fixture(scope="module")
def h264(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 s of 25 fps, 200x120 (not a multiple of 16: the SPS crops), a key frame every 2 s."""
    path = tmp_path_factory.mktemp("h264") / "clip.h264"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=200x120:rate=25", "-t", "10", "-c:v", "libx264",
                    "-profile:v", "main", "-bf", "0", "-g", "50", "-keyint_min", "50",
                    "-sc_threshold", "0", "-x264-params", "slices=1", "-f", "h264", str(path)],
                   check=True, timeout=60)
    return path


def test_native_segments_are_mp4_that_ffprobe_reads(h264: Path, tmp_path: Path) -> None:
    units = annex_b_units(h264)
    assert len(units) == 250
    sps = next(n for n in units[0].nals if n[0] & 0x1F == 7)
    assert sps_size(sps) == (200, 120)
    root = tmp_path / "rec"
    muxer = muxer_for(root, segment_seconds=4)
    for unit in units[3:]:  # the first frames come before a key frame: skipped
        muxer.add(unit)
    muxer.close()
    index = read_jsonl(root / "index.jsonl")
    # Frames 50-249: cut at the key frames 50, 150 (4 s), 250 would be next: 4 s + 4 s.
    assert [e["duration"] for e in index] == [4.0, 4.0]
    for entry in index:
        path = root / entry["path"]
        assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert entry["bytes"] == path.stat().st_size
        result = subprocess.run(
            ["ffprobe", "-v", "error", "-of", "json", "-count_frames", "-show_entries",
             "stream=codec_name,width,height,nb_read_frames:format=duration", str(path)],
            capture_output=True, text=True, timeout=20, check=True)
        info = json.loads(result.stdout)
        stream = info["streams"][0]
        assert (stream["codec_name"], stream["width"], stream["height"]) == ("h264", 200, 120)
        assert int(stream["nb_read_frames"]) == 100
        assert abs(float(info["format"]["duration"]) - 4.0) < 0.05
        # Decodes without an error: the samples are whole.
        decode = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"],
                                capture_output=True, text=True, timeout=30, check=False)
        assert decode.returncode == 0 and not decode.stderr.strip(), decode.stderr
    starts = [datetime.fromisoformat(e["start"].replace("Z", "+00:00")) for e in index]
    assert (starts[1] - starts[0]).total_seconds() == pytest.approx(4.0, abs=0.001)
    assert starts[0] <= datetime.now(UTC)


def test_key_frame_jitter_cuts_early_within_the_tolerance_and_never_mid_gop(
        h264: Path, tmp_path: Path) -> None:
    # The clip's five GOPs of 50 frames retimed to last 2.0, 1.85, 2.0, 2.1 and 1.9 s: key
    # frames at 0, 2.0, 3.85, 5.85 and 7.95 s, as a camera whose encoder drifts sends them.
    units, gops, t = annex_b_units(h264), [2.0, 1.85, 2.0, 2.1, 1.9], 0
    retimed = []
    for n, unit in enumerate(units):
        retimed.append(AccessUnit(t, unit.nals, unit.key))
        t += round(gops[n // 50] * 90_000 / 50)
    root = tmp_path / "rec"
    muxer = muxer_for(root, segment_seconds=4)  # cuts at a key frame from 3.8 s on
    for unit in retimed:
        muxer.add(unit)
    muxer.close()
    index = read_jsonl(root / "index.jsonl")
    # 3.85 s: the key frame 0.15 s early still cuts; 4.1 s: the next one came late, and
    # the segment waits for it rather than cutting between key frames; 1.9 s: the tail.
    assert [e["duration"] for e in index] == [3.85, 4.1, 1.9]
    frames = []
    for entry in index:
        result = subprocess.run(
            ["ffprobe", "-v", "error", "-of", "csv=p=0", "-count_frames", "-show_entries",
             "stream=nb_read_frames", str(root / entry["path"])],
            capture_output=True, text=True, timeout=20, check=True)
        assert not result.stderr.strip(), result.stderr  # every frame decodes
        frames.append(int(result.stdout))
    assert frames == [100, 100, 50]  # whole GOPs in each


def test_frames_out_of_order_hand_the_camera_to_ffmpeg(h264: Path, tmp_path: Path) -> None:
    units = annex_b_units(h264)
    muxer = muxer_for(tmp_path)
    muxer.add(units[0])
    muxer.add(AccessUnit(units[2].time, units[2].nals, False))
    with pytest.raises(Unsupported, match="B-frames"):
        muxer.add(AccessUnit(units[1].time, units[1].nals, False))


class _DigestCamera:
    """A loopback RTSP endpoint that asks for Digest authentication, then has no stream."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.authorizations: list[str] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            data = b""
            for _ in range(2):
                while b"\r\n\r\n" not in data:
                    data += conn.recv(4096)
                head, _, data = data.partition(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                cseq = next(v for k, _, v in (x.partition(": ") for x in lines) if k == "CSeq")
                auth = [v for k, _, v in (x.partition(": ") for x in lines)
                        if k == "Authorization"]
                if not auth:
                    conn.sendall(f"RTSP/1.0 401 Unauthorized\r\nCSeq: {cseq}\r\n"
                                 'WWW-Authenticate: Digest realm="cam", nonce="abc123"\r\n'
                                 "\r\n".encode())
                    continue
                self.authorizations.append(auth[0])
                conn.sendall(f"RTSP/1.0 404 Not Found\r\nCSeq: {cseq}\r\n\r\n".encode())


@pytest.fixture
def digest_camera() -> Iterator[_DigestCamera]:
    camera = _DigestCamera()
    yield camera
    camera.sock.close()


def test_digest_authentication(digest_camera: _DigestCamera) -> None:
    url = f"rtsp://admin:s%3Acret@127.0.0.1:{digest_camera.port}/CAM-9/main"
    session = RtspSession(url, timeout=5)
    with pytest.raises(RtspError, match=re.escape("stream not found (404)")):
        session.open()
    session.close()
    (header,) = digest_camera.authorizations
    fields = dict(re.findall(r'(\w+)="([^"]*)"', header))
    bare = f"rtsp://127.0.0.1:{digest_camera.port}/CAM-9/main"
    assert fields["username"] == "admin" and fields["uri"] == bare
    ha1 = hashlib.md5(b"admin:cam:s:cret").hexdigest()  # the password, percent-decoded
    ha2 = hashlib.md5(f"DESCRIBE:{bare}".encode()).hexdigest()
    assert fields["response"] == hashlib.md5(f"{ha1}:abc123:{ha2}".encode()).hexdigest()
    assert "s:cret" not in header


def test_streams_for_ffmpeg_are_declined_up_front() -> None:
    with pytest.raises(Unsupported, match="TLS"):
        RtspSession("rtsps://127.0.0.1:322/CAM-1/main")


def test_a_stream_without_key_frames_goes_to_ffmpeg(h264: Path, tmp_path: Path) -> None:
    units = annex_b_units(h264)
    muxer = muxer_for(tmp_path)
    deltas = [u for u in units if not u.key]
    with pytest.raises(Unsupported, match="no IDR key frame"):
        for n in range(MAX_FRAMES_TO_KEY + 1):
            muxer.add(AccessUnit(n * 3600, deltas[n % len(deltas)].nals, False))
    assert not list(tmp_path.rglob("*.mp4"))


def test_a_new_picture_size_starts_a_new_segment(h264: Path, tmp_path: Path) -> None:
    small = tmp_path / "small.h264"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=160x96:rate=25", "-t", "4", "-c:v", "libx264", "-bf", "0",
                    "-g", "50", "-sc_threshold", "0", "-f", "h264", str(small)],
                   check=True, timeout=60)
    first = annex_b_units(h264)[:100]
    second = [AccessUnit(u.time + 100 * 3600, u.nals, u.key) for u in annex_b_units(small)]
    root = tmp_path / "rec"
    muxer = muxer_for(root, segment_seconds=30)
    for unit in first + second:
        muxer.add(unit)
    muxer.close()
    index = read_jsonl(root / "index.jsonl")
    assert [e["duration"] for e in index] == [4.0, 4.0]  # cut well before 30 s
    sizes = []
    for entry in index:
        result = subprocess.run(
            ["ffprobe", "-v", "error", "-of", "json", "-show_entries", "stream=width,height",
             str(root / entry["path"])], capture_output=True, text=True, timeout=20, check=True)
        stream = json.loads(result.stdout)["streams"][0]
        sizes.append((stream["width"], stream["height"]))
    assert sizes == [(200, 120), (160, 96)]
