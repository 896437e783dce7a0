"""Build the plate localiser's training set: one compact .npz outside the repository.

Sources (never the benchmark's test halves, never its generated seeds 1 and 2):

* the dev half of the real photos in shared/data/plates (openalpr benchmarks, AGPL-3.0),
  split exactly as bench/anpr.py's `half` does;
* Italian street scenes from `vigila.sim.plate_images.street_scene`, seeds from
  `--seed` (100 by default), at a few frame shapes.

Every image is resized to a long side of `--long-side` px (640 by default: the trainer
scales down from there) and stored in one flat uint8 buffer; the plate boxes are stored
beside it in the stored image's pixels. Target maps are drawn by the trainer from the
boxes (cheap, and they follow the crop and scale augmentation).

Run with the project's venv (it imports vigila.sim):

    .venv/bin/python train/localiser/dataset.py --out /tmp/localiser/data.npz
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
PLATES = ROOT.parent / "shared" / "data" / "plates"
SOURCES = {"it": 0, "br": 1, "us": 2}
# Frame shapes the generated scenes are drawn at (the real photos are mostly 16:9, 1:1, 4:3).
SHAPES = ((1280, 720), (1280, 720), (1280, 960), (1024, 1024), (1280, 800))

# The benchmark's own split of the real photos, not a copy: training must never see its test half.
sys.path.insert(0, str(ROOT / "bench"))
from anpr import half  # noqa: E402


def real_photos(split: str) -> dict[str, list[tuple[int, int, int, int]]]:
    """image (relative to the labels' folder) -> plate boxes, for one half."""
    photos: dict[str, list[tuple[int, int, int, int]]] = {}
    with (PLATES / "labels.csv").open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if half(row["image"]) != split:
                continue
            box = (int(row["x"]), int(row["y"]), int(row["w"]), int(row["h"]))
            photos.setdefault(row["image"], []).append(box)
    return photos


def _resize(image: np.ndarray, boxes: list[tuple[int, int, int, int]], long_side: int
            ) -> tuple[np.ndarray, np.ndarray]:
    h, w = image.shape[:2]
    scale = long_side / max(h, w)
    nw, nh = round(w * scale), round(h * scale)
    small = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
    b = np.asarray(boxes, np.float32).reshape(-1, 4) * scale
    return small, b


def _scene(args: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    from vigila.sim.plate_images import street_scene

    seed, i, long_side = args
    rng = np.random.default_rng([seed, i])
    width, height = SHAPES[int(rng.integers(0, len(SHAPES)))]
    image, labels = street_scene(rng, width, height)
    bgr = cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR)
    return _resize(bgr, [label.box for label in labels], long_side)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/localiser/data.npz"))
    parser.add_argument("--generated", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--long-side", type=int, default=640)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--jpeg", type=int, default=0, metavar="QUALITY",
                        help="store JPEG-encoded images (smaller file, e.g. to ship to a GPU "
                             "machine); 0: raw pixels")
    parser.add_argument("--repack", type=Path, metavar="NPZ",
                        help="re-encode an existing set (with --long-side, --jpeg) into --out")
    args = parser.parse_args()
    if args.repack:
        repack(args.repack, args.out, args.long_side, args.jpeg)
        return
    if args.seed in (1, 2):
        parser.error("seeds 1 and 2 are the benchmark's generated sets")

    images: list[np.ndarray] = []
    boxes: list[np.ndarray] = []
    source: list[int] = []
    names: list[str] = []
    for name, plate_boxes in sorted(real_photos("dev").items()):
        image = cv2.imread(str(PLATES / name), cv2.IMREAD_COLOR)
        if image is None:
            raise SystemExit(f"cannot read {name}")
        small, b = _resize(image, plate_boxes, args.long_side)
        images.append(small)
        boxes.append(b)
        source.append(SOURCES[name.split("/")[0]])
        names.append(name)
    print(f"{len(images)} real dev photos")

    start = time.perf_counter()
    jobs = [(args.seed, i, args.long_side) for i in range(args.generated)]
    with ProcessPoolExecutor(args.workers) as pool:
        for i, (small, b) in enumerate(pool.map(_scene, jobs, chunksize=8)):
            images.append(small)
            boxes.append(b)
            source.append(SOURCES["it"])
            names.append(f"it-{args.seed}-{i:06d}")
            if (i + 1) % 200 == 0:
                print(f"{i + 1} scenes, {time.perf_counter() - start:.0f} s", flush=True)

    save(args.out, images, boxes, source, names, args.jpeg)


def save(out: Path, images: list[np.ndarray], boxes: list[np.ndarray], source: list[int],
         names: list[str], jpeg: int) -> None:
    """One .npz: the images in one flat uint8 buffer (raw pixels, or JPEG files when
    `jpeg` > 0) with offsets and shapes, the boxes with the index of their image."""
    shapes = np.array([im.shape[:2] for im in images], np.int32)
    if jpeg:
        blobs = [cv2.imencode(".jpg", im, [cv2.IMWRITE_JPEG_QUALITY, jpeg])[1].reshape(-1)
                 for im in images]
    else:
        blobs = [im.reshape(-1) for im in images]
    offsets = np.concatenate([[0], np.cumsum([len(b) for b in blobs])]).astype(np.int64)
    pixels = np.concatenate(blobs)
    box_index = np.concatenate([np.full(len(b), i, np.int32) for i, b in enumerate(boxes)])
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, pixels=pixels, offsets=offsets, shapes=shapes, jpeg=np.int32(jpeg),
             boxes=np.concatenate(boxes).astype(np.float32), box_index=box_index,
             source=np.asarray(source, np.int8), names=np.asarray(names))
    print(f"wrote {out}: {len(images)} images, {len(box_index)} plates, "
          f"{pixels.nbytes / 1e6:.0f} MB")


def load(path: Path) -> tuple[list[np.ndarray], list[np.ndarray], list[int], list[str]]:
    """The images (BGR uint8), boxes, sources and names of a set `save` wrote."""
    z = np.load(path)
    pixels, offsets, shapes = z["pixels"], z["offsets"], z["shapes"]
    encoded = "jpeg" in z and int(z["jpeg"]) > 0
    images = []
    for i, (h, w) in enumerate(shapes):
        blob = pixels[offsets[i]:offsets[i + 1]]
        images.append(cv2.imdecode(blob, cv2.IMREAD_COLOR) if encoded
                      else blob.reshape(h, w, 3))
    boxes = [z["boxes"][z["box_index"] == i] for i in range(len(images))]
    return images, boxes, [int(s) for s in z["source"]], [str(n) for n in z["names"]]


def repack(src: Path, out: Path, long_side: int, jpeg: int) -> None:
    images, boxes, source, names = load(src)
    small = [_resize(im, b.tolist(), long_side) for im, b in zip(images, boxes, strict=True)]
    save(out, [s[0] for s in small], [s[1] for s in small], source, names, jpeg)


if __name__ == "__main__":
    main()
