"""The OCR models behind the engine: PP-OCR text detection and recognition on ONNX Runtime.

An adapter at the edge. The models are the ones the `rapidocr` wheel ships (Apache-2.0,
pinned in requirements.lock), read from its package folder: nothing is downloaded. The
engine sees two small interfaces (`TextDetector`, `TextRecogniser`), so another model is
one new adapter.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from functools import cache
from importlib import util
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from vigila.core import VigilaError

Floats = npt.NDArray[np.float32]

DET_MODEL = "PP-OCRv6_det_small.onnx"
REC_MODEL = "PP-OCRv6_rec_small.onnx"


class ModelUnavailable(VigilaError):
    status = 503
    title = "ANPR model unavailable"
    slug = "anpr-model-unavailable"


class TextDetector(Protocol):
    def probability_map(self, batch: Floats) -> Floats:
        """(1, 3, H, W) normalised image → (H, W) probability that a pixel is text."""
        ...


class TextRecogniser(Protocol):
    charset: list[str]  # class i + 1 is charset[i]; class 0 is the CTC blank

    def class_probabilities(self, batch: Floats) -> Floats:
        """(N, 3, 48, W) normalised crops → (N, T, classes) per time step."""
        ...


def model_dir() -> Path:
    spec = util.find_spec("rapidocr")
    if spec is None or spec.origin is None:
        raise ModelUnavailable("the rapidocr package (which ships the OCR models) is not "
                               "installed; install requirements.lock")
    return Path(spec.origin).parent / "models"


@dataclass
class _Session:
    path: Path
    threads: int

    def __post_init__(self) -> None:
        import onnxruntime as ort  # heavy: imported when a model is first needed

        if not self.path.is_file():
            raise ModelUnavailable(f"model file missing: {self.path}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(
            str(self.path), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        # One call at a time per session: ONNX Runtime allows concurrent runs, but they
        # would fight over the same intra-op threads on a 2-core server.
        self.lock = threading.Lock()

    def run(self, batch: Floats) -> Floats:
        with self.lock:
            out = self.session.run(None, {self.input: batch})[0]
        return np.asarray(out, dtype=np.float32)


class PpOcrDetector:
    """DB text detector: a per-pixel text probability."""

    def __init__(self, threads: int) -> None:
        self._session = _Session(model_dir() / DET_MODEL, threads)

    def probability_map(self, batch: Floats) -> Floats:
        prob: Floats = self._session.run(batch)[0, 0]
        return prob


class PpOcrRecogniser:
    """SVTR-style recogniser with a CTC head over the model's multilingual character set."""

    def __init__(self, threads: int) -> None:
        self._session = _Session(model_dir() / REC_MODEL, threads)
        meta = self._session.session.get_modelmeta().custom_metadata_map
        if "character" not in meta:
            raise ModelUnavailable(f"{REC_MODEL} carries no character list")
        self.charset = meta["character"].split("\n")

    def class_probabilities(self, batch: Floats) -> Floats:
        return self._session.run(batch)


def default_threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))


@cache
def pp_ocr(threads: int) -> tuple[PpOcrDetector, PpOcrRecogniser]:
    """The models, loaded once per process and thread count (about 0.3 s, 60 MB)."""
    return PpOcrDetector(threads), PpOcrRecogniser(threads)
