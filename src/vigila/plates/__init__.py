"""Plates: the plate grammar shared by the hotlist matcher, the search and the OCR engine.

- `normalise` turns any typed or read plate into its canonical text (A-Z0-9).
- `classify`, `is_valid`, `repair` read a text against the format table `FORMATS`
  (Italy's current, special and old provincial plates, the neighbours', a fallback).
- `lookalikes`, `lookalike_key`, `lookalike_distance` serve fuzzy hotlist matching under
  a look-alike policy (`Confusions`); the index recipe is in `vigila.plates.lookalike`.
- `wildcard_to_like`, `wildcard_to_regex` compile investigative search patterns.
- `best_text` decodes an OCR's per-position probabilities into the likeliest valid plate.
"""

from vigila.plates.confusion import CONFUSIONS, Confusions
from vigila.plates.decode import best_text, merged_priors
from vigila.plates.formats import (
    COUNTRY_PRIORS,
    FORMATS,
    OLD_PLATE_PROVINCES,
    PROVINCES,
    PlateFormat,
)
from vigila.plates.grammar import PlateMatch, classify, is_valid, repair
from vigila.plates.lookalike import lookalike_distance, lookalike_key, lookalikes
from vigila.plates.text import (
    normalise,
    normalise_pattern,
    wildcard_to_like,
    wildcard_to_regex,
)

__all__ = [
    "CONFUSIONS",
    "COUNTRY_PRIORS",
    "FORMATS",
    "OLD_PLATE_PROVINCES",
    "PROVINCES",
    "Confusions",
    "PlateFormat",
    "PlateMatch",
    "best_text",
    "classify",
    "is_valid",
    "lookalike_distance",
    "lookalike_key",
    "lookalikes",
    "merged_priors",
    "normalise",
    "normalise_pattern",
    "repair",
    "wildcard_to_like",
    "wildcard_to_regex",
]
