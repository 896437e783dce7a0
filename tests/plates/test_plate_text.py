"""Normalisation of typed and read plates, and the search's wildcard patterns."""

from __future__ import annotations

import re
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigila.core.errors import InvalidInput
from vigila.plates import normalise, normalise_pattern, wildcard_to_like, wildcard_to_regex


@pytest.mark.parametrize(
    "raw",
    [
        "AB123CD",
        "ab-123 cd",
        "ab 123 cd",
        "  Ab123Cd\t",
        "AB\u2013123\u2014CD",        # en and em dash
        "AB\u2010123\u2011CD",        # hyphen, non-breaking hyphen
        "AB\u00b7123\u00b7CD",        # the middle dot of the official AA·000AA
        "AB.123.CD",
        "AB/123/CD",
        "AB\u00a0123\u202fCD",        # no-break spaces
        "\u00c0B 123 \u00c7D",        # accents folded: ÀB 123 ÇD
        "\uff21\uff22\uff11\uff12\uff13\uff23\uff24",  # full-width forms
        "\u0410\u0412 123 \u0421D",   # Cyrillic A, VE, ES
        "\u0391\u0392-123-CD",        # Greek Alpha, Beta
        "a\u0301b123cd",              # a + combining acute accent
    ],
)
def test_normalise_to_one_key(raw: str) -> None:
    assert normalise(raw) == "AB123CD"


def test_normalise_folds_german_umlauts_and_keeps_digits() -> None:
    assert normalise("T\u00dc-AB 123") == "TUAB123"
    assert normalise("0123456789") == "0123456789"


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("", "at least one"),
        ("   ", "at least one"),
        ("- . / -", "at least one"),          # only separators
        ("!!!", "'!'"),                         # only punctuation
        ("A" * 200, "too long"),
        ("AB\x00123", "NUL"),
        ("AB\u20ac123", "U+20AC"),              # euro sign
        ("AB?123", "wildcards"),
        ("AB*", "wildcards"),
        ("A" * 17, "more than 16"),
        ("\u4e2d\u6587", "U+4E2D"),
        ("\u0663", "U+0663"),                   # Arabic-Indic digit three
    ],
)
def test_normalise_refuses_bad_input(raw: str, why: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        normalise(raw)
    (error,) = caught.value.errors
    assert error.field == "plate"
    assert why in error.message


def test_normalise_names_the_callers_field() -> None:
    with pytest.raises(InvalidInput) as caught:
        normalise("", field="entries[3].plate")
    assert caught.value.errors[0].field == "entries[3].plate"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_normalise_is_canonical_or_refuses(raw: str) -> None:
    try:
        text = normalise(raw)
    except InvalidInput:
        return
    assert re.fullmatch(r"[A-Z0-9]{1,16}", text)
    assert normalise(text) == text


@pytest.mark.parametrize(
    ("pattern", "like", "canonical"),
    [
        ("ab?12*", "AB_12%", "AB?12*"),
        ("AB-?12 **", "AB_12%", "AB?12*"),
        ("*123*", "%123%", "*123*"),
        ("??1", "__1", "??1"),
        ("ab 123 cd", "AB123CD", "AB123CD"),
    ],
)
def test_wildcard_to_like(pattern: str, like: str, canonical: str) -> None:
    assert normalise_pattern(pattern) == canonical
    assert wildcard_to_like(pattern) == like


def test_wildcard_to_regex() -> None:
    rx = wildcard_to_regex("ab?12*")
    assert rx.match("ABX12") and rx.match("AB012ZZZ")
    assert not rx.match("AB12") and not rx.match("ABXX12") and not rx.match("XAB012")
    assert not rx.match("ABX12\n"), "anchored at the very end"
    assert wildcard_to_regex("*23").pattern == r"\A[A-Z0-9]*23\Z"


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("AB%", "'%' is not a wildcard"),       # SQL's wildcards are refused, not passed on
        ("AB_12", "'_' is not a wildcard"),
        ("*", "at least one"),
        ("?*?", "at least one"),
        ("AB\\12", "U+005C"),
        ("AB\x0012", "NUL"),
        ("?" * 70, "too long"),
    ],
)
def test_bad_patterns(pattern: str, why: str) -> None:
    for compile_ in (wildcard_to_like, wildcard_to_regex):
        with pytest.raises(InvalidInput) as caught:
            compile_(pattern)
        assert caught.value.errors[0].field == "pattern"
        assert why in caught.value.errors[0].message


_CHARS = "AB1O0?*"


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet=_CHARS, min_size=1, max_size=6).filter(lambda p: p.strip("?*")),
    st.lists(st.text(alphabet="AB1O0", min_size=1, max_size=6), max_size=12),
)
def test_like_and_regex_select_the_same_plates(pattern: str, texts: list[str]) -> None:
    """The LIKE pattern, run by a real SQL engine with the escape character, and the
    regex agree on every plate."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE reads (plate TEXT)")
    db.executemany("INSERT INTO reads VALUES (?)", [(t,) for t in texts])
    like = wildcard_to_like(pattern)
    by_sql = sorted(
        row[0]
        for row in db.execute("SELECT plate FROM reads WHERE plate LIKE ? ESCAPE '\\'", (like,))
    )
    rx = wildcard_to_regex(pattern)
    assert by_sql == sorted(t for t in texts if rx.match(t))
