"""Look-alike variants and the key that lets the hotlist matcher find them in one lookup."""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from plate_samples import plates

from vigila.plates import (
    CONFUSIONS,
    Confusions,
    PlateFormat,
    lookalike_distance,
    lookalike_key,
    lookalikes,
)


def test_one_substitution_variants() -> None:
    # A→4, B→8, 1→I, 2→Z, 3 and C: none, D→0/O/Q
    assert lookalikes("ab 123 cd") == {
        "4B123CD", "A8123CD", "ABI23CD", "AB1Z3CD", "AB123C0", "AB123CO", "AB123CQ",
    }  # fmt: skip


def test_variants_that_are_still_plates() -> None:
    # None of these is an Italian plate: each puts a letter among the digits, a digit
    # among the letters, or a letter Italy does not use. The grammar catches them.
    assert lookalikes("AB123CD", valid_only=True, country="IT") == set()
    # Letter for letter it cannot: E/F and P/R look-alikes stay valid plates.
    assert lookalikes("PR123EF", valid_only=True, country="IT") == {
        "RR123EF", "PP123EF", "PR123FF", "PR123EE",
    }  # fmt: skip
    # French plates use Q, so D→Q survives there.
    assert "AB123CQ" in lookalikes("AB123CD", valid_only=True, country="FR")


def test_key_and_distance() -> None:
    assert lookalike_key("AB-123-CD") == lookalike_key("4B1Z3C0")
    assert lookalike_distance("AB123CD", "AB123CD") == 0
    assert lookalike_distance("AB123CD", "A8123CD") == 1
    assert lookalike_distance("AB123CD", "48123C0") == 3
    assert lookalike_distance("AB123CD", "AB123CE") is None  # D and E do not look alike
    assert lookalike_distance("AB123CD", "AB123C") is None


def test_policies() -> None:
    exact = Confusions(())
    assert lookalikes("AB123CD", confusions=exact) == set()
    assert exact.key("AB123CD") == "AB123CD"
    assert exact.distance("AB123CD", "A8123CD") is None
    narrow = Confusions(["0O"])
    assert lookalikes("A0", confusions=narrow) == {"AO"}
    assert CONFUSIONS.alternatives("0") == "ODQ"  # most likely reading first
    with pytest.raises(ValueError, match="overlap"):
        Confusions(["0O", "OD"])
    with pytest.raises(ValueError, match="two or more"):
        Confusions(["0"])
    with pytest.raises(ValueError, match="two or more"):
        Confusions(["0\u00d8"])


class LookalikeIndex:
    """The matcher's recipe from vigila.plates.lookalike, as the matcher would write it."""

    def __init__(self, entries: list[str], max_substitutions: int) -> None:
        self.max = max_substitutions
        self.buckets: dict[str, set[str]] = defaultdict(set)
        for plate in entries:
            self.buckets[lookalike_key(plate)].add(plate)

    def find(self, read: str) -> set[str]:
        found = set()
        for plate in self.buckets.get(lookalike_key(read), ()):
            distance = lookalike_distance(plate, read)
            if distance is not None and distance <= self.max:
                found.add(plate)
        return found


@settings(max_examples=60, deadline=None)
@given(st.lists(plates(), min_size=1, max_size=40), st.data())
def test_the_matcher_finds_every_plate_from_its_lookalikes(
    hotlist: list[tuple[PlateFormat, str]], data: st.DataObject
) -> None:
    entries = [text for _, text in hotlist]
    index = LookalikeIndex(entries, max_substitutions=1)
    exact = LookalikeIndex(entries, max_substitutions=0)
    for plate in entries:
        assert plate in index.find(plate) and plate in exact.find(plate)
        for read in lookalikes(plate):
            assert lookalike_key(read) == lookalike_key(plate)
            assert plate in index.find(read)
            assert plate not in exact.find(read) or read in entries
            # Everything found is a real one-substitution look-alike of the read.
            assert all(lookalike_distance(p, read) in (0, 1) for p in index.find(read))
        # A substitution outside the classes is not found.
        i = data.draw(st.integers(0, len(plate) - 1))
        stranger = plate[:i] + ("X" if plate[i] != "X" else "Y") + plate[i + 1 :]
        assert plate not in index.find(stranger)
