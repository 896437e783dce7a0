"""Recording benchmark: Vigila's recorder beside plain ``ffmpeg -c copy -f segment``.

N simulated cameras (``vigila.sim``: GStreamer's RTSP server replaying a pre-encoded
1080p25 4 Mbit/s H.264 clip on 127.0.0.1) are recorded for M minutes, in the same run and
from the same streams, by

* Vigila: ``vigila.recording.Recorder`` in a Python process of its own, with its engine
  (``--engine``): by default the native one (one thread per camera reading RTSP over TCP
  and writing fragmented MP4, hashed as written), or one supervised ``ffmpeg -c copy -f
  segment`` child per camera; SHA-256, fsync and ``index.jsonl`` either way, and
* the peer: one plain ``ffmpeg -rtsp_transport tcp -i URL -map 0:v:0 -c copy -f segment
  -segment_time S -reset_timestamps 1 -segment_format mp4`` per camera, nothing else.

The simulator runs one replay pipeline for all its cameras and clients, so both recorders
read the very same stream of each camera, and the simulator's own cost (about 0.1 % of a
core a client) leaves the cores to the recorders.

Measured, per side: CPU from ``/proc/<pid>/stat`` (utime + stime of the process tree,
reaped children included) sampled every few seconds over the measurement window, as a
median over the intervals and as a total; memory as the PSS of the tree
(``/proc/<pid>/smaps_rollup``), median over the samples; the simulator's CPU and the
machine's idle time over the same intervals; then every segment: frames counted from the
MP4 boxes (checked against ffprobe on one camera), file times, Vigila's gaps and restarts.
A side has lost data when, after a camera's first segment, the frames it wrote fall short
of the wall-clock time by more than a second, or a segment in the middle of the run is
short. A run is sustained when Vigila lost nothing, recorded no gap and never restarted a
camera; a sweep stops at the first N that is not sustained, or when the machine has less
than 5 % idle time, and reports the largest N sustained.

    python bench/recording.py --cameras 4 --minutes 1
    python bench/recording.py --sweep 10,25,50,75,100,125,150 --minutes 5 --write-docs
    python bench/recording.py --no-peer --sweep 50,100,125,150 --minutes 5 --write-docs
    python bench/recording.py --cameras 2 --minutes 1 --drop-one 8    # fault check

``--write-docs`` records the figures in docs/BENCHMARKS.md, section "Recording": one block
for the runs beside the peer, one for Vigila alone (``--no-peer``); a run replaces its own
block and keeps the other.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from benchdoc import cpu_name, current_section, disk_of, put_section

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "BENCHMARKS.md"
SECTION = "## Recording (Vigila beside ffmpeg -f segment)"
BEGIN = "<!-- begin: written by bench/recording.py --write-docs -->"
END = "<!-- end: bench/recording.py -->"
TICKS = os.sysconf("SC_CLK_TCK")
SYSTEM_PYTHON = "/usr/bin/python3"
FPS = 25  # the simulator's clip (vigila.sim.clip.MAIN): 1080p25, a key frame every 2 s
GOP_SECONDS = 2.0
LOST_TOLERANCE_S = 1.0  # per camera: stop-time jitter, not lost video
IDLE_FLOOR_PCT = 5.0  # below this the machine is saturated and a sweep stops
BUSY_PCT = 10.0  # CPU of other processes (% of one core) above which a run is disturbed
SIM_BOUND_PCT = 80.0  # the simulator's CPU (% of one core) above which it may be the limit
MIB = 1024 * 1024


# --- /proc ---------------------------------------------------------------------


@dataclass(frozen=True)
class ProcStat:
    pid: int
    ppid: int
    state: str
    utime: int
    stime: int
    cutime: int
    cstime: int
    threads: int
    start: int  # start time in ticks since boot: tells a reused pid from the original

    @property
    def own(self) -> int:
        return self.utime + self.stime

    @property
    def whole(self) -> int:
        """Own ticks plus those of its reaped children."""
        return self.utime + self.stime + self.cutime + self.cstime


def read_stat(pid: int) -> ProcStat | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            text = handle.read().decode("ascii", "replace")
    except OSError:  # gone
        return None
    rest = text.rsplit(")", 1)[1].split()  # the name may hold spaces and brackets
    # rest[k - 3] is field k of proc(5): state 3, ppid 4, utime 14 ... starttime 22.
    return ProcStat(pid, int(rest[1]), rest[0], int(rest[11]), int(rest[12]), int(rest[13]),
                    int(rest[14]), int(rest[17]), int(rest[19]))


def all_stats() -> dict[int, ProcStat]:
    stats = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            stat = read_stat(int(name))
            if stat is not None:
                stats[stat.pid] = stat
    return stats


def descendants(root: int, stats: dict[int, ProcStat]) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in stats.values():
        children.setdefault(stat.ppid, []).append(stat.pid)
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def tree_ticks(root: int, stats: dict[int, ProcStat]) -> int | None:
    """CPU ticks of a process tree so far: the root's with its reaped children, plus every
    live descendant's (a live process is in no ancestor's cutime, so nothing counts twice)."""
    if root not in stats:
        return None
    return stats[root].whole + sum(stats[pid].whole for pid in descendants(root, stats))


def memory_kib(pid: int) -> tuple[int, int]:
    """(PSS, RSS) of one process in KiB; (0, 0) when it is gone."""
    pss = rss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as handle:
            for raw in handle:
                if raw.startswith(b"Pss:"):
                    pss = int(raw.split()[1])
                elif raw.startswith(b"Rss:"):
                    rss = int(raw.split()[1])
    except (OSError, ValueError, IndexError):
        return 0, 0
    return pss, rss


def tree_memory_kib(pids: Iterable[int]) -> tuple[int, int]:
    pss = rss = 0
    for pid in pids:
        p, r = memory_kib(pid)
        pss += p
        rss += r
    return pss, rss


def machine_ticks() -> tuple[int, int, int, int, int]:
    """(total, idle, iowait, irq, steal) jiffies of all CPUs from /proc/stat; idle includes
    iowait (a CPU waiting on the disk could run something else), irq includes softirq."""
    with open("/proc/stat", "rb") as handle:
        fields = [int(v) for v in handle.readline().split()[1:9]]
    return sum(fields), fields[3] + fields[4], fields[4], fields[5] + fields[6], fields[7]


class KernelTicks:
    """CPU of kernel threads (writeback, network softirq, ...) plus interrupt time: the
    kernel's share of the work, kept apart from other users' processes. A kernel thread
    that ends keeps the ticks it was last seen with."""

    def __init__(self) -> None:
        self.last: dict[tuple[int, int], int] = {}

    def __call__(self, stats: dict[int, ProcStat], irq: int) -> int:
        for stat in stats.values():
            if stat.pid == 2 or stat.ppid == 2:  # kthreadd and its children
                self.last[(stat.pid, stat.start)] = stat.own
        return sum(self.last.values()) + irq


# --- MP4 segments ----------------------------------------------------------------

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"moof", b"traf"}


def _boxes(buf: bytes) -> Iterable[tuple[bytes, bytes]]:
    pos = 0
    while pos + 8 <= len(buf):
        size, kind = struct.unpack_from(">I4s", buf, pos)
        head = 8
        if size == 1 and pos + 16 <= len(buf):
            size, head = struct.unpack_from(">Q", buf, pos + 8)[0], 16
        elif size == 0:
            size = len(buf) - pos
        if size < head or pos + size > len(buf):
            return
        yield kind, buf[pos + head:pos + size]
        pos += size


def _samples(buf: bytes) -> int:
    count = 0
    for kind, body in _boxes(buf):
        if kind in _CONTAINERS:
            count += _samples(body)
        elif kind == b"stsz" and len(body) >= 12:  # version+flags, sample_size, sample_count
            count += struct.unpack_from(">I", body, 8)[0]
        elif kind == b"trun" and len(body) >= 8:  # version+flags, sample_count
            count += struct.unpack_from(">I", body, 4)[0]
    return count


def mp4_frames(path: Path) -> tuple[int, bool]:
    """(video frames, complete) of an MP4 file, plain (stsz in moov) or fragmented (trun in
    each moof), from its boxes alone; the media data is skipped, never read."""
    frames, complete = 0, True
    with path.open("rb") as handle:
        end = os.fstat(handle.fileno()).st_size
        pos = 0
        while pos + 8 <= end:
            handle.seek(pos)
            head = handle.read(16)
            size, kind = struct.unpack_from(">I4s", head)
            header = 8
            if size == 1 and len(head) == 16:
                size, header = struct.unpack_from(">Q", head, 8)[0], 16
            elif size == 0:
                size = end - pos
            if size < header or pos + size > end:
                complete = False  # cut short: a killed writer
                break
            if kind in (b"moov", b"moof"):
                handle.seek(pos + header)
                frames += _samples(handle.read(size - header))
            pos += size
    return frames, complete


def ffprobe_frames(path: Path) -> int | None:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets",
         "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, timeout=60, check=False)
    try:
        return int(result.stdout.strip().split(",")[0])
    except ValueError:
        return None


@dataclass
class SegmentFile:
    name: str
    mtime: float  # wall clock: when the writer closed it
    bytes: int
    frames: int
    complete: bool
    probed_frames: int | None = None


class SegmentScanner:
    """Finds the finished segments of one side, counts their frames, and (unless kept)
    deletes them, so that a long run at 150 cameras does not fill the disk."""

    def __init__(self, side: str, root: Path, cameras: Sequence[str], keep: bool,
                 kept_camera: str) -> None:
        self.side = side
        self.root = root
        self.keep = keep
        self.kept_camera = kept_camera  # its files stay, for the ffprobe check
        self.found: dict[str, dict[str, SegmentFile]] = {camera: {} for camera in cameras}

    def _candidates(self, camera: str, final: bool) -> list[Path]:
        folder = self.root / camera
        if not folder.is_dir():
            return []
        if self.side == "vigila":  # published: <camera>/<date>/<hour>/<MM.SS>.mp4
            return list(folder.glob("*/*/*.mp4"))
        files = sorted(folder.glob("*.mp4"))
        return files if final else files[:-1]  # the newest one is still being written

    def scan(self, final: bool = False) -> None:
        for camera, seen in self.found.items():
            for path in self._candidates(camera, final):
                key = path.relative_to(self.root).as_posix()
                if key in seen:
                    continue
                try:
                    info = path.stat()
                    frames, complete = mp4_frames(path)
                except OSError:
                    continue
                seen[key] = SegmentFile(key, info.st_mtime, info.st_size, frames, complete)
                if not self.keep and camera != self.kept_camera:
                    path.unlink(missing_ok=True)

    def probe_kept(self) -> tuple[int, int]:
        """ffprobe's packet count against the box count on the kept camera's files:
        (files checked, files that disagree)."""
        checked = wrong = 0
        for segment in self.found[self.kept_camera].values():
            path = self.root / segment.name
            if not path.exists():
                continue
            segment.probed_frames = ffprobe_frames(path)
            checked += 1
            wrong += segment.probed_frames != segment.frames
        return checked, wrong


@dataclass
class SideLoss:
    """What one side recorded of every camera, against the wall clock."""

    cameras_recorded: int = 0
    segments: int = 0
    expected_full: int = 0  # full segments the wall clock allows after each first one
    full: int = 0  # of them, written whole (S - 0.2 s of frames; S - GOP when S is no
    short: int = 0  # multiple of the GOP); short: segments in the middle of the run with less
    incomplete: int = 0  # files cut short (no moov, truncated box)
    lost_segments: int = 0  # missing time, in segments (rounded up, per camera)
    lost_s: float = 0.0  # missing time beyond the tolerance, all cameras
    recorded_s: float = 0.0  # frames / fps after each camera's first segment
    wall_s: float = 0.0  # from each camera's first segment to the stop
    first_segment_s: list[float] = field(default_factory=list)  # start -> first segment
    per_camera_missing_s: dict[str, float] = field(default_factory=dict)
    per_camera_frames: dict[str, list[int]] = field(default_factory=dict)  # in time order

    @property
    def lost(self) -> bool:
        return self.lost_segments > 0 or self.short > 0 or self.incomplete > 0


def account(found: dict[str, dict[str, SegmentFile]], segment_s: float, start_wall: float,
            stop_wall: float) -> SideLoss:
    loss = SideLoss()
    if abs(segment_s / GOP_SECONDS - round(segment_s / GOP_SECONDS)) < 1e-9:
        # Cuts land on key frames exactly S apart: every segment holds S * fps frames.
        short_frames = segment_s * FPS - FPS / 5
    else:  # cuts at the first key frame past each multiple of S: up to a GOP shorter
        short_frames = (segment_s - GOP_SECONDS - 0.1) * FPS
    full_frames = short_frames
    for camera, files in found.items():
        segments = sorted(files.values(), key=lambda s: s.mtime)
        loss.segments += len(segments)
        loss.per_camera_frames[camera] = [s.frames for s in segments]
        loss.incomplete += sum(not s.complete for s in segments)
        if not segments:
            window = stop_wall - start_wall
            loss.lost_segments += max(1, math.ceil(window / segment_s))
            loss.lost_s += window
            loss.per_camera_missing_s[camera] = round(window, 2)
            continue
        loss.cameras_recorded += 1
        first = segments[0]
        loss.first_segment_s.append(first.mtime - start_wall)
        span = stop_wall - first.mtime
        recorded = sum(s.frames for s in segments[1:]) / FPS
        missing = span - recorded
        loss.wall_s += span
        loss.recorded_s += recorded
        loss.per_camera_missing_s[camera] = round(missing, 2)
        if missing > LOST_TOLERANCE_S:
            loss.lost_s += missing
            loss.lost_segments += math.ceil(missing / segment_s)
        loss.expected_full += int(max(0.0, span) // segment_s)
        loss.full += sum(s.frames >= full_frames for s in segments[1:])
        loss.short += sum(s.frames < short_frames for s in segments[1:-1])
    return loss


# --- the two recorders --------------------------------------------------------------


def peer_command(url: str, out: Path, segment_s: float) -> list[str]:
    return ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-nostats",
            "-rtsp_transport", "tcp", "-i", url, "-map", "0:v:0", "-c", "copy",
            "-f", "segment", "-segment_time", f"{segment_s:g}", "-reset_timestamps", "1",
            "-segment_format", "mp4", str(out / "%06d.mp4")]


def vigila_child(config_path: Path) -> int:
    """The Vigila side, in a process of its own: records until 'stop' (or end of input)."""
    from vigila.recording.recorder import Recorder

    config = json.loads(config_path.read_text())
    root = Path(config["root"])
    recorder = Recorder(root, segment_seconds=config["segment_seconds"],
                        engine=config["engine"])
    recorder.add_all([(camera, url) for camera, url in config["cameras"]])
    root.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop cleanly below
    print(json.dumps({"loaded": os.getpid()}), flush=True)
    try:
        if sys.stdin.readline().strip() == "go":
            for camera in recorder.cameras.values():  # staggered like the peer's starts
                camera.start()
                time.sleep(config["stagger_s"])
            print(json.dumps({"started": len(recorder.cameras)}), flush=True)
            sys.stdin.readline()  # "stop", or nothing when the driver went away
    except KeyboardInterrupt:
        pass
    finally:
        recorder.stop()
        status = {camera_id: camera.status() for camera_id, camera in recorder.cameras.items()}
        Path(config["status_path"]).write_text(json.dumps(status))
    return 0


class VigilaSide:
    def __init__(self, out: Path, cameras: dict[str, str], segment_s: float,
                 stagger_s: float, engine: str) -> None:
        self.root = out / "vigila"
        self.status_path = out / "vigila-status.json"
        config = {"root": str(self.root), "segment_seconds": segment_s, "stagger_s": stagger_s,
                  "engine": engine,
                  "cameras": list(cameras.items()), "status_path": str(self.status_path)}
        config_path = out / "vigila-child.json"
        config_path.write_text(json.dumps(config))
        self.log: IO[bytes] = (out / "vigila-child.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--vigila-child", str(config_path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True,
            bufsize=1, start_new_session=True)
        self.seen: dict[int, int] = {}  # descendant pid -> start time, for the clean-up
        self.stop_wall: float | None = None
        self.status: dict[str, Any] = {}

    def _line(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            with contextlib.suppress(json.JSONDecodeError):
                value = json.loads(line)
                if isinstance(value, dict):
                    return value
        raise RuntimeError(f"the Vigila recorder process did not start; see {self.log.name}")

    def wait_loaded(self) -> None:
        self._line(120)

    def go(self) -> None:
        self._send("go")

    def wait_started(self, timeout: float) -> None:
        self._line(timeout)

    def _send(self, word: str) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(OSError):
            self.proc.stdin.write(word + "\n")
            self.proc.stdin.flush()

    def remember(self, stats: dict[int, ProcStat]) -> None:
        for pid in descendants(self.proc.pid, stats):
            self.seen.setdefault(pid, stats[pid].start)

    def stop(self) -> None:
        self.stop_wall = time.time()
        self._send("stop")

    def finish(self, timeout: float) -> None:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._kill_leftovers()
        with contextlib.suppress(OSError, json.JSONDecodeError):
            self.status = json.loads(self.status_path.read_text())
        self.log.close()

    def _kill_leftovers(self) -> None:
        """ffmpeg children run in sessions of their own: end any the child left behind."""
        for pid, start in self.seen.items():
            stat = read_stat(pid)
            if stat is not None and stat.start == start and stat.state != "Z":
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


class PeerSide:
    def __init__(self, out: Path, segment_s: float) -> None:
        self.root = out / "ffmpeg"
        self.segment_s = segment_s
        self.log: IO[bytes] = (out / "ffmpeg-peer.log").open("wb")
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.last_ticks: dict[int, int] = {}  # pid -> last utime+stime seen
        self.stop_wall: float | None = None
        self.died: list[str] = []  # cameras whose ffmpeg ended before the stop

    def start_one(self, camera: str, url: str) -> None:
        folder = self.root / camera
        folder.mkdir(parents=True, exist_ok=True)
        # Not reaped until the end: a dead one's CPU time stays readable in /proc.
        self.procs[camera] = subprocess.Popen(
            peer_command(url, folder, self.segment_s), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=self.log, start_new_session=True)

    def ticks(self, stats: dict[int, ProcStat]) -> int:
        for proc in self.procs.values():
            stat = stats.get(proc.pid)
            if stat is not None:
                self.last_ticks[proc.pid] = stat.own
        return sum(self.last_ticks.values())

    def pids(self) -> list[int]:
        return [proc.pid for proc in self.procs.values()]

    def stop(self, stats: dict[int, ProcStat]) -> None:
        self.stop_wall = time.time()
        for camera, proc in self.procs.items():
            stat = stats.get(proc.pid)
            if stat is None or stat.state == "Z":
                self.died.append(camera)
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)  # closes the open segment

    def finish(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.log.close()


# --- one run -------------------------------------------------------------------------


@dataclass
class Sample:
    t: float  # monotonic
    machine_total: int
    machine_idle: int
    machine_iowait: int
    machine_steal: int
    kernel: int
    vigila: int  # ticks of the tree
    supervisor: int  # ticks of the Python process alone
    peer: int
    sim: int
    driver: int
    vigila_pss: int = 0  # KiB
    vigila_rss: int = 0
    supervisor_pss: int = 0
    peer_pss: int = 0
    peer_rss: int = 0
    sim_pss: int = 0
    vigila_threads: int = 0
    vigila_ffmpeg: int = 0
    peer_alive: int = 0


def take_sample(vigila: VigilaSide, peer: PeerSide | None, sim_pid: int, kernel: KernelTicks,
                memory: bool = True) -> Sample:
    stats = all_stats()
    total, idle, iowait, irq, steal = machine_ticks()
    now = time.monotonic()
    child = vigila.proc.pid
    vigila.remember(stats)
    me = stats.get(os.getpid())
    sample = Sample(
        now, total, idle, iowait, steal, kernel(stats, irq), tree_ticks(child, stats) or 0,
        stats[child].own if child in stats else 0,
        peer.ticks(stats) if peer else 0,
        tree_ticks(sim_pid, stats) or 0,
        me.own if me else 0)
    if memory:
        tree = [child, *descendants(child, stats)]
        sample.vigila_pss, sample.vigila_rss = tree_memory_kib(tree)
        sample.supervisor_pss = memory_kib(child)[0]
        sample.vigila_threads = stats[child].threads if child in stats else 0
        sample.vigila_ffmpeg = len(tree) - 1
        if peer:
            live = [pid for pid in peer.pids() if pid in stats and stats[pid].state != "Z"]
            sample.peer_pss, sample.peer_rss = tree_memory_kib(live)
            sample.peer_alive = len(live)
        sample.sim_pss = memory_kib(sim_pid)[0]
    return sample


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def cpu_figures(samples: list[Sample], n: int, ncpu: int) -> dict[str, Any]:
    """Per interval CPU in % of one core; medians over the intervals and window totals."""
    pairs = list(itertools.pairwise(samples))
    span = samples[-1].t - samples[0].t

    def pct(a: Sample, b: Sample, attr: str) -> float:
        return float(100 * (getattr(b, attr) - getattr(a, attr)) / TICKS / (b.t - a.t))

    def total(attr: str) -> float:
        return float(100 * (getattr(samples[-1], attr) - getattr(samples[0], attr)) / TICKS
                     / span)

    def idle(a: Sample, b: Sample) -> float:
        return 100 * (b.machine_idle - a.machine_idle) / max(1, b.machine_total - a.machine_total)

    out: dict[str, Any] = {"intervals": len(pairs), "window_s": round(span, 1)}
    for attr in ("vigila", "supervisor", "peer", "sim", "driver", "kernel"):
        series = [pct(a, b, attr) for a, b in pairs]
        out[attr] = {"median_pct": _median(series), "total_pct": total(attr),
                     "series_pct": [round(v, 2) for v in series]}
    out["vigila_per_stream"] = {"median_pct": out["vigila"]["median_pct"] / n,
                                "total_pct": out["vigila"]["total_pct"] / n}
    children = [pct(a, b, "vigila") - pct(a, b, "supervisor") for a, b in pairs]
    out["vigila_ffmpeg_per_stream"] = {  # Vigila's ffmpeg children alone, no supervisor
        "median_pct": _median(children) / n,
        "total_pct": (out["vigila"]["total_pct"] - out["supervisor"]["total_pct"]) / n}
    out["peer_per_stream"] = {"median_pct": out["peer"]["median_pct"] / n,
                              "total_pct": out["peer"]["total_pct"] / n}
    ratios = [pct(a, b, "vigila") / pct(a, b, "peer") for a, b in pairs
              if pct(a, b, "peer") > 0]
    out["ratio"] = {"median": _median(ratios),  # paired: both sides over the same interval
                    "total": (out["vigila"]["total_pct"] / out["peer"]["total_pct"]
                              if out["peer"]["total_pct"] > 0 else float("nan"))}
    idles = [idle(a, b) for a, b in pairs]
    whole_idle = idle(samples[0], samples[-1])
    out["idle"] = {"median_pct": _median(idles), "total_pct": whole_idle,
                   "min_pct": min(idles) if idles else float("nan")}
    whole = max(1, samples[-1].machine_total - samples[0].machine_total)
    out["steal_pct"] = 100 * (samples[-1].machine_steal - samples[0].machine_steal) / whole
    out["iowait_pct"] = 100 * (samples[-1].machine_iowait - samples[0].machine_iowait) / whole
    busy = ncpu * (100 - whole_idle - out["steal_pct"])  # in % of one core
    ours = sum(out[attr]["total_pct"] for attr in ("vigila", "peer", "sim", "driver", "kernel"))
    out["others_pct"] = max(0.0, busy - ours)
    return out


def memory_figures(samples: list[Sample], n: int) -> dict[str, Any]:
    def med(attr: str) -> float:
        return _median([getattr(s, attr) / 1024 for s in samples])

    return {"vigila_pss_mib": med("vigila_pss"), "vigila_rss_mib": med("vigila_rss"),
            "supervisor_pss_mib": med("supervisor_pss"), "peer_pss_mib": med("peer_pss"),
            "peer_rss_mib": med("peer_rss"), "sim_pss_mib": med("sim_pss"),
            "vigila_per_stream_mib": med("vigila_pss") / n,
            "peer_per_stream_mib": med("peer_pss") / n,
            "vigila_threads": int(_median([s.vigila_threads for s in samples])),
            # Processes alive at each sample, fewest: N on each side when nothing died.
            "vigila_children_min": min(s.vigila_ffmpeg for s in samples),
            "peer_alive_min": min(s.peer_alive for s in samples),
            "samples": len(samples)}


def run_once(n: int, args: argparse.Namespace, out: Path, cache: Path) -> dict[str, Any]:
    from vigila.sim.cameras import CameraSimulator, camera_ids

    out.mkdir(parents=True, exist_ok=True)
    segment_s = args.segment_seconds
    window_s = args.minutes * 60
    interval = min(args.sample_seconds, window_s / 5)
    ids = camera_ids(n)
    ncpu = os.cpu_count() or 1
    result: dict[str, Any] = {"cameras": n, "minutes": args.minutes, "segment_s": segment_s,
                              "peer": not args.no_peer, "out": str(out)}
    print(f"\n== {n} camera(s): simulator ...", flush=True)
    with CameraSimulator(ids, cache_dir=cache, sub_streams=False,
                         log_path=out / "rtsp-server.log") as sim:
        urls = sim.urls()
        vigila = VigilaSide(out, urls, segment_s, args.stagger, args.engine)
        peer = None if args.no_peer else PeerSide(out, segment_s)
        timers: list[threading.Timer] = []
        try:
            vigila.wait_loaded()
            start_wall = time.time()
            vigila.go()
            for camera in ids:  # interleaved with the child's own staggered starts
                if peer:
                    peer.start_one(camera, urls[camera])
                time.sleep(args.stagger)
            vigila.wait_started(60 + n * args.stagger)
            scanners = {"vigila": SegmentScanner("vigila", vigila.root, ids, args.keep, ids[0])}
            if peer:
                scanners["ffmpeg"] = SegmentScanner("ffmpeg", peer.root, ids, args.keep, ids[0])
            # Warm-up: until every camera has a finished segment on each side (past the
            # connection and the probing burst), or a generous limit.
            limit = time.monotonic() + 3 * segment_s + 30 + n * args.stagger
            print(f"   recording; warm-up until each camera has a segment "
                  f"(at most {limit - time.monotonic():.0f} s) ...", flush=True)
            while time.monotonic() < limit:
                for scanner in scanners.values():
                    scanner.scan()
                if all(files for s in scanners.values() for files in s.found.values()):
                    break
                time.sleep(1.0)
            result["warmup_s"] = round(time.time() - start_wall, 1)
            print(f"   measuring for {window_s:.0f} s, a sample every {interval:g} s ...",
                  flush=True)
            kernel = KernelTicks()
            samples = [take_sample(vigila, peer, sim.pid, kernel)]
            t0 = samples[0].t
            if args.drop_one:  # the fault check: the detectors must see this outage
                at = max(0.0, (window_s - args.drop_one) / 2)
                timers = [threading.Timer(at, sim.drop, (ids[0],)),
                          threading.Timer(at + args.drop_one, sim.restore, (ids[0],))]
                for timer in timers:
                    timer.start()
                result["dropped"] = {"camera": ids[0], "after_s": at, "for_s": args.drop_one}
            k = 1
            while True:
                due = t0 + k * interval
                if due > t0 + window_s + 1e-6:
                    due = t0 + window_s
                for scanner in scanners.values():
                    scanner.scan()
                time.sleep(max(0.0, due - time.monotonic()))
                samples.append(take_sample(vigila, peer, sim.pid, kernel))
                if due >= t0 + window_s:
                    break
                k += 1
            for timer in timers:
                timer.join()
            stats = all_stats()
            vigila.remember(stats)
            vigila.stop()
            if peer:
                peer.stop(stats)
        finally:
            for timer in timers:
                timer.cancel()
            if vigila.stop_wall is None:  # something failed before the end of the window
                vigila.stop()
            if peer and peer.stop_wall is None:
                peer.stop(all_stats())
            vigila.finish(60 + n * 0.2)
            if peer:
                peer.finish(30)
        stop_wall = time.time()
    result["vigila_stop_exit"] = vigila.proc.returncode
    for scanner in scanners.values():
        scanner.scan(final=True)
    result["cpu"] = cpu_figures(samples, n, ncpu)
    result["memory"] = memory_figures(samples, n)
    stops = {"vigila": vigila.stop_wall or stop_wall,
             "ffmpeg": (peer.stop_wall if peer else None) or stop_wall}
    for side, scanner in scanners.items():
        loss = account(scanner.found, segment_s, start_wall, stops[side])
        checked, wrong = scanner.probe_kept()
        result[side] = asdict(loss) | {"lost": loss.lost, "probe_checked": checked,
                                       "probe_disagree": wrong}
        result[side]["first_segment_s"] = {
            "median": round(_median(loss.first_segment_s), 2),
            "max": round(max(loss.first_segment_s, default=float("nan")), 2)}
    status = vigila.status
    gaps_path = vigila.root / "gaps.jsonl"
    gaps = [line for line in gaps_path.read_text().splitlines() if line.strip()] \
        if gaps_path.exists() else []
    index_path = vigila.root / "index.jsonl"
    indexed = sum(1 for line in index_path.read_text().splitlines() if line.strip()) \
        if index_path.exists() else 0
    result["vigila"].update({
        "gaps": len(gaps), "gap_records": [json.loads(g) for g in gaps[:20]],
        "indexed": indexed,
        "restarts": sum(max(0, s.get("attempts", 1) - 1) for s in status.values()),
        "no_segments": sorted(c for c, s in status.items() if not s.get("segments")),
        "errors": sorted({str(s["last_error"]) for s in status.values() if s.get("last_error")})})
    if peer:
        result["ffmpeg"]["died"] = sorted(peer.died)
    v = result["vigila"]
    result["sustained"] = (not v["lost"] and v["gaps"] == 0 and v["restarts"] == 0
                           and v["cameras_recorded"] == n)
    if peer:
        f = result["ffmpeg"]
        result["peer_sustained"] = not f["lost"] and not f["died"] and f["cameras_recorded"] == n
    result["saturated"] = result["cpu"]["idle"]["median_pct"] < IDLE_FLOOR_PCT
    return result


# --- report ---------------------------------------------------------------------------


def machine(out: Path) -> dict[str, str]:
    cpu = cpu_name()
    ffmpeg = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True,
                            check=False).stdout.splitlines()
    version = ffmpeg[0].split()[2] if ffmpeg and len(ffmpeg[0].split()) > 2 else "unknown"
    return {"cpu": cpu, "cores": str(os.cpu_count()), "nproc": str(len(os.sched_getaffinity(0))),
            "kernel": platform.release(), "ffmpeg": version, "gstreamer": gst_version(),
            "python": sys.version.split()[0], "memory": _mem_total(), "disk": disk_of(out),
            "date": time.strftime("%Y-%m-%d")}


def _mem_total() -> str:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / MIB:.0f} GiB"
    return "unknown"


_GST_CHECK = ("import gi; gi.require_version('Gst', '1.0'); "
              "gi.require_version('GstRtspServer', '1.0'); "
              "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
              "print(Gst.version_string())")


def gst_version() -> str:
    result = subprocess.run([SYSTEM_PYTHON, "-I", "-c", _GST_CHECK], capture_output=True,
                            text=True, check=False, timeout=60)
    return result.stdout.strip().replace("GStreamer ", "") if result.returncode == 0 else ""


def check_tools() -> str | None:
    """Why the benchmark cannot run here, or None."""
    missing = [tool for tool in ("ffmpeg", "ffprobe") if shutil.which(tool) is None]
    if missing:
        return (f"{' and '.join(missing)} not found: install the Debian package ffmpeg "
                "(scripts/install-system.sh)")
    if not Path(SYSTEM_PYTHON).is_file() or not gst_version():
        return (f"GStreamer's RTSP server is not available to {SYSTEM_PYTHON}: install the "
                "Debian packages python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp "
                "gstreamer1.0-plugins-good gstreamer1.0-plugins-bad "
                "(scripts/install-system.sh)")
    return None


def _f(value: float, digits: int = 2) -> str:
    return "n/a" if value != value else f"{value:.{digits}f}"  # NaN check


def _segs(side: dict[str, Any]) -> str:
    return (f"{side['expected_full']}/{side['full']}/{side['short']}/{side['lost_segments']}"
            + (f" ({side['incomplete']} cut)" if side["incomplete"] else ""))


def _coverage(side: dict[str, Any]) -> str:
    return _f(100 * side["recorded_s"] / side["wall_s"], 1) + " %" if side["wall_s"] else "n/a"


def _idle(cpu: dict[str, Any]) -> str:
    text = f"{_f(cpu['idle']['median_pct'], 1)} (min {_f(cpu['idle']['min_pct'], 1)})"
    if cpu.get("iowait_pct", 0) >= 1:
        text += f", iowait {_f(cpu['iowait_pct'], 1)}"
    return text


def rows(results: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """The summary table, one row per N; the peer's columns only when it ran."""
    peer = results[0]["peer"]
    head = ["N", "Vigila CPU %/stream, median (total)"]
    if peer:
        head += ["ffmpeg CPU %/stream, median (total)", "ratio, median (total)"]
    head += ["Vigila MiB/stream"] + (["ffmpeg MiB/stream"] if peer else [])
    head += ["Vigila segments exp/full/short/lost"]
    head += ["ffmpeg segments exp/full/short/lost"] if peer else []
    head += ["Vigila gaps/restarts", "recorded/wall Vigila" + (", ffmpeg" if peer else ""),
             "sim CPU %", "idle %", "others %", "sustained"]
    body = []
    for r in results:
        cpu, mem, v, f = r["cpu"], r["memory"], r["vigila"], r.get("ffmpeg")
        verdict = "yes" if r["sustained"] else "NO"
        if r["saturated"]:
            verdict += " (saturated)"
        if f is not None and not r.get("peer_sustained", True):
            verdict += "; ffmpeg lost data"
        row = [str(r["cameras"]),
               f"{_f(cpu['vigila_per_stream']['median_pct'])} "
               f"({_f(cpu['vigila_per_stream']['total_pct'])})"]
        if f is not None:
            row += [f"{_f(cpu['peer_per_stream']['median_pct'])} "
                    f"({_f(cpu['peer_per_stream']['total_pct'])})",
                    f"{_f(cpu['ratio']['median'])} ({_f(cpu['ratio']['total'])})"]
        row += [_f(mem["vigila_per_stream_mib"], 1)]
        row += [_f(mem["peer_per_stream_mib"], 1)] if f is not None else []
        row += [_segs(v)] + ([_segs(f)] if f is not None else [])
        row += [f"{v['gaps']}/{v['restarts']}",
                _coverage(v) + (f", {_coverage(f)}" if f is not None else ""),
                _f(cpu["sim"]["median_pct"], 1), _idle(cpu), _f(cpu["others_pct"], 0),
                verdict]
        body.append(row)
    return head, body


def largest_sustained(results: list[dict[str, Any]]) -> int | None:
    best = None
    for r in results:
        if not r["sustained"] or r["saturated"]:
            break
        best = r["cameras"]
    return best


def verdicts(results: list[dict[str, Any]]) -> list[str]:
    """The issue's targets, each with what this run says of it."""
    lines = []
    best = largest_sustained(results)
    tried = ", ".join(str(r["cameras"]) for r in results)
    with_what = "the peer, the simulator" if results[0]["peer"] else "the simulator"
    last = results[-1]
    stopped = best is None or best < last["cameras"]  # the sweep ended on a failure
    crowded = last["saturated"] and last["cpu"]["others_pct"] > BUSY_PCT
    if best is not None and best >= 150:
        target = "met"
    elif stopped and crowded:
        target = (f"undetermined: other work saturated the machine at N = {last['cameras']} "
                  f"({last['cpu']['others_pct']:.0f} % of a core)")
    elif stopped or last["cameras"] >= 150:
        target = "not met"
    else:
        target = f"not tried (N went up to {last['cameras']})"
    lines.append(f"Largest N sustained: **{best if best is not None else 'none'}** (N tried: "
                 f"{tried}; sustained: Vigila lost no segment, recorded no gap, restarted no "
                 f"ffmpeg, idle >= {IDLE_FLOOR_PCT:g} %), with {with_what} and the benchmark "
                 f"on the same cores. Target 150: {target}.")
    if results[0]["peer"]:
        ratios = [r["cpu"]["ratio"]["median"] for r in results]
        good = [r for r in results if r["cpu"]["ratio"]["median"] <= 1.0]
        lines.append("Target CPU per stream no higher than ffmpeg's (ratio <= 1): "
                     + ("met at every N" if len(good) == len(results) else
                        "not met" if not good else
                        "met at N = " + ", ".join(str(r["cameras"]) for r in good))
                     + f" (ratios {', '.join(_f(x) for x in ratios)}).")
    return lines


def warnings(results: list[dict[str, Any]]) -> list[str]:
    """What makes these figures less than clean, in words."""
    notes = []
    busy = max(r["cpu"]["others_pct"] for r in results)
    if busy > BUSY_PCT:
        notes.append(f"**The machine was busy with other work during this run** (other "
                     f"processes up to {busy:.0f} % of a core): these figures are disturbed; "
                     "run it again on a quiet machine.")
    for r in results:
        sim = r["cpu"]["sim"]["median_pct"]
        if sim > SIM_BOUND_PCT:
            notes.append(f"At N = {r['cameras']} the simulator used {sim:.0f} % of a core: "
                         "the simulated cameras compete with the recorders for the same two "
                         "cores, so at this N they may be the limit, not the recorders.")
        f = r.get("ffmpeg")
        if f is not None and r["vigila"]["lost"] and f["lost"] and "dropped" not in r:
            notes.append(f"At N = {r['cameras']} both sides lost data: the simulator or the "
                         "machine failed them both, more likely than either recorder.")
    return notes


def print_report(results: list[dict[str, Any]], info: dict[str, str], command: str) -> None:
    head, body = rows(results)
    print(f"\ncommand: {command}")
    print(machine_line(info))
    for r in results:
        cpu, mem = r["cpu"], r["memory"]
        f = r.get("ffmpeg")
        print(f"\nN = {r['cameras']}: window {cpu['window_s']} s, {cpu['intervals']} intervals, "
              f"warm-up {r['warmup_s']} s")
        print(f"  CPU, % of one core, median (total): Vigila {_f(cpu['vigila']['median_pct'])} "
              f"({_f(cpu['vigila']['total_pct'])}), of which the Python supervisor "
              f"{_f(cpu['supervisor']['median_pct'])} ({_f(cpu['supervisor']['total_pct'])}) "
              f"and its ffmpeg children "
              f"{_f(cpu['vigila_ffmpeg_per_stream']['median_pct'])} %/stream; "
              + (f"ffmpeg {_f(cpu['peer']['median_pct'])} ({_f(cpu['peer']['total_pct'])}); "
                 if f else "")
              + f"simulator {_f(cpu['sim']['median_pct'])}; bench driver "
              f"{_f(cpu['driver']['total_pct'])}; kernel threads and interrupts "
              f"{_f(cpu['kernel']['total_pct'])}; other processes {_f(cpu['others_pct'], 0)}; "
              f"machine idle {_idle(cpu)} %, steal {_f(cpu['steal_pct'], 1)} %")
        print(f"  memory (PSS, median): Vigila {_f(mem['vigila_pss_mib'], 1)} MiB (RSS "
              f"{_f(mem['vigila_rss_mib'], 1)}), of which the supervisor "
              f"{_f(mem['supervisor_pss_mib'], 1)} MiB, {mem['vigila_threads']} threads; "
              + (f"ffmpeg {_f(mem['peer_pss_mib'], 1)} MiB (RSS {_f(mem['peer_rss_mib'], 1)}); "
                 if f else "")
              + f"simulator {_f(mem['sim_pss_mib'], 1)} MiB")
        for side in ("vigila", "ffmpeg"):
            s = r.get(side)
            if s is None:
                continue
            print(f"  {side}: {s['segments']} segments from {s['cameras_recorded']}/"
                  f"{r['cameras']} cameras; full {s['full']} of ~{s['expected_full']} expected, "
                  f"short {s['short']}, cut {s['incomplete']}, lost {s['lost_segments']} "
                  f"({_f(s['lost_s'], 1)} s); recorded {_f(s['recorded_s'], 1)} s of "
                  f"{_f(s['wall_s'], 1)} s wall after the first segments; first segment "
                  f"after {s['first_segment_s']['median']} s (max {s['first_segment_s']['max']});"
                  f" ffprobe agrees on {s['probe_checked'] - s['probe_disagree']}/"
                  f"{s['probe_checked']} files")
        if "dropped" in r:
            d = r["dropped"]
            print(f"  fault check: {d['camera']} off the air for {d['for_s']:g} s, "
                  f"{d['after_s']:.0f} s into the window: "
                  + ("seen as lost data" if not r["sustained"] else "NOT SEEN, a detector fails"))
        v = r["vigila"]
        print(f"  vigila: {v['gaps']} gaps, {v['restarts']} restarts, {v['indexed']} indexed"
              + (f"; no segment from {', '.join(v['no_segments'])}" if v["no_segments"] else "")
              + (f"; errors: {'; '.join(v['errors'])}" if v["errors"] else ""))
        if f and f.get("died"):
            print(f"  ffmpeg: ended early: {', '.join(f['died'])}")
    widths = [max(len(h), *(len(row[i]) for row in body)) for i, h in enumerate(head)]
    print()
    print("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
    for row in body:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    print()
    for line in verdicts(results):
        print(line.replace("**", ""))
    for line in warnings(results):
        print("note: " + line.replace("**", ""))


def machine_line(info: dict[str, str]) -> str:
    return (f"Machine: {info['cpu']}, {info['cores']} CPUs (nproc {info['nproc']}), "
            f"{info['memory']}, kernel {info['kernel']}, ffmpeg {info['ffmpeg']}, "
            f"GStreamer {info['gstreamer']}, Python {info['python']}, recordings on "
            f"{info['disk']}, {info['date']}")


def _block(mode: str, text: str) -> str:
    return f"<!-- recording:{mode}:begin -->\n{text.strip()}\n<!-- recording:{mode}:end -->"


def _old_block(doc: str, mode: str) -> str | None:
    found = re.search(rf"<!-- recording:{mode}:begin -->.*?<!-- recording:{mode}:end -->",
                      doc, re.S)
    return found.group(0) if found else None


def results_block(results: list[dict[str, Any]], info: dict[str, str], command: str) -> str:
    peer = results[0]["peer"]
    head, body = rows(results)
    table = ("| " + " | ".join(head) + " |\n|" + "---|" * len(head) + "\n"
             + "\n".join("| " + " | ".join(row) + " |" for row in body))
    r0 = results[0]
    title = ("### Vigila beside the peer, same streams, same run" if peer
             else "### Vigila alone (`--no-peer`): capacity")
    sup = "; ".join(f"{r['cameras']}: {_f(r['cpu']['supervisor']['median_pct'])} % and "
                    f"{_f(r['memory']['supervisor_pss_mib'], 0)} MiB" for r in results)
    kids = ", ".join(f"{r['cameras']}: {_f(r['cpu']['vigila_ffmpeg_per_stream']['median_pct'])}"
                     for r in results)
    children = any(r["cpu"]["vigila_ffmpeg_per_stream"]["median_pct"] > 0 for r in results)
    parts = (f"Vigila's Python supervisor alone (CPU % of one core, PSS), by N: {sup}. "
             f"Vigila's ffmpeg children alone, CPU %/stream, by N: {kids}." if children else
             "Vigila recorded every camera in its own process (the native engine): no "
             "ffmpeg children.")
    text = (f"{title}\n\n"
            f"{r0['minutes']:g} min measured per N, {r0['segment_s']:g} s segments.\n\n"
            f"Command: `{command}`  \n{machine_line(info)}\n\n{table}\n\n"
            + "\n\n".join(verdicts(results)) + "\n\n" + parts + "\n")
    for line in warnings(results):
        text += f"\n{line}\n"
    return _block("peer" if peer else "alone", text)


INTRO = """\
N simulated cameras (`vigila.sim`: GStreamer's RTSP server on 127.0.0.1 replaying a
pre-encoded 1080p25 H.264 clip, 4 Mbit/s, a key frame every 2 s) recorded by Vigila's
recorder (`Recorder` in a Python process of its own; its native engine, the default for
H.264, reads RTSP over TCP in one thread per camera and writes the fragmented MP4 itself,
hashing it as written; `--engine ffmpeg` runs one `ffmpeg -c copy -f segment` per camera
under a supervisor instead; fsync of each segment and `index.jsonl` either way) and, in the
same run and from the same streams (the simulator runs one replay for every camera and
client), by the peer: one plain `ffmpeg -rtsp_transport tcp -i URL -map 0:v:0 -c copy -f segment
-segment_time S -reset_timestamps 1 -segment_format mp4 OUT/%06d.mp4` per camera, which
neither hashes nor fsyncs. Both start staggered (`--stagger`, 0.05 s by default); the
figures are taken after a warm-up (until every camera has a first segment on each side).
The simulator and the benchmark run on the same machine; `--no-peer` measures Vigila alone,
for its capacity."""

HOW = """\
How it is measured: CPU is utime + stime of each process tree from `/proc/<pid>/stat`
(reaped children included), in % of one core, median over the sampling intervals and, in
brackets, over the whole window; the ratio is Vigila / ffmpeg over the same interval, median.
Memory is the PSS of the tree (`smaps_rollup`: shared libraries divided among the processes
that map them), median over the samples. Segments, all cameras together: `exp` whole
segments the wall clock allows after each camera's first one, `full` those written whole
(S - 0.2 s of frames or more; frames counted from the MP4 boxes, checked against ffprobe on
one camera), `short` segments in the middle of the run with fewer frames, `lost` the time
missing beyond 1 s per camera, in segments. recorded/wall: frames / 25 fps against the wall
clock from each camera's first segment to the stop. `sim` is the RTSP server's CPU (% of one
core), `idle` the machine's (% of all CPUs), `others` CPU used by processes outside the
benchmark (% of one core; kernel threads and interrupt time are not counted there).
Sustained: Vigila lost no segment, recorded no gap and restarted no session, with 5 % of the
machine idle or more; a sweep stops at the first N that is not."""


def docs_section(results: list[dict[str, Any]], info: dict[str, str], command: str,
                 doc: str) -> str:
    """The whole section: this run's block, the other mode's block as it was."""
    mine = results_block(results, info, command)
    other = "alone" if results[0]["peer"] else "peer"
    kept = _old_block(doc, other) or _block(other, (
        "### Vigila alone (`--no-peer`): capacity\n\nNot measured yet."
        if other == "alone" else
        "### Vigila beside the peer, same streams, same run\n\nNot measured yet."))
    blocks = [mine, kept] if results[0]["peer"] else [kept, mine]
    return (f"{SECTION}\n\n{BEGIN}\n\n{INTRO}\n\n" + "\n\n".join(blocks)
            + f"\n\n{HOW}\n\n{END}\n\n")


def write_docs(results: list[dict[str, Any]], info: dict[str, str], command: str,
               path: Path = DOCS) -> None:
    """Replace this benchmark's section, keeping what of it `docs_section` keeps."""
    text = docs_section(results, info, command, current_section(path, SECTION, END))
    put_section(path, SECTION, END, text)


# --- main -------------------------------------------------------------------------------


def _counts(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a list of camera counts: {text!r}") from exc
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("camera counts are whole numbers from 1")
    return values


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--vigila-child"] and len(argv) == 2:
        return vigila_child(Path(argv[1]))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    what = ap.add_mutually_exclusive_group()
    what.add_argument("--cameras", type=int, default=4, metavar="N", help="cameras (default 4)")
    what.add_argument("--sweep", type=_counts, metavar="N,N,...",
                      help="camera counts, smallest first; stops at the first not sustained")
    ap.add_argument("--minutes", type=float, default=1.0,
                    help="measurement window per N, after the warm-up (default 1)")
    ap.add_argument("--segment-seconds", type=float, default=10.0,
                    help="segment length, best a multiple of the clip's 2 s GOP (default 10)")
    ap.add_argument("--sample-seconds", type=float, default=10.0,
                    help="CPU/memory sampling interval (at most a fifth of the window)")
    ap.add_argument("--stagger", type=float, default=0.05,
                    help="seconds between camera starts on each side (default 0.05)")
    ap.add_argument("--no-peer", action="store_true", help="Vigila alone, no ffmpeg peer")
    ap.add_argument("--engine", choices=("auto", "native", "ffmpeg"), default="auto",
                    help="Vigila's recording engine (default auto: native for H.264)")
    ap.add_argument("--drop-one", type=float, default=0.0, metavar="SECONDS",
                    help="fault check: take the first camera off the air this long in the "
                         "middle of the window; the run must then report lost data")
    ap.add_argument("--out", type=Path, help="working folder (default: a temporary one, removed)")
    ap.add_argument("--keep", action="store_true",
                    help="keep every segment (default: counted, then deleted, but one camera's)")
    ap.add_argument("--cache", type=Path, help="the simulator's clip cache (default data/sim)")
    ap.add_argument("--json", type=Path, metavar="FILE", help="write every figure as JSON")
    ap.add_argument("--write-docs", action="store_true",
                    help="record the figures in docs/BENCHMARKS.md, section 'Recording'")
    ap.add_argument("--docs", type=Path, default=DOCS, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.minutes <= 0 or not 0.5 <= args.segment_seconds <= 600:
        ap.error("--minutes above 0, --segment-seconds between 0.5 and 600")
    if args.drop_one and args.write_docs:
        ap.error("--drop-one is a fault check; its figures do not go into the docs")
    if args.minutes * 60 < 3 * args.segment_seconds:
        ap.error("--minutes must cover at least three segments")
    problem = check_tools()
    if problem:
        print(f"recording benchmark: {problem}", file=sys.stderr)
        return 2
    counts = sorted(set(args.sweep)) if args.sweep else [args.cameras]
    command = "python bench/recording.py " + shlex.join(argv)
    temporary = args.out is None
    out = Path(tempfile.mkdtemp(prefix="vigila-bench-recording-")) if temporary else args.out
    out.mkdir(parents=True, exist_ok=True)
    if args.cache is None:
        from vigila.sim.cameras import default_cache_dir

        args.cache = default_cache_dir()
    from vigila.sim.clip import MAIN, ensure_clip

    assert (MAIN.fps, MAIN.gop_seconds) == (FPS, GOP_SECONDS), "the clip changed: update FPS"
    try:
        ensure_clip(args.cache, MAIN)
    except Exception as exc:  # ClipError: no font, or ffmpeg failed
        print(f"recording benchmark: {exc}", file=sys.stderr)
        return 2
    info = machine(out)
    print(f"command: {command}\n{machine_line(info)}\nworking folder: {out}", flush=True)
    results: list[dict[str, Any]] = []
    failed = False
    try:
        for n in counts:
            result = run_once(n, args, out / f"n{n:04d}", args.cache)
            results.append(result)
            cpu = result["cpu"]
            print(f"   N={n}: Vigila {_f(cpu['vigila_per_stream']['median_pct'])} %/stream, "
                  f"ffmpeg {_f(cpu['peer_per_stream']['median_pct'])} %/stream, idle "
                  f"{_f(cpu['idle']['median_pct'], 1)} %, sustained "
                  f"{'yes' if result['sustained'] else 'NO'}", flush=True)
            if not result["sustained"] or result["saturated"]:
                if n != counts[-1]:
                    print("   the sweep stops here", flush=True)
                break
    except BaseException:
        failed = True
        raise
    finally:
        if results:
            print_report(results, info, command)
            if args.json:
                args.json.write_text(json.dumps({"command": command, "machine": info,
                                                 "results": results}, indent=1, default=str))
            if args.write_docs:
                write_docs(results, info, command, args.docs)
                print(f"recorded in {args.docs}")
        if temporary and not args.keep and not failed:
            shutil.rmtree(out, ignore_errors=True)
        elif failed:
            print(f"working folder kept: {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
