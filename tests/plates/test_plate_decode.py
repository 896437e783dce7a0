"""Grammar-aware decoding of an OCR's per-position probabilities."""

from __future__ import annotations

import math

import pytest

from vigila.core.errors import InvalidInput
from vigila.plates import best_text

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def matrix(
    text: str, sure: float = 0.9, doubts: dict[int, dict[str, float]] | None = None
) -> list[dict[str, float]]:
    """An OCR output that reads `text` with probability `sure` per character, the rest
    spread evenly, except where `doubts` gives a position's probabilities outright."""
    rows = []
    for i, ch in enumerate(text):
        row = dict.fromkeys(ALPHABET, (1 - sure) / (len(ALPHABET) - 1))
        row[ch] = sure
        for other, p in (doubts or {}).get(i, {}).items():
            row[other] = p
        rows.append(row)
    return rows


def test_grammar_overrules_an_impossible_first_choice() -> None:
    # The OCR prefers O at the fourth place, where an Italian plate has a digit.
    probs = matrix("AB1O3CD", doubts={3: {"O": 0.55, "0": 0.40}})
    best = best_text(probs)[0]
    assert (best.text, best.format_id, best.display) == ("AB103CD", "it_car", "AB 103 CD")
    assert best.changes == 1
    assert best.confidence == pytest.approx(0.9**6 * 0.40)


def test_letter_slot_takes_the_likeliest_allowed_letter() -> None:
    # 0 where Italy wants a letter: O and Q are not Italian letters, D is.
    probs = matrix("0B123CD", doubts={0: {"0": 0.5, "O": 0.3, "D": 0.15, "Q": 0.05}})
    assert best_text(probs, country="IT")[0].text == "DB123CD"


def test_italian_wins_a_tie_with_a_neighbour() -> None:
    found = best_text(matrix("BA123AB", sure=0.99))
    ids = [m.format_id for m in found]
    assert ids[0] == "it_car" and "sk" in ids and "fr_siv" in ids


@pytest.mark.parametrize(
    ("text", "format_id"),
    [
        ("1234BCD", "es"),      # digits where Italy has letters
        ("GQ456HK", "fr_siv"),  # Q: French, not Italian
        ("ZH123456", "ch"),
        ("1A23456", "cz"),
    ],
)
def test_foreign_plate_when_the_probabilities_say_so(text: str, format_id: str) -> None:
    best = best_text(matrix(text, sure=0.97))[0]
    assert (best.text, best.format_id, best.changes) == (text, format_id, 0)


def test_generic_fallback_for_a_plate_of_no_known_format() -> None:
    best = best_text(matrix("NL12AB9Z3", sure=0.99))[0]
    assert (best.text, best.format_id) == ("NL12AB9Z3", "generic")


def test_word_lists_are_scored_exactly() -> None:
    # ROMA is the only four-letter code; a misread R still decodes to it.
    probs = matrix("P0MAA12345", doubts={0: {"P": 0.5, "R": 0.4}, 1: {"0": 0.6, "O": 0.35}})
    best = best_text(probs, country="IT")[0]
    assert (best.text, best.format_id, best.display) == (
        "ROMAA12345", "it_old_provincial", "ROMA A12345",
    )  # fmt: skip


def test_priors_for_a_border_reader() -> None:
    probs = matrix("BA123AB", sure=0.99)
    assert "it_car" not in [m.format_id for m in best_text(probs, priors={"IT": 0})]
    assert best_text(probs, priors={"IT": 0})[0].format_id == "fr_siv"
    with pytest.raises(InvalidInput) as caught:
        best_text(probs, priors={"IT": -1})
    assert caught.value.errors[0].field == "priors"


def test_rows_as_a_matrix_with_an_alphabet() -> None:
    as_dicts = matrix("AB1O3CD", doubts={3: {"O": 0.55, "0": 0.40}})
    # An OCR's own column order, lower case, with a CTC blank it never emits here.
    alphabet = ["-"] + [c.lower() for c in reversed(ALPHABET)]
    rows = [[0.0] + [row[c.upper()] for c in alphabet[1:]] for row in as_dicts]
    assert [m.text for m in best_text(rows, alphabet)] == [m.text for m in best_text(as_dicts)]
    numpy = pytest.importorskip("numpy")
    array = numpy.array(rows)
    assert best_text(array, alphabet)[0].text == "AB103CD"


def test_top_and_scores() -> None:
    found = best_text(matrix("AB123CD"), top=3)
    assert len(found) == 3
    assert [m.score for m in found] == sorted((m.score for m in found), reverse=True)
    assert all(math.isfinite(m.score) and 0 < (m.confidence or 0) <= 1 for m in found)


@pytest.mark.parametrize(
    ("probs", "alphabet", "why"),
    [
        ([], None, "no positions"),
        ([[0.5, 0.5]], None, "alphabet"),
        ([[0.5, 0.5]], "ABC", "alphabet"),
        ([{"A": -0.1}], None, "not a probability"),
        ([{"A": math.nan}], None, "not a probability"),
        ([{"A": 1.0}] * 17, None, "more than 16"),
    ],
)
def test_bad_matrices(probs: list[object], alphabet: str | None, why: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        best_text(probs, alphabet)  # type: ignore[arg-type]
    assert caught.value.errors[0].field == "probs"
    assert why in caught.value.errors[0].message


def test_unknown_country() -> None:
    with pytest.raises(InvalidInput):
        best_text(matrix("AB123CD"), country="XX")
