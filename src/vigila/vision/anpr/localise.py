"""Where the plates may be: a small project-trained net proposes plate regions in a photo.

The text detector (``detect.py``) finds every text line and costs about 150 ms on a
1280-px photo. The plate localiser is a tiny fully-convolutional net (about 60 k
parameters, ``data/plate_localiser.onnx``, trained by ``train/localiser``) that sees the
whole photo at a long side of `LONG_SIDE` px and marks, per 4 x 4 cell, how likely the
cell is on a plate. Each connected region above `THRESHOLD` is a proposal, scored by its
peak probability and grown by `GROW` so that the text detector, run on the crop only,
sees the whole plate with a margin. A few milliseconds on the CPU.

The weights were trained on openalpr's benchmark photos (AGPL-3.0) and on the project's
generated street scenes; they are AGPL-3.0-or-later like the project.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from vigila.vision.anpr.models import Floats, _Session, default_threads

Image = npt.NDArray[np.uint8]

MODEL = "plate_localiser.onnx"
LONG_SIDE = 512  # px: the long side the net sees (it was trained at 384-666)
STRIDE = 4  # input px per cell of the map
THRESHOLD = 0.4  # cell probability that counts as plate
MIN_SCORE = 0.5  # peak probability a region needs to be a proposal
MIN_CELLS = 2  # smaller regions are noise
GROW = 0.25  # each side grows by this share of the region's width / height...
PAD = 6.0  # ...plus this many px of the net's input
MAX_PROPOSALS = 8  # most confident first: bounds the cost of busy scenes


@dataclass(frozen=True)
class Proposal:
    """A region that may hold a plate: x, y, w, h in the input image's pixels."""

    box: tuple[int, int, int, int]
    score: float  # peak plate probability in the region, 0-1


def model_path() -> Path:
    return Path(__file__).resolve().parent / "data" / MODEL


def localiser_input(image: Image, long_side: int = LONG_SIDE) -> tuple[Floats, float]:
    """The BGR image resized to a long side of `long_side`, padded right and bottom to
    multiples of 32, normalised to [-1, 1] as (1, 3, H, W); with the scale applied."""
    h, w = image.shape[:2]
    scale = long_side / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    # INTER_AREA at an odd ratio is slow (3 ms from 1280 px): halve with pyrDown (a proper
    # low-pass) while the image is twice the size or more, then a plain bilinear resize.
    while max(image.shape[:2]) >= 2 * long_side:
        image = np.asarray(cv2.pyrDown(image), np.uint8)
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    canvas = np.zeros((math.ceil(nh / 32) * 32, math.ceil(nw / 32) * 32, 3), np.uint8)
    canvas[:nh, :nw] = resized
    batch = (canvas.astype(np.float32) * (2 / 255) - 1).transpose(2, 0, 1)[None]
    return np.ascontiguousarray(batch), scale


def proposals_from_map(prob: Floats, scale: float, image_w: int, image_h: int
                       ) -> list[Proposal]:
    """Regions of the (H/4, W/4) map, as boxes in the image's pixels, best first."""
    mask = (prob > THRESHOLD).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    found: list[Proposal] = []
    for k in range(1, count):
        x, y, w, h, area = (int(v) for v in stats[k])
        if area < MIN_CELLS:
            continue
        score = float(prob[y:y + h, x:x + w][labels[y:y + h, x:x + w] == k].max())
        if score < MIN_SCORE:
            continue
        # Cells to input px, grown, then to the image's px.
        gx, gy = GROW * w * STRIDE + PAD, GROW * h * STRIDE + PAD
        x0 = max(0, math.floor((x * STRIDE - gx) / scale))
        y0 = max(0, math.floor((y * STRIDE - gy) / scale))
        x1 = min(image_w, math.ceil(((x + w) * STRIDE + gx) / scale))
        y1 = min(image_h, math.ceil(((y + h) * STRIDE + gy) / scale))
        if x1 > x0 and y1 > y0:
            found.append(Proposal((x0, y0, x1 - x0, y1 - y0), score))
    found.sort(key=lambda p: -p.score)
    return found[:MAX_PROPOSALS]


class PlateLocaliser:
    """Proposes plate regions in BGR photos; the model is loaded on first use."""

    def __init__(self, threads: int | None = None, long_side: int = LONG_SIDE,
                 path: Path | None = None) -> None:
        self.threads = default_threads() if threads is None else threads
        self.long_side = long_side
        self.path = model_path() if path is None else path
        self._session: _Session | None = None
        self._load = threading.Lock()

    def _model(self) -> _Session:
        with self._load:
            if self._session is None:
                self._session = _Session(self.path, self.threads)
            return self._session

    def load(self) -> None:
        """Load the model now rather than on the first image."""
        self._model()

    def probability_map(self, batch: Floats) -> Floats:
        """(1, 3, H, W) normalised image -> (H/4, W/4) probability that a cell is plate."""
        prob: Floats = self._model().run(batch)[0, 0]
        return prob

    def propose(self, image_bgr: Image) -> list[Proposal]:
        """Plate regions in a BGR image, most confident first (at most `MAX_PROPOSALS`)."""
        h, w = image_bgr.shape[:2]
        batch, scale = localiser_input(image_bgr, self.long_side)
        return proposals_from_map(self.probability_map(batch), scale, w, h)
