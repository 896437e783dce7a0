"""`vigila record URL... --out DIR`: the standalone recorder.

Register it in vigila/cli.py with ``app.command("record")(record_command)``;
`record_app` is the same command as a Typer app of its own (tests, or
``app.add_typer`` if it ever grows sub-commands).
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer

from vigila.core import InvalidInput
from vigila.recording.recorder import Recorder, camera_id_from_url, check_camera_id, check_rtsp_url


def _on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # leave through stop(), which closes the open segments


def _status_line(status: dict[str, Any]) -> str:
    parts = [f"{status['camera']}\t{status['state']}", f"segments={status['segments']}",
             f"gaps={status['gaps']}"]
    if status["last_segment_end"]:
        parts.append(f"last={status['last_segment_end']}")
    if status["fps"] is not None:
        parts.append(f"fps={status['fps']}")
    if status["bitrate_bps"] is not None:
        parts.append(f"bitrate={status['bitrate_bps'] / 1e6:.2f}Mbit/s")
    if status["state"] != "online" and status["last_error"]:
        parts.append(f"error={status['last_error']!r}")
    if status["retry_at"]:
        parts.append(f"retry_at={status['retry_at']}")
    return "  ".join(parts)


def _cameras(urls: list[str], ids: list[str] | None) -> list[tuple[str, str]]:
    if ids and len(ids) != len(urls):
        raise typer.BadParameter(f"{len(urls)} URLs but {len(ids)} ids", param_hint="--id")
    cameras = []
    try:
        for number, url in enumerate(urls):
            check_rtsp_url(url)
            camera_id = check_camera_id(ids[number]) if ids else camera_id_from_url(url)
            cameras.append((camera_id, url))
    except InvalidInput as exc:
        raise typer.BadParameter(str(exc)) from exc
    seen = [camera_id for camera_id, _ in cameras]
    if len(set(seen)) != len(seen):
        raise typer.BadParameter("two URLs give the same camera id; name them with --id")
    return cameras


def record_command(
    urls: Annotated[list[str], typer.Argument(help="rtsp:// URLs to record", show_default=False)],
    out: Annotated[Path, typer.Option("--out", help="recording root directory")],
    segment_seconds: Annotated[float, typer.Option(
        "--segment-seconds", min=0.5, max=3600, help="segment length (cut on key frames)")] = 10.0,
    duration: Annotated[float | None, typer.Option(
        "--duration", min=0, help="stop after this many seconds (default: until Ctrl-C)")] = None,
    ids: Annotated[list[str] | None, typer.Option(
        "--id", help="camera id for each URL, in order (default: the URL's first path element)",
        show_default=False)] = None,
    status_every: Annotated[float, typer.Option(
        "--status-every", min=0.5, help="seconds between status lines")] = 10.0,
) -> None:
    """Record RTSP cameras, without transcoding, into fragmented MP4 segments.

    Layout: OUT/<camera>/<YYYY-MM-DD>/<HH>/<MM.SS>.mp4 (UTC start); each finished segment
    is indexed in OUT/index.jsonl and each outage in OUT/gaps.jsonl.
    """
    cameras = _cameras(urls, ids)
    try:
        recorder = Recorder(out, segment_seconds=segment_seconds)
        recorder.add_all(cameras)
    except InvalidInput as exc:
        raise typer.BadParameter(str(exc)) from exc
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    deadline = None if duration is None else time.monotonic() + duration
    try:
        with recorder:
            typer.echo(f"recording {len(cameras)} camera(s) into {out}", err=True)
            next_status = time.monotonic() + min(status_every, 2.0)
            while deadline is None or time.monotonic() < deadline:
                time.sleep(0.2)
                if time.monotonic() >= next_status:
                    for status in recorder.status().values():
                        typer.echo(_status_line(status))
                    next_status = time.monotonic() + status_every
    except KeyboardInterrupt:
        typer.echo("stopping: closing the open segments", err=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
    for status in recorder.status().values():
        typer.echo(_status_line(status))


record_app = typer.Typer(help="Record RTSP cameras into fragmented MP4 segments.")
record_app.command("record")(record_command)
