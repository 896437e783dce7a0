"""Indexed segments into one MP4 clip: stream copy, cut on key frames, sources verified.

This is the one place that turns the index into a clip (playback and evidence both
use it). The recorder's segments are fragmented MP4s whose timestamps restart at 0;
ffmpeg's concat demuxer joins them with continuous timestamps and cuts them with
``inpoint``/``outpoint``, so no frame is decoded or re-encoded. Each source is first
probed (ffprobe, packet headers only) for its key frames and exact length: the clip
starts on the last key frame at or before the asked start, so its first frame decodes,
and ends with the first frame that reaches the asked end.

For evidence a segment that is not what the index says must never go out silently: with
``verify`` each file's size and SHA-256 are checked against the index before the cut,
and its identity (device, inode, size, mtime, ctime) again after it, so a file swapped or
rewritten while ffmpeg read it is caught too.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from vigila.core import Conflict, InvalidInput, NotFound, VigilaError
from vigila.recording.probe import file_digest
from vigila.recording.recorder import check_camera_id
from vigila.recording.tables import segments

# ffmpeg and ffprobe may open local files only: no network, no concat:/subfile: tricks.
PROTOCOLS = "file"
_US = Fraction(1, 1_000_000)


class CutFailed(VigilaError):
    """ffmpeg or ffprobe is missing, or failed on files that passed every check."""

    status = 503
    title = "Clip could not be cut"
    slug = "clip-cut-failed"


@dataclass(frozen=True)
class SegmentRef:
    """One indexed segment."""

    camera: str
    path: str  # relative to the recording root
    start: datetime
    end: datetime
    bytes: int
    sha256: str


@dataclass(frozen=True)
class Clip:
    """A cut clip: the real instants it covers (key-frame aligned) and its sources."""

    path: Path
    start: datetime
    end: datetime
    bytes: int
    sha256: str
    sources: list[SegmentRef]


def _check_range(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidInput.on("start", "times need a zone (UTC)")
    if end <= start:
        raise InvalidInput.on("end", "the end must come after the start")


def segments_for(conn: Connection, camera_id: str, start: datetime,
                 end: datetime) -> list[SegmentRef]:
    """The segments of one camera overlapping [start, end), ordered by start."""
    check_camera_id(camera_id)
    _check_range(start, end)
    rows = conn.execute(
        sa.select(segments.c.camera_id, segments.c.path, segments.c.start, segments.c.end,
                  segments.c.bytes, segments.c.sha256)
        .where(segments.c.camera_id == camera_id, segments.c.start < end,
               segments.c.end > start)
        .order_by(segments.c.start, segments.c.end, segments.c.id)).all()
    return [SegmentRef(r.camera_id, r.path, r.start, r.end, r.bytes, r.sha256) for r in rows]


# --- the source files ---------------------------------------------------------------


def _resolve(root: Path, relative: str) -> Path:
    """The file `relative` names under `root`, or InvalidInput: no way out, no links."""
    parts = relative.split("/")
    if (not relative or relative.startswith("/") or "\\" in relative
            or any(part in ("", ".", "..") for part in parts)
            or any(ord(ch) < 32 or ch == "\x7f" for ch in relative)):
        raise InvalidInput.on("path", f"segment path {relative!r} is not a plain relative path")
    try:
        base = root.resolve(strict=True)
    except OSError as exc:
        raise Conflict(f"the recording root {root} cannot be read: {exc.strerror}") from exc
    path = base.joinpath(*parts)
    # resolve() follows every link on the way: the result equals the plain join only
    # when no component is a link, so a link anywhere (even one inside the root) is refused.
    try:
        real = path.resolve(strict=True)
    except FileNotFoundError as exc:
        raise Conflict(f"segment file {relative} is missing from the recording root") from exc
    if real != path or not real.is_relative_to(base):
        raise InvalidInput.on("path", f"segment path {relative!r} goes through a link")
    if any(ord(ch) < 32 for ch in str(real)):  # the concat list is one path a line
        raise InvalidInput.on("path", f"control characters in the path of {relative!r}")
    return real


def _identity(st: os.stat_result) -> tuple[int, ...]:
    # ctime changes on any write, rename or chmod and cannot be set back by a user.
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _checked(root: Path, ref: SegmentRef) -> tuple[Path, tuple[int, ...]]:
    """Path and identity of a source whose size and SHA-256 match the index."""
    path = _resolve(root, ref.path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError as exc:
        raise Conflict(f"segment file {ref.path} is missing from the recording root") from exc
    except OSError as exc:
        raise Conflict(f"segment file {ref.path} cannot be read: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as handle:
        before = os.fstat(handle.fileno())
        if not stat.S_ISREG(before.st_mode):
            raise Conflict(f"segment file {ref.path} is not a regular file")
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
        after = os.fstat(handle.fileno())
    size = after.st_size
    if size != ref.bytes or digest != ref.sha256:
        raise Conflict(f"segment file {ref.path} does not match the index "
                       f"({size} bytes, SHA-256 {digest}; indexed {ref.bytes} bytes, "
                       f"SHA-256 {ref.sha256}): it was altered or damaged")
    if _identity(before) != _identity(after):
        raise Conflict(f"segment file {ref.path} changed while it was hashed")
    return path, _identity(after)


def _unchanged(path: Path, ref: SegmentRef, identity: tuple[int, ...]) -> None:
    try:
        now = _identity(os.lstat(path))
    except OSError as exc:
        raise Conflict(f"segment file {ref.path} vanished while the clip was cut") from exc
    if now != identity:
        raise Conflict(f"segment file {ref.path} changed while the clip was cut")


# --- what is inside each file --------------------------------------------------------


@dataclass(frozen=True)
class _Frame:
    at: Fraction  # seconds from the file's first packet
    duration: Fraction
    key: bool


@dataclass(frozen=True)
class _Source:
    ref: SegmentRef
    path: Path
    origin: Fraction  # the file's first timestamp, seconds
    frames: list[_Frame]
    format: tuple[str, ...]  # codec, profile, size: concat copies only like with like

    @property
    def length(self) -> Fraction:
        last = self.frames[-1]
        return last.at + last.duration

    def instant(self, offset: Fraction) -> datetime:
        return self.ref.start + timedelta(microseconds=round(offset / _US))

    def offset(self, moment: datetime) -> Fraction:
        return Fraction((moment - self.ref.start) // timedelta(microseconds=1)) * _US


def _ffprobe_for(ffmpeg: str) -> str:
    """The ffprobe beside the given ffmpeg (same build), or the one on PATH."""
    if os.sep in ffmpeg:
        sibling = Path(ffmpeg).with_name(Path(ffmpeg).name.replace("ffmpeg", "ffprobe"))
        if sibling.name != Path(ffmpeg).name and sibling.exists():
            return str(sibling)
    return "ffprobe"


def _probe(ffprobe: str, ref: SegmentRef, path: Path) -> _Source:
    command = [ffprobe, "-v", "error", "-protocol_whitelist", PROTOCOLS,
               "-select_streams", "v:0", "-of", "json",
               "-show_entries", "stream=codec_name,profile,width,height,time_base"
               ":packet=pts,dts,duration,flags", f"file:{path}"]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=60,
                                check=False)
    except FileNotFoundError as exc:
        raise CutFailed(f"{ffprobe} is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise CutFailed(f"ffprobe took too long on segment {ref.path}") from exc
    if result.returncode != 0:
        raise Conflict(f"segment file {ref.path} is unreadable: "
                       f"{result.stderr.strip()[-300:]}")
    try:
        data: dict[str, Any] = json.loads(result.stdout)
        stream = data["streams"][0]
        base = Fraction(stream["time_base"])
        packets = [(int(p["pts"] if p.get("pts") is not None else p["dts"]),
                    int(p.get("duration") or 0), "K" in p.get("flags", ""))
                   for p in data.get("packets", [])]
    except (ValueError, KeyError, IndexError, TypeError, ZeroDivisionError) as exc:
        raise Conflict(f"segment file {ref.path}: unexpected ffprobe output") from exc
    if not packets:
        raise Conflict(f"segment file {ref.path} holds no video")
    packets.sort()
    first = packets[0][0]
    frames = [_Frame((pts - first) * base, duration * base, key) for pts, duration, key in packets]
    shape = tuple(str(stream.get(k, "")) for k in ("codec_name", "profile", "width", "height"))
    return _Source(ref, path, first * base, frames, shape)


# --- the cut -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Piece:
    source: _Source
    inpoint: Fraction | None  # file offsets, from its first packet
    outpoint: Fraction | None
    start: datetime  # the real instants this piece contributes
    end: datetime


def _plan(sources: list[_Source], start: datetime, end: datetime) -> list[_Piece]:
    """Which part of which file: begin on a key frame at or before `start`, reach `end`."""
    pieces: list[_Piece] = []
    for source in sources:
        first_in, upto = source.offset(start), source.offset(end)
        if upto <= 0 or first_in >= source.length:
            continue  # the index said it overlaps; the file says it does not
        if pieces and source.instant(source.length) <= pieces[-1].end:
            continue  # wholly inside what is already taken: a duplicate, not more video
        inpoint = None
        if not pieces:
            keys = [f.at for f in source.frames if f.key]
            if not keys:
                continue  # nothing here decodes on its own; the clip starts at the next file
            at_or_before = [k for k in keys if k <= first_in]
            chosen = at_or_before[-1] if at_or_before else keys[0]
            inpoint = chosen if chosen > 0 else None
        outpoint = upto if upto < source.length else None
        taken = [f for f in source.frames
                 if (inpoint is None or f.at >= inpoint) and (outpoint is None or f.at < outpoint)]
        if not taken:
            continue
        pieces.append(_Piece(source, inpoint, outpoint, source.instant(taken[0].at),
                             source.instant(taken[-1].at + taken[-1].duration)))
    return pieces


def _seconds(value: Fraction) -> str:
    return f"{round(value / _US) / 1_000_000:.6f}"


def _concat_list(pieces: list[_Piece]) -> str:
    lines = ["ffconcat version 1.0"]
    for piece in pieces:
        source = piece.source
        quoted = f"file:{source.path}".replace("'", "'\\''")
        lines.append(f"file '{quoted}'")
        head = piece.inpoint or Fraction(0)
        tail = piece.outpoint if piece.outpoint is not None else source.length
        if piece.inpoint is not None:
            lines.append(f"inpoint {_seconds(source.origin + piece.inpoint)}")
        if piece.outpoint is not None:
            lines.append(f"outpoint {_seconds(source.origin + piece.outpoint)}")
        # The length of the part used: the next file's timestamps continue from it exactly.
        lines.append(f"duration {_seconds(tail - head)}")
    return "\n".join(lines) + "\n"


def cut_clip(root: Path, refs: Sequence[SegmentRef], start: datetime, end: datetime,
             out: Path, *, verify: bool = True, ffmpeg: str = "ffmpeg") -> Clip:
    """Write one ordinary (+faststart) MP4 covering [start, end) from `refs`, by stream copy.

    `out` is replaced atomically. Holes between segments are closed up in the file (its
    timestamps are continuous); the caller reports them from the timeline.
    """
    _check_range(start, end)
    ordered = sorted(refs, key=lambda r: (r.start, r.end))
    if not ordered:
        raise NotFound(f"no video for this camera between {_iso(start)} and {_iso(end)}")
    cameras = {ref.camera for ref in ordered}
    if len(cameras) != 1:
        raise InvalidInput.on("refs", "a clip is cut from one camera's segments")
    camera = check_camera_id(ordered[0].camera)

    ffprobe = _ffprobe_for(ffmpeg)
    sources: list[_Source] = []
    identities: list[tuple[int, ...]] = []
    for ref in ordered:
        if verify:
            path, identity = _checked(root, ref)
            identities.append(identity)
        else:
            path = _resolve(root, ref.path)
        sources.append(_probe(ffprobe, ref, path))

    pieces = _plan(sources, start, end)
    if not pieces:
        raise NotFound(f"no video for {camera} between {_iso(start)} and {_iso(end)}")
    formats = {piece.source.format for piece in pieces}
    if len(formats) > 1:
        first, other = pieces[0].source, next(p.source for p in pieces
                                              if p.source.format != pieces[0].source.format)
        raise Conflict(f"segments {first.ref.path} and {other.ref.path} differ in format "
                       f"({' '.join(first.format)} / {' '.join(other.format)}): "
                       "export the two stretches separately")

    out.parent.mkdir(parents=True, exist_ok=True)
    listing = out.with_name(f".{out.name}.{os.getpid()}.ffconcat")
    partial = out.with_name(f".{out.name}.{os.getpid()}.part")
    try:
        listing.write_text(_concat_list(pieces), encoding="utf-8")
        command = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
                   "-protocol_whitelist", PROTOCOLS, "-f", "concat", "-safe", "0",
                   "-i", f"file:{listing}",
                   "-map", "0:v", "-map", "0:a?", "-c", "copy",
                   "-movflags", "+faststart", "-f", "mp4", f"file:{partial}"]
        try:
            result = subprocess.run(command, capture_output=True, text=True, check=False,
                                    timeout=120 + 5 * len(pieces))
        except FileNotFoundError as exc:
            raise CutFailed(f"{ffmpeg} is not installed") from exc
        except subprocess.TimeoutExpired as exc:
            raise CutFailed(f"ffmpeg took too long to cut the clip of {camera}") from exc
        if result.returncode != 0 or not partial.is_file():
            raise CutFailed(f"ffmpeg could not cut the clip of {camera} "
                            f"(exit {result.returncode}): {result.stderr.strip()[-500:]}")
        if verify:
            for source, identity in zip(sources, identities, strict=True):
                _unchanged(source.path, source.ref, identity)
        with partial.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, out)
    finally:
        listing.unlink(missing_ok=True)
        partial.unlink(missing_ok=True)
    size, digest = file_digest(out)
    return Clip(out, pieces[0].start, pieces[-1].end, size, digest,
                [piece.source.ref for piece in pieces])


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
