"""Where the text is: candidate plate boxes from the detector's probability map.

The detector marks the shrunken core of each text line; a line is a connected region
above `THRESHOLD`, scored by its mean probability, turned into a rotated rectangle and
grown back by the DB rule (offset = area x ratio / perimeter) to cover the glyphs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from vigila.vision.anpr.models import Floats, TextDetector

Image = npt.NDArray[np.uint8]

THRESHOLD = 0.3  # pixel probability that counts as text
MIN_SCORE = 0.5  # mean probability a region needs to be a text line
UNCLIP = 1.6  # how far the shrunken core is grown back, as in the detector's training
MIN_SIDE = 3  # px of the map: smaller regions are noise


@dataclass(frozen=True)
class TextBox:
    """A rotated rectangle around one line of text, in the image's pixels."""

    cx: float
    cy: float
    width: float  # along the text
    height: float  # across it
    angle: float  # degrees, of the text's direction against the x axis
    score: float

    def corners(self) -> Floats:
        """Top-left, top-right, bottom-right, bottom-left, as the text reads."""
        a = math.radians(self.angle)
        ux, uy = math.cos(a) * self.width / 2, math.sin(a) * self.width / 2
        vx, vy = -math.sin(a) * self.height / 2, math.cos(a) * self.height / 2
        c = (self.cx, self.cy)
        return np.array(
            [[c[0] - ux - vx, c[1] - uy - vy], [c[0] + ux - vx, c[1] + uy - vy],
             [c[0] + ux + vx, c[1] + uy + vy], [c[0] - ux + vx, c[1] - uy + vy]],
            dtype=np.float32)

    def bounds(self, image_w: int, image_h: int) -> tuple[int, int, int, int]:
        """Axis-aligned x, y, w, h, clipped to the image."""
        pts = self.corners()
        x0, y0 = np.floor(pts.min(axis=0)).astype(int)
        x1, y1 = np.ceil(pts.max(axis=0)).astype(int)
        x0, y0 = max(0, int(x0)), max(0, int(y0))
        x1, y1 = min(image_w, int(x1)), min(image_h, int(y1))
        return x0, y0, max(0, x1 - x0), max(0, y1 - y0)


def detector_input(image: Image, long_side: int) -> tuple[Floats, float, float]:
    """The image resized (long side about `long_side`, both sides multiples of 32) and
    normalised to [-1, 1] as (1, 3, H, W); with the x and y scales back to the image."""
    h, w = image.shape[:2]
    scale = long_side / max(h, w)
    nw = max(32, round(w * scale / 32) * 32)
    nh = max(32, round(h * scale / 32) * 32)
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1
                         else cv2.INTER_LINEAR)
    batch = (resized.astype(np.float32) * (2 / 255) - 1).transpose(2, 0, 1)[None]
    return np.ascontiguousarray(batch), w / nw, h / nh


def find_text(detector: TextDetector, image: Image, long_side: int) -> list[TextBox]:
    """Text lines in a BGR image, most confident first."""
    batch, sx, sy = detector_input(image, long_side)
    prob = detector.probability_map(batch)
    return boxes_from_map(prob, sx, sy)


def boxes_from_map(prob: Floats, sx: float, sy: float) -> list[TextBox]:
    mask = (prob > THRESHOLD).astype(np.uint8)
    # Joins the strokes of characters that the map split by a pixel.
    mask = np.asarray(cv2.dilate(mask, np.ones((2, 2), np.uint8)), np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    boxes: list[TextBox] = []
    for contour in contours:
        if len(contour) < 4:
            continue
        (cx, cy), (rw, rh), angle = cv2.minAreaRect(contour)
        if min(rw, rh) < MIN_SIDE:
            continue
        x, y, w, h = cv2.boundingRect(contour)
        region = np.zeros((h, w), np.uint8)
        cv2.fillPoly(region, [contour - [x, y]], 1)
        score = float(cv2.mean(prob[y:y + h, x:x + w], region)[0])
        if score < MIN_SCORE:
            continue
        grow = rw * rh * UNCLIP / (2 * (rw + rh))
        rw, rh = rw + 2 * grow, rh + 2 * grow
        # minAreaRect's angle names no reading direction: make the long side the text's,
        # pointing right (angle in (-90, 90]).
        if rh > rw:
            rw, rh, angle = rh, rw, angle - 90
        angle = (angle + 90) % 180 - 90
        boxes.append(_scaled(cx, cy, rw, rh, angle, score, sx, sy))
    boxes.sort(key=lambda b: -b.score)
    return boxes


def _scaled(cx: float, cy: float, w: float, h: float, angle: float, score: float,
            sx: float, sy: float) -> TextBox:
    # The map's x and y scales differ slightly (rounding to multiples of 32): scale the
    # rectangle's axes by their direction.
    a = math.radians(angle)
    ca, sa = math.cos(a), math.sin(a)
    width = w * math.hypot(ca * sx, sa * sy)
    height = h * math.hypot(sa * sx, ca * sy)
    return TextBox(cx * sx, cy * sy, width, height,
                   math.degrees(math.atan2(sa * sy, ca * sx)), score)
