"""What the text says: crops of text lines read by the recogniser, as plate-character rows.

The recogniser answers, per time step, a probability for each of its ~18,700 classes
(the CTC blank, Latin letters in both cases, digits, punctuation, other scripts). A plate
has 36 characters: per step their probabilities are gathered (a and A are one plate
character), everything else is a gap. The steps are then cut into character positions
along the best path, and each position keeps its full distribution over A-Z0-9 — the
rows that `vigila.plates.best_text` decodes against the plate grammar, so the grammar
chooses among the characters the model found likely instead of patching its first
choice afterwards.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, replace

import cv2
import numpy as np

from vigila.vision.anpr.detect import Image, TextBox
from vigila.vision.anpr.models import Floats, TextRecogniser

HEIGHT = 48  # the recogniser's input height
MIN_WIDTH, MAX_WIDTH = 24, 480
# The detector's box hugs the glyphs and now and then clips the first or last one (a
# state's emblem beside it); a margin of this many line heights each side costs nothing
# the recogniser cannot read as a gap (on the dev photos: US 71 -> 73 % exact).
MARGIN = 0.3
BATCH = 8
PLATE_CHARS = string.ascii_uppercase + string.digits


@dataclass(frozen=True)
class LineReading:
    """One text line as plate-character positions: rows[i][c] is P(position i is c)."""

    rows: list[dict[str, float]]
    text: str  # the first choice of each position


class PlateCharacters:
    """Maps the recogniser's classes onto A-Z0-9."""

    def __init__(self, charset: list[str]) -> None:
        index = {ch: i + 1 for i, ch in enumerate(charset)}  # class 0 is the blank
        missing = [ch for ch in PLATE_CHARS if ch not in index]
        if missing:
            raise ValueError(f"the recogniser cannot read {''.join(missing)}")
        self.upper = np.array([index[ch] for ch in PLATE_CHARS])
        # Digits have no lower case: their column is the upper one, and is not added twice.
        self.lower = np.array([index.get(ch.lower(), index[ch]) for ch in PLATE_CHARS])

    def gather(self, probs: Floats) -> Floats:
        """(T, classes) → (T, 36) probability of each plate character per step."""
        out = probs[:, self.upper]
        both = self.upper != self.lower
        out[:, both] += probs[:, self.lower[both]]
        return out


def crop_line(image: Image, box: TextBox) -> Image:
    """The line straightened and scaled to the recogniser's height, with a margin."""
    box = replace(box, width=box.width + 2 * MARGIN * box.height)
    width = round(HEIGHT * box.width / max(box.height, 1.0))
    width = min(MAX_WIDTH, max(MIN_WIDTH, width))
    target = np.array([[0, 0], [width, 0], [width, HEIGHT], [0, HEIGHT]], dtype=np.float32)
    warp = cv2.getPerspectiveTransform(box.corners(), target)
    return np.asarray(cv2.warpPerspective(image, warp, (width, HEIGHT),
                                          flags=cv2.INTER_LINEAR,
                                          borderMode=cv2.BORDER_REPLICATE), np.uint8)


def read_lines(recogniser: TextRecogniser, chars: PlateCharacters,
               crops: list[Image]) -> list[LineReading]:
    """Read each crop; batched by similar widths, padded on the right."""
    out: list[LineReading | None] = [None] * len(crops)
    order = sorted(range(len(crops)), key=lambda i: crops[i].shape[1])
    for start in range(0, len(order), BATCH):
        chunk = order[start:start + BATCH]
        widest = max(crops[i].shape[1] for i in chunk)
        batch = np.zeros((len(chunk), 3, HEIGHT, widest), np.float32)
        for k, i in enumerate(chunk):
            crop = crops[i].astype(np.float32) * (2 / 255) - 1
            batch[k, :, :, : crop.shape[1]] = crop.transpose(2, 0, 1)
        probs = recogniser.class_probabilities(batch)
        steps = probs.shape[1]
        for k, i in enumerate(chunk):
            # The padding's steps read as blanks; cut them anyway, they carry nothing.
            used = max(1, int(np.ceil(steps * crops[i].shape[1] / widest)))
            out[i] = positions(chars.gather(probs[k, :used]))
    return [r for r in out if r is not None]


def positions(plate: Floats) -> LineReading:
    """CTC best path over plate characters and gaps → one row per character position.

    A step belongs to a character when its best plate character outweighs the gap (the
    blank and every non-plate class together); consecutive steps of one character are
    one position, as CTC collapses them. A position's row is the per-character maximum
    over its steps, normalised.
    """
    gap = np.clip(1.0 - plate.sum(axis=1), 0.0, 1.0)
    best = plate.argmax(axis=1)
    is_char = plate[np.arange(len(plate)), best] > gap
    rows: list[dict[str, float]] = []
    text: list[str] = []
    t = 0
    while t < len(best):
        if not is_char[t]:
            t += 1
            continue
        end = t + 1
        while end < len(best) and is_char[end] and best[end] == best[t]:
            end += 1
        row = plate[t:end].max(axis=0)
        row = row / max(float(row.sum()), 1e-9)
        rows.append(dict(zip(PLATE_CHARS, row.tolist(), strict=True)))
        text.append(PLATE_CHARS[int(best[t])])
        t = end
    return LineReading(rows, "".join(text))
