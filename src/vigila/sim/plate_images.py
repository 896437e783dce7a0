"""Synthetic Italian plates: plate images, labelled street scenes and a traffic clip.

They feed the ANPR engine's tests and benchmark, so they aim at the variety a city
camera sees rather than at clean crops:

- `random_italian_plate`: a car plate (AB123CD) or, one time in ten, a motorcycle's
  (AB12345), as `vigila.plates` normalises them.
- `render_plate`: the plate itself, EU format (blue bands, white field, tall condensed
  black characters), drawn with one of matplotlib's fonts with a varied weight, spacing,
  tint and wear; motorcycle plates on two lines.
- `street_scene`: one to three vehicles on a cluttered street (buildings, shop signs and
  street names, so that a reader must find plates rather than read any text), each plate
  under its own perspective, then light, blur, noise, glare, haze and JPEG loss. The label
  is the axis-aligned box around the warped plate.
- `write_set`: N scenes as JPEG files and a ``labels.csv`` like the plate corpus's.
- `traffic_clip`: cars driving towards the camera one after another, encoded like the
  simulated cameras' clips (``clip.py``) so that ``CameraSimulator(main_clip=...)`` can
  serve it; `traffic_schedule` says when each plate can be read.

Everything is drawn with Pillow and numpy from a `numpy.random.Generator`: the same seed
gives the same images, byte for byte, with the pinned packages. Fonts are the TTF files
matplotlib ships (only its data path is used), so no system font is needed.

Dati illustrativi: targhe generate a caso, nessuna corrisponde a veicoli reali.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import re
import string
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import NamedTuple, TypeVar

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from vigila.plates.formats import IT_CAR_FIRST, IT_LETTERS, PROVINCES
from vigila.sim.clip import ClipError, ClipSpec, find_ffmpeg, publish

__all__ = [
    "LABEL_COLUMNS",
    "PlateLabel",
    "PlatePass",
    "is_motorcycle",
    "random_italian_plate",
    "render_plate",
    "street_scene",
    "traffic_clip",
    "traffic_schedule",
    "write_set",
]

Array = NDArray[np.float32]
RGB = tuple[int, int, int]
T = TypeVar("T")

# --- plate texts ----------------------------------------------------------------------

_LETTERS = "".join(sorted(IT_LETTERS))
_CAR_FIRST = "".join(sorted(IT_CAR_FIRST))
MOTORCYCLE_SHARE = 0.1


def _pick(rng: np.random.Generator, alphabet: str, n: int) -> str:
    return "".join(alphabet[i] for i in rng.integers(0, len(alphabet), n))


def random_italian_plate(rng: np.random.Generator) -> str:
    """A normalised Italian plate: AB123CD (a car) or, about one in ten, AB12345."""
    if rng.random() < MOTORCYCLE_SHARE:
        return _pick(rng, _LETTERS, 2) + _pick(rng, string.digits, 5)
    # Every letter the series allows, not only today's (F, G): the reader must know them all.
    return (_pick(rng, _CAR_FIRST, 1) + _pick(rng, _LETTERS, 1)
            + _pick(rng, string.digits, 3) + _pick(rng, _LETTERS, 2))


def is_motorcycle(text: str) -> bool:
    """AB12345: two letters and five digits, the two-line motorcycle plate."""
    return len(text) == 7 and text[:2].isalpha() and text[2:].isdigit()


# --- fonts ----------------------------------------------------------------------------

# (file, already heavy): plate-like sans faces most often, a serif now and then.
_FACES = (
    ("DejaVuSans-Bold.ttf", True),
    ("DejaVuSansMono-Bold.ttf", True),
    ("DejaVuSans.ttf", False),
    ("DejaVuSansMono.ttf", False),
    ("DejaVuSerif-Bold.ttf", True),
    ("STIXGeneralBol.ttf", True),
)
_FACE_WEIGHTS = (0.3, 0.25, 0.15, 0.15, 0.08, 0.07)
_SIGN_FACES = ("DejaVuSans-Bold.ttf", "DejaVuSans.ttf", "DejaVuSerif-Bold.ttf",
               "DejaVuSansMono-Bold.ttf", "DejaVuSerif.ttf")
_GLYPH_EM = 160  # font size the glyph masks are drawn at, before they are resized


@cache
def font_dir() -> Path:
    """matplotlib's bundled TTF fonts (DejaVu, STIX): present wherever the venv is."""
    import matplotlib  # only for its data path: pyplot and its back-ends are never loaded

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


@cache
def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    path = font_dir() / name
    if not path.is_file():
        raise FileNotFoundError(f"matplotlib's font {path} is missing: reinstall matplotlib")
    return ImageFont.truetype(str(path), size)


@cache
def _glyph(face: str, char: str, stroke: int) -> Image.Image:
    """The character's ink as an L mask, cropped to the ink (cached: callers resize it)."""
    font = _font(face, _GLYPH_EM)
    left, top, right, bottom = (round(v) for v in font.getbbox(char, stroke_width=stroke))
    canvas = Image.new("L", (right - left + 8, bottom - top + 8), 0)
    ImageDraw.Draw(canvas).text((4 - left, 4 - top), char, fill=255, font=font,
                                stroke_width=stroke, stroke_fill=255)
    box = canvas.getbbox()
    return canvas.crop(box) if box else canvas


# --- small helpers --------------------------------------------------------------------

def _u(rng: np.random.Generator, low: float, high: float) -> float:
    return float(rng.uniform(low, high))


def _chance(rng: np.random.Generator, p: float) -> bool:
    return bool(rng.random() < p)


def _choice(rng: np.random.Generator, items: Sequence[T],
               weights: Sequence[float] | None = None) -> T:
    if weights is None:
        return items[int(rng.integers(0, len(items)))]
    p = np.asarray(weights, dtype=np.float64)
    return items[int(rng.choice(len(items), p=p / p.sum()))]


def _byte(value: float) -> int:
    return max(0, min(255, int(value)))  # not np.clip: far slower on scalars


def _jitter(rng: np.random.Generator, colour: RGB, amount: float) -> RGB:
    r, g, b = (_byte(c + rng.normal(0, amount)) for c in colour)
    return r, g, b


def _shade(colour: RGB, factor: float) -> RGB:
    r, g, b = (_byte(c * factor) for c in colour)
    return r, g, b


def _to_array(img: Image.Image) -> Array:
    return np.asarray(img, dtype=np.float32)


def _to_image(arr: Array) -> Image.Image:
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8))


def _smooth_noise(rng: np.random.Generator, size: tuple[int, int],
                  cells: tuple[int, int]) -> Array:
    """Low-frequency noise in 0..1 (a coarse random grid upscaled smoothly), shape (h, w)."""
    grid = (rng.random((cells[1], cells[0])) * 255).astype(np.uint8)
    up = Image.fromarray(grid).resize(size, Image.Resampling.BICUBIC)
    return _to_array(up) / 255.0


# --- the plate ------------------------------------------------------------------------

_MM = 2.0  # pixels per millimetre of the rendered plate (a car plate is 1040 x 220)
CAR_PLATE_MM = (520, 110)  # EU-format Italian car plate since 1999
MOTORCYCLE_PLATE_MM = (180, 160)  # square-ish, two lines
_EU_BLUE: RGB = (0, 51, 153)
_EU_YELLOW: RGB = (255, 204, 0)
_HOLDER: RGB = (38, 38, 40)  # what shows at the plate's rounded corners in render_plate


@dataclass(frozen=True)
class _PlateStyle:
    """The choices one plate is drawn with."""

    face: str
    stroke: int  # added stroke at the glyph em size: heavier characters
    condense: float  # horizontal squeeze of the glyphs
    ink: RGB
    tint: RGB
    blue: RGB
    bands: bool  # False: a 1994-1999 plate, white all across
    emboss: bool  # a faint shadow beside the raised characters
    second_gap: bool  # "AB 123 CD" rather than "AB 123CD"

    @classmethod
    def draw(cls, rng: np.random.Generator, motorcycle: bool) -> _PlateStyle:
        faces = [f for f, _ in _FACES]
        face = _choice(rng, faces, _FACE_WEIGHTS)
        heavy = dict(_FACES)[face]
        stroke = int(rng.integers(0, 3 if heavy else 6))
        base = _choice(rng, [(250, 250, 247), (244, 242, 230), (236, 230, 205),
                             (222, 224, 222), (238, 240, 244)], [0.4, 0.25, 0.12, 0.13, 0.1])
        return cls(
            face=face, stroke=stroke, condense=_u(rng, 0.64, 0.82),
            ink=_jitter(rng, (22, 22, 26), 6), tint=_jitter(rng, base, 3),
            blue=_jitter(rng, _EU_BLUE, 8),
            bands=not _chance(rng, 0.03 if motorcycle else 0.07),
            emboss=_chance(rng, 0.6), second_gap=_chance(rng, 0.5),
        )


def _face_for(face: str, char: str) -> str:
    """The face to draw `char` in: DejaVu Sans Mono's zero is dotted, a plate's is not."""
    return face.replace("Mono", "") if char == "0" else face


def _mm(value: float) -> int:
    return round(value * _MM)


def _eu_band(draw: ImageDraw.ImageDraw, cx: float, star_y: float, star_r: float,
             letter_y: float, letter_h: float) -> None:
    """The twelve yellow stars (dots at this size) and the white I, centred on `cx` (mm)."""
    dot = max(1.0, star_r * 0.16)
    for k in range(12):
        angle = 2 * math.pi * k / 12
        x, y = cx + star_r * math.cos(angle), star_y + star_r * math.sin(angle)
        draw.ellipse((_mm(x - dot), _mm(y - dot), _mm(x + dot), _mm(y + dot)), fill=_EU_YELLOW)
    font = _font("DejaVuSans-Bold.ttf", _mm(letter_h * 1.35))
    draw.text((_mm(cx), _mm(letter_y)), "I", fill=(245, 245, 245), font=font, anchor="mm")


def _draw_text_line(img: Image.Image, rng: np.random.Generator, style: _PlateStyle,
                    groups: Sequence[str], gaps: Sequence[float], x0: float, x1: float,
                    cy: float, height: float, cell_ratio: float) -> None:
    """Characters in cells of equal pitch, groups apart by `gaps` (in char heights), all
    centred between x0 and x1 (mm); the glyphs are squeezed to look like the plate font."""
    cell = cell_ratio * height
    space = _u(rng, 0.07, 0.12) * height
    count = sum(len(g) for g in groups)
    total = count * cell + (count - len(groups)) * space + sum(g * height for g in gaps)
    if total > x1 - x0:  # too wide for this face: shrink the whole line
        shrink = (x1 - x0) / total
        cell, space, height, total = cell * shrink, space * shrink, height * shrink, x1 - x0
    x = (x0 + x1 - total) / 2
    for gi, group in enumerate(groups):
        for ci, char in enumerate(group):
            glyph = _glyph(_face_for(style.face, char), char, style.stroke)
            h = height * (1 + rng.normal(0, 0.012))
            w = min(cell, glyph.width / glyph.height * h * style.condense)
            gx = x + (cell - w) / 2 + rng.normal(0, 0.02) * height
            gy = cy - h / 2 + rng.normal(0, 0.012) * height
            mask = glyph.resize((max(1, _mm(w)), max(1, _mm(h))), Image.Resampling.LANCZOS)
            at = (_mm(gx), _mm(gy))
            if style.emboss:  # the stamped character's edge catches a little shadow
                shadow = mask.point(lambda v: v * 0.3)
                img.paste((*_shade(style.tint, 0.55), 255), (at[0] + 2, at[1] + 2), shadow)
            img.paste((*style.ink, 255), at, mask)
            x += cell + (space if ci < len(group) - 1 else 0)
        if gi < len(groups) - 1:
            x += gaps[gi] * height


def _car_plate(text: str, rng: np.random.Generator, style: _PlateStyle) -> Image.Image:
    w_mm, h_mm = CAR_PLATE_MM
    img = Image.new("RGBA", (_mm(w_mm), _mm(h_mm)), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    radius = _mm(5)
    right = img.width - 1
    bottom = img.height - 1
    draw.rounded_rectangle((0, 0, right, bottom), radius, fill=style.tint)
    band = _u(rng, 40, 46)
    x0, x1 = 8.0, w_mm - 8.0
    if style.bands:
        draw.rounded_rectangle((0, 0, _mm(band), bottom), radius, fill=style.blue,
                               corners=(True, False, False, True))
        draw.rounded_rectangle((right - _mm(band), 0, right, bottom), radius, fill=style.blue,
                               corners=(False, True, True, False))
        _eu_band(draw, band / 2 + 0.5, 36, 11, 80, 24)
        if _chance(rng, 0.55):  # the optional year and province in the right band
            colour = _choice(rng, [(245, 245, 245), _EU_YELLOW])
            small = _font("DejaVuSans-Bold.ttf", _mm(22))
            cx = _mm(w_mm - band / 2)
            draw.text((cx, _mm(28)), f"{int(rng.integers(0, 26)):02d}", fill=colour,
                      font=small, anchor="mm")
            draw.text((cx, _mm(80)), _choice(rng, sorted(PROVINCES)), fill=colour,
                      font=small, anchor="mm")
        x0, x1 = band + 6, w_mm - band - 6
    edge = _mm(1.5)
    draw.rounded_rectangle((edge, edge, right - edge, bottom - edge), radius - edge,
                           outline=_shade(style.ink, 1.4), width=max(1, _mm(0.9)))
    height = _u(rng, 0.6, 0.69) * h_mm
    # Letters and digits apart, as "AB 123CD" or "AB 123 CD" (other texts alike).
    groups = re.findall(r"[A-Z]+|[0-9]+", text)
    second = _u(rng, 0.22, 0.4) if style.second_gap else 0.0
    gaps = ([_u(rng, 0.32, 0.55)] + [second] * (len(groups) - 2))[:len(groups) - 1]
    _draw_text_line(img, rng, style, groups, gaps, x0, x1,
                    h_mm / 2 + rng.normal(0, 1.0), height, _u(rng, 0.5, 0.58))
    return img


def _motorcycle_plate(text: str, rng: np.random.Generator, style: _PlateStyle) -> Image.Image:
    w_mm, h_mm = MOTORCYCLE_PLATE_MM
    img = Image.new("RGBA", (_mm(w_mm), _mm(h_mm)), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    radius = _mm(6)
    draw.rounded_rectangle((0, 0, img.width - 1, img.height - 1), radius, fill=style.tint)
    top_h = 0.44 * h_mm
    x0 = 8.0
    if style.bands:
        band = _u(rng, 28, 32)
        draw.rounded_rectangle((0, 0, _mm(band), _mm(top_h)), radius, fill=style.blue,
                               corners=(True, False, False, False))
        _eu_band(draw, band / 2 + 0.5, top_h * 0.36, 8, top_h * 0.78, 15)
        x0 = band + 4
    edge = _mm(1.5)
    draw.rounded_rectangle((edge, edge, img.width - 1 - edge, img.height - 1 - edge),
                           radius - edge, outline=_shade(style.ink, 1.4), width=max(1, _mm(0.9)))
    _draw_text_line(img, rng, style, (text[:2],), (), x0, w_mm - 8, top_h / 2 + 1,
                    _u(rng, 0.68, 0.76) * top_h, _u(rng, 0.55, 0.62))
    low_h = h_mm - top_h
    _draw_text_line(img, rng, style, (text[2:],), (), 6, w_mm - 6, top_h + low_h / 2 - 2,
                    _u(rng, 0.72, 0.8) * low_h, _u(rng, 0.5, 0.56))
    return img


def _wear(img: Image.Image, rng: np.random.Generator, tint: RGB) -> Image.Image:
    """Grime, faded patches, dirt spots and scratches; a fifth of the plates heavily."""
    level = int(rng.choice(3, p=[0.35, 0.45, 0.2]))  # none, light, heavy
    alpha = img.getchannel("A")
    rgb = _to_array(img.convert("RGB"))
    h, w = rgb.shape[:2]
    if level == 0:
        rgb *= 1 - 0.04 * _smooth_noise(rng, (w, h), (8, 3))[..., None]
        return _with_alpha(rgb, alpha)
    heavy = level == 2
    # Uneven dirt and ageing over the whole plate.
    grime = _smooth_noise(rng, (w, h), (int(rng.integers(8, 20)), int(rng.integers(3, 7))))
    rgb *= 1 - (0.18 if heavy else 0.08) * grime[..., None]
    # A faded patch: the characters there lose part of their contrast.
    if _chance(rng, 0.6 if heavy else 0.3):
        fade = Image.new("L", (w, h), 0)
        cx, cy = _u(rng, 0.1, 0.9) * w, _u(rng, 0.2, 0.8) * h
        rx, ry = _u(rng, 0.1, 0.3) * w, _u(rng, 0.3, 0.7) * h
        ImageDraw.Draw(fade).ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=255)
        fade = fade.filter(ImageFilter.GaussianBlur(0.15 * min(rx, ry) + 2))
        f = _to_array(fade)[..., None] / 255.0 * _u(rng, 0.2, 0.4 if heavy else 0.3)
        rgb = rgb * (1 - f) + np.asarray(tint, np.float32) * f
    # Dirt spots: soft brown-grey blobs.
    spots = int(rng.integers(4, 18) if heavy else rng.integers(0, 7))
    if spots:
        dirt = Image.new("L", (w, h), 0)
        d = ImageDraw.Draw(dirt)
        for _ in range(spots):
            cx, cy = _u(rng, 0, w), _u(rng, 0, h)
            r = _u(rng, 0.01, 0.05) * w
            d.ellipse((cx - r, cy - r * _u(rng, 0.4, 1.2), cx + r, cy + r), fill=int(
                rng.integers(60, 200)))
        dirt = dirt.filter(ImageFilter.GaussianBlur(_u(rng, 2, 6)))
        a = _to_array(dirt)[..., None] / 255.0 * (0.55 if heavy else 0.35)
        brown = np.asarray(_jitter(rng, (105, 90, 70), 15), np.float32)
        rgb = rgb * (1 - a) + brown * a
    # Scratches: thin light or dark strokes.
    scratches = int(rng.integers(2, 10) if heavy else rng.integers(0, 4))
    if scratches:
        out = _to_image(rgb)
        d = ImageDraw.Draw(out)
        for _ in range(scratches):
            x, y = _u(rng, 0, w), _u(rng, 0, h)
            angle, length = _u(rng, -0.6, 0.6), _u(rng, 0.05, 0.35) * w
            colour = _choice(rng, [(200, 200, 196), (120, 118, 112), (235, 235, 232)])
            d.line((x, y, x + length * math.cos(angle), y + length * math.sin(angle)),
                   fill=colour, width=int(rng.integers(1, 3)))
        rgb = _to_array(out)
    return _with_alpha(rgb, alpha)


def _with_alpha(rgb: Array, alpha: Image.Image) -> Image.Image:
    out = _to_image(rgb).convert("RGBA")
    out.putalpha(alpha)
    return out


def _plate_rgba(text: str, rng: np.random.Generator) -> Image.Image:
    """The plate with transparent rounded corners (for compositing on a vehicle)."""
    if not re.fullmatch(r"[A-Z0-9]{2,10}", text):
        raise ValueError(f"not a normalised plate text (A-Z, 0-9): {text!r}")
    motorcycle = is_motorcycle(text)
    style = _PlateStyle.draw(rng, motorcycle)
    img = (_motorcycle_plate if motorcycle else _car_plate)(text, rng, style)
    return _wear(img, rng, style.tint)


def render_plate(text: str, rng: np.random.Generator) -> Image.Image:
    """An Italian EU-format plate for normalised `text` (RGB, 2 px per mm: 1040 x 220 for
    a car, 360 x 320 for a motorcycle's two-line plate). Meant for AB123CD and AB12345;
    any other text of A-Z and 0-9 is drawn on a car plate alike."""
    plate = _plate_rgba(text, rng)
    out = Image.new("RGB", plate.size, _HOLDER)
    out.paste(plate, (0, 0), plate)
    return out


# --- vehicles -------------------------------------------------------------------------

_CAR_COLOURS: tuple[RGB, ...] = (
    (236, 236, 234), (186, 188, 190), (118, 120, 124), (28, 28, 31), (30, 44, 88),
    (160, 24, 28), (46, 86, 160), (40, 78, 52), (200, 186, 150), (214, 170, 40),
    (92, 60, 42), (210, 96, 30), (150, 160, 170),
)
_CAR_COLOUR_WEIGHTS = (0.2, 0.16, 0.14, 0.14, 0.06, 0.07, 0.06, 0.03, 0.03, 0.02, 0.03,
                       0.02, 0.04)
_BADGES = ("TURBO", "HYBRID", "4x4", "GT", "1.6 16V", "DIESEL", "SPORT", "ELECTRIC", "TDI")
_DEALERS = ("AUTO ROSSI", "CONCESSIONARIA BIANCHI", "AUTOSALONE 2000", "MOTORI SPA",
            "AUTO ESPOSITO", "GARAGE ITALIA")


@dataclass(frozen=True)
class _Sprite:
    """A vehicle drawn facing the camera, with its plate."""

    image: Image.Image  # RGBA
    marks: Image.Image  # RGB: red = the plate, green = lights (they stay bright at night)
    corners: NDArray[np.float64]  # the plate's corners (4 x 2) in sprite pixels


def _vehicle_sprite(text: str, rng: np.random.Generator, plate_width: float,
                    front: bool | None = None) -> _Sprite:
    """A car (or a motorcycle for a motorcycle plate) whose plate is `plate_width` px wide,
    seen from the front or the back (`front` None: either, the back more often)."""
    plate = _plate_rgba(text, rng)
    scale = plate_width / plate.width
    plate = plate.resize((max(8, round(plate_width)), max(4, round(plate.height * scale))),
                         Image.Resampling.LANCZOS)
    if is_motorcycle(text):  # motorcycles carry a plate at the back only
        return _motorcycle_sprite(plate, rng)
    return _car_sprite(plate, rng, _chance(rng, 0.35) if front is None else front)


def _place_plate(img: Image.Image, marks: Image.Image, plate: Image.Image,
                 x: float, y: float) -> NDArray[np.float64]:
    at = (round(x), round(y))
    img.alpha_composite(plate, at)
    marks.paste((255, 0, 0), at, plate.getchannel("A"))
    w, h = plate.size
    return np.array([[at[0], at[1]], [at[0] + w, at[1]], [at[0] + w, at[1] + h],
                     [at[0], at[1] + h]], dtype=np.float64)


def _car_sprite(plate: Image.Image, rng: np.random.Generator, front: bool) -> _Sprite:
    pw, ph = plate.size
    cw = pw * _u(rng, 3.0, 3.5)
    ch = cw * _u(rng, 0.66, 0.82)
    m = 0.04 * cw
    size = (math.ceil(cw + 2 * m), math.ceil(ch + 2 * m))
    img = Image.new("RGBA", size, (0, 0, 0, 0))
    marks = Image.new("RGB", size, (0, 0, 0))
    d, dm = ImageDraw.Draw(img), ImageDraw.Draw(marks)
    left, top, right, bottom = m, m, m + cw, m + ch
    colour = _jitter(rng, _choice(rng, _CAR_COLOURS, _CAR_COLOUR_WEIGHTS), 6)
    # Shadow on the road, then wheels, cabin, body, lights, bumper, plate.
    d.ellipse((left - 0.03 * cw, bottom - 0.06 * ch, right + 0.03 * cw, bottom + 0.035 * ch),
              fill=(0, 0, 0, 120))
    ww, wh = 0.15 * cw, 0.15 * ch
    for wx in (left + 0.05 * cw, right - 0.05 * cw - ww):
        d.rounded_rectangle((wx, bottom - wh, wx + ww, bottom), 0.03 * cw, fill=(18, 18, 20))
    cabin_bottom = top + _u(rng, 0.36, 0.46) * ch
    in_top, in_bottom = _u(rng, 0.16, 0.26) * cw, _u(rng, 0.04, 0.09) * cw
    d.polygon([(left + in_bottom, cabin_bottom), (left + in_top, top), (right - in_top, top),
               (right - in_bottom, cabin_bottom)], fill=_shade(colour, 0.9))
    g = 0.035 * cw
    glass = _jitter(rng, (40, 48, 58), 8)
    window = [(left + in_bottom + 1.5 * g, cabin_bottom - 0.5 * g), (left + in_top + g, top + g),
              (right - in_top - g, top + g), (right - in_bottom - 1.5 * g, cabin_bottom - 0.5 * g)]
    d.polygon(window, fill=glass)
    if front:  # the driver behind the windscreen (left-hand drive: on the image's right)
        hx, hy = left + _u(rng, 0.62, 0.72) * cw, top + 0.45 * (cabin_bottom - top)
        hr = 0.045 * cw
        d.ellipse((hx - hr, hy - hr, hx + hr, hy + hr), fill=_shade(glass, 0.6))
        d.rounded_rectangle((hx - 2.2 * hr, hy + hr, hx + 2.2 * hr, cabin_bottom - g),
                            hr, fill=_shade(glass, 0.6))
    if _chance(rng, 0.7):  # the sky reflected in the glass
        sx = _u(rng, 0.2, 0.6)
        d.polygon([(left + (sx + 0.05) * cw, top + g), (left + (sx + 0.2) * cw, top + g),
                   (left + (sx + 0.1) * cw, cabin_bottom - g),
                   (left + (sx - 0.05) * cw, cabin_bottom - g)],
                  fill=_shade(glass, _u(rng, 1.4, 2.2)))
    body_top = cabin_bottom - 0.02 * ch
    body_bottom = bottom - 0.08 * ch
    d.rounded_rectangle((left, body_top, right, body_bottom), 0.06 * cw, fill=colour)
    if front:
        light_colour = _choice(rng, [(236, 234, 222), (240, 236, 200), (215, 225, 235)])
    else:
        light_colour = _choice(rng, [(200, 24, 30), (220, 40, 30), (230, 140, 30)],
                               [0.6, 0.3, 0.1])
    lh, lw = _u(rng, 0.07, 0.13) * ch, _u(rng, 0.12, 0.2) * cw
    ly = body_top + _u(rng, 0.03, 0.07) * ch
    for lx in (left + 0.025 * cw, right - 0.025 * cw - lw):
        box = (lx, ly, lx + lw, ly + lh)
        d.rounded_rectangle(box, 0.02 * cw, fill=light_colour, outline=_shade(colour, 0.55),
                            width=max(1, round(0.004 * cw)))
        dm.rounded_rectangle(box, 0.02 * cw, fill=(0, 255, 0))
    if front:  # the grille between the headlights
        grille = (left + 0.3 * cw, ly + 0.1 * lh, right - 0.3 * cw, ly + lh * _u(rng, 1.0, 1.6))
        d.rounded_rectangle(grille, 0.02 * cw, fill=_jitter(rng, (30, 30, 32), 6))
        for k in range(1, 4):
            gy = grille[1] + (grille[3] - grille[1]) * k / 4
            d.line((grille[0] + 4, gy, grille[2] - 4, gy), fill=(80, 80, 84),
                   width=max(1, round(0.004 * cw)))
    bumper_top = bottom - _u(rng, 0.22, 0.3) * ch
    bumper = _choice(rng, [_shade(colour, 0.85), (40, 40, 42), colour], [0.4, 0.35, 0.25])
    d.rounded_rectangle((left - 0.005 * cw, bumper_top, right + 0.005 * cw, body_bottom),
                        0.03 * cw, fill=bumper)
    if _chance(rng, 0.6):  # plate on the bumper, else on the boot lid above it
        py = bumper_top + (body_bottom - bumper_top - ph) * _u(rng, 0.35, 0.6)
    else:
        py = max(ly + lh + 0.02 * ch, bumper_top - ph - _u(rng, 0.02, 0.06) * ch)
    px = (left + right - pw) / 2 + rng.normal(0, 0.01) * cw
    d.rounded_rectangle((px - 0.035 * pw, py - 0.1 * ph, px + 1.035 * pw, py + 1.1 * ph),
                        0.05 * pw, fill=_shade(bumper, 0.5))
    if _chance(rng, 0.35):  # a model badge near the plate: text that is not a plate
        font = _font(_choice(rng, _SIGN_FACES), max(6, round(0.35 * ph)))
        d.text((right - 0.12 * cw, py - 0.25 * ph), _choice(rng, _BADGES),
               fill=_shade(colour, 1.6) if sum(colour) < 300 else (70, 70, 74),
               font=font, anchor="rb")
    corners = _place_plate(img, marks, plate, px, py)
    if _chance(rng, 0.25):  # the dealer's name on the plate holder
        font = _font("DejaVuSans-Bold.ttf", max(5, round(0.09 * ph)))
        d.text((px + pw / 2, py + 1.08 * ph), _choice(rng, _DEALERS), fill=(210, 210, 210),
               font=font, anchor="mb")
    return _Sprite(img, marks, corners)


def _motorcycle_sprite(plate: Image.Image, rng: np.random.Generator) -> _Sprite:
    pw, ph = plate.size
    size = (math.ceil(2.4 * pw), math.ceil(2.2 * pw + ph + 1.5 * pw))
    img = Image.new("RGBA", size, (0, 0, 0, 0))
    marks = Image.new("RGB", size, (0, 0, 0))
    d, dm = ImageDraw.Draw(img), ImageDraw.Draw(marks)
    cx, py = size[0] / 2, 2.2 * pw
    colour = _jitter(rng, _choice(rng, _CAR_COLOURS, _CAR_COLOUR_WEIGHTS), 6)
    jacket = _jitter(rng, _choice(rng, [(30, 30, 34), (60, 40, 30), (40, 50, 80),
                                        (120, 20, 20)]), 8)
    d.ellipse((cx - 0.7 * pw, size[1] - 0.25 * pw, cx + 0.7 * pw, size[1] - 1),
              fill=(0, 0, 0, 110))
    d.rounded_rectangle((cx - 0.2 * pw, py + ph - 0.2 * pw, cx + 0.2 * pw, size[1] - 0.1 * pw),
                        0.15 * pw, fill=(16, 16, 18))
    d.ellipse((cx - 0.42 * pw, 0.05 * pw, cx + 0.42 * pw, 0.85 * pw),
              fill=_jitter(rng, _choice(rng, [(20, 20, 22), (230, 230, 230), (170, 20, 20)]), 8))
    d.rounded_rectangle((cx - 0.85 * pw, 0.75 * pw, cx + 0.85 * pw, py - 0.3 * pw), 0.3 * pw,
                        fill=jacket)
    d.rounded_rectangle((cx - 0.75 * pw, py - 0.65 * pw, cx + 0.75 * pw, py - 0.3 * pw),
                        0.1 * pw, fill=(24, 24, 26))
    d.polygon([(cx - 0.6 * pw, py - 0.4 * pw), (cx + 0.6 * pw, py - 0.4 * pw),
               (cx + 0.45 * pw, py + 0.15 * pw), (cx - 0.45 * pw, py + 0.15 * pw)], fill=colour)
    light = (cx - 0.25 * pw, py - 0.35 * pw, cx + 0.25 * pw, py - 0.14 * pw)
    d.rounded_rectangle(light, 0.05 * pw, fill=(205, 28, 30))
    dm.rounded_rectangle(light, 0.05 * pw, fill=(0, 255, 0))
    corners = _place_plate(img, marks, plate, cx - pw / 2, py)
    return _Sprite(img, marks, corners)


# --- perspective ----------------------------------------------------------------------

@dataclass(frozen=True)
class _Pose:
    """How a plate faces the camera: angles in radians, distance in plate widths."""

    yaw: float
    pitch: float
    roll: float
    distance: float

    @classmethod
    def draw(cls, rng: np.random.Generator, spread: float = 1.0) -> _Pose:
        rad = math.radians
        # Most plates fairly square to the camera, a tail up to the limits (cameras on
        # poles look down: pitch leans positive).
        return cls(
            yaw=rad(float(np.clip(rng.normal(0, 11 * spread), -28, 28))),
            pitch=rad(float(np.clip(rng.normal(8, 9 * spread), -15, 28))),
            roll=rad(float(np.clip(rng.normal(0, 3 * spread), -8, 8))),
            distance=_u(rng, 3.5, 9.0),
        )

    def homography(self, centre: tuple[float, float], plate_width: float) -> NDArray[np.float64]:
        """Sprite pixels -> image pixels around the origin, the plate's centre scaled 1:1."""
        cy, sy = math.cos(self.yaw), math.sin(self.yaw)
        cp, sp = math.cos(self.pitch), math.sin(self.pitch)
        cr, sr = math.cos(self.roll), math.sin(self.roll)
        ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
        rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
        rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
        r = rz @ rx @ ry
        depth = self.distance * plate_width
        # The plane z = 0 of the plate, `depth` in front of a camera of focal length `depth`.
        plane = np.array([[r[0, 0], r[0, 1], 0], [r[1, 0], r[1, 1], 0],
                          [r[2, 0], r[2, 1], depth]])
        focal = np.diag([depth, depth, 1.0])
        shift = np.array([[1, 0, -centre[0]], [0, 1, -centre[1]], [0, 0, 1]])
        out: NDArray[np.float64] = focal @ plane @ shift
        return out


def _apply(h: NDArray[np.float64], points: NDArray[np.float64]) -> NDArray[np.float64]:
    ones = np.ones((len(points), 1))
    mapped = np.hstack([points, ones]) @ h.T
    out: NDArray[np.float64] = mapped[:, :2] / mapped[:, 2:3]
    return out


def _translate(dx: float, dy: float, s: float = 1.0) -> NDArray[np.float64]:
    return np.array([[s, 0, dx], [0, s, dy], [0, 0, 1]], dtype=np.float64)


def _bbox(points: NDArray[np.float64]) -> tuple[int, int, int, int]:
    """x, y, w, h of the pixels the points' hull touches."""
    x0, y0 = np.floor(points.min(axis=0))
    x1, y1 = np.ceil(points.max(axis=0))
    return int(x0), int(y0), int(x1 - x0), int(y1 - y0)


@dataclass(frozen=True)
class _Warped:
    """A warped sprite: premultiplied colour and alpha over a region whose top-left corner
    is at (x, y) in the coordinates the homography maps to."""

    x: int
    y: int
    colour: Array  # (h, w, 3) premultiplied
    alpha: Array  # (h, w) 0..1
    marks: Array | None  # (h, w, 2): plate, lights, 0..1 (when asked for)


def _warp(sprite: _Sprite, h: NDArray[np.float64], marks: bool) -> _Warped:
    sw, sh = sprite.image.size
    outline = _apply(h, np.array([[0, 0], [sw, 0], [sw, sh], [0, sh]], dtype=np.float64))
    x0, y0, w, hh = _bbox(outline)
    inverse = np.linalg.inv(_translate(-x0, -y0) @ h)
    coeffs = tuple(float(c) for c in (inverse / inverse[2, 2]).flatten()[:8])
    # Bilinear is enough: the sprite is drawn at about its final size.
    rgba = _to_array(sprite.image.convert("RGBa").transform(
        (w, hh), Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BILINEAR))
    warped_marks = None
    if marks:
        warped_marks = _to_array(sprite.marks.transform(
            (w, hh), Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BILINEAR)
        )[..., :2] / 255.0
    return _Warped(x0, y0, rgba[..., :3], rgba[..., 3] / 255.0, warped_marks)


# --- the street -----------------------------------------------------------------------

_FACADES: tuple[RGB, ...] = (
    (214, 170, 112), (190, 104, 72), (232, 220, 190), (168, 166, 160), (236, 212, 150),
    (210, 150, 140), (200, 190, 170), (150, 120, 96), (222, 200, 180),
)
_SHOPS = ("FARMACIA", "BAR", "TABACCHI", "PIZZERIA", "RISTORANTE", "ALIMENTARI", "BANCA",
          "HOTEL", "GELATERIA", "PANETTERIA", "EDICOLA", "OTTICA", "MACELLERIA", "TRATTORIA",
          "CAFFÈ", "PROFUMERIA", "LIBRERIA", "FIORI", "SALDI", "AFFITTASI", "VENDESI",
          "LAVANDERIA", "FERRAMENTA", "PARRUCCHIERE", "SUPERMERCATO", "OSTERIA")
_STREETS = ("VIA ROMA", "VIA GARIBALDI", "CORSO ITALIA", "PIAZZA DANTE", "VIA MAZZINI",
            "VIALE EUROPA", "VIA VERDI", "PIAZZA DEL DUOMO", "VIA CAVOUR", "LARGO FIRENZE",
            "VIA XX SETTEMBRE", "VIA DEI MILLE", "BORGO SAN FREDIANO", "VIA NAZIONALE")


def _sign_text(rng: np.random.Generator) -> str:
    """Something printed on a wall: words, numbers, codes."""
    kind = int(rng.integers(0, 7))
    if kind == 0:
        return _choice(rng, _STREETS)
    if kind == 1:
        return f"TEL {int(rng.integers(100, 999)):03d} {int(rng.integers(100000, 999999))}"
    if kind == 2:
        return f"€ {int(rng.integers(0, 20))},{int(rng.integers(0, 99)):02d}"
    if kind == 3:
        return f"{int(rng.integers(1, 250))}{_choice(rng, ['', '', '/A', '/B', 'R'])}"
    if kind == 4:
        return f"ORARIO {int(rng.integers(7, 10))}:30-{int(rng.integers(17, 21))}:00"
    if kind == 5:
        return _pick(rng, string.ascii_uppercase, int(rng.integers(2, 4))) + " " + \
            _pick(rng, string.digits, int(rng.integers(2, 5)))
    return _choice(rng, _SHOPS)


def _fit_font(text: str, face: str, box_w: float, box_h: float) -> ImageFont.FreeTypeFont:
    size = max(6, int(box_h * 0.8))
    font = _font(face, size)
    width = font.getlength(text)
    if width > box_w * 0.92:
        size = max(6, int(size * box_w * 0.92 / width))
        font = _font(face, size)
    return font


def _background(rng: np.random.Generator, width: int, height: int, horizon: int
                ) -> Image.Image:
    """Buildings with windows and signs above `horizon`, the road below it."""
    ys = np.arange(height, dtype=np.float32)[:, None, None]
    sky_top = np.asarray(_jitter(rng, (150, 180, 215), 15), np.float32)
    sky_low = np.asarray(_jitter(rng, (210, 218, 225), 10), np.float32)
    asphalt = np.asarray((92, 92, 95), np.float32) * _u(rng, 0.75, 1.3)
    t_sky = np.clip(ys / max(1, horizon), 0, 1)
    t_road = np.clip((ys - horizon) / max(1, height - horizon), 0, 1)
    sky = sky_top * (1 - t_sky) + sky_low * t_sky
    road = asphalt * (1.08 - 0.3 * t_road)
    base = np.where(ys < horizon, sky, road) * np.ones((1, width, 1), np.float32)
    img = _to_image(base)
    d = ImageDraw.Draw(img)

    # Buildings, from the left edge to the right.
    x = -int(rng.integers(0, 80))
    sidewalk = horizon + int(_u(rng, 0.02, 0.06) * height)
    while x < width:
        bw = int(_u(rng, 0.12, 0.32) * width)
        roof = int(_u(rng, -0.1, 0.45) * horizon)
        facade = _jitter(rng, _choice(rng, _FACADES), 10)
        d.rectangle((x, roof, x + bw, sidewalk), fill=facade)
        d.rectangle((x, roof, x + bw, roof + max(2, bw // 40)), fill=_shade(facade, 0.8))
        floor_h = max(18, int(_u(rng, 0.1, 0.16) * height))
        shop_top = sidewalk - int(floor_h * 1.3)
        cols = max(1, bw // max(30, int(_u(rng, 50, 110))))
        shutter = _choice(rng, [(50, 90, 60), (120, 80, 50), (90, 90, 90), None])
        y = roof + floor_h // 2
        while y + floor_h * 0.6 < shop_top:
            for c in range(cols):
                wx = x + (c + 0.5) * bw / cols
                hw, hh = 0.18 * bw / cols, 0.33 * floor_h
                d.rectangle((wx - hw, y, wx + hw, y + 2 * hh), fill=_jitter(rng, (45, 50, 60), 10))
                if shutter is not None and _chance(rng, 0.6):
                    d.rectangle((wx - 2 * hw, y, wx - hw, y + 2 * hh), fill=shutter)
                    d.rectangle((wx + hw, y, wx + 2 * hw, y + 2 * hh), fill=shutter)
            y += floor_h
        # The ground floor: shop windows, a sign, a street name, house numbers.
        d.rectangle((x, shop_top, x + bw, sidewalk), fill=_shade(facade, 0.85))
        door = x + _u(rng, 0.15, 0.6) * bw
        d.rectangle((door, shop_top + floor_h * 0.35, door + 0.3 * bw, sidewalk),
                    fill=_jitter(rng, (60, 66, 72), 12))
        if _chance(rng, 0.75):
            sign_h = max(10, floor_h * _u(rng, 0.22, 0.4))
            sx0, sx1 = x + 0.08 * bw, x + 0.92 * bw
            board = _jitter(rng, _choice(rng, [(20, 90, 40), (150, 20, 30), (30, 60, 140),
                                                (240, 240, 235), (30, 30, 30), (230, 180, 30)]), 8)
            d.rectangle((sx0, shop_top, sx1, shop_top + sign_h), fill=board)
            text = _choice(rng, _SHOPS) if _chance(rng, 0.7) else _sign_text(rng)
            face = _choice(rng, _SIGN_FACES)
            ink = (20, 20, 20) if sum(board) > 450 else (245, 245, 240)
            d.text(((sx0 + sx1) / 2, shop_top + sign_h / 2), text, fill=ink,
                   font=_fit_font(text, face, sx1 - sx0, sign_h), anchor="mm")
        if _chance(rng, 0.4):  # a street-name plate on the corner
            text = _choice(rng, _STREETS)
            sh = max(8, floor_h * 0.22)
            font = _fit_font(text, "DejaVuSans-Bold.ttf", bw * 0.6, sh)
            tw = font.getlength(text) + sh
            sx, sy = x + 0.05 * bw, roof + _u(rng, 0.3, 0.8) * (shop_top - roof)
            blue = _chance(rng, 0.5)
            d.rectangle((sx, sy, sx + tw, sy + sh * 1.3),
                        fill=(30, 70, 150) if blue else (240, 240, 232),
                        outline=(240, 240, 240) if blue else (40, 40, 40), width=2)
            d.text((sx + tw / 2, sy + sh * 0.65), text, anchor="mm", font=font,
                   fill=(245, 245, 245) if blue else (30, 30, 30))
        for _ in range(int(rng.integers(0, 3))):  # numbers and notices on the wall
            text = _sign_text(rng)
            th = _u(rng, 8, 22)
            tx = x + _u(rng, 0.05, 0.7) * bw
            ty = _u(rng, shop_top - 2.5 * floor_h, sidewalk - th)
            font = _font(_choice(rng, _SIGN_FACES), int(th))
            paper = _chance(rng, 0.5)
            if paper:
                tw = font.getlength(text)
                d.rectangle((tx - 3, ty - 3, tx + tw + 3, ty + th + 3), fill=(238, 236, 228))
            d.text((tx, ty), text, font=font, fill=(25, 25, 25) if paper else
                   _shade(facade, 0.4))
        x += bw + int(rng.integers(0, 20))

    # Sidewalk and kerb, lane markings towards a vanishing point.
    d.rectangle((0, sidewalk, width, sidewalk + max(4, height // 40)),
                fill=_jitter(rng, (150, 148, 142), 10))
    kerb = sidewalk + max(4, height // 40)
    d.rectangle((0, kerb, width, kerb + 3), fill=(200, 200, 196))
    vx = _u(rng, 0.3, 0.7) * width
    for lane in np.linspace(-1.5, 1.5, int(rng.integers(2, 5))):
        bottom_x = vx + lane * width * 0.6
        for k in range(12):
            t0, t1 = k / 12, (k + 0.45) / 12
            ya, yb = kerb + (height - kerb) * t0 ** 1.3, kerb + (height - kerb) * t1 ** 1.3
            xa = vx + (bottom_x - vx) * (ya - kerb) / (height - kerb)
            xb = vx + (bottom_x - vx) * (yb - kerb) / (height - kerb)
            d.line((xa, ya, xb, yb), fill=(218, 218, 210), width=max(1, int(1 + 6 * t1)))
    # A pole with a round sign (speed limit, no entry...).
    for _ in range(int(rng.integers(0, 3))):
        px = _u(rng, 0.02, 0.98) * width
        r = _u(rng, 0.02, 0.05) * height
        top = _u(rng, 0.25, 0.7) * horizon
        d.rectangle((px - 2, top, px + 2, kerb + 6), fill=(120, 120, 125))
        text = _choice(rng, ["30", "50", "70", "ZTL", "P", "STOP", "40", "20"])
        ring = (200, 20, 30) if text not in ("P",) else (30, 70, 160)
        d.ellipse((px - r, top - r, px + r, top + r), fill=(245, 245, 245), outline=ring,
                  width=max(2, int(r * 0.22)))
        d.text((px, top), text, anchor="mm", fill=(20, 20, 20),
               font=_fit_font(text, "DejaVuSans-Bold.ttf", 1.3 * r, 0.9 * r))

    # Texture: the asphalt's grain and stains, uneven walls.
    arr = _to_array(img)
    grain = rng.standard_normal((height // 2, width // 2), dtype=np.float32)
    grain_img = Image.fromarray(np.clip(grain * 40 + 128, 0, 255).astype(np.uint8))
    grain_up = (_to_array(grain_img.resize((width, height), Image.Resampling.BILINEAR))
                - 128) / 40
    stains = _smooth_noise(rng, (width, height), (12, 7)) - 0.5
    arr += (grain_up * 5 + stains * 30)[..., None]
    return _to_image(arr)


# --- the scene ------------------------------------------------------------------------

@dataclass(frozen=True)
class PlateLabel:
    """A plate in a scene: its normalised text and the box around the whole plate."""

    text: str
    box: tuple[int, int, int, int]  # x, y, w, h: axis-aligned, in pixels of the scene


MIN_PLATE_PX = 70  # narrowest plate box in a scene: smaller is not legible after the effects
MAX_PLATE_PX = 350


@dataclass(frozen=True)
class _Vehicle:
    """A vehicle warped to its pose, its plate's box with its top-left corner at (0, 0):
    placing it in a scene is a translation by whole pixels."""

    text: str
    warped: _Warped
    box_size: tuple[int, int]  # the plate box's width and height
    char_px: float  # about how tall its characters are in the scene, in pixels


def _vehicle(text: str, rng: np.random.Generator, box_width: float, marks: bool,
             spread: float = 1.0, front: bool | None = None) -> _Vehicle:
    """A vehicle whose plate's box is about `box_width` px wide; `marks`: keep where the
    plate and the lights are (for night scenes); `spread` scales the pose's angles."""
    pose = _Pose.draw(rng, spread)
    aspect = _aspect(text)
    unit = np.array([[0, 0], [1, 0], [1, aspect], [0, aspect]], dtype=np.float64)
    # The pose's foreshortening, known before the sprite is drawn: draw it at the size it
    # will have, so the warp barely rescales (a perspective warp does not filter).
    probe = _apply(pose.homography((0.5, 0.5 * aspect), 1.0), unit)
    ratio = float(np.ptp(probe[:, 0]))
    sprite = _vehicle_sprite(text, rng, box_width / ratio, front)
    corners = sprite.corners
    centre = (float(corners[:, 0].mean()), float(corners[:, 1].mean()))
    h = pose.homography(centre, float(corners[1, 0] - corners[0, 0]))
    mapped = _apply(h, corners)
    bx, by, bw, bh = _bbox(mapped)
    # Characters are a share of the plate's shorter side edge in the scene (of the
    # smaller line's on a motorcycle plate).
    edge = min(float(np.hypot(*(mapped[3] - mapped[0]))),
               float(np.hypot(*(mapped[2] - mapped[1]))))
    char_px = edge * (0.3 if is_motorcycle(text) else 0.62)
    return _Vehicle(text, _warp(sprite, _translate(-bx, -by) @ h, marks), (bw, bh), char_px)


def _plate_count(rng: np.random.Generator) -> int:
    return int(rng.choice([1, 2, 3], p=[0.75, 0.18, 0.07]))


def _layout(rng: np.random.Generator, vehicles: Sequence[_Vehicle], width: int, height: int,
            horizon: int) -> list[tuple[int, int]]:
    """Where each plate box's top-left corner goes: one column each, nearer (bigger)
    plates lower in the frame, the box whole inside the image."""
    k = len(vehicles)
    order = rng.permutation(k)
    spots = []
    span = MAX_PLATE_PX - MIN_PLATE_PX
    for i, v in enumerate(vehicles):
        w, h = v.box_size
        col0, col1 = order[i] * width / k, (order[i] + 1) * width / k
        lo, hi = col0 + 4, max(col0 + 4, col1 - w - 4)
        x = int(np.clip(_u(rng, lo, hi), 2, width - w - 2))
        near = (w - MIN_PLATE_PX) / span
        t = float(np.clip(0.3 + 0.6 * near + rng.normal(0, 0.15), 0.05, 1.0))
        y = int(horizon + t * (height - horizon) - h / 2)
        y = int(np.clip(y, max(2, horizon - h), height - h - 2))
        spots.append((x, y))
    return spots


def _boxes_clear(vehicles: Sequence[_Vehicle], spots: Sequence[tuple[int, int]]) -> bool:
    """No plate overlaps another, and no vehicle drawn later covers an earlier plate."""
    for i, (x, y) in enumerate(spots):
        w, h = vehicles[i].box_size
        for later, (x2, y2) in zip(vehicles[i + 1:], spots[i + 1:], strict=True):
            w2, h2 = later.box_size
            if x < x2 + w2 and x2 < x + w and y < y2 + h2 and y2 < y + h:
                return False
            lw = later.warped
            ox, oy = x2 + lw.x, y2 + lw.y  # the later vehicle's region in the scene
            x0, y0 = max(x, ox), max(y, oy)
            x1, y1 = min(x + w, ox + lw.alpha.shape[1]), min(y + h, oy + lw.alpha.shape[0])
            if x1 > x0 and y1 > y0 and float(
                    lw.alpha[y0 - oy:y1 - oy, x0 - ox:x1 - ox].max()) > 0.02:
                return False
    return True


def _composite(arr: Array, marks: Array | None, warped: _Warped, x: int, y: int) -> None:
    """Draws `warped` over `arr` (and its marks over `marks`), its origin at (x, y)."""
    height, width = arr.shape[:2]
    ox, oy = x + warped.x, y + warped.y
    x0, y0 = max(0, ox), max(0, oy)
    x1 = min(width, ox + warped.alpha.shape[1])
    y1 = min(height, oy + warped.alpha.shape[0])
    if x1 <= x0 or y1 <= y0:
        return
    src = (slice(y0 - oy, y1 - oy), slice(x0 - ox, x1 - ox))
    a = warped.alpha[src][..., None]
    arr[y0:y1, x0:x1] = arr[y0:y1, x0:x1] * (1 - a) + warped.colour[src]
    if marks is not None and warped.marks is not None:
        marks[y0:y1, x0:x1] = marks[y0:y1, x0:x1] * (1 - a) + warped.marks[src]


NIGHT_SHARE = 0.15
_WIDEST = {1: MAX_PLATE_PX, 2: 250, 3: 180}  # px at 1280 wide: room for 2-3 vehicles


def street_scene(rng: np.random.Generator, width: int = 1280, height: int = 720,
                 plates: int | Sequence[str] | None = None
                 ) -> tuple[Image.Image, list[PlateLabel]]:
    """A street with vehicles and their plates' boxes; `plates` is how many (1-3; random
    when None: mostly one) or the normalised texts to show."""
    if plates is None:
        texts = [random_italian_plate(rng) for _ in range(_plate_count(rng))]
    elif isinstance(plates, int):
        texts = [random_italian_plate(rng) for _ in range(plates)]
    else:
        texts = list(plates)
    if not 1 <= len(texts) <= 3:
        raise ValueError("a scene holds 1 to 3 plates")
    if width < 4 * MAX_PLATE_PX // 3 or height < 360:
        raise ValueError("a scene is at least 467 x 360 pixels")
    night = _chance(rng, NIGHT_SHARE)
    horizon = int(_u(rng, 0.3, 0.5) * height)
    background = _background(rng, width, height, horizon)
    widest = _WIDEST[len(texts)] * min(1.0, width / 1280)
    vehicles = []
    for text in texts:
        top = min(widest, 210) if is_motorcycle(text) else widest
        target = math.exp(_u(rng, math.log(MIN_PLATE_PX + 2), math.log(top)))
        vehicles.append(_vehicle(text, rng, target, night))
    vehicles.sort(key=lambda v: v.box_size[0])  # far (small) first: near ones drawn over

    for _ in range(30):
        spots = _layout(rng, vehicles, width, height, horizon)
        if _boxes_clear(vehicles, spots):
            break
    else:  # no layout kept every plate in sight: keep the nearest vehicle alone
        vehicles, spots = vehicles[-1:], spots[-1:]

    arr = _to_array(background)
    marks = np.zeros((height, width, 2), np.float32) if night else None
    for v, (x, y) in zip(vehicles, spots, strict=True):
        _composite(arr, marks, v.warped, x, y)
    labels = [PlateLabel(v.text, (x, y, *v.box_size))
              for v, (x, y) in zip(vehicles, spots, strict=True)]
    char_px = min(v.char_px for v in vehicles)
    return _conditions(arr, marks, rng, [label.box for label in labels], char_px), labels


# --- light, optics, sensor, compression -----------------------------------------------

def _conditions(arr: Array, marks: Array | None, rng: np.random.Generator,
                boxes: Sequence[tuple[int, int, int, int]], char_px: float) -> Image.Image:
    """Light and the camera's flaws; their strength is capped by the smallest characters'
    height (`char_px`) so that nearly every plate stays legible to a person. `marks`
    (where plates and lights are) is given for a night scene."""
    height, width = arr.shape[:2]
    if marks is not None:  # night: the retroreflective plate and the lights stay bright
        plate = marks[..., 0:1]
        lights = marks[..., 1:2]
        dark = _u(rng, 0.1, 0.25) * np.asarray([0.85, 0.92, 1.1], np.float32)
        tint = _choice(rng, [(1.0, 1.0, 1.0), (0.82, 0.92, 1.05), (0.85, 1.02, 0.85)])
        bright = _u(rng, 0.6, 0.95) * np.asarray(tint, np.float32)
        gain = dark * (1 - plate - lights) + bright * plate + 0.95 * lights
        arr = arr * gain
        glow = Image.fromarray((np.clip(lights[..., 0], 0, 1) * 255).astype(np.uint8))
        halo = _to_array(glow.filter(ImageFilter.GaussianBlur(max(4.0, char_px))))[..., None]
        arr += halo / 255.0 * np.asarray([120, 40, 30], np.float32)
        for _ in range(int(rng.integers(1, 4))):  # street lamps
            _glare(arr, rng, (_u(rng, 0, width), _u(rng, 0, height * 0.35)),
                   _u(rng, 20, 70), _u(rng, 120, 230))
    else:
        gain = _u(rng, 0.75, 1.15) * np.asarray(_jitter(rng, (100, 100, 100), 4), np.float32)
        arr = arr * (gain / 100.0)
        if _chance(rng, 0.2):  # the shadow of a building across part of the street
            shade = Image.new("L", (width, height), 0)
            x0 = _u(rng, -0.3, 0.8) * width
            ImageDraw.Draw(shade).polygon(
                [(x0, 0), (x0 + _u(rng, 0.2, 0.6) * width, 0),
                 (x0 + _u(rng, 0.0, 0.9) * width, height), (x0 - _u(rng, 0, 0.4) * width, height)],
                fill=255)
            s = _to_array(shade.filter(ImageFilter.GaussianBlur(_u(rng, 3, 15))))[..., None]
            arr *= 1 - s / 255.0 * _u(rng, 0.25, 0.5)
    if _chance(rng, 0.2):  # glare: the sun on the windscreen, a headlight; at times on a plate
        if boxes and _chance(rng, 0.4):
            x, y, w, h = boxes[int(rng.integers(0, len(boxes)))]
            centre = (x + _u(rng, -0.2, 1.2) * w, y + _u(rng, -0.5, 1.5) * h)
            _glare(arr, rng, centre, _u(rng, 0.3, 0.8) * w, _u(rng, 50, 100))
        else:
            _glare(arr, rng, (_u(rng, 0, width), _u(rng, 0, height)), _u(rng, 40, 250),
                   _u(rng, 100, 220))
    if _chance(rng, 0.15):  # haze, a dirty lens: low contrast
        keep = _u(rng, 0.5 if char_px >= 14 else 0.62, 0.8)
        arr = arr * keep + np.asarray(_jitter(rng, (190, 192, 196), 12), np.float32) * (1 - keep)
    if _chance(rng, 0.45):  # focus, motion, or a low-resolution sensor
        kind = int(rng.choice(3, p=[0.5, 0.3, 0.2]))
        if kind == 0:
            radius = _u(rng, 0.4, float(np.clip(char_px / 11, 0.6, 2.0)))
            arr = _to_array(_to_image(arr).filter(ImageFilter.GaussianBlur(radius)))
        elif kind == 1:
            arr = _motion_blur(arr, int(rng.integers(2, max(3, min(10, int(char_px / 4))) + 1)),
                               _u(rng, 0, math.pi))
        else:
            f = _u(rng, max(0.5, 8 / max(char_px, 8.0)), 0.9)
            img = _to_image(arr)
            small = img.resize((max(1, int(width * f)), max(1, int(height * f))),
                               Image.Resampling.BILINEAR)
            arr = _to_array(small.resize((width, height), Image.Resampling.BILINEAR))
    if _chance(rng, 0.5):  # sensor noise
        sigma = _u(rng, 2, min(12.0, 3 + char_px / 2))
        arr = arr + rng.standard_normal(arr.shape, dtype=np.float32) * sigma
    quality = int(rng.integers(int(np.clip(70 - 2 * char_px, 35, 60)), 91))
    out = io.BytesIO()
    _to_image(arr).save(out, "JPEG", quality=quality)
    out.seek(0)
    with Image.open(out) as decoded:
        return decoded.convert("RGB")


def _glare(arr: Array, rng: np.random.Generator, centre: tuple[float, float], radius: float,
           strength: float) -> None:
    """Adds a bright soft ellipse to `arr` in place."""
    height, width = arr.shape[:2]
    rx, ry = radius, radius * _u(rng, 0.4, 1.0)
    angle = _u(rng, 0, math.pi)
    reach = 2.5 * radius
    x0, x1 = max(0, int(centre[0] - reach)), min(width, int(centre[0] + reach) + 1)
    y0, y1 = max(0, int(centre[1] - reach)), min(height, int(centre[1] + reach) + 1)
    if x1 <= x0 or y1 <= y0:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    dx, dy = xx - centre[0], yy - centre[1]
    u = dx * math.cos(angle) + dy * math.sin(angle)
    v = -dx * math.sin(angle) + dy * math.cos(angle)
    g = np.exp(-((u / rx) ** 2 + (v / ry) ** 2)) * strength
    arr[y0:y1, x0:x1] += g[..., None] * np.asarray([1.0, 0.97, 0.9], np.float32)


def _motion_blur(arr: Array, length: int, angle: float) -> Array:
    """The mean of `length` copies shifted along `angle`: a straight streak."""
    acc = np.zeros_like(arr)
    for i in range(length):
        off = i - (length - 1) / 2
        acc += np.roll(arr, (round(off * math.sin(angle)), round(off * math.cos(angle))),
                       axis=(0, 1))
    acc /= length
    return acc


# --- a labelled set -------------------------------------------------------------------

LABEL_COLUMNS = ("image", "country", "x", "y", "w", "h", "plate")  # as the plate corpus's
COUNTRY = "IT"  # ISO alpha-2 in capitals, as in the corpus's labels.csv and vigila.plates


def write_set(out_dir: Path, count: int, seed: int, width: int = 1280,
              height: int = 720) -> Path:
    """`count` street scenes as ``it-000000.jpg``... with ``labels.csv`` (one row per
    plate, written last); returns the labels' path. Scene i depends only on (seed, i)."""
    if count < 1:
        raise ValueError("at least one image")
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, str, int, int, int, int, str]] = []
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        image, labels = street_scene(rng, width, height)
        name = f"it-{i:06d}.jpg"
        tmp = out_dir / f".{name}.tmp"
        image.save(tmp, "JPEG", quality=92)
        os.replace(tmp, out_dir / name)
        rows += [(name, COUNTRY, *label.box, label.text) for label in labels]
    target = out_dir / "labels.csv"
    with tempfile.NamedTemporaryFile("w", dir=out_dir, prefix=".labels.", suffix=".tmp",
                                     newline="", delete=False, encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(LABEL_COLUMNS)
        writer.writerows(rows)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(handle.name, target)  # readers see the previous labels or the whole new ones
    return target


# --- the traffic clip -----------------------------------------------------------------

PASS_SECONDS = 6  # one car's slot in the clip when its length is not given
MIN_PASS_SECONDS = 3.0
READABLE_SHARE = 120 / 1280  # a plate this share of the frame's width or more can be read
_START_SHARE, _NEAR_SHARE = 0.03, 0.24  # the plate's width when it appears, and near by
_APPROACH = 0.8  # share of the slot spent approaching; the car then leaves at the bottom


class PlatePass(NamedTuple):
    """When a plate can be read in the clip: whole in the frame and at least
    `READABLE_SHARE` of its width (120 px at 1280), in seconds from the clip's start."""

    plate: str
    start: float
    end: float


def _clip_seconds(count: int) -> int:
    gop = ClipSpec.gop_seconds
    return math.ceil(count * PASS_SECONDS / gop) * gop


def _trajectory(u: float, lane: float, horizon: float) -> tuple[float, float, float]:
    """(plate width, plate centre x, plate centre y) as shares of the frame's width and
    height, `u` in 0..1 through the car's slot: it grows as it nears, then drives out."""
    share = _START_SHARE + (_NEAR_SHARE - _START_SHARE) * min(u, 1.0) / _APPROACH
    near = (share - _START_SHARE) / (_NEAR_SHARE - _START_SHARE)
    x = 0.5 + lane * near
    y = horizon + (0.82 - horizon) * near + max(0.0, u - _APPROACH) / (1 - _APPROACH) * 0.7
    return share, x, y


def _slot(seconds: float, count: int) -> float:
    slot = seconds / count
    if slot < MIN_PASS_SECONDS:
        raise ValueError(f"{count} plates need at least {MIN_PASS_SECONDS * count:g} s")
    return slot


def _readable(u: float, aspect: float, width: int, height: int) -> bool:
    """Whether the plate is wide enough and whole in the frame (x always is: the lanes
    keep within +-0.2 of the middle)."""
    share, _, y = _trajectory(u, 0.0, _HORIZON)
    # Its box is a little taller than the plate under the pose's pitch and roll.
    half_h = 0.65 * share * width * aspect / height
    return share >= READABLE_SHARE and y - half_h >= 0.01 and y + half_h <= 0.99


_HORIZON = 0.3  # where cars appear, as a share of the height


def traffic_schedule(plates: Sequence[str], seconds: float | None = None, fps: int = 25,
                     width: int = 1280, height: int = 720) -> list[PlatePass]:
    """When each plate of `traffic_clip(plates, seconds=..., fps=...)` can be read: the
    first and last frame times (s) with the plate whole in frame and >= 120 px at 1280."""
    if not plates:
        raise ValueError("at least one plate")
    total = _clip_seconds(len(plates)) if seconds is None else seconds
    slot = _slot(total, len(plates))
    frames = round(total * fps)
    passes = []
    for i, text in enumerate(plates):
        aspect = _aspect(text)
        times = [n / fps for n in range(frames)
                 if i * slot <= n / fps < (i + 1) * slot
                 and _readable((n / fps - i * slot) / slot, aspect, width, height)]
        if times:
            passes.append(PlatePass(text, times[0], times[-1]))
    return passes


def _aspect(text: str) -> float:
    w_mm, h_mm = MOTORCYCLE_PLATE_MM if is_motorcycle(text) else CAR_PLATE_MM
    return h_mm / w_mm


@dataclass(frozen=True)
class _Mover:
    """A car sprite pre-rendered at its nearest size, scaled down frame by frame."""

    levels: tuple[Image.Image, ...]  # RGBA, warped to the car's pose; each next one half
    plate_box: tuple[int, int, int, int]  # in the first level's pixels
    lane: float
    start: float  # s

    def scaled(self, scale: float, at: tuple[float, float], frame: tuple[int, int]
               ) -> tuple[Image.Image, tuple[int, int]] | None:
        """The part of the car inside the frame at `scale`, its plate box centred on `at`,
        and where it goes; None when none of it is inside."""
        # Resize from the smallest level still at least as large: the cost stays low.
        level = 0
        while level + 1 < len(self.levels) and scale * 2 ** (level + 1) <= 1:
            level += 1
        source = self.levels[level]
        factor = scale * 2 ** level  # source pixels -> frame pixels
        bx, by, bw, bh = (v / 2 ** level for v in self.plate_box)
        left = at[0] - (bx + bw / 2) * factor  # the source's origin in the frame
        top = at[1] - (by + bh / 2) * factor
        # Only the source pixels that land inside the frame are resized.
        x0, y0 = max(0, math.floor(-left / factor)), max(0, math.floor(-top / factor))
        x1 = min(source.width, math.ceil((frame[0] - left) / factor))
        y1 = min(source.height, math.ceil((frame[1] - top) / factor))
        if x1 <= x0 or y1 <= y0:
            return None
        size = (max(1, round((x1 - x0) * factor)), max(1, round((y1 - y0) * factor)))
        part = source.resize(size, Image.Resampling.BILINEAR, box=(x0, y0, x1, y1))
        return part, (round(left + x0 * factor), round(top + y0 * factor))


def _mover(text: str, rng: np.random.Generator, width: int, start: float) -> _Mover:
    nearest = _START_SHARE + (_NEAR_SHARE - _START_SHARE) / _APPROACH  # at the slot's end
    # Milder angles than in the still scenes: a camera aimed along the lane.
    v = _vehicle(text, rng, nearest * width, marks=False, spread=0.5, front=True)
    warped = v.warped
    # Back from premultiplied colour: paste() composites straight alpha.
    alpha = np.maximum(warped.alpha, 1e-6)[..., None]
    rgba = np.dstack([warped.colour / alpha, warped.alpha[..., None] * 255])
    levels = [_to_image(rgba)]
    while min(levels[-1].size) > 64:
        levels.append(levels[-1].reduce(2))
    return _Mover(tuple(levels), (-warped.x, -warped.y, *v.box_size),
                  _u(rng, -0.2, 0.2), start)


def traffic_clip(cache_dir: Path, plates: Sequence[str], seed: int = 0, width: int = 1280,
                 height: int = 720, fps: int = 25, seconds: int | None = None) -> Path:
    """A clip of cars with `plates` driving towards the camera one after another, each plate
    readable (>= 120 px wide at 1280) for over a second (`traffic_schedule` says when).

    Encoded like the simulated cameras' clips (raw Annex-B H.264, no B-frames, a key frame
    every 2 s): a whole number of GOPs, `seconds` by default 6 s per plate rounded up.
    Cached in `cache_dir` under a digest of the recipe, published atomically.
    """
    if not plates:
        raise ValueError("at least one plate")
    total = _clip_seconds(len(plates)) if seconds is None else seconds
    slot = _slot(total, len(plates))
    bitrate = max(500, round(width * height * 3.3 / 1000))  # ~3 Mbit/s at 720p
    spec = ClipSpec("traffic", width, height, fps=fps, seconds=total, bitrate_kbps=bitrate)
    recipe = json.dumps({
        "plates": list(plates), "seed": seed, "width": width, "height": height, "fps": fps,
        "seconds": total, "encoder": spec.encoder_args(Path("OUT")),
        # The drawing code itself: a changed renderer makes a new clip, never a stale one.
        "code": hashlib.sha256(Path(__file__).read_bytes()).hexdigest(),
    }, sort_keys=True)
    digest = hashlib.sha256(recipe.encode()).hexdigest()[:10]
    target = cache_dir / f"traffic-{width}x{height}p{fps}-{total}s-{digest}.h264"
    if target.is_file() and target.stat().st_size > 0:
        return target
    ffmpeg = find_ffmpeg()
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / f".{target.name}.{os.getpid()}.tmp"
    rng = np.random.default_rng(seed)
    horizon_px = int(_HORIZON * height)
    background = _background(rng, width, height, horizon_px)
    movers = [_mover(text, rng, width, i * slot) for i, text in enumerate(plates)]
    args = [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
            "-r", str(fps), "-i", "-", *spec.encoder_args(tmp)]
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=errors)
        try:
            assert proc.stdin is not None
            # A broken pipe: ffmpeg stopped, and its exit status and message say why.
            with contextlib.suppress(BrokenPipeError):
                for n in range(total * fps):
                    proc.stdin.write(_frame(movers, background, n / fps, slot).tobytes())
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
            code = proc.wait(timeout=300)
            errors.seek(0)
            message = errors.read().decode("utf-8", "replace").strip()[-2000:]
            if code != 0 or not tmp.is_file() or tmp.stat().st_size == 0:
                raise ClipError(f"ffmpeg could not make the traffic clip (exit {code}): "
                                f"{message}")
            publish(tmp, target)
        except subprocess.TimeoutExpired as exc:
            raise ClipError("ffmpeg took too long to make the traffic clip") from exc
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            tmp.unlink(missing_ok=True)
    return target


def _frame(movers: Sequence[_Mover], background: Image.Image, t: float,
           slot: float) -> Image.Image:
    """The frame at `t` s: each car in its slot scaled to where it is, far ones first."""
    width, height = background.size
    frame = background.copy()
    visible = []
    for m in movers:
        u = (t - m.start) / slot
        if 0 <= u < 1:
            visible.append((_trajectory(u, m.lane, _HORIZON), m))
    for (share, x, y), m in sorted(visible, key=lambda item: item[0][0]):
        scaled = m.scaled(share * width / m.plate_box[2], (x * width, y * height),
                          (width, height))
        if scaled is not None:
            part, at = scaled
            frame.paste(part, at, part)
    return frame
