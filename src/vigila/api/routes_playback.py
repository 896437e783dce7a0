"""Recorded video over HTTP: timeline, HLS playback, MP4 download (vigila.recording.playback).

Every route but the two a player calls by itself needs personal.read and a purpose, and
is audited. The playlist hands out a grant (in its segment URIs and in the Vigila-Grant
header) so that a browser's native player, which sends no headers, can fetch the
segments, and the playlist again at granted.m3u8.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field, StringConstraints
from starlette.background import BackgroundTask

from vigila.access import Permission
from vigila.access.sessions import token_digest
from vigila.api.deps import (
    Consultation,
    Installation,
    bearer_token,
    client_of,
    consultation,
    installation,
)
from vigila.core import NotFound, Unauthenticated, utcnow
from vigila.core.text import NoNul
from vigila.recording import playback

router = APIRouter(prefix="/api/cameras", tags=["playback"])
CameraId = Annotated[str, Path(max_length=64), StringConstraints(max_length=64), NoNul]
SegmentId = Annotated[int, Path(ge=1, le=2**62)]
Start = Annotated[datetime, Query(description="ISO 8601 with its UTC offset")]
End = Annotated[datetime, Query(description="ISO 8601 with its UTC offset; after the start")]


def _grant(grant: Annotated[str | None, Query(
        max_length=1024, description="the grant from a playlist's Vigila-Grant header")] = None,
           ) -> str:
    # The grant is these URLs' credential: without one, 401 like any route without a session.
    if not grant:
        raise Unauthenticated("this URL needs the grant a playlist gives: ?grant=...")
    return grant


GrantToken = Annotated[str, Depends(_grant)]
_BINARY = {"type": "string", "format": "binary"}
NO_STORE = {"Cache-Control": "no-store"}  # personal data: no shared or disk cache


class M3U8Response(Response):
    media_type = playback.PLAYLIST_MEDIA_TYPE


class TSResponse(Response):
    media_type = playback.SEGMENT_MEDIA_TYPE


class TimelineItem(BaseModel):
    kind: Literal["span", "gap"]
    start: datetime
    end: datetime
    duration: float = Field(description="seconds")
    segments: int = Field(description="spans: how many segments it joins")
    reason: str = Field(description="gaps: the recorder's reason, or 'no recording'")


class Timeline(BaseModel):
    camera_id: str
    start: datetime
    end: datetime
    recorded_seconds: float
    entries: list[TimelineItem] = Field(description="in time order; empty with no video")


@router.get("/{camera_id}/timeline", response_model=Timeline,
            summary="Recorded spans and gaps of a camera in a range (at most 31 days; audited)")
def get_timeline(camera_id: CameraId, start: Start, end: End,
                 c: Consultation = Depends(consultation(Permission.PERSONAL_READ)),
                 inst: Installation = Depends(installation)) -> Timeline:
    start, end = playback.check_range(start, end, playback.MAX_TIMELINE)  # to answer in UTC
    with inst.db.write() as conn:
        entries = playback.read_timeline(conn, c.who, c.why, camera_id, start, end)
    items = [TimelineItem(kind=e.kind, start=e.start, end=e.end, duration=round(e.duration, 3),
                          segments=e.segments, reason=e.reason) for e in entries]
    recorded = sum(i.duration for i in items if i.kind == "span")
    return Timeline(camera_id=camera_id, start=start, end=end,
                    recorded_seconds=round(recorded, 3), entries=items)


_PLAYLIST_200: dict[int | str, dict[str, Any]] = {200: {
    "content": {playback.PLAYLIST_MEDIA_TYPE: {"schema": {"type": "string"}}},
    "description": "an HLS VOD media playlist; its segment URIs carry the grant",
}}


@router.get("/{camera_id}/playlist.m3u8", response_class=M3U8Response,
            summary="HLS playlist of a camera's recording in a range (at most 24 h; audited)",
            responses={200: {**_PLAYLIST_200[200], "headers": {
                "Vigila-Grant": {"description": "lets a player fetch granted.m3u8 and the "
                                 "segments without headers", "schema": {"type": "string"}},
                "Vigila-Grant-Expires": {"schema": {"type": "string", "format": "date-time"}}}},
                       404: {"description": "no such camera, or no video in the range"}})
def get_playlist(camera_id: CameraId, start: Start, end: End,
                 c: Consultation = Depends(consultation(Permission.PERSONAL_READ)),
                 token: str = Depends(bearer_token),
                 inst: Installation = Depends(installation)) -> Response:
    """Headers: Vigila-Grant (give it to a player as granted.m3u8?grant=...) and its expiry."""
    key = playback.grant_key(inst.settings.keys_dir)
    with inst.db.write() as conn:
        playlist = playback.open_playlist(conn, c.who, c.why, camera_id, start, end, key=key,
                                          session_hash=token_digest(token), now=utcnow())
    if not playlist.items:  # audited as "empty"; an HLS playlist with no segment plays nothing
        raise NotFound(playback.no_video(camera_id, start, end))
    return M3U8Response(playlist.text, headers={
        **NO_STORE, "Vigila-Grant": playlist.grant,
        "Vigila-Grant-Expires": playback.iso_ms(playlist.expires)})


@router.get("/{camera_id}/granted.m3u8", response_class=M3U8Response,
            summary="The playlist again, for a player that cannot send headers (grant only)",
            responses=_PLAYLIST_200)
def get_granted_playlist(request: Request, camera_id: CameraId, grant: GrantToken,
                         inst: Installation = Depends(installation)) -> Response:
    key = playback.grant_key(inst.settings.keys_dir)
    with inst.db.read() as conn:
        text = playback.granted_playlist(conn, key, grant, camera_id, now=utcnow(),
                                         client=client_of(request))
    return M3U8Response(text, headers=NO_STORE)


@router.get("/{camera_id}/segments/{segment_id}.ts", response_class=TSResponse,
            summary="One recorded segment as MPEG-TS (stream copy), for the playlist's player",
            responses={200: {"content": {playback.SEGMENT_MEDIA_TYPE: {"schema": _BINARY}}}})
def get_segment(request: Request, camera_id: CameraId, segment_id: SegmentId,
                grant: GrantToken, inst: Installation = Depends(installation)) -> Response:
    key = playback.grant_key(inst.settings.keys_dir)
    with inst.db.read() as conn:
        item, offset = playback.granted_segment(conn, key, grant, camera_id, segment_id,
                                                now=utcnow(), client=client_of(request))
    data = playback.segment_ts(inst.settings.recordings_root, item, offset)
    return TSResponse(data, headers=NO_STORE)


@router.get("/{camera_id}/recording.mp4", response_class=FileResponse,
            summary="One MP4 of a range, cut on key frames (at most 1 h; audited)",
            responses={200: {"content": {"video/mp4": {"schema": _BINARY}}},
                       206: {"description": "the part a Range header asked for",
                             "content": {"video/mp4": {"schema": _BINARY}}},
                       404: {"description": "no such camera, or no video in the range"}})
def get_recording(camera_id: CameraId, start: Start, end: End,
                  c: Consultation = Depends(consultation(Permission.PERSONAL_READ)),
                  inst: Installation = Depends(installation)) -> FileResponse:
    """Opens at the key frame at or before the start. Header Vigila-SHA256: the file's hash."""
    folder = playback.work_dir(inst.settings.data_dir)
    try:
        clip = playback.export_recording(inst.db, c.who, c.why, inst.settings.recordings_root,
                                         camera_id, start, end, folder / "recording.mp4")
    except BaseException:
        playback.remove_work_dir(folder)
        raise
    name = f"{camera_id}_{clip.start:%Y%m%dT%H%M%SZ}_{clip.end:%Y%m%dT%H%M%SZ}.mp4"
    return FileResponse(FilePath(clip.path), media_type="video/mp4", filename=name,
                        headers={**NO_STORE, "Vigila-SHA256": clip.sha256},
                        background=BackgroundTask(playback.remove_work_dir, folder))
