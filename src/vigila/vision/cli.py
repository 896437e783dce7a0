"""`vigila anpr`: read plates in photos, or watch a camera's stream for passing plates."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from vigila.core import VigilaError
from vigila.vision.anpr import AnprEngine, home_priors

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
