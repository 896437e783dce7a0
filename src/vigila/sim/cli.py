"""`vigila sim`: simulated devices for demos, tests and benches."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Annotated

import httpx
import typer

from vigila.core import VigilaError
from vigila.plates import normalise
from vigila.sim.cameras import CameraSimulator, camera_ids
from vigila.sim.reads import ReaderInfo, ReadSimulator, login, wait_for_api

sim_app = typer.Typer(help="Simulated devices: RTSP cameras and plate readers for demos, "
                      "tests and benches.", no_args_is_help=True)


@sim_app.callback()
def sim() -> None:
    """Simulated devices: RTSP cameras and plate readers for demos, tests and benches."""


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


@sim_app.command("plates")
def plates(
    out_dir: Annotated[Path, typer.Argument(
        metavar="OUT_DIR", file_okay=False, help="where the images and labels.csv go")],
    count: Annotated[int, typer.Option(min=1, max=1_000_000, help="how many images")] = 100,
    seed: Annotated[int, typer.Option(min=0, help="the same seed gives the same set")] = 0,
    width: Annotated[int, typer.Option(min=640, max=7680, help="image width")] = 1280,
    height: Annotated[int, typer.Option(min=360, max=4320, help="image height")] = 720,
) -> None:
    """Write a labelled set of synthetic Italian plates in street scenes.

    OUT_DIR gets it-000000.jpg ... and labels.csv (image,country,x,y,w,h,plate: one row
    per plate, the box around the whole plate), like the plate corpus's labels.
    """
    from vigila.sim.plate_images import write_set  # numpy and Pillow only when asked for

    start = time.monotonic()
    labels = write_set(out_dir, count, seed, width, height)
    with labels.open(encoding="utf-8") as handle:
        rows = sum(1 for _ in handle) - 1
    typer.echo(f"wrote {count} images with {rows} plates to {out_dir} "
               f"(labels: {labels}) in {time.monotonic() - start:.1f} s")


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _plate_readers(url: str, token: str) -> list[ReaderInfo]:
    """The registry's plate readers in service, for an account allowed to read it."""
    found: list[ReaderInfo] = []
    cursor: str | None = None
    with httpx.Client(base_url=url, timeout=10.0,
                      headers={"Authorization": f"Bearer {token}"}) as client:
        for kind in ("plate_reader", "camera_anpr"):
            while True:
                params: dict[str, str | int] = {"kind": kind, "limit": 1000}
                if cursor:
                    params["cursor"] = cursor
                r = client.get("/api/devices", params=params)
                if r.status_code == 403:
                    raise typer.BadParameter(
                        "this account may not read the registry (a reader account may not): "
                        "name the readers, e.g. --readers LPR-01,LPR-02", param_hint="--readers")
                r.raise_for_status()
                page = r.json()
                found += [ReaderInfo(d["id"], d.get("direction"), d.get("lane"))
                          for d in page["items"] if d.get("status") in ("active", "maintenance")]
                cursor = page.get("next_cursor")
                if not cursor:
                    break
    return found


@sim_app.command("reads")
def reads(
    url: Annotated[str, typer.Option(help="the Vigila to post to")] = "http://127.0.0.1:8000",
    username: Annotated[str, typer.Option(help="an account with the reader role")] = "",
    password: Annotated[str, typer.Option(
        envvar="VIGILA_SIM_PASSWORD", help="its password (or $VIGILA_SIM_PASSWORD; asked for "
        "when not given)", show_default=False)] = "",
    rate: Annotated[float, typer.Option(min=0.01, max=10_000, help="reads per second")] = 2.0,
    duration: Annotated[float, typer.Option(
        min=0, help="seconds to run; 0: until Ctrl-C")] = 60.0,
    readers: Annotated[str | None, typer.Option(
        help="comma-separated plate reader ids [default: the registry's, when the account "
        "may read it]", show_default=False)] = None,
    hotlist_plates: Annotated[str | None, typer.Option(
        help="comma-separated listed plates: some reads are these, exactly or as an OCR "
        "look-alike")] = None,
    hit_every: Annotated[int, typer.Option(
        min=0, help="every Nth read is a listed plate exactly (0: none)")] = 40,
    images: Annotated[float, typer.Option(
        min=0, max=1, help="share of reads with a plate crop (a small JPEG)")] = 0.3,
    seed: Annotated[int | None, typer.Option(help="for the same plates every run")] = None,
) -> None:
    """Post simulated plate reads to a running Vigila, as its readers would.

    Mostly Italian cars, some motorcycles, a few French, German and Swiss plates; reads
    that cannot be delivered are kept and retried with the same event ids. Prints what
    became of them at the end.
    """
    import logging

    if not username:
        raise typer.BadParameter("the reader account to log in with", param_hint="--username")
    try:
        listed = [normalise(p) for p in _split(hotlist_plates)]
    except VigilaError as exc:
        raise typer.BadParameter(exc.detail, param_hint="--hotlist-plates") from exc
    if not password:
        password = typer.prompt(f"password for {username}", hide_input=True)
    url = url.rstrip("/")
    if not wait_for_api(url, timeout=10):
        typer.echo(f"error: no Vigila answers at {url}/api/health", err=True)
        raise typer.Exit(2)
    try:
        token = login(url, username, password)
        chosen = [ReaderInfo(r) for r in _split(readers)] or _plate_readers(url, token)
    except httpx.HTTPStatusError as exc:
        typer.echo(f"error: {exc.request.url.path}: HTTP {exc.response.status_code} "
                   f"{exc.response.text[:300]}", err=True)
        raise typer.Exit(2) from exc
    except httpx.HTTPError as exc:
        typer.echo(f"error: {exc!r}", err=True)
        raise typer.Exit(2) from exc
    if not chosen:
        typer.echo("error: no plate reader in service to post as", err=True)
        raise typer.Exit(2)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    simulator = ReadSimulator(url, token, chosen, rate, listed, hit_every, seed,
                              credentials=(username, password), image_share=images,
                              report_every=10.0)
    typer.echo(f"{rate:g} reads/s from {len(chosen)} readers to {url}; Ctrl-C to stop", err=True)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    simulator.start()
    try:
        deadline = time.monotonic() + duration if duration else None
        while simulator.running and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.2 if deadline is None else
                       max(0.0, min(0.2, deadline - time.monotonic())))
    except KeyboardInterrupt:
        pass
    finally:
        simulator.stop(drain=True)  # what the readers still hold goes out before the end
        signal.signal(signal.SIGTERM, previous)
    c = simulator.counters()
    typer.echo(f"sent {c.sent}, stored {c.stored}, duplicates {c.duplicates}, rejected "
               f"{c.rejected}, alarms {c.alarms}, errors {c.errors}, unsent {c.pending}, "
               f"dropped {c.dropped}")
    if c.rejected or (c.sent == 0 and c.generated):
        raise typer.Exit(1)
