"""`vigila anpr`: read plates in photos, or watch a camera's stream for passing plates."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import httpx
import typer

from vigila.core import VigilaError
from vigila.vision.anpr import AnprEngine, home_priors
from vigila.vision.anpr.video import Pass, ReadPoster, StreamReader, watch

anpr_app = typer.Typer(help="ANPR: leggi targhe da foto e flussi video / read plates in "
                       "photos and streams.", no_args_is_help=True)

CountryOpt = Annotated[str | None, typer.Option(
    "--country", help="the reader's country (ISO alpha-2): its plate formats only; by "
    "default Italian plates first, the neighbours' still read")]
SideOpt = Annotated[int, typer.Option(
    "--detector-side", help="long side (px) the text detector sees: smaller is faster, "
    "larger finds smaller plates")]


def make_engine(country: str | None, detector_side: int) -> AnprEngine:
    try:
        return AnprEngine(priors=None if country is None else home_priors(country),
                          detector_side=detector_side)
    except VigilaError as exc:
        raise typer.BadParameter(exc.detail) from exc


@anpr_app.command("read")
def read(images: Annotated[list[Path], typer.Argument(help="photos (JPEG, PNG, ...)")],
         country: CountryOpt = None, detector_side: SideOpt = 960) -> None:
    """One JSON line per photo: {"image", "plates": [{"text", "confidence", "box",
    "country", "kind", ...}], "ms"}, best plate first. A photo that cannot be read gets
    {"image", "error"} and the exit status is 1."""
    engine = make_engine(country, detector_side)
    failed = 0
    for path in images:
        line: dict[str, object] = {"image": str(path)}
        try:
            reading = engine.read_bytes(path.read_bytes())
            line |= {"plates": [p.as_dict() for p in reading.plates],
                     "ms": round(reading.ms, 1)}
        except (OSError, VigilaError) as exc:
            failed += 1
            line["error"] = exc.detail if isinstance(exc, VigilaError) else str(exc)
            print(f"{path}: {line['error']}", file=sys.stderr)
        print(json.dumps(line, ensure_ascii=False), flush=True)
    if failed:
        raise typer.Exit(1)


def reads_poster(api: str, user: str, password_env: str, device: str
                 ) -> tuple[httpx.Client, ReadPoster]:
    """A poster of reads to the API as the reader account `user` (password from the
    environment, never the command line), logging in again when the session expires."""
    from vigila.sim.reads import login

    password = os.environ.get(password_env)
    if not password:
        raise typer.BadParameter(f"set {password_env} to the password of {user}",
                                 param_hint="--password-env")

    def token() -> str:
        return login(api, user, password)

    try:
        first = token()
    except httpx.HTTPError as exc:
        raise typer.BadParameter(f"cannot log in to {api} as {user}: {exc}",
                                 param_hint="--api") from exc
    client = httpx.Client(base_url=api, timeout=10.0)
    return client, ReadPoster(client, first, device, relogin=token)


def _roi(text: str | None) -> tuple[int, int, int, int] | None:
    if text is None:
        return None
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError as exc:
        raise typer.BadParameter("x,y,w,h in pixels, e.g. 0,360,1280,360",
                                 param_hint="--roi") from exc
    return x, y, w, h


@anpr_app.command("watch")
def watch_command(
    url: Annotated[str, typer.Argument(help="the camera's stream (rtsp://...) or a video file")],
    device: Annotated[str | None, typer.Option(
        help="the registry's reader id the reads are posted as; without it, passes are "
        "printed only")] = None,
    api: Annotated[str, typer.Option(help="the Vigila API")] = "http://127.0.0.1:8000",
    user: Annotated[str, typer.Option(help="a reader account (role reader)")] = "lettore.varchi",
    password_env: Annotated[str, typer.Option(
        help="the environment variable holding its password")] = "VIGILA_READER_PASSWORD",
    fps: Annotated[float, typer.Option(help="frames read per second")] = 4.0,
    roi: Annotated[str | None, typer.Option(help="x,y,w,h: read only this region")] = None,
    width: Annotated[int | None, typer.Option(help="scale frames down to this width")] = None,
    duration: Annotated[float | None, typer.Option(help="stop after this many seconds")] = None,
    country: CountryOpt = None, detector_side: SideOpt = 960,
) -> None:
    """Read the plates passing in a stream: a few frames a second, each plate tracked and
    voted over its frames, one line (and, with --device, one read posted to the API, so
    hotlist alarms fire) per vehicle pass."""
    engine = make_engine(country, detector_side)
    poster: ReadPoster | None = None
    client: httpx.Client | None = None
    if device is not None:
        client, poster = reads_poster(api, user, password_env, device)

    def sink(p: Pass) -> None:
        line: dict[str, object] = {
            "plate": p.text, "confidence": round(p.confidence, 3), "votes": p.votes,
            "agreeing": p.agreeing, "first_seen": p.first_seen.isoformat(),
            "last_seen": p.last_seen.isoformat(), "country": p.country, "kind": p.kind}
        if poster is not None:
            poster(p)
            line["posted"] = poster.sent[-1]["status"]
        print(json.dumps(line), flush=True)

    try:
        watch(engine, url, sink, fps=fps, roi=_roi(roi), width=width, duration=duration)
    except VigilaError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        pass
    finally:
        if client is not None:
            client.close()


def plate_reading(api: str, user: str, password_env: str, fps: float, country: str | None,
                  detector_side: int) -> Callable[[str, str], StreamReader]:
    """For `vigila recording run --read-plates`: one engine for all cameras, each camera's
    reads posted as that camera (registered as a camera_anpr)."""
    engine = make_engine(country, detector_side)
    client, poster = reads_poster(api, user, password_env, "")

    def start(camera: str, url: str) -> StreamReader:
        own = ReadPoster(client, poster.token, camera, relogin=poster.relogin)
        return StreamReader(engine, camera, url, own, fps=fps)

    return start
