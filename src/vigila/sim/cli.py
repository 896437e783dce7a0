"""`vigila sim`: simulated devices for demos, tests and benches."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from vigila.core import VigilaError
from vigila.sim.cameras import CameraSimulator, camera_ids

sim_app = typer.Typer(help="Simulated devices: RTSP cameras for demos, tests and benches.",
                      no_args_is_help=True)



@sim_app.callback()
def sim() -> None:
    """Simulated devices: RTSP cameras for demos, tests and benches."""
    # A callback keeps `sim` a group even while it holds a single command.


CONTROL_HELP = ("commands on stdin: 'drop ID' (cut the camera's clients off, refuse new ones), "
                "'restore ID', 'list', 'quit'")


def _ids(count: int | None, prefix: str, ids: str | None) -> list[str]:
    if ids is not None:
        chosen = [part.strip() for part in ids.split(",") if part.strip()]
        if not chosen:
            raise typer.BadParameter("no camera id given", param_hint="--ids")
        if count is not None and count != len(chosen):
            raise typer.BadParameter(f"N is {count} but --ids names {len(chosen)} cameras")
        return chosen
    if count is None:
        raise typer.BadParameter("give the number of cameras N, or --ids", param_hint="N")
    return camera_ids(count, prefix)


def _on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # leave through the `with`, which stops the server


def _control(sim: CameraSimulator, line: str) -> bool:
    """Run one stdin command; False when asked to quit."""
    words = line.split()
    if not words:
        return True
    cmd, args = words[0].lower(), words[1:]
    try:
        if cmd in ("quit", "exit"):
            return False
        if cmd == "list":
            for camera_id, state in sim.states().items():
                typer.echo(f"{camera_id}\t{state}")
        elif cmd in ("drop", "restore") and args:
            for camera_id in args:
                (sim.drop if cmd == "drop" else sim.restore)(camera_id)
                typer.echo(f"{camera_id}\t{'down' if cmd == 'drop' else 'up'}")
        else:
            typer.echo(CONTROL_HELP, err=True)
    except VigilaError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
    return True


@sim_app.command("cameras", epilog=CONTROL_HELP)
def cameras(
    count: Annotated[int | None, typer.Argument(
        metavar="N", min=1, max=1000, show_default=False,
        help="how many cameras (CAM-0001 ... with the default prefix)")] = None,
    port: Annotated[int, typer.Option(
        min=0, max=65535, help="RTSP port on the address; 0 picks a free one")] = 8554,
    prefix: Annotated[str, typer.Option(help="camera id prefix, numbered from 0001")] = "CAM-",
    ids: Annotated[str | None, typer.Option(
        help="comma-separated camera ids instead of numbered ones, e.g. CAM-0001,CAM-G01")] = None,
    address: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    sub: Annotated[bool, typer.Option(
        "--sub/--no-sub", help="also serve a 640x360 /sub stream per camera")] = True,
    cache_dir: Annotated[Path | None, typer.Option(
        help="where the encoded clip is kept [default: $VIGILA_DATA_DIR/sim]",
        show_default=False)] = None,
) -> None:
    """Serve N simulated cameras over RTSP until Ctrl-C.

    Each camera replays a pre-encoded 1080p25 H.264 clip (about 4 Mbit/s, a key
    frame every 2 s, a time code burned in) at rtsp://ADDRESS:PORT/ID/main, and
    a 640x360 one at .../ID/sub. The clip is encoded once and cached.
    Needs Debian's GStreamer RTSP server (scripts/install-system.sh).
    """
    chosen = _ids(count, prefix, ids)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        with CameraSimulator(chosen, port=port, address=address, sub_streams=sub,
                             cache_dir=cache_dir) as sim:
            for camera_id in chosen:
                urls = [sim.url(camera_id)] + ([sim.url(camera_id, sub=True)] if sub else [])
                typer.echo(f"{camera_id}\t" + "\t".join(urls))
            typer.echo(f"{len(chosen)} cameras on rtsp://{address}:{sim.port}/; "
                       f"Ctrl-C to stop; {CONTROL_HELP}", err=True)
            for line in sys.stdin:
                if not _control(sim, line):
                    return
            while sim.running:  # stdin closed (e.g. run in the background): serve on
                time.sleep(1)
            typer.echo("error: the RTSP server stopped", err=True)
            raise typer.Exit(1)
    except KeyboardInterrupt:
        return
    except VigilaError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(2) from exc
    finally:
        signal.signal(signal.SIGTERM, previous)
