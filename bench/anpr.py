"""ANPR benchmark: Vigila's engine beside plain rapidocr, on real and generated photos.

Sets (each split in two; the figures that matter are the test halves):

* `br`, `us`: the real photos in ../shared/data/plates (openalpr's end-to-end benchmark,
  Brazil and USA), split by a hash of the file name: the dev half was looked at while
  building the engine (its thresholds, the US serial shapes in the format table) and is
  part of the plate localiser's training data (`train/localiser`); the test half was
  neither tuned nor trained on.
* `it`: Italian street scenes made by `vigila.sim.plate_images.write_set` — dev seed 1,
  test seed 2 (the engine was only ever run on seed 1 while it was built; the localiser
  trained on other seeds).

Per set and per side: plate found (share of labelled plates with a returned box whose
centre lies inside the labelled plate box), exact (the best plate equals the label; for
a photo with several labelled plates, the label is among those returned), exact with O
and 0 taken as one (the real sets' labels mix them up, ../shared/data/README.md), and
images/s end to end on this machine: the file read, decoded and read, one photo at a
time, each side using every core.

The engine reads with the reader's home priors (`home_priors`: `BR` or `US` formats
only; the Italian set with the default Italian-first priors, as in an Italian city).
The peer is plain rapidocr (`RapidOCR()` with its defaults: detection, orientation,
recognition of every text line on the whole image); its plate is its most confident
text that is a valid plate of the set's country by the same grammar (`is_valid`), or
failing that its most confident text of 4-10 characters with a digit.

    python bench/anpr.py [--italian 200] [--split test] [--no-localise] [--write-docs]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchdoc import cpu_name, put_section

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "plates"
HEADING = "## ANPR (plate reading on photos)"
END = "<!-- end: bench/anpr.py -->"

from vigila.plates import is_valid, normalise  # noqa: E402
from vigila.vision.anpr import AnprEngine, home_priors  # noqa: E402

SEEDS = {"dev": 1, "test": 2}


@dataclass
class Label:
    text: str
    box: tuple[int, int, int, int]


@dataclass
class Photo:
    path: Path
    labels: list[Label] = field(default_factory=list)


@dataclass
class Side:
    found: int = 0
    exact: int = 0
    exact_o0: int = 0
    plates: int = 0
    ms: list[float] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)

    def row(self) -> dict[str, float]:
        n = max(self.plates, 1)
        total = sum(self.ms) / 1000
        return {"found": 100 * self.found / n, "exact": 100 * self.exact / n,
                "exact_o0": 100 * self.exact_o0 / n,
                "ips": len(self.ms) / total if total else 0.0,
                "ms_p50": statistics.median(self.ms) if self.ms else 0.0}


def load(labels_csv: Path, country: str | None, split: str | None) -> list[Photo]:
    photos: dict[str, Photo] = {}
    with labels_csv.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if country and row["country"].upper() != country:
                continue
            if split and half(row["image"]) != split:
                continue
            photo = photos.setdefault(row["image"], Photo(labels_csv.parent / row["image"]))
            box = (int(row["x"]), int(row["y"]), int(row["w"]), int(row["h"]))
            photo.labels.append(Label(normalise(row["plate"]), box))
    return list(photos.values())


def half(image: str) -> str:
    return "dev" if hashlib.sha1(image.encode()).digest()[0] % 2 == 0 else "test"


def centre_inside(box: tuple[int, int, int, int] | list[int],
                  label: tuple[int, int, int, int]) -> bool:
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    x, y, w, h = label
    return x <= cx <= x + w and y <= cy <= y + h


def o0(text: str) -> str:
    return text.replace("O", "0")


def score(side: Side, photo: Photo, texts: list[str], boxes: list[Any], ms: float) -> None:
    side.ms.append(ms)
    for label in photo.labels:
        side.plates += 1
        side.found += any(centre_inside(b, label.box) for b in boxes)
        guess = texts[:1] if len(photo.labels) == 1 else texts
        side.exact += label.text in guess
        side.exact_o0 += o0(label.text) in [o0(t) for t in guess]
        if label.text not in guess:
            side.misses.append(f"{photo.path.name}: {label.text} read {texts[:3]}")


def run_vigila(engine: AnprEngine, photos: list[Photo]) -> Side:
    side = Side()
    engine.warm_up()
    for photo in photos:
        start = time.perf_counter()
        reading = engine.read_bytes(photo.path.read_bytes())
        ms = (time.perf_counter() - start) * 1000
        score(side, photo, [p.text for p in reading.plates], [p.box for p in reading.plates],
              ms)
    return side


def peer_plate(texts: list[str], scores: list[float], country: str) -> list[str]:
    ranked = sorted(zip(scores, [normalise_loose(t) for t in texts], strict=True),
                    reverse=True)
    valid = [t for _, t in ranked if 2 <= len(t) <= 16 and is_valid(t, country)]
    loose = [t for _, t in ranked if 4 <= len(t) <= 10 and any(c.isdigit() for c in t)]
    return valid + [t for t in loose if t not in valid]


def normalise_loose(text: str) -> str:
    return "".join(c for c in text.upper() if c.isascii() and c.isalnum())


def run_peer(photos: list[Photo], country: str) -> Side:
    from rapidocr import RapidOCR  # the peer: only the benchmark imports it whole

    ocr = RapidOCR(params={"Global.log_level": "error"})
    ocr(str(photos[0].path))  # warm up, as the engine is
    side = Side()
    for photo in photos:
        start = time.perf_counter()
        out = ocr(str(photo.path))
        ms = (time.perf_counter() - start) * 1000
        texts = list(out.txts or ())
        scores = [float(s) for s in (out.scores or ())]
        boxes = []
        for pts in (out.boxes if out.boxes is not None else []):
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            boxes.append((min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)))
        plate_boxes = [b for b, t in zip(boxes, texts, strict=True)
                       if len(normalise_loose(t)) >= 2]
        score(side, photo, peer_plate(texts, scores, country), plate_boxes, ms)
    return side


def machine() -> str:
    from importlib.metadata import version

    cpu = cpu_name()
    return (f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"ONNX Runtime {version('onnxruntime')}, rapidocr {version('rapidocr')} "
            f"(PP-OCRv6 small det + rec)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--italian", type=int, default=200, help="generated Italian photos")
    parser.add_argument("--split", choices=("test", "dev"), default="test")
    parser.add_argument("--sets", default="br,us,it")
    parser.add_argument("--detector-side", type=int, default=960)
    parser.add_argument("--no-localise", action="store_true",
                        help="read every photo the long way (no plate localiser)")
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--show-misses", action="store_true")
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "BENCHMARKS.md")
    args = parser.parse_args(argv)

    results: dict[str, tuple[int, Side, Side | None]] = {}
    gen_s = 0.0
    with tempfile.TemporaryDirectory(prefix="vigila-anpr-") as tmp:
        for name in args.sets.split(","):
            if name == "it":
                start = time.perf_counter()
                from vigila.sim.plate_images import write_set

                labels = write_set(Path(tmp) / "it", args.italian, SEEDS[args.split])
                gen_s = time.perf_counter() - start
                photos, country = load(labels, None, None), "IT"
                engine = AnprEngine(detector_side=args.detector_side,
                                    localise=not args.no_localise)
            else:
                country = name.upper()
                photos = load(args.data / "labels.csv", country, args.split)
                engine = AnprEngine(priors=home_priors(country),
                                    detector_side=args.detector_side,
                                    localise=not args.no_localise)
            ours = run_vigila(engine, photos)
            peer = None if args.no_peer else run_peer(photos, country)
            results[name] = (len(photos), ours, peer)
            report(name, len(photos), ours, peer)
            if args.show_misses:
                print("\n".join("  miss " + m for m in ours.misses))

    command = "python bench/anpr.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = section(results, args, command.strip(), gen_s)
    print(text)
    if args.write_docs:
        put_section(args.docs, HEADING, END, text)
    return 0


def report(name: str, photos: int, ours: Side, peer: Side | None) -> None:
    o = ours.row()
    line = (f"{name}: {photos} photos, {ours.plates} plates | Vigila found {o['found']:.1f} % "
            f"exact {o['exact']:.1f} % ({o['exact_o0']:.1f} % O=0) {o['ips']:.2f} img/s")
    if peer is not None:
        p = peer.row()
        line += (f" | rapidocr found {p['found']:.1f} % exact {p['exact']:.1f} % "
                 f"({p['exact_o0']:.1f} % O=0) {p['ips']:.2f} img/s")
    print(line, flush=True)


def section(results: dict[str, tuple[int, Side, Side | None]], args: argparse.Namespace,
            command: str, gen_s: float) -> str:
    names = {"br": "Brazil (real)", "us": "USA (real)", "it": "Italy (generated)"}
    lines = [HEADING, "", "<!-- begin: written by bench/anpr.py --write-docs -->", "",
             (__doc__ or "").split("\n\n", 1)[1].split("\n\n    python")[0].strip(), "",
             f"Command: `{command}`  ",
             f"Machine: {machine()}, {datetime.now(UTC):%Y-%m-%d}  ",
             f"Split: **{args.split}**; plate localiser "
             f"{'off' if args.no_localise else 'on'}; detector long side {args.detector_side} px; "
             f"Italian set: {args.italian} photos made in {gen_s:.1f} s "
             f"(seed {SEEDS[args.split]}).", "",
             "| set | photos / plates | side | plate found % | exact % | exact %, O = 0 "
             "| images/s | ms per photo, median |",
             "|---|---|---|---|---|---|---|---|"]
    targets = []
    for name, (photos, ours, peer) in results.items():
        for label, side in (("Vigila", ours), ("rapidocr (peer)", peer)):
            if side is None:
                continue
            r = side.row()
            lines.append(f"| {names.get(name, name)} | {photos} / {side.plates} | {label} | "
                         f"{r['found']:.1f} | {r['exact']:.1f} | {r['exact_o0']:.1f} | "
                         f"{r['ips']:.2f} | {r['ms_p50']:.0f} |")
        o = ours.row()
        ratio = ""
        if peer is not None and peer.row()["ips"]:
            ratio = f" ({o['ips'] / peer.row()['ips']:.2f} x the peer's rate)"
        real = name in ("br", "us")
        targets.append(
            f"- {names.get(name, name)}: exact {o['exact']:.1f} %"
            + (f" — target >= 97 % on a real set: **{'met' if o['exact'] >= 97 else 'not met'}**"
               if real else "")
            + f"; {o['ips']:.2f} images/s{ratio} — target >= 20: "
            f"**{'met' if o['ips'] >= 20 else 'not met'}**.")
    lines += ["", "Targets:", "", *targets, "", END]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
