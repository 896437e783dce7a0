"""Grammar-aware decoding: the likeliest valid plate from an OCR's per-position probabilities.

An OCR that classifies each character slot gives, per position, a probability for every
character. Its first choices may spell an impossible plate ('AB1O3CD': a letter O among
the digits). Here every format of the right length is scored exactly: per position only
the characters the format allows there, per word list (province codes, prefixes) only its
words, so the best text of a format is found without enumerating texts. The score is the
text's log-probability under the OCR plus its log-probability as a plate of the format
(`log_prior`: the country's and format's prior, spread over the format's texts), so an
Italian car plate wins a tie against a Slovak one, and a foreign plate still wins when
the probabilities say so. Rows are positions, so the text length is the matrix's: a
decoder that can drop or merge characters (CTC) calls this per candidate length.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from functools import partial

from vigila.core.errors import InvalidInput
from vigila.plates.formats import (
    ALNUM,
    COUNTRY_PRIORS,
    MAX_PLATE_CHARS,
    PlateFormat,
    Run,
    Segment,
)
from vigila.plates.grammar import (
    GENERIC,
    PlateMatch,
    check_country,
    formats_for,
    log_prior,
    match,
)

# Probabilities below this count as this: a character the OCR ruled out stays possible,
# at a price no plausible reading pays.
FLOOR = 1e-9
_ORDER = sorted(ALNUM)
_SORTED: dict[frozenset[str], list[str]] = {}


def best_text(
    probs: Iterable[Mapping[str, float]] | Iterable[Iterable[float]],
    alphabet: str | Sequence[str] | None = None,
    *,
    country: str | None = None,
    priors: Mapping[str, float] | None = None,
    top: int = 5,
) -> list[PlateMatch]:
    """The best text of each format of the right length, best first, at most `top`.

    `probs` has one row per character position: a mapping character → probability, or a
    sequence of probabilities in the order of `alphabet` (a 2-D array works). Characters
    outside A-Z0-9 (a CTC blank) are ignored; lower case counts as upper case. Rows need
    not sum to 1. `priors` replaces the country priors (COUNTRY_PRIORS) it names, say for
    a reader at the Slovenian border; `country` keeps one country's formats. The generic
    fallback (the OCR's first choices as they are) competes with its own small prior.
    """
    table = _log_table(probs, alphabet)
    code = check_country(country)
    weights = merged_priors(priors)
    n = len(table)
    first = "".join(max(_ORDER, key=row.__getitem__) for row in table)

    # The best piece of a segment at a place depends on nothing else: layouts share them.
    pieces: dict[tuple[int, int, int], tuple[float, str]] = {}

    def best_piece(seg: Segment, start: int, length: int) -> tuple[float, str]:
        key = (id(seg), start, length)
        if key not in pieces:
            rows = table[start : start + length]
            if isinstance(seg, Run):
                allowed = _sorted(seg.chars)
                piece = "".join(max(allowed, key=row.__getitem__) for row in rows)
            else:
                piece = max(seg.of_length(length), key=partial(_loglik, rows))
            pieces[key] = (_loglik(rows, piece), piece)
        return pieces[key]

    out: list[PlateMatch] = []
    for fmt in formats_for(code):
        fmt_prior = log_prior(fmt, n, weights)
        if fmt_prior == -math.inf:
            continue
        best: tuple[float, str] | None = None
        for shape in fmt.shapes:
            for layout in shape.layouts(n):
                parts = [best_piece(seg, start, length) for seg, start, length in layout]
                score = sum(p[0] for p in parts)
                if best is None or score > best[0]:
                    best = (score, "".join(p[1] for p in parts))
        if best is not None:
            found = _candidate(fmt, best[1], best[0], fmt_prior, first)
            if found is not None:
                out.append(found)
    if len(first) in GENERIC.counts:
        loglik = _loglik(table, first)
        generic = _candidate(GENERIC, first, loglik, log_prior(GENERIC, n), first)
        if generic is not None:
            out.append(generic)
    out.sort(key=lambda m: -m.score)
    return out[:top]


def _loglik(rows: Sequence[Mapping[str, float]], text: str) -> float:
    return sum(row[ch] for row, ch in zip(rows, text, strict=True))


def _candidate(
    fmt: PlateFormat, text: str, loglik: float, logprior: float, first: str
) -> PlateMatch | None:
    changes = sum(a != b for a, b in zip(text, first, strict=True))
    return match(fmt, text, loglik + logprior, changes, math.exp(loglik))


def _sorted(chars: frozenset[str]) -> list[str]:
    # Sorted so that ties go to the earliest character, the same on every run.
    if chars not in _SORTED:
        _SORTED[chars] = sorted(chars)
    return _SORTED[chars]


def merged_priors(priors: Mapping[str, float] | None) -> dict[str, float]:
    """COUNTRY_PRIORS with the countries `priors` names replaced; InvalidInput for an
    unknown country or a prior that is not a number >= 0."""
    merged = dict(COUNTRY_PRIORS)
    for country, value in (priors or {}).items():
        code = check_country(country)
        if code is None or not (math.isfinite(value) and value >= 0):
            raise InvalidInput.on("priors", f"{country!r}: a prior is a number >= 0")
        merged[code] = value
    return merged


def _log_table(
    probs: Iterable[Mapping[str, float]] | Iterable[Iterable[float]],
    alphabet: str | Sequence[str] | None,
) -> list[dict[str, float]]:
    """Per position, the log-probability of each of A-Z0-9 (floored)."""
    letters = None if alphabet is None else [str(ch).upper() for ch in alphabet]
    table: list[dict[str, float]] = []
    for i, row in enumerate(probs):
        if isinstance(row, Mapping):
            pairs = [(str(k).upper(), v) for k, v in row.items()]
        else:
            values = list(row)
            if letters is None or len(values) != len(letters):
                raise InvalidInput.on(
                    "probs", f"row {i}: a sequence row needs an alphabet of the same length"
                )
            pairs = list(zip(letters, values, strict=True))
        mass = dict.fromkeys(_ORDER, 0.0)
        for ch, value in pairs:
            p = float(value)
            if not (math.isfinite(p) and p >= 0):
                raise InvalidInput.on("probs", f"row {i}: {p!r} is not a probability")
            if ch in mass:
                mass[ch] += p  # 'a' and 'A' are one plate character
        table.append({ch: math.log(max(p, FLOOR)) for ch, p in mass.items()})
        if len(table) > MAX_PLATE_CHARS:
            raise InvalidInput.on("probs", f"more than {MAX_PLATE_CHARS} positions")
    if not table:
        raise InvalidInput.on("probs", "no positions")
    return table
