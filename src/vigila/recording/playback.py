"""Playback: a camera's recorded segments as an HLS playlist, each segment as MPEG-TS.

No HTTP here: the API calls these with its connection and the actor, and the
consultations they perform are written to the audit chain in that transaction.

Media form. The recorder's segments are fragmented MP4 whose timestamps each start
at 0 (``-reset_timestamps 1``). Both forms were tried in Chromium 156's native HLS
player, and both play: the fMP4 files as they are (EXT-X-MAP, a discontinuity before
every segment) and MPEG-TS. But ffmpeg 5.1 as an HLS client ignores discontinuities:
on the fMP4 form it sees timestamps run backwards at every segment and drops a third of
the frames. So each segment is remuxed on request into MPEG-TS (``ffmpeg -c copy -f
mpegts``: stream copy, nothing decoded; under 0.1 s of CPU for 10 s of 1080p video) with
``-output_ts_offset`` = its start minus the playlist's first start. The timestamps then
follow the wall clock across the whole playlist, ``#EXT-X-DISCONTINUITY`` marks only real
seams (a gap or an overlap), and TS is the form every HLS client has read since the first.

Grants. A browser's native player fetches the segments itself and cannot send the
bearer token nor the purpose headers, so the playlist's segment URIs carry a grant: an
HMAC-SHA256 token over (user, session, camera, range, first segment start, expiry),
keyed by a random secret kept in the installation's keys folder. It is honoured only
while the session it was issued to is alive and the user still may see the camera; the
playlist request that issued it is the consultation the audit chain records.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from vigila.access import Permission, Principal, Purpose, audit
from vigila.access.sessions import load_principal
from vigila.access.tables import sessions
from vigila.core.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthenticated,
    VigilaError,
)
from vigila.core.timeutil import utc_instant
from vigila.recording.clips import Clip, cut_clip, segments_for
from vigila.recording.index import TimelineEntry, timeline
from vigila.recording.tables import segments
from vigila.registry.models import DeviceKind
from vigila.registry.tables import devices
from vigila.store import Database

PLAYLIST_MEDIA_TYPE = "application/vnd.apple.mpegurl"
SEGMENT_MEDIA_TYPE = "video/mp2t"
MAX_TIMELINE = timedelta(days=31)
# MPEG-TS timestamps wrap after 26.5 h (33 bits at 90 kHz); a day's playlist stays below.
MAX_PLAYLIST = timedelta(hours=24)
# A download is cut into one file on the server first; longer exports are evidence exports.
MAX_DOWNLOAD = timedelta(hours=1)
GRANT_TTL = timedelta(hours=2)
GRANT_KEY_FILE = "playback-grant.key"
# Segments further apart (or overlapping by more) than this are a seam for the player.
SEAM = timedelta(milliseconds=100)
_CAMERA_KINDS = (DeviceKind.CAMERA.value, DeviceKind.CAMERA_ANPR.value)
_GRANT_CONTEXT = b"vigila playback grant v1\n"  # the key signs nothing else, but say what


class MediaUnavailable(VigilaError):
    """ffmpeg is missing or could not remux a segment."""

    status = 503
    title = "Media unavailable"
    slug = "media-unavailable"


# --- ranges and cameras ------------------------------------------------------------


def check_range(start: datetime, end: datetime, limit: timedelta) -> tuple[datetime, datetime]:
    """The range in UTC, or InvalidInput naming the field: zoned times, end after start."""
    out = []
    for name, value in (("start", start), ("end", end)):
        out.append(utc_instant(value, name))
    start, end = out
    if end <= start:
        raise InvalidInput.on("end", "the end must come after the start")
    if end - start > limit:
        raise InvalidInput.on("end", f"at most {_span(limit)} after the start")
    return start, end


def _span(limit: timedelta) -> str:
    hours = limit.total_seconds() / 3600
    if hours >= 48:
        return f"{hours / 24:g} days"
    return "1 hour" if hours == 1 else f"{hours:g} hours"


def _visible(conn: Connection, actor: Principal, camera_id: str) -> bool:
    row = conn.execute(sa.select(devices.c.id).where(
        devices.c.id == camera_id, devices.c.kind.in_(_CAMERA_KINDS),
        actor.zone_clause(devices.c.zone_id))).first()
    return row is not None


def require_camera(conn: Connection, actor: Principal, camera_id: str) -> None:
    """NotFound unless the camera is in the registry and in the actor's zones.

    A camera outside the actor's zones answers exactly as one that does not exist.
    """
    if not _visible(conn, actor, camera_id):
        raise NotFound(f"no camera {camera_id!r}")


def no_video(camera_id: str, start: datetime, end: datetime) -> str:
    return f"no recording of camera {camera_id!r} between {iso_ms(start)} and {iso_ms(end)}"


def iso_ms(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds, as EXT-X-PROGRAM-DATE-TIME wants it."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _range_detail(start: datetime, end: datetime) -> dict[str, Any]:
    return {"start": iso_ms(start), "end": iso_ms(end)}


# --- the timeline --------------------------------------------------------------------


def read_timeline(conn: Connection, actor: Principal, purpose: Purpose, camera_id: str,
                  start: datetime, end: datetime) -> list[TimelineEntry]:
    """Spans and gaps of a camera in [start, end); the consultation is audited, even empty."""
    actor.require(Permission.PERSONAL_READ)
    start, end = check_range(start, end, MAX_TIMELINE)
    require_camera(conn, actor, camera_id)
    entries = timeline(conn, camera_id, start, end)
    recorded = sum(e.duration for e in entries if e.kind == "span")
    audit.record(conn, actor, "recording.timeline", f"camera/{camera_id}", purpose=purpose,
                 outcome="ok" if entries else "empty",
                 detail={**_range_detail(start, end), "recorded_s": round(recorded, 3)})
    return entries


# --- the playlist --------------------------------------------------------------------


@dataclass(frozen=True)
class PlaylistSegment:
    """One indexed segment as the playlist and the segment route see it."""

    id: int
    start: datetime
    end: datetime
    path: str  # relative to the recording root
    sha256: str

    @property
    def duration(self) -> float:
        return (self.end - self.start).total_seconds()


def playlist_segments(conn: Connection, camera_id: str, start: datetime,
                      end: datetime) -> list[PlaylistSegment]:
    """The segments overlapping [start, end), in time order, with their row ids.

    Not `clips.segments_for`: the segment URIs need the row id, which a SegmentRef lacks.
    """
    rows = conn.execute(
        sa.select(segments.c.id, segments.c.start, segments.c.end, segments.c.path,
                  segments.c.sha256)
        .where(segments.c.camera_id == camera_id, segments.c.start < end,
               segments.c.end > start)
        .order_by(segments.c.start, segments.c.id)).all()
    return [PlaylistSegment(r.id, r.start, r.end, r.path, r.sha256) for r in rows]


def media_playlist(items: list[PlaylistSegment], uri: Callable[[PlaylistSegment], str],
                   start: datetime | None = None) -> str:
    """An HLS VOD media playlist of `items`; it starts playing at `start` if it is inside.

    Each segment carries its UTC start as EXT-X-PROGRAM-DATE-TIME, so a player shows the
    wall-clock time; a seam between segments (gap or overlap) is a discontinuity.
    """
    target = max([math.ceil(round(item.duration, 3)) for item in items] + [1])
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{target}",
             "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-PLAYLIST-TYPE:VOD"]
    if items and start is not None and start > items[0].start:
        offset = (start - items[0].start).total_seconds()
        lines.append(f"#EXT-X-START:TIME-OFFSET={offset:.3f},PRECISE=YES")
    previous: PlaylistSegment | None = None
    for item in items:
        if previous is not None and abs(item.start - previous.end) > SEAM:
            lines.append("#EXT-X-DISCONTINUITY")
        lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{iso_ms(item.start)}")
        lines.append(f"#EXTINF:{item.duration:.3f},")
        lines.append(uri(item))
        previous = item
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def segment_uri(grant: str) -> Callable[[PlaylistSegment], str]:
    """Segment URIs relative to the playlist (``/api/cameras/{id}/...``), grant attached.

    The ``.ts`` suffix matters: ffmpeg 7.1 and later refuse HLS segments without an
    extension it knows.
    """
    return lambda item: f"segments/{item.id}.ts?grant={grant}"


@dataclass(frozen=True)
class Playlist:
    items: list[PlaylistSegment]
    grant: str
    expires: datetime
    text: str


def open_playlist(conn: Connection, actor: Principal, purpose: Purpose, camera_id: str,
                  start: datetime, end: datetime, *, key: bytes, session_hash: str,
                  now: datetime) -> Playlist:
    """The playlist of [start, end) with a grant for its segments; audited as playback.

    With no video in the range the playlist has no items (the caller answers 404); the
    consultation is audited all the same, as "empty".
    """
    actor.require(Permission.PERSONAL_READ)
    start, end = check_range(start, end, MAX_PLAYLIST)
    require_camera(conn, actor, camera_id)
    if actor.user_id is None:
        raise Forbidden("grants are for users with a session")
    items = playlist_segments(conn, camera_id, start, end)
    grant = Grant(user_id=actor.user_id, session=session_hash[:16], camera=camera_id,
                  start=start, end=end, anchor=items[0].start if items else start,
                  expires=now + GRANT_TTL)
    token = sign_grant(key, grant)
    audit.record(conn, actor, "recording.playback", f"camera/{camera_id}", purpose=purpose,
                 outcome="ok" if items else "empty",
                 detail={**_range_detail(start, end), "segments": len(items),
                         "seconds": round(sum(i.duration for i in items), 3),
                         "grant_expires": iso_ms(grant.expires)})
    return Playlist(items, token, grant.expires, media_playlist(items, segment_uri(token), start))


# --- grants --------------------------------------------------------------------------


@dataclass(frozen=True)
class Grant:
    """What a playlist's segment URIs allow: one user's session, one camera, one range."""

    user_id: int
    session: str  # the first 16 hex digits of the session token's SHA-256
    camera: str
    start: datetime
    end: datetime
    anchor: datetime  # the first segment's start: MPEG-TS time 0 of the whole playlist
    expires: datetime


def grant_key(keys_dir: Path) -> bytes:
    """The installation's grant secret, made (32 random bytes, mode 0600) on first use.

    Deleting the file invalidates every grant issued so far.
    """
    path = keys_dir / GRANT_KEY_FILE
    if not path.exists():
        keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = keys_dir / f".{GRANT_KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_bytes(32))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # never replaces: when two processes race, one key wins
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    key = path.read_bytes()
    if len(key) < 32:
        raise RuntimeError(f"{path} holds fewer than 32 bytes; delete it to make a new one")
    return key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def _moment(ms: object) -> datetime:
    if not isinstance(ms, int) or isinstance(ms, bool):
        raise ValueError("not a time")
    return datetime.fromtimestamp(ms / 1000, UTC)


def _mac(key: bytes, body: str) -> bytes:
    return hmac.new(key, _GRANT_CONTEXT + body.encode(), hashlib.sha256).digest()


def sign_grant(key: bytes, grant: Grant) -> str:
    payload = {"u": grant.user_id, "t": grant.session, "c": grant.camera,
               "s": _ms(grant.start), "e": _ms(grant.end), "a": _ms(grant.anchor),
               "x": _ms(grant.expires)}
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    return f"{body}.{_b64(_mac(key, body))}"


def open_grant(key: bytes, token: str, now: datetime) -> Grant:
    """The grant a token carries, or Forbidden when it is forged, altered or expired."""
    invalid = Forbidden("not a valid playback grant: open the playlist again")
    body, _, mac = token.partition(".")
    try:
        genuine = hmac.compare_digest(_unb64(mac), _mac(key, body))
    except ValueError:  # not base64 (binascii.Error), or not ASCII
        raise invalid from None
    if not genuine:
        raise invalid
    try:
        data = json.loads(_unb64(body))
        user_id, session, camera = data["u"], data["t"], data["c"]
        if not (isinstance(user_id, int) and isinstance(session, str)
                and isinstance(camera, str)):
            raise ValueError("bad field")
        grant = Grant(user_id, session, camera, _moment(data["s"]), _moment(data["e"]),
                      _moment(data["a"]), _moment(data["x"]))
    except (ValueError, KeyError, TypeError, OverflowError, OSError):
        raise invalid from None  # signed by us, so only a changed format gets here
    if grant.expires <= now:
        raise Forbidden("the playback grant has expired: open the playlist again")
    return grant


def check_grant(conn: Connection, grant: Grant, camera_id: str, *, now: datetime,
                client: str | None) -> Principal:
    """The grant's user, if the grant is for this camera and its session and rights hold.

    Checked on every use, so logging out, a revoked session, a disabled account, or a
    role or zone taken away ends the grant at once.
    """
    if grant.camera != camera_id:
        raise Forbidden("this playback grant is for another camera")
    alive = conn.execute(sa.select(sessions.c.user_id).where(
        sessions.c.user_id == grant.user_id,
        sessions.c.token_hash.startswith(grant.session, autoescape=True),
        sessions.c.revoked_at.is_(None), sessions.c.expires_at > now)).first()
    if alive is None:
        raise Forbidden("the session this playback grant was issued to has ended")
    try:
        who = load_principal(conn, grant.user_id, client)
    except Unauthenticated:
        raise Forbidden("the account this playback grant was issued to is disabled") from None
    if not (who.can(Permission.PERSONAL_READ) and _visible(conn, who, camera_id)):
        raise Forbidden("the holder of this playback grant may no longer view this camera")
    return who


def granted_playlist(conn: Connection, key: bytes, token: str, camera_id: str, *,
                     now: datetime, client: str | None) -> str:
    """The playlist a grant was issued with, for a player that cannot send headers.

    Not audited again: the request that issued the grant is the recorded consultation.
    """
    grant = open_grant(key, token, now)
    check_grant(conn, grant, camera_id, now=now, client=client)
    items = playlist_segments(conn, camera_id, grant.start, grant.end)
    return media_playlist(items, segment_uri(token), grant.start)


def granted_segment(conn: Connection, key: bytes, token: str, camera_id: str,
                    segment_id: int, *, now: datetime,
                    client: str | None) -> tuple[PlaylistSegment, float]:
    """The segment a grant covers, and its MPEG-TS time offset in the playlist."""
    grant = open_grant(key, token, now)
    check_grant(conn, grant, camera_id, now=now, client=client)
    row = conn.execute(
        sa.select(segments.c.id, segments.c.start, segments.c.end, segments.c.path,
                  segments.c.sha256)
        .where(segments.c.id == segment_id, segments.c.camera_id == grant.camera,
               segments.c.start < grant.end, segments.c.end > grant.start)).first()
    if row is None:  # another camera's, outside the range, missing: one answer for all
        raise Forbidden(f"this playback grant does not cover segment {segment_id}")
    item = PlaylistSegment(row.id, row.start, row.end, row.path, row.sha256)
    return item, max(0.0, (item.start - grant.anchor).total_seconds())


# --- media ---------------------------------------------------------------------------


def _inside(root: Path, relative: str) -> Path:
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()):
        raise Conflict("the index names a file outside the recording root")
    return path


def segment_ts(root: Path, item: PlaylistSegment, offset: float, *,
               ffmpeg: str = "ffmpeg") -> bytes:
    """One segment as MPEG-TS starting at `offset` seconds: stream copy, never decoded.

    The file is read once, checked against its recorded SHA-256, and those very bytes
    are remuxed, so what is played is what was recorded.
    """
    try:
        data = _inside(root, item.path).read_bytes()
    except FileNotFoundError:
        raise NotFound(f"segment {item.id} is no longer on disk") from None
    if hashlib.sha256(data).hexdigest() != item.sha256:
        raise Conflict(f"segment {item.id} does not match its recorded SHA-256 "
                       "(altered or damaged); it is not served")
    # -f mp4 and pipe input only: the demuxer cannot be talked into opening other files.
    command = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error",
               "-protocol_whitelist", "pipe", "-f", "mp4", "-i", "pipe:0",
               "-map", "0:v:0", "-c", "copy", "-f", "mpegts",
               "-output_ts_offset", f"{offset:.6f}", "pipe:1"]
    try:
        result = subprocess.run(command, input=data, capture_output=True, timeout=60,
                                check=False)
    except FileNotFoundError:
        raise MediaUnavailable(f"{ffmpeg} is not installed") from None
    except subprocess.TimeoutExpired:
        raise MediaUnavailable(f"remuxing segment {item.id} took too long") from None
    if result.returncode != 0 or not result.stdout:
        why = result.stderr.decode(errors="replace").strip()[-300:]
        raise MediaUnavailable(f"segment {item.id} could not be remuxed: {why}")
    return result.stdout


# --- download ------------------------------------------------------------------------


def export_recording(db: Database, actor: Principal, purpose: Purpose, root: Path,
                     camera_id: str, start: datetime, end: datetime, out: Path, *,
                     ffmpeg: str = "ffmpeg") -> Clip:
    """One MP4 of [start, end), cut on key frames (it opens at the key frame at or before
    the start), written to `out`; audited once the file exists.

    Takes the database rather than a connection: the cut runs between two short
    transactions, not inside one. With no video, the consultation is still audited, as
    "empty", and the answer is NotFound.
    """
    actor.require(Permission.PERSONAL_READ)
    start, end = check_range(start, end, MAX_DOWNLOAD)
    with db.read() as conn:
        require_camera(conn, actor, camera_id)
        refs = segments_for(conn, camera_id, start, end)
    clip = None
    if refs:
        try:
            clip = cut_clip(root, refs, start, end, out, ffmpeg=ffmpeg)
        except NotFound:  # indexed as overlapping, but no frame of the files falls inside
            clip = None
    with db.write() as conn:
        detail = _range_detail(start, end)
        if clip is not None:
            detail |= {"clip_start": iso_ms(clip.start), "clip_end": iso_ms(clip.end),
                       "segments": len(clip.sources), "bytes": clip.bytes,
                       "sha256": clip.sha256}
        audit.record(conn, actor, "recording.download", f"camera/{camera_id}",
                     purpose=purpose, outcome="ok" if clip else "empty", detail=detail)
    if clip is None:
        raise NotFound(no_video(camera_id, start, end))
    return clip


def work_dir(data_dir: Path) -> Path:
    """A fresh private folder for one download, under the data folder (not a tmpfs)."""
    base = data_dir / "tmp"
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="recording-", dir=base))


def remove_work_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
