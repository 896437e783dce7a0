"""Classification and position-aware repair of plate texts against the format table."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from vigila.core.errors import InvalidInput
from vigila.plates.confusion import CONFUSIONS, Confusions
from vigila.plates.formats import (
    COUNTRY_PRIORS,
    FORMATS,
    Kind,
    Layout,
    PlateFormat,
    Run,
    Segment,
    Shape,
    Word,
)
from vigila.plates.text import normalise

# The odds of a look-alike misreading at one position against a right reading: each
# repaired character multiplies a reading's probability by this, so a repaired Italian
# plate can still beat a foreign format that fits as read, but not an Italian one.
SUBSTITUTION_ODDS = 0.05


@dataclass(frozen=True)
class PlateMatch:
    """One reading of a plate text as one format.

    `score` is a natural logarithm, higher is better, comparable within one call: the
    probability of this text as a plate of this format (`log_prior`), less the repairs
    made, plus in `best_text` the OCR's log-probability of the text. `changes` counts
    repaired characters (in `best_text`: characters that differ from the OCR's first
    choice). `confidence` is set by `best_text` only: the OCR's probability of the text,
    before any prior.
    """

    text: str
    format_id: str
    country: str | None
    kind: Kind
    label: str
    display: str
    score: float
    changes: int = 0
    confidence: float | None = None


GENERIC = next(f for f in FORMATS if f.id == "generic")
_SPECIFIC = tuple(f for f in FORMATS if f is not GENERIC)


def _segment_regex(seg: Segment) -> str:
    if isinstance(seg, Word):
        return "(" + "|".join(sorted(seg.words, key=lambda w: (-len(w), w))) + ")"
    return f"([{''.join(sorted(seg.chars))}]{{{seg.min},{seg.max}}})"


_COMPILED: dict[str, tuple[tuple[Shape, re.Pattern[str]], ...]] = {
    f.id: tuple((s, re.compile("".join(map(_segment_regex, s.segments)))) for s in f.shapes)
    for f in FORMATS
}


def log_prior(fmt: PlateFormat, n: int, priors: Mapping[str, float] | None = None) -> float:
    """The log-probability of one particular text of length `n` under `fmt`.

    The format's prior (its country's times its weight), then its lengths equally
    likely and the texts of a length equally likely: a narrow format (EI AB 123) beats a
    broad one (a German district, letters and digits) that happens to fit the same text.
    """
    table = COUNTRY_PRIORS if priors is None else priors
    p = fmt.weight * (1.0 if fmt.country is None else table.get(fmt.country, 0.0))
    if p <= 0 or n not in fmt.counts:
        return -math.inf
    return math.log(p) - math.log(len(fmt.counts)) - math.log(fmt.counts[n])


def check_country(country: str | None) -> str | None:
    if country is None:
        return None
    code = country.strip().upper()
    if code not in COUNTRY_PRIORS:
        known = ", ".join(sorted(COUNTRY_PRIORS))
        raise InvalidInput.on("country", f"no plate formats for {country!r} (known: {known})")
    return code


def formats_for(country: str | None) -> tuple[PlateFormat, ...]:
    """The specific (non-generic) formats, of one country or of all."""
    return tuple(f for f in _SPECIFIC if country is None or f.country == country)


@functools.cache
def _candidates(country: str | None, n: int) -> tuple[tuple[PlateFormat, float], ...]:
    """The specific formats that have texts of length `n`, with their default log prior.

    Every read is classified on arrival; trying only the formats of its length, with the
    prior already computed, keeps that a few microseconds.
    """
    return tuple((f, prior) for f in formats_for(country)
                 if (prior := log_prior(f, n)) > -math.inf)


@functools.cache
def _ranked(country: str | None, n: int) -> tuple[PlateFormat, ...]:
    """`_candidates` most likely first, ties in table order (as `classify` sorts them)."""
    ranked = sorted(_candidates(country, n), key=lambda c: -c[1])
    return tuple(fmt for fmt, _ in ranked)


def _fits(fmt: PlateFormat, text: str) -> bool:
    return any(pattern.fullmatch(text) and (shape.max_len is None or len(text) <= shape.max_len)
               for shape, pattern in _COMPILED[fmt.id])


def best_format(text: str, country: str | None = None) -> PlateFormat | None:
    """The likeliest specific format of a normalised `text`: `classify(...)[0]` without
    building every reading's display (the ingest needs only this, for every read), or
    None where only the generic fallback (or nothing) fits."""
    for fmt in _ranked(check_country(country), len(text)):
        if _fits(fmt, text):
            return fmt
    return None


def display(fmt: PlateFormat, text: str) -> str | None:
    """`text` spaced as printed on a plate of `fmt` ('AB 123 CD'); None if not of `fmt`."""
    for shape, pattern in _COMPILED[fmt.id]:
        found = pattern.fullmatch(text)
        if found and (shape.max_len is None or len(text) <= shape.max_len):
            parts: list[tuple[str, str]] = []
            for seg, value in zip(shape.segments, found.groups(), strict=True):
                if value:
                    shown = dict(seg.shown).get(value, value) if isinstance(seg, Word) else value
                    parts.append((shown, seg.sep))
            return "".join(v + sep for v, sep in parts[:-1]) + parts[-1][0]
    return None


def match(
    fmt: PlateFormat, text: str, score: float, changes: int = 0, confidence: float | None = None
) -> PlateMatch | None:
    if len(text) not in fmt.counts:
        return None
    shown = display(fmt, text)
    if shown is None:
        return None
    return PlateMatch(
        text, fmt.id, fmt.country, fmt.kind, fmt.label, shown, score, changes, confidence
    )


def classify(text: str, country: str | None = None) -> list[PlateMatch]:
    """Every format `text` is a plate of, most likely first.

    `text` is normalised first (InvalidInput for bad input). Where no specific format
    matches, the generic fallback is returned if the text is 2-10 characters, else [].
    `country` (ISO alpha-2) restricts the search to that country's formats.
    """
    plate = normalise(text)
    code = check_country(country)
    found = [
        m
        for fmt, prior in _candidates(code, len(plate))
        if (m := match(fmt, plate, prior)) is not None
    ]
    if not found:
        generic = match(GENERIC, plate, log_prior(GENERIC, len(plate)))
        return [generic] if generic else []
    return sorted(found, key=lambda m: -m.score)


def is_valid(text: str, country: str | None = None) -> bool:
    """Whether `text` is a plate of some specific format (the generic fallback not counted).

    Bad input is simply not valid; an unknown `country` is still an error.
    """
    code = check_country(country)
    try:
        return any(m.kind != "generic" for m in classify(text, code))
    except InvalidInput:
        return False


def repair(
    raw: str,
    country: str | None = None,
    *,
    max_changes: int = 2,
    confusions: Confusions = CONFUSIONS,
    limit: int = 20,
) -> list[PlateMatch]:
    """The plates `raw` may be, fixing characters the grammar forbids at their position.

    A character that a format does not allow where it stands is replaced by a look-alike
    that it does allow ('A8123CD' → 'AB123CD': the second place of an Italian car plate
    is a letter, and 8 looks like B). Allowed characters are never changed. Readings
    with at most `max_changes` replacements are returned, likeliest first (each change
    costs SUBSTITUTION_ODDS), at most `limit`. With no specific reading, the generic
    fallback of `classify`.
    """
    plate = normalise(raw)
    code = check_country(country)
    penalty = math.log(SUBSTITUTION_ODDS)
    best: dict[tuple[str, str], PlateMatch] = {}
    for fmt in formats_for(code):
        base = log_prior(fmt, len(plate))
        for shape in fmt.shapes:
            for layout in shape.layouts(len(plate)):
                for candidate, changes in _repairs(plate, layout, confusions, max_changes):
                    m = match(fmt, candidate, base + changes * penalty, changes)
                    key = (fmt.id, candidate)
                    if m is not None and (key not in best or best[key].changes > changes):
                        best[key] = m
    if not best:
        return classify(plate, code)
    return sorted(best.values(), key=lambda m: -m.score)[:limit]


def _repairs(
    text: str, layout: Layout, confusions: Confusions, budget: int
) -> Iterator[tuple[str, int]]:
    """Texts fitting `layout` within `budget` look-alike replacements, preferred first."""
    slots: list[Sequence[tuple[str, int]]] = []
    for seg, start, length in layout:
        piece = text[start : start + length]
        if isinstance(seg, Run):
            for ch in piece:
                if ch in seg.chars:
                    slots.append(((ch, 0),))
                else:
                    alts = [(a, 1) for a in confusions.alternatives(ch) if a in seg.chars]
                    if not alts:
                        return
                    slots.append(alts)
        else:
            words = []
            for w in seg.of_length(length):
                d = confusions.distance(piece, w)
                if d is not None and d <= budget:
                    words.append((w, d))
            if not words:
                return
            slots.append(sorted(words, key=lambda wd: wd[1]))

    def fill(i: int, spent: int) -> Iterator[tuple[str, int]]:
        if i == len(slots):
            yield "", spent
            return
        for piece, cost in slots[i]:
            if spent + cost <= budget:
                for rest, total in fill(i + 1, spent + cost):
                    yield piece + rest, total

    yield from fill(0, 0)
