"""ANPR: read licence plates in photos and camera streams, on the CPU, offline.

The public face: `AnprEngine` (`read` a BGR array, `read_bytes` a photo's bytes), its
answers `ImageReading` and `PlateRead`, and `decode_image` for callers that check a
photo before queueing it. How it works is in `engine.py`; the models are an adapter
(`models.py`) over the PP-OCR ONNX files that the pinned rapidocr wheel ships.
"""

from vigila.vision.anpr.engine import (
    AnprEngine,
    ImageReading,
    PlateRead,
    decode_image,
    home_priors,
)
from vigila.vision.anpr.models import ModelUnavailable

__all__ = [
    "AnprEngine",
    "ImageReading",
    "ModelUnavailable",
    "PlateRead",
    "decode_image",
    "home_priors",
]
