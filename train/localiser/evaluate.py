"""Evaluate the plate localiser (the ONNX file, through vigila's PlateLocaliser).

Per set: recall (share of labelled plates whose centre lies inside a proposed box),
whole (share whose whole labelled box lies inside one, 2 px of slack), mean proposals per
image, and the median time of `propose` (resize + net + post-processing; the file's
decoding not counted) with `--threads` ONNX Runtime threads, one photo at a time.

Sets: the real photos' dev half (TRAINED ON: 4/5 of it was training data) and test half
(never trained or tuned on), split as bench/anpr.py does; the benchmark's generated
Italian scenes, seed 1 (dev) and seed 2 (test), written with `write_set` into
`--generated-dir` when missing (never used in training: it used seeds 100+).

    .venv/bin/python train/localiser/evaluate.py [--split dev|test|both] [--italian 100]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dataset import PLATES, real_photos

from vigila.vision.anpr.localise import PlateLocaliser, Proposal

SEEDS = {"dev": 1, "test": 2}


def generated(folder: Path, count: int, seed: int) -> dict[str, list[tuple[int, int, int, int]]]:
    labels = folder / "labels.csv"
    if not labels.is_file():
        from vigila.sim.plate_images import write_set

        write_set(folder, count, seed)
    photos: dict[str, list[tuple[int, int, int, int]]] = {}
    with labels.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            box = (int(row["x"]), int(row["y"]), int(row["w"]), int(row["h"]))
            photos.setdefault(row["image"], []).append(box)
    return dict(sorted(photos.items())[:count])


def inside(cx: float, cy: float, box: tuple[int, int, int, int]) -> bool:
    x, y, w, h = box
    return x <= cx <= x + w and y <= cy <= y + h


def covers(label: tuple[int, int, int, int], box: tuple[int, int, int, int]) -> bool:
    x, y, w, h = label
    bx, by, bw, bh = box
    return bx - 2 <= x and by - 2 <= y and x + w <= bx + bw + 2 and y + h <= by + bh + 2


def run_set(localiser: PlateLocaliser, root: Path, photos: dict[str, list[tuple[int, ...]]],
            show_misses: bool) -> dict[str, float]:
    plates = found = whole = boxes = 0
    ms: list[float] = []
    for name, labels in photos.items():
        image = cv2.imread(str(root / name), cv2.IMREAD_COLOR)
        if image is None:
            raise SystemExit(f"cannot read {root / name}")
        start = time.perf_counter()
        proposals: list[Proposal] = localiser.propose(image)
        ms.append((time.perf_counter() - start) * 1000)
        boxes += len(proposals)
        for label in labels:
            x, y, w, h = label
            plates += 1
            hit = any(inside(x + w / 2, y + h / 2, p.box) for p in proposals)
            found += hit
            whole += any(covers((x, y, w, h), p.box) for p in proposals)
            if not hit and show_misses:
                print(f"  miss {name} {label} {image.shape[1]}x{image.shape[0]} "
                      f"proposals {[(p.box, round(p.score, 2)) for p in proposals]}")
    return {"images": len(photos), "plates": plates, "recall": found / max(plates, 1),
            "whole": whole / max(plates, 1), "boxes_per_image": boxes / max(len(photos), 1),
            "median_ms": statistics.median(ms)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split", choices=("dev", "test", "both"), default="dev")
    parser.add_argument("--italian", type=int, default=100, help="generated scenes per set")
    parser.add_argument("--generated-dir", type=Path, default=Path("/tmp/localiser"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--long-side", type=int, default=512)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--misses", action="store_true", help="list the plates missed")
    args = parser.parse_args()

    cv2.setNumThreads(1)
    localiser = PlateLocaliser(args.threads, args.long_side, args.model)
    localiser.propose(cv2.imread(str(PLATES / next(iter(real_photos("dev"))))))  # warm-up
    splits = ("dev", "test") if args.split == "both" else (args.split,)
    for split in splits:
        real = real_photos(split)
        sets = {
            f"br-{split}": (PLATES, {k: v for k, v in real.items() if k.startswith("br/")}),
            f"us-{split}": (PLATES, {k: v for k, v in real.items() if k.startswith("us/")}),
        }
        folder = args.generated_dir / f"it-seed{SEEDS[split]}"
        sets[f"it-{split}"] = (folder, generated(folder, args.italian, SEEDS[split]))
        for name, (root, photos) in sets.items():
            row = run_set(localiser, root, photos, args.misses)
            flag = " (real dev half: trained on)" if name in ("br-dev", "us-dev") else ""
            print(f"{name:8s} images {row['images']:4d} plates {row['plates']:4d} "
                  f"recall {row['recall']:.3f} whole {row['whole']:.3f} "
                  f"boxes/img {row['boxes_per_image']:.2f} "
                  f"median {row['median_ms']:.1f} ms{flag}", flush=True)


if __name__ == "__main__":
    main()
