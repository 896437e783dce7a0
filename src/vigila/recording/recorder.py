"""The standalone recorder: RTSP in, fragmented MP4 segments out, never decoded.

Two engines write the same segments. The native one (the default for H.264, which is
what cameras stream) reads RTSP interleaved on TCP in the camera's own thread
(`rtsp.py`) and writes the fragmented MP4 itself (`fmp4.py`), hashing the bytes as they
go out: 0.7 times ffmpeg's CPU per stream (docs/BENCHMARKS.md). A stream it declines
(another codec, B-frames) goes to one supervised ffmpeg process per camera (``-c copy``
into the segment muxer), the way Frigate records.

Either way a segment is written under ``<out>/<camera>/.partial/``; once closed it is
hashed and fsynced, renamed atomically to ``<out>/<camera>/<YYYY-MM-DD>/<HH>/<MM.SS>.mp4``
(UTC start) and handed to a `SegmentSink`. The first frames anchor the stream's time line
to the wall clock (ffmpeg's ``-progress pipe:2`` reports them), and when they stop coming
the session is stopped and restarted with exponential backoff.  Each outage becomes a
`Gap` from the end of the last segment to the start of the first new one.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Protocol, Self
from urllib.parse import urlsplit, urlunsplit

from pydantic import TypeAdapter, ValidationError

from vigila.core import InvalidInput
from vigila.recording import fmp4
from vigila.recording.probe import file_digest, probe_duration
from vigila.recording.rtsp import AccessUnit, RtspError, RtspSession, Unsupported
from vigila.registry.models import DeviceId

_DEVICE_ID: TypeAdapter[str] = TypeAdapter(DeviceId)  # camera ids are device ids
RTSP_SCHEMES = ("rtsp", "rtsps")
PARTIAL_DIR = ".partial"
INDEX_FILE = "index.jsonl"
GAPS_FILE = "gaps.jsonl"
# ffmpeg may open only what an RTSP session needs: no file:, no http:, no concat tricks.
PROTOCOLS = "rtsp,rtsps,rtp,tcp,udp,tls"
# The supervisor's cost is waking up: a progress report every 2 s and a look at the process
# every second keep it well under ffmpeg's own cost, and still see a stall in seconds.
PROGRESS_SECONDS = 2
WATCH_SECONDS = 1.0
ENGINES = ("auto", "native", "ffmpeg")
# Native engine: a fragment is written at each key frame, or after this long without one,
# so a killed recorder loses at most this much of the segment being written.
FRAGMENT_SECONDS = 2.0
# Frames without a key frame (with its SPS and PPS) before a camera is handed to ffmpeg: a
# stream of intra refresh or recovery points has none, and ffmpeg copies it as it comes.
MAX_FRAMES_TO_KEY = 500


# --- validation --------------------------------------------------------------


def check_camera_id(camera_id: str) -> str:
    """The id itself, or InvalidInput: it becomes a directory name, so no path tricks."""
    try:
        _DEVICE_ID.validate_python(camera_id)
    except ValidationError as exc:
        raise InvalidInput.on("camera", f"bad camera id {camera_id!r}: up to 64 letters, "
                              "digits, '.', '_', '-', starting with a letter or digit") from exc
    return camera_id


def check_rtsp_url(url: str) -> str:
    """The URL itself, or InvalidInput when it is not an rtsp:// or rtsps:// URL with a host."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in RTSP_SCHEMES:
        raise InvalidInput.on("url", f"not an RTSP URL: {redact_url(url)!r} "
                              "(expected rtsp://host[:port]/path)")
    if not parts.hostname:
        raise InvalidInput.on("url", f"no host in {redact_url(url)!r}")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise InvalidInput.on("url", "blanks or control characters in the URL")
    return url


def redact_url(url: str) -> str:
    """The URL without its password, for status lines and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host += f":{parts.port}"
    user = parts.username or ""
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query,
                       parts.fragment))


def camera_id_from_url(url: str) -> str:
    """The camera id a URL names: its first path element (rtsp://h:p/CAM-0001/main -> CAM-0001)."""
    path = urlsplit(url).path
    first = next((part for part in path.split("/") if part), "")
    if not first:
        raise InvalidInput.on("url", f"cannot tell the camera id from {redact_url(url)!r}; "
                              "give one with --id")
    return check_camera_id(first)


# --- what is recorded --------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Segment:
    """One finished segment file: where it is, what time it covers, what it hashes to."""

    camera: str
    start: datetime
    end: datetime
    bytes: int
    path: str  # relative to the recording root, '/'-separated
    sha256: str

    @property
    def duration(self) -> float:
        return (self.end - self.start).total_seconds()

    def to_json(self) -> dict[str, Any]:
        return {"camera": self.camera, "start": _iso(self.start), "end": _iso(self.end),
                "duration": round(self.duration, 3), "bytes": self.bytes, "path": self.path,
                "sha256": self.sha256}


@dataclass(frozen=True)
class Gap:
    """A stretch of time with no recording for a camera (an outage), start to end."""

    camera: str
    start: datetime
    end: datetime
    reason: str = ""

    @property
    def duration(self) -> float:
        return (self.end - self.start).total_seconds()

    def to_json(self) -> dict[str, Any]:
        return {"camera": self.camera, "start": _iso(self.start), "end": _iso(self.end),
                "duration": round(self.duration, 3), "reason": self.reason}


class SegmentSink(Protocol):
    """Where finished segments and gaps go: a JSON Lines file here, a database later."""

    def add_segment(self, segment: Segment) -> None: ...

    def add_gap(self, gap: Gap) -> None: ...


class JsonlSink:
    """``index.jsonl`` and ``gaps.jsonl`` in the recording root; each line appended and fsynced.

    A crash loses at most the line being written; a torn last line is the only damage
    a reader has to skip.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.index_path = root / INDEX_FILE
        self.gaps_path = root / GAPS_FILE
        self._lock = threading.Lock()

    def add_segment(self, segment: Segment) -> None:
        self._append(self.index_path, segment.to_json())

    def add_gap(self, gap: Gap) -> None:
        self._append(self.gaps_path, gap.to_json())

    def _append(self, path: Path, record: dict[str, Any]) -> None:
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        with self._lock:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON Lines file, skipping a torn last line."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            value = json.loads(line)
            if isinstance(value, dict):
                records.append(value)
    return records


# --- one camera --------------------------------------------------------------


def _sha256_and_fsync(path: Path) -> tuple[int, str]:
    # Flushed to disk before it is published: an indexed segment must survive a power cut.
    with path.open("rb") as handle:
        os.fsync(handle.fileno())
    return file_digest(path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _explain(line: str) -> str:
    """A control-room reading of an ffmpeg error line."""
    low = line.lower()
    if "matches no streams" in low or "no video" in low:
        return "no video stream"
    if "connection refused" in low:
        return "connection refused"
    if "404" in low:
        return "stream not found (404)"
    if "401" in low or "unauthorized" in low:
        return "authentication refused (401)"
    if "timed out" in low or "timeout" in low:
        return "timed out"
    if "no route to host" in low or "network is unreachable" in low:
        return "host unreachable"
    if "name or service not known" in low or "failed to resolve" in low:
        return "unknown host"
    return line.strip()[:200]


@dataclass
class _Run:
    """One ffmpeg process and what it has told so far."""

    session: str
    proc: subprocess.Popen[str] | None  # None for leftovers of an earlier recorder
    anchor: datetime | None = None  # wall-clock time of stream time 0
    last_out_time: float = -1.0
    last_advance: float = 0.0  # monotonic time the output time last moved
    listed_end: float | None = None  # stream time the last listed segment ends at
    done: int = 0  # segments handled
    stopping: bool = False
    stop_sent_at: float | None = None
    explained: bool = False  # an error line of this run was explained already
    rate_frames: int = -1  # frames and stream time at the start of the fps window
    rate_since: float = 0.0


class CameraRecorder:
    """Records one camera for as long as it runs, reconnecting with backoff."""

    def __init__(self, camera_id: str, url: str, root: Path, sink: SegmentSink, *,
                 segment_seconds: float = 10.0, ffmpeg: str = "ffmpeg",
                 backoff_initial: float = 0.5, backoff_max: float = 3.0,
                 stall_seconds: float | None = None, io_timeout: float = 5.0,
                 engine: str = "auto",
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.camera_id = check_camera_id(camera_id)
        if engine not in ENGINES:
            raise InvalidInput.on("engine", f"one of {', '.join(ENGINES)}")
        # "auto": the in-process RTSP client (rtsp.py) for H.264 over TCP, the way most
        # cameras stream; ffmpeg for whatever it declines (another codec, B-frames).
        self.engine = "ffmpeg" if engine == "ffmpeg" else "native"
        self.fallback = engine == "auto"
        self.engine_note: str | None = None  # why a camera left the native engine
        self.url = check_rtsp_url(url)
        if not 0.5 <= segment_seconds <= 3600:
            raise InvalidInput.on("segment_seconds", "between 0.5 and 3600 seconds")
        self.root = root
        self.sink = sink
        self.segment_seconds = float(segment_seconds)
        self.ffmpeg = ffmpeg
        self.backoff_initial = backoff_initial
        # Capped low on purpose: recording must resume within 5 s of a camera's return,
        # and a refused RTSP connection every 3 s costs next to nothing.
        self.backoff_max = backoff_max
        # No output-time progress for this long: the stream has stalled.
        self.stall_seconds = stall_seconds or max(3 * self.segment_seconds, 2 * io_timeout)
        self.io_timeout = io_timeout
        self.clock = clock
        self.camera_dir = root / self.camera_id
        self.partial_dir = self.camera_dir / PARTIAL_DIR
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        # Health, read by status().
        self.state = "stopped"
        self.last_error: str | None = None
        self.attempts = 0
        self.segments = 0
        self.gaps = 0
        self.last_segment: Segment | None = None
        self.last_segment_at: datetime | None = None
        self.last_frame_at: datetime | None = None  # wall time the output last advanced
        self.fps: float | None = None
        self.bitrate_bps: float | None = None
        self.retry_at: datetime | None = None
        self.started_at: datetime | None = None
        self._gap_since: datetime | None = None
        self._gap_reason = ""
        self._last_end: datetime | None = None
        self.pid: int | None = None  # the current ffmpeg process (for CPU figures)
        self._client: RtspSession | None = None  # the native engine's session

    # --- life ----------------------------------------------------------------

    def start(self, gap_reason: str = "recording stopped") -> None:
        if self._thread is not None:
            return
        self._stop.clear()  # a stopped recorder may be started again (disk space back)
        with self._lock:
            if self._last_end is not None and self._gap_since is None:
                # Started again: the pause is an outage like any other.
                self._gap_since, self._gap_reason = self._last_end, gap_reason
        self.partial_dir.mkdir(parents=True, exist_ok=True)
        self.started_at = self.clock()
        self.state = "connecting"
        self._thread = threading.Thread(target=self._supervise, daemon=True,
                                        name=f"recorder-{self.camera_id}")
        self._thread.start()

    def request_stop(self) -> None:
        """Start stopping without waiting (stop() waits)."""
        self._stop.set()
        client = self._client
        if client is not None:
            client.interrupt()  # a read waiting for the camera returns at once

    def stop(self, timeout: float = 10.0) -> None:
        """Close the current segment, index it, and end."""
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        with self._lock:
            if self._gap_since is not None:  # an outage still open: it lasted until now
                self._emit_gap(self.clock())
            self.state = "stopped"

    def status(self) -> dict[str, Any]:
        with self._lock:
            last = self.last_segment
            return {
                "camera": self.camera_id,
                "url": redact_url(self.url),
                "state": self.state,
                "last_error": self.last_error,
                "attempts": self.attempts,
                "segments": self.segments,
                "gaps": self.gaps,
                "last_segment_end": _iso(last.end) if last else None,
                "last_segment_at": _iso(self.last_segment_at) if self.last_segment_at else None,
                "offline_since": _iso(self._gap_since) if self._gap_since else None,
                "retry_at": _iso(self.retry_at) if self.retry_at else None,
                "last_frame_at": _iso(self.last_frame_at) if self.last_frame_at else None,
                "fps": self.fps,
                "bitrate_bps": self.bitrate_bps,
                "engine": self.engine,
                "engine_note": self.engine_note,
            }

    # --- the supervisor ------------------------------------------------------

    def _supervise(self) -> None:
        try:
            self._recover_leftovers()
        except Exception as exc:  # a damaged leftover must not keep the camera from recording
            with self._lock:
                self.last_error = f"recovering leftovers: {exc!r}"[:300]
        backoff = self.backoff_initial
        # Unique per process and attempt, so a leftover of an earlier run is never overwritten.
        prefix = f"{int(time.time() * 1000):x}{os.getpid():x}"
        while not self._stop.is_set():
            self.attempts += 1
            with self._lock:
                self.state = "connecting"
                self.retry_at = None
            try:
                if self.engine == "native":
                    flowed = self._run_native(f"{prefix}.{self.attempts}")
                else:
                    flowed = self._run_once(f"{prefix}.{self.attempts}")
            except Unsupported as exc:
                flowed = False
                with self._lock:
                    if self.fallback:  # ffmpeg takes this camera from now on, at once
                        self.engine, self.engine_note = "ffmpeg", str(exc)
                        self.last_error = None
                        continue
                    self.last_error = f"not recordable natively: {exc}"
            except Exception as exc:  # never let one camera's thread die
                flowed = False
                with self._lock:
                    self.last_error = f"recorder error: {exc!r}"[:300]
            if self._stop.is_set():
                break
            if flowed:
                backoff = self.backoff_initial
            with self._lock:
                self.state = "offline"
                if self._gap_since is None:
                    self._gap_since = self._last_end or self.started_at or self.clock()
                    self._gap_reason = self.last_error or "stream ended"
                self.retry_at = self.clock() + timedelta(seconds=backoff)
            self._stop.wait(backoff)
            backoff = min(backoff * 2, self.backoff_max)

    def _command(self, session: str) -> list[str]:
        pattern = self.partial_dir / f"{session}-%06d.mp4"
        delta = min(0.5, self.segment_seconds * 0.05)  # a key frame a little early still cuts
        return [
            self.ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-nostats",
            "-progress", "pipe:2", "-stats_period", str(PROGRESS_SECONDS),
            "-protocol_whitelist", PROTOCOLS,
            "-rtsp_transport", "tcp", "-timeout", str(int(self.io_timeout * 1_000_000)),
            "-i", self.url,
            "-map", "0:v:0", "-c", "copy",
            "-f", "segment", "-segment_time", f"{self.segment_seconds:g}",
            "-segment_time_delta", f"{delta:g}", "-reset_timestamps", "1",
            "-segment_format", "mp4",
            "-segment_format_options", "movflags=+frag_keyframe+empty_moov+default_base_moof",
            "-segment_list", "pipe:1", "-segment_list_type", "csv",
            str(pattern),
        ]

    def _run_once(self, session: str) -> bool:
        """One ffmpeg process, from start to exit; True if frames flowed."""
        self.partial_dir.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen(self._command(session), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                encoding="utf-8", errors="replace", start_new_session=True)
        self.pid = proc.pid
        run = _Run(session, proc, last_advance=time.monotonic())
        events: queue.Queue[tuple[str, Any]] = queue.Queue()
        threading.Thread(target=self._read_list, args=(proc.stdout, events), daemon=True).start()
        threading.Thread(target=self._read_stderr, args=(proc.stderr, events),
                         daemon=True).start()
        flowed = False
        open_streams = 2
        while open_streams:
            try:
                kind, value = events.get(timeout=WATCH_SECONDS)
            except queue.Empty:
                kind, value = "tick", None
            if kind == "eof":
                open_streams -= 1
            elif kind == "segment":
                self._finish_segment(run, value)
            elif kind == "progress":
                flowed = self._progress(run, value) or flowed
            elif kind == "error":
                explained = _explain(value)
                # ffmpeg follows the cause with generic lines ("To ignore this, ...",
                # "Conversion failed!"): the first line we can explain is the one to show.
                if explained != value.strip()[:200] or not run.explained:
                    run.explained = run.explained or explained != value.strip()[:200]
                    with self._lock:
                        self.last_error = explained
            self._watch(run)
        try:
            code = proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        self._salvage(run)
        with self._lock:
            if not self._stop.is_set() and self.last_error is None:
                self.last_error = ("stream ended" if code == 0 else f"ffmpeg exited ({code})")
        return flowed

    # --- the native engine ---------------------------------------------------

    def _run_native(self, session: str) -> bool:
        """One RTSP session in this thread, from connect to end; True if frames flowed."""
        self.partial_dir.mkdir(parents=True, exist_ok=True)
        client = RtspSession(self.url, timeout=self.io_timeout)
        with self._lock:
            self._client = client
        if self._stop.is_set():
            return False
        run = _Run(session, None, last_advance=time.monotonic())
        muxer = _NativeSegments(self, run, session)
        try:
            info = client.open()
            muxer.sps, muxer.pps = info.sps, info.pps
            for unit in client.frames(stall=self.stall_seconds):
                muxer.add(unit)
                if self._stop.is_set():
                    break
        except Unsupported:
            raise
        except RtspError as exc:
            if not self._stop.is_set():
                with self._lock:
                    self.last_error = str(exc)
        finally:
            with self._lock:
                self._client = None
            client.close()
            muxer.close()
        return muxer.frames > 0

    def _watch(self, run: _Run) -> None:
        proc = run.proc
        if proc is None:
            return
        now = time.monotonic()
        if run.stop_sent_at is not None:
            if now - run.stop_sent_at > 5 and proc.poll() is None:
                proc.kill()  # SIGINT ignored: no clean trailer, _salvage keeps the data
            return
        reason = None
        if self._stop.is_set():
            reason = ""
        elif now - run.last_advance > self.stall_seconds:
            reason = f"stalled: no data for {self.stall_seconds:g} s"
        if reason is None:
            return
        if reason:
            with self._lock:
                self.last_error = reason
        run.stop_sent_at = now
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)  # ffmpeg closes the segment cleanly

    # --- ffmpeg's output ------------------------------------------------------

    @staticmethod
    def _read_list(stream: IO[str] | None, events: queue.Queue[tuple[str, Any]]) -> None:
        if stream is not None:
            for line in stream:
                if line.strip():
                    events.put(("segment", line.strip()))
        events.put(("eof", "stdout"))

    @staticmethod
    def _read_stderr(stream: IO[str] | None, events: queue.Queue[tuple[str, Any]]) -> None:
        block: dict[str, str] = {}
        if stream is not None:
            for raw in stream:
                line = raw.strip()
                key, sep, value = line.partition("=")
                if sep and re.fullmatch(r"[a-z0-9_]+", key):
                    block[key] = value
                    if key == "progress":
                        events.put(("progress", block))
                        block = {}
                elif line:
                    events.put(("error", line))
        events.put(("eof", "stderr"))

    def _progress(self, run: _Run, block: dict[str, str]) -> bool:
        try:
            frames = int(block.get("frame", "0"))
            out_time = int(block.get("out_time_us", "N/A")) / 1_000_000
        except ValueError:
            return False
        if frames <= 0:
            return False
        # Frames per second of stream time over the last few seconds: a camera that drops
        # frames shows it, and the burst ffmpeg flushes after probing does not inflate it
        # (its own fps figure is a run-long average of wall time).
        if run.rate_frames < 0:
            run.rate_frames, run.rate_since = frames, out_time
        elif out_time - run.rate_since >= 3.0:
            self.fps = round((frames - run.rate_frames) / (out_time - run.rate_since), 2)
            run.rate_frames, run.rate_since = frames, out_time
        if out_time > run.last_out_time:
            run.last_out_time = out_time
            run.last_advance = time.monotonic()
            self.last_frame_at = self.clock()
        # ffmpeg first flushes what it buffered while probing the stream, faster than real
        # time, so the earliest (now - output time) is the best wall-clock time of stream
        # time 0; it is refined until the first segment is published, then fixed.
        self._online(run, self.clock() - timedelta(seconds=out_time))
        return True

    def _online(self, run: _Run, anchor: datetime) -> None:
        """Frames flow: the camera is online, and `anchor` (wall-clock time of stream time 0
        by the latest frame) refines the run's anchor until its first segment is out."""
        with self._lock:
            if run.done == 0 and (run.anchor is None or anchor < run.anchor):
                # Never before what is already recorded.
                if self._last_end is not None and anchor < self._last_end:
                    anchor = self._last_end
                run.anchor = anchor
            if self.state != "online":
                self.state = "online"
                self.last_error = None

    def _emit_gap(self, end: datetime) -> None:
        """Record the open outage as ending at `end` (caller holds the lock)."""
        start, self._gap_since = self._gap_since, None
        if start is None:
            return
        gap = Gap(self.camera_id, start, max(start, end), self._gap_reason)
        self.sink.add_gap(gap)
        self.gaps += 1

    def _finish_segment(self, run: _Run, line: str) -> None:
        try:
            name, start_s, end_s = next(csv.reader([line]))
            start_t, end_t = float(start_s), float(end_s)
        except (ValueError, StopIteration):
            self.last_error = f"unreadable segment list line {line[:100]!r}"
            return
        # The name comes back from ffmpeg: accept only the ones this run was told to write.
        if not re.fullmatch(rf"{re.escape(run.session)}-\d{{6}}\.mp4", name):
            self.last_error = f"unexpected segment name {name[:100]!r}"
            return
        run.listed_end = end_t
        path = self.partial_dir / name
        if run.done == 0:
            # ffmpeg lists a run's first segment from the stream's first packet, but a
            # stream joined between key frames (most cameras keep their encoder running)
            # is written from the first key frame on: the file starts later, by up to a
            # GOP. One probe per run gives the time it really holds.
            held = probe_duration(path) if path.is_file() else None
            if held and held < end_t - start_t - 0.05:
                start_t = end_t - held
        self._publish(run, path, start_t, end_t)

    def _recover_leftovers(self) -> None:
        """Index the segments a crashed recorder left in .partial, timed by their mtime."""
        for path in sorted(self.partial_dir.glob("*.mp4"), key=lambda p: p.stat().st_mtime):
            duration = probe_duration(path) if path.stat().st_size > 0 else None
            if not duration:
                path.unlink(missing_ok=True)
                continue
            end = datetime.fromtimestamp(path.stat().st_mtime, UTC)
            run = _Run("recovered", None)
            run.anchor = end - timedelta(seconds=duration)
            self._publish(run, path, 0.0, duration)

    def _salvage(self, run: _Run) -> None:
        """Index what a killed ffmpeg left unlisted (fragmented MP4 stays readable)."""
        for path in sorted(self.partial_dir.glob(f"{run.session}-*.mp4")):
            duration = probe_duration(path) if path.stat().st_size > 0 else None
            if not duration:
                path.unlink(missing_ok=True)
                continue
            start_t = run.listed_end or 0.0
            self._publish(run, path, start_t, start_t + duration)
            run.listed_end = start_t + duration

    def _publish(self, run: _Run, partial: Path, start_t: float, end_t: float,
                 written: tuple[int, str] | None = None) -> None:
        """Move a closed segment to its place and index it; `written` is its (bytes,
        SHA-256) when the writer hashed and fsynced it already."""
        if not partial.is_file():
            return
        if run.anchor is None:  # no progress line yet: the segment ended about now
            run.anchor = self.clock() - timedelta(seconds=end_t)
        start = run.anchor + timedelta(seconds=start_t)
        end = run.anchor + timedelta(seconds=max(end_t, start_t))
        size, digest = written or _sha256_and_fsync(partial)
        final = self._final_path(start)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(partial, final)
        _fsync_dir(final.parent)
        segment = Segment(self.camera_id, start, end, size,
                          final.relative_to(self.root).as_posix(), digest)
        self.sink.add_segment(segment)
        with self._lock:
            if self._gap_since is not None:  # the first segment after an outage
                self._emit_gap(start)
            run.done += 1
            self.segments += 1
            self.last_segment = segment
            self.last_segment_at = self.clock()
            self._last_end = end
            if segment.duration > 0:
                self.bitrate_bps = round(size * 8 / segment.duration)

    def _final_path(self, start: datetime) -> Path:
        start = start.astimezone(UTC)
        folder = self.camera_dir / start.strftime("%Y-%m-%d") / start.strftime("%H")
        stem = start.strftime("%M.%S")
        path = folder / f"{stem}.mp4"
        number = 1
        while path.exists():  # two segments in one second (a reconnect): keep both
            path = folder / f"{stem}-{number}.mp4"
            number += 1
        return path


class _NativeSegments:
    """The native engine's segments for one session: access units in, published files out.

    A unit's duration is known when the next one arrives, so each is held back by one.
    At a key frame the held frames become a fragment, and once the segment is long enough
    (a key frame a little early still cuts, as with ffmpeg's segment_time_delta) the
    file is closed and published, and the key frame starts the next one.
    """

    def __init__(self, camera: CameraRecorder, run: _Run, session: str) -> None:
        self.camera = camera
        self.run = run
        self.session = session
        self.sps: bytes | None = None
        self.pps: bytes | None = None
        self.frames = 0
        self._number = 0
        self._writer: fmp4.SegmentWriter | None = None
        self._partial: Path | None = None
        self._segment_t0 = 0  # RTP time the open segment starts at
        self._t0: int | None = None  # RTP time of stream time 0 for this session
        self._held: AccessUnit | None = None
        self._samples: list[fmp4.Sample] = []
        self._pending = 0  # duration of the samples not yet written
        self._duration = 3600  # the last frame duration seen (90 kHz), for the last frame
        self._cut = max(0.0, camera.segment_seconds - min(0.5, camera.segment_seconds * 0.05))
        self._rate_frames = 0
        self._rate_since: int | None = None
        self._waited = 0  # frames seen before the first key frame
        self._params: tuple[bytes | None, bytes | None] = (None, None)  # in the open file

    def add(self, unit: AccessUnit) -> None:
        for nal in unit.nals:
            kind = nal[0] & 0x1F
            if kind == 7:
                self.sps = nal
            elif kind == 8:
                self.pps = nal
        held = self._held
        if held is None:
            if not unit.key or self.sps is None or self.pps is None:
                # A segment starts on a key frame whose parameters are known.
                self._waited += 1
                if self._waited > MAX_FRAMES_TO_KEY:
                    raise Unsupported(f"no IDR key frame with its SPS and PPS in "
                                      f"{MAX_FRAMES_TO_KEY} frames")
                return
            self._t0 = unit.time
            self._open(unit.time)
            self._held = unit
            self._seen(unit)
            return
        step = unit.time - held.time
        if step < 0:
            raise Unsupported("frames out of order (B-frames)")
        if 0 < step <= 10 * fmp4.TIMESCALE:
            self._duration = step
        else:
            step = self._duration  # a repeated or absurd time: the usual frame length
        self._hold(held, step)
        if unit.key:
            self._flush()
            assert self._writer is not None
            # A new picture size or coding: the next file gets a header that describes it.
            if (self._writer.decode_time >= self._cut * fmp4.TIMESCALE
                    or (self.sps, self.pps) != self._params):
                self._close()
                self._open(unit.time)
        elif self._pending >= FRAGMENT_SECONDS * fmp4.TIMESCALE:
            self._flush()
        self._held = unit
        self._seen(unit)

    def _hold(self, unit: AccessUnit, duration: int) -> None:
        data = fmp4.sample_data(unit.nals)
        self._samples.append(fmp4.Sample(data, duration, unit.key))
        self._pending += duration
        self.frames += 1

    def _seen(self, unit: AccessUnit) -> None:
        """Health and the wall-clock anchor, as ffmpeg's progress lines gave them."""
        camera, run = self.camera, self.run
        assert self._t0 is not None
        out_time = (unit.time - self._t0) / fmp4.TIMESCALE
        now = time.monotonic()
        run.last_advance = now
        if self._rate_since is None:
            self._rate_since, self._rate_frames = unit.time, self.frames
        elif unit.time - self._rate_since >= 3 * fmp4.TIMESCALE:
            seconds = (unit.time - self._rate_since) / fmp4.TIMESCALE
            camera.fps = round((self.frames - self._rate_frames) / seconds, 2)
            self._rate_since, self._rate_frames = unit.time, self.frames
        wall = camera.clock()
        camera.last_frame_at = wall
        if run.done or (run.anchor is not None and self.frames % 25):
            return  # the anchor is refined until the first segment, once a second or so
        camera._online(run, wall - timedelta(seconds=out_time))

    def _open(self, rtp_time: int) -> None:
        assert self.sps is not None and self.pps is not None
        self._number += 1
        try:
            header = fmp4.init_segment(self.sps, self.pps)
        except ValueError as exc:
            raise Unsupported(f"an SPS this recorder cannot read ({exc})") from exc
        self._partial = self.camera.partial_dir / f"{self.session}-{self._number:06d}.mp4"
        self._writer = fmp4.SegmentWriter(self._partial, header)
        self._segment_t0 = rtp_time
        self._params = (self.sps, self.pps)

    def _flush(self) -> None:
        if self._samples and self._writer is not None:
            self._writer.add(self._samples)
        self._samples, self._pending = [], 0

    def _close(self) -> None:
        writer, partial = self._writer, self._partial
        if writer is None or partial is None:
            return
        self._writer = self._partial = None
        if writer.fragments == 0:
            writer.abandon()
            partial.unlink(missing_ok=True)
            return
        written = writer.close()
        assert self._t0 is not None
        start_t = (self._segment_t0 - self._t0) / fmp4.TIMESCALE
        self.camera._publish(self.run, partial, start_t,
                             start_t + writer.decode_time / fmp4.TIMESCALE, written)

    def close(self) -> None:
        """The end of the session: the held frame gets the usual length, the file closes."""
        if self._held is not None and self._writer is not None:
            self._hold(self._held, self._duration)
            self._held = None
        try:
            self._flush()
        finally:
            self._close()


# --- many cameras -------------------------------------------------------------


class Recorder:
    """Records a set of cameras into one root; a context manager."""

    def __init__(self, root: Path, *, sink: SegmentSink | None = None,
                 segment_seconds: float = 10.0, **options: Any) -> None:
        self.root = root
        self.sink: SegmentSink = sink if sink is not None else JsonlSink(root)
        self.segment_seconds = segment_seconds
        self.options = options
        self.cameras: dict[str, CameraRecorder] = {}

    def add(self, camera_id: str, url: str) -> CameraRecorder:
        check_camera_id(camera_id)
        if camera_id in self.cameras:
            raise InvalidInput.on("camera", f"camera {camera_id!r} is already recorded")
        camera = CameraRecorder(camera_id, url, self.root, self.sink,
                                segment_seconds=self.segment_seconds, **self.options)
        self.cameras[camera_id] = camera
        return camera

    def add_all(self, cameras: Sequence[tuple[str, str]]) -> None:
        for camera_id, url in cameras:
            self.add(camera_id, url)

    def start(self) -> Self:
        self.root.mkdir(parents=True, exist_ok=True)
        for camera in self.cameras.values():
            camera.start()
        return self

    def stop(self) -> None:
        for camera in self.cameras.values():
            camera.request_stop()  # all at once, so the cameras close in parallel
        for camera in self.cameras.values():
            camera.stop()

    def status(self) -> dict[str, dict[str, Any]]:
        return {camera_id: camera.status() for camera_id, camera in self.cameras.items()}

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
