"""The ANPR engine: plates in a photo, read against the plate grammar.

1. The project's plate localiser (`localise.py`, a tiny net trained by `train/localiser`)
   proposes plate regions in a few milliseconds; the text detector then finds the text
   lines inside each region only. A photo in which the regions yield no plate is read
   the long way: the text detector over the whole image (every text line: plates, but
   also shop signs, stickers, a car's badge), and once more larger if still nothing.
2. The recogniser reads the larger lines as per-position plate-character rows; lines
   stacked like the two rows of a motorcycle or square plate are also read as one.
3. `vigila.plates.best_text` decodes each reading against the format table (with the
   deployment's country priors): the best text per format, characters chosen where the
   OCR's probabilities and the format agree. A reading may also lose one character at
   either end (the "I" of the EU band, a frame's screw), at a price.
4. A line's plate confidence is the detector's score times the OCR's mean probability
   of the chosen characters, lowered for a text no specific format admits. Plates are
   returned best first; texts read from overlapping lines are merged.
"""

from __future__ import annotations

import io
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from vigila.core.errors import InvalidInput
from vigila.plates import COUNTRY_PRIORS, FORMATS, PlateMatch, best_text, merged_priors
from vigila.plates.grammar import check_country
from vigila.vision.anpr.detect import Image, TextBox, find_text
from vigila.vision.anpr.localise import PlateLocaliser
from vigila.vision.anpr.models import TextDetector, TextRecogniser, default_threads, pp_ocr
from vigila.vision.anpr.recognise import LineReading, PlateCharacters, crop_line, read_lines

MAX_IMAGE_BYTES = 25 * 1024 * 1024
MAX_PIXELS = 40_000_000  # a 40 MP photo; past that a "photo" is a decompression bomb
MIN_SIDE = 16

MIN_LINE_HEIGHT = 8.0  # px: shorter text is too small to read as a plate
MAX_LINES = 12  # lines read per image, the tallest first: bounds the cost of busy scenes
DROP_PRICE = 4.0  # nats: reading one end character as not part of the plate
GENERIC_FACTOR = 0.5  # a text no specific format admits (a vanity plate, a misread)
NO_DIGIT_FACTOR = 0.3  # a text without digits is more likely a word than a plate
MIN_CONFIDENCE = 0.15
# A proposed region is shown to the text detector enlarged until it is this tall (px), so
# that a small plate's characters reach a height the detector finds; never past
# REGION_MAX_SIDE on its long side. On the US dev half 96 px read 68.0 % exactly, 160 px
# 73.4 % (the whole image at 960 px: 76.6 %), at 9.9 and 7.9 images/s (3.1).
REGION_HEIGHT = 160
REGION_MAX_SIDE = 640
_WEIGHTS = {f.id: f.weight for f in FORMATS}


@dataclass(frozen=True)
class PlateRead:
    text: str
    confidence: float  # 0-1
    box: tuple[int, int, int, int]  # x, y, w, h in the image's pixels
    country: str  # ISO 3166-1 alpha-2, "" when no specific format matched
    kind: str
    format_id: str
    display: str

    def as_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["box"] = list(self.box)
        out["confidence"] = round(self.confidence, 4)
        return out


@dataclass(frozen=True)
class ImageReading:
    plates: list[PlateRead]
    ms: float
    width: int
    height: int


@dataclass
class AnprEngine:
    """Reads plates in images. Thread-safe; the models load on first use.

    `priors` are the deployment's country priors for the grammar (Italy's by default:
    `vigila.plates.COUNTRY_PRIORS`); a reader abroad names its own country.
    `detector_side` is the long side the detector sees: smaller is faster, larger finds
    smaller plates (960 keeps a 70-px plate in a 1280-px photo at 52 px); a photo with
    no plate found is looked at again at `second_look_side` (None: never).
    `localise` has the plate localiser propose regions first; off, every image is read the
    long way (the text detector over all of it).
    """

    priors: Mapping[str, float] | None = None
    detector_side: int = 960
    second_look_side: int | None = 1280
    threads: int = field(default_factory=default_threads)
    max_lines: int = MAX_LINES
    localise: bool = True

    def __post_init__(self) -> None:
        if not 128 <= self.detector_side <= 4096:
            raise InvalidInput.on("detector_side", "between 128 and 4096 pixels")
        self._priors = merged_priors(self.priors)  # refuses bad priors now
        self._chars: PlateCharacters | None = None
        # One thread: the net is small enough that a second one costs more than it gives.
        self._localiser = PlateLocaliser(threads=1) if self.localise else None

    def warm_up(self) -> None:
        """Load the models now rather than on the first image."""
        self._models()
        if self._localiser is not None:
            self._localiser.load()

    def _models(self) -> tuple[TextDetector, TextRecogniser, PlateCharacters]:
        detector, recogniser = pp_ocr(self.threads)
        if self._chars is None:
            self._chars = PlateCharacters(recogniser.charset)
        return detector, recogniser, self._chars

    def read_bytes(self, data: bytes) -> ImageReading:
        return self.read(decode_image(data))

    def read(self, image: Image, second_look: bool = True) -> ImageReading:
        """Plates in a BGR uint8 image (H, W, 3), best first.

        A photo in which nothing was found is looked at once more with the detector at
        `second_look_side` (small plates far away); a video frame (`second_look=False`)
        is not: most frames hold no plate, and the next frame comes soon.
        """
        self.warm_up()  # loading the models is not reading
        start = time.perf_counter()
        h, w = image.shape[:2]
        found: list[PlateRead] = []
        if self._localiser is not None:
            found = self._read_regions(image, self._localiser)
        # A video frame with no plate in its regions holds none: the next frame comes soon.
        if not found and (self._localiser is None or second_look):
            found = self._read(image, self.detector_side)
            bigger = min(self.second_look_side or 0, max(h, w))
            if not found and second_look and bigger > self.detector_side * 1.2:
                found = self._read(image, bigger)
        return ImageReading(found, (time.perf_counter() - start) * 1000, w, h)

    def _read_regions(self, image: Image, localiser: PlateLocaliser) -> list[PlateRead]:
        """The plates read in the regions the localiser proposes."""
        detector = self._models()[0]
        lines: list[TextBox] = []
        # At least the scale the whole image would have had at `detector_side`.
        whole = self.detector_side / max(image.shape[:2])
        for proposal in localiser.propose(image):
            x, y, rw, rh = proposal.box
            if rw < MIN_SIDE or rh < 4:
                continue
            enlarge = max(whole, REGION_HEIGHT / rh)
            side = min(REGION_MAX_SIDE, max(128, round(max(rw, rh) * enlarge)))
            lines += [replace(b, cx=b.cx + x, cy=b.cy + y)
                      for b in find_text(detector, image[y:y + rh, x:x + rw], side)]
        return self._plates_in(image, lines)

    def _read(self, image: Image, detector_side: int) -> list[PlateRead]:
        return self._plates_in(image, find_text(self._models()[0], image, detector_side))

    def _plates_in(self, image: Image, found: list[TextBox]) -> list[PlateRead]:
        _, recogniser, chars = self._models()
        h, w = image.shape[:2]
        lines = [b for b in found if b.height >= MIN_LINE_HEIGHT]
        lines.sort(key=lambda b: -b.height * b.score)
        lines = lines[: self.max_lines]
        readings = read_lines(recogniser, chars, [crop_line(image, b) for b in lines])
        candidates: list[tuple[TextBox, TextBox | None, LineReading]] = [
            (box, None, r) for box, r in zip(lines, readings, strict=True)]
        for i, j in stacked_pairs(lines):
            rows = readings[i].rows + readings[j].rows
            candidates.append((lines[i], lines[j],
                               LineReading(rows, readings[i].text + readings[j].text)))
        plates: dict[str, PlateRead] = {}
        for top, bottom, reading in candidates:
            plate = self._decode(reading, top, bottom, w, h)
            if plate is not None and (plate.text not in plates
                                      or plates[plate.text].confidence < plate.confidence):
                plates[plate.text] = plate
        return _without_overlaps(sorted(plates.values(), key=lambda p: -p.confidence))

    def _expected(self, m: PlateMatch) -> float:
        """How expected the match's format is here: 1 for a main format of a country with
        prior 1, the fourth root of a rarer format's prior below that (a Polish plate in
        Italy: 0.38), GENERIC_FACTOR for a text no format admits."""
        if m.kind == "generic" or m.country is None:
            return GENERIC_FACTOR
        prior = self._priors.get(m.country, 0.0) * _WEIGHTS[m.format_id]
        return float(min(1.0, max(prior, 0.0) ** 0.25))

    def _decode(self, reading: LineReading, top: TextBox, bottom: TextBox | None,
                w: int, h: int) -> PlateRead | None:
        rows = reading.rows
        if not 2 <= len(rows) <= 16:
            return None
        best: tuple[float, PlateMatch] | None = None
        variants: list[tuple[list[dict[str, float]], float]] = [(rows, 0.0)]
        if len(rows) > 4:
            variants += [(rows[1:], DROP_PRICE), (rows[:-1], DROP_PRICE)]
        for variant, price in variants:
            for m in best_text(variant, priors=self._priors, top=1):
                if best is None or m.score - price > best[0]:
                    best = (m.score - price, m)
        if best is None:
            return None
        m = best[1]
        n = len(m.text)
        mean_p = (m.confidence or 0.0) ** (1 / n)
        factor = self._expected(m)
        if not any(ch.isdigit() for ch in m.text):
            factor *= NO_DIGIT_FACTOR  # TABACCHI spells a Polish plate; few plates are words
        score = top.score if bottom is None else min(top.score, bottom.score)
        confidence = score * mean_p * factor
        if n < 4 or confidence < MIN_CONFIDENCE:
            return None
        box = top.bounds(w, h)
        if bottom is not None:
            box = _union(box, bottom.bounds(w, h))
        return PlateRead(m.text, confidence, box, m.country or "", m.kind, m.format_id,
                         m.display)


def home_priors(country: str) -> dict[str, float]:
    """Priors for a reader in `country`: its formats only (and the generic fallback)."""
    code = check_country(country)
    return {c: float(c == code) for c in COUNTRY_PRIORS}


def stacked_pairs(lines: Sequence[TextBox]) -> list[tuple[int, int]]:
    """(upper, lower) lines that look like the two rows of one plate."""
    pairs = []
    for i, a in enumerate(lines):
        for j, b in enumerate(lines):
            if i == j or abs(a.angle - b.angle) > 12 or not 0.5 < a.height / b.height < 2:
                continue
            dy = b.cy - a.cy
            if not 0.5 * a.height < dy < 2.2 * max(a.height, b.height):
                continue
            overlap = min(a.cx + a.width / 2, b.cx + b.width / 2) - max(
                a.cx - a.width / 2, b.cx - b.width / 2)
            if overlap > 0.5 * min(a.width, b.width):
                pairs.append((i, j))
    return pairs


def _union(a: tuple[int, int, int, int], b: tuple[int, int, int, int]
           ) -> tuple[int, int, int, int]:
    x0, y0 = min(a[0], b[0]), min(a[1], b[1])
    x1, y1 = max(a[0] + a[2], b[0] + b[2]), max(a[1] + a[3], b[1] + b[3])
    return x0, y0, x1 - x0, y1 - y0


def _without_overlaps(plates: list[PlateRead]) -> list[PlateRead]:
    """One plate per place: a weaker reading mostly inside a stronger one's box goes."""
    kept: list[PlateRead] = []
    for p in plates:
        if all(max(share_inside(p.box, k.box), share_inside(k.box, p.box)) < 0.6
               for k in kept):
            kept.append(p)
    return kept


def share_inside(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Share of a's area inside b."""
    ix = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    iy = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    area = a[2] * a[3]
    return 0.0 if ix <= 0 or iy <= 0 or area <= 0 else ix * iy / area


def decode_image(data: bytes, field_name: str = "image") -> Image:
    """Bytes of a JPEG, PNG, BMP, WebP or TIFF photo → BGR uint8; InvalidInput if not."""
    if not data:
        raise InvalidInput.on(field_name, "the file is empty")
    if len(data) > MAX_IMAGE_BYTES:
        raise InvalidInput.on(field_name, f"{len(data):,} bytes: at most "
                              f"{MAX_IMAGE_BYTES // (1024 * 1024)} MiB")
    try:
        with PILImage.open(io.BytesIO(data)) as img:
            w, h = img.size
            if w * h > MAX_PIXELS:
                raise InvalidInput.on(field_name, f"{w}x{h} pixels: at most "
                                      f"{MAX_PIXELS // 1_000_000} megapixels")
            if min(w, h) < MIN_SIDE:
                raise InvalidInput.on(field_name, f"{w}x{h} pixels: too small to hold a "
                                      "plate")
            rgb = np.asarray(img.convert("RGB"))
    except UnidentifiedImageError as exc:
        raise InvalidInput.on(field_name, "not an image (JPEG, PNG, BMP, WebP or TIFF)"
                              ) from exc
    except PILImage.DecompressionBombError as exc:
        raise InvalidInput.on(field_name, f"{exc}: at most {MAX_PIXELS // 1_000_000} "
                              "megapixels") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise InvalidInput.on(field_name, f"the image cannot be decoded: {exc}") from exc
    return np.ascontiguousarray(rgb[:, :, ::-1])


