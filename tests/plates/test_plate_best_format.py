"""`best_format`, the ingest's fast path, against `classify`, the reference."""

from __future__ import annotations

import random

from vigila.plates import classify
from vigila.plates.grammar import best_format


def test_best_format_is_classify_first_without_the_display() -> None:
    rnd = random.Random(11)
    chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    for _ in range(20_000):
        text = "".join(rnd.choice(chars) for _ in range(rnd.randint(2, 10)))
        for country in (None, "IT", "FR", "DE", "CH"):
            found = classify(text, country)
            expected = found[0].format_id if found and found[0].format_id != "generic" else None
            got = best_format(text, country)
            assert (got.id if got else None) == expected, (text, country)
    assert best_format("AB123CD").id == "it_car"  # type: ignore[union-attr]
    assert best_format("ZZZZZZZZZZZZ") is None
