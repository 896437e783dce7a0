"""The ANPR engine on real and generated photos, its grammar-aware decoding, bad images."""

from __future__ import annotations

import csv
import io
import json
import struct
import zlib
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont
from typer.testing import CliRunner

from vigila.cli import app
from vigila.core.errors import InvalidInput
from vigila.vision.anpr import AnprEngine, ModelUnavailable, decode_image, home_priors
from vigila.vision.anpr.localise import PlateLocaliser
from vigila.vision.anpr.models import pp_ocr
from vigila.vision.anpr.recognise import PlateCharacters, read_lines

DATA = Path(__file__).parent / "data"
LABELS = list(csv.DictReader((DATA / "labels.csv").open(encoding="utf-8")))


@pytest.fixture(scope="module")
def italian() -> AnprEngine:
    return AnprEngine()  # Italian-first priors, as in the reference city


def _inside(box: tuple[int, int, int, int], row: dict[str, str]) -> bool:
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    x, y, w, h = (int(row[k]) for k in "xywh")
    return x <= cx <= x + w and y <= cy <= y + h


PHOTOS = sorted({r["image"] for r in LABELS})


@pytest.mark.parametrize("localise", [True, False], ids=["regions", "whole-image"])
@pytest.mark.parametrize("image", PHOTOS)
def test_reads_real_and_generated_photos(image: str, localise: bool) -> None:
    rows = [r for r in LABELS if r["image"] == image]
    country = rows[0]["country"]
    # A reader's home priors; the Italian photos with the default, Italian-first ones.
    engine = AnprEngine(priors=None if country == "IT" else home_priors(country),
                        localise=localise)
    reading = engine.read_bytes((DATA / image).read_bytes())
    best = reading.plates[: len(rows)]  # every labelled plate among the first ones
    assert sorted(p.text for p in best) == sorted(r["plate"] for r in rows)
    for row in rows:
        plate = next(p for p in best if p.text == row["plate"])
        assert plate.country == country and 0.3 < plate.confidence <= 1
        assert _inside(plate.box, row), (plate.box, row)


def test_the_localiser_proposes_a_region_around_each_plate() -> None:
    localiser = PlateLocaliser()
    for image in PHOTOS:
        rows = [r for r in LABELS if r["image"] == image]
        photo = decode_image((DATA / image).read_bytes())
        proposals = localiser.propose(photo)
        assert len(proposals) <= len(rows) + 2, (image, proposals)
        for row in rows:
            assert any(_inside_region(p.box, row) for p in proposals), (image, row, proposals)
    blank = np.full((720, 1280, 3), 128, np.uint8)
    assert localiser.propose(blank) == []


def test_the_localiser_model_missing_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="plate_localiser"):
        PlateLocaliser(path=tmp_path / "plate_localiser.onnx").propose(
            np.zeros((64, 64, 3), np.uint8))


def _inside_region(region: tuple[int, int, int, int], row: dict[str, str]) -> bool:
    """The labelled plate's centre is inside the region."""
    x, y, w, h = (int(row[k]) for k in "xywh")
    cx, cy = x + w / 2, y + h / 2
    return region[0] <= cx <= region[0] + region[2] and region[1] <= cy <= region[1] + region[3]


def _plate_photo(text: str, width: int = 640, height: int = 360) -> tuple[np.ndarray, tuple]:
    """A plain white plate with black characters on a grey scene: exactly what is drawn."""
    font = ImageFont.truetype(
        str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans-Bold.ttf"), 40)
    img = Image.new("RGB", (width, height), (90, 96, 100))
    draw = ImageDraw.Draw(img)
    box = (180, 150, 460, 210)
    draw.rectangle(box, fill=(245, 245, 240), outline=(20, 20, 20), width=2)
    draw.text((320, 180), text, font=font, fill=(15, 15, 15), anchor="mm")
    return np.asarray(img)[:, :, ::-1].copy(), box


@pytest.mark.parametrize(("drawn", "first_choice", "plate"), [
    ("AB 1S3 CD", "AB1S3CD", "AB153CD"),  # a letter S where only digits go: 5
    ("AB I23 CD", "ABI23CD", "AB123CD"),  # a letter I: 1
    ("AB 1Z3 CD", "AB1Z3CD", "AB123CD"),  # a letter Z: 2
])
def test_grammar_fixes_a_look_alike_the_recogniser_got_wrong(
        italian: AnprEngine, drawn: str, first_choice: str, plate: str) -> None:
    # The plate is drawn with a LETTER where an Italian car plate can only hold a digit;
    # the recogniser's own first choice keeps the letter, the grammar's reading does not.
    from vigila.vision.anpr.detect import find_text
    from vigila.vision.anpr.recognise import crop_line

    image, _ = _plate_photo(drawn)
    detector, recogniser = pp_ocr(italian.threads)
    lines = [b for b in find_text(detector, image, 960) if b.height > 20]
    raw = read_lines(recogniser, PlateCharacters(recogniser.charset),
                     [crop_line(image, b) for b in lines])
    assert [r.text for r in raw] == [first_choice]
    # The same lines as above (the whole image at 960 px): from the localiser's region the
    # detector draws the line a pixel or two apart, and a drawn Z then reads as 'AB1Z3C'
    # plus a dropped end (a US serial) by a hair.
    best = AnprEngine(localise=False).read(image).plates[0]
    assert (best.text, best.format_id) == (plate, "it_car")


def test_a_plain_plate_and_its_box(italian: AnprEngine) -> None:
    image, (x0, y0, x1, y1) = _plate_photo("GM 456 ZZ")
    reading = italian.read(image)
    best = reading.plates[0]
    assert best.text == "GM456ZZ" and best.kind == "car" and best.country == "IT"
    x, y, w, h = best.box
    assert x0 - 10 <= x and x + w <= x1 + 10 and y0 - 10 <= y and y + h <= y1 + 10
    assert reading.width == 640 and reading.height == 360 and reading.ms > 0


def test_no_plate_is_an_empty_list(italian: AnprEngine) -> None:
    image = np.full((360, 640, 3), 128, np.uint8)
    assert italian.read(image).plates == []


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims a size and holds almost nothing: decoding it would be the bomb."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def _jpeg(size: tuple[int, int] = (320, 240)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, "JPEG")
    return out.getvalue()


@pytest.mark.parametrize(("data", "message"), [
    (b"", "empty"),
    (b"GIF89a not really", "not an image"),
    (b"\xff\xd8\xff\xe0" + b"\0" * 100, "not an image"),
    (_jpeg()[:400], "cannot be decoded"),
    (_png_header_only(20_000, 20_000), "at most 40 megapixels"),
    (_jpeg((8, 8)), "too small"),
    (b"\xff" * (26 * 1024 * 1024), "at most 25 MiB"),
], ids=["empty", "not-image", "jpeg-magic-only", "truncated", "bomb", "tiny", "huge"])
def test_bad_images_are_refused_clearly(data: bytes, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_image(data)
    assert message in caught.value.detail
    assert caught.value.errors[0].field == "image"


def test_bad_settings_are_refused() -> None:
    with pytest.raises(InvalidInput):
        AnprEngine(detector_side=10)
    with pytest.raises(InvalidInput):
        AnprEngine(priors={"IT": -1.0})
    with pytest.raises(InvalidInput):
        home_priors("XX")


def test_cli_prints_one_json_line_per_image(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    photo = DATA / "br-JIT7463.jpg"
    result = CliRunner().invoke(app, ["anpr", "read", "--country", "BR", str(photo), str(bad)])
    assert result.exit_code == 1
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert lines[0]["image"] == str(photo) and lines[0]["plates"][0]["text"] == "JIT7463"
    assert set(lines[0]["plates"][0]) >= {"text", "confidence", "box", "country", "kind"}
    assert lines[0]["ms"] > 0
    assert lines[1] == {"image": str(bad), "error": "image: not an image (JPEG, PNG, BMP, "
                                                    "WebP or TIFF)"}
