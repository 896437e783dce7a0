"""One-substitution look-alikes, for matching plate reads against hotlists.

Finding look-alikes in a hotlist of a million plates
----------------------------------------------------
Index each entry p under `lookalike_key(p)` (a dict: key → set of plates). For a read
q, the candidates are `index[lookalike_key(q)]`; keep those whose
`lookalike_distance(p, q)` is within the list's policy (0: exact only, 1: one
substitution). That is one dictionary lookup per read, after O(length) work for the
key, and the bucket holds only plates that q turns into by look-alike substitutions —
usually one plate or none. It works because the classes partition the alphabet, so a
substitution within a class leaves the key unchanged.

A policy whose confusions are not transitive (8~B and B~E but not 8~E) is not a
partition; with it, look each of `lookalikes(q)` up in a set of exact plates instead:
length x class size lookups, still O(length).
"""

from __future__ import annotations

from vigila.plates.confusion import CONFUSIONS, Confusions
from vigila.plates.grammar import is_valid
from vigila.plates.text import normalise


def lookalikes(
    text: str,
    *,
    valid_only: bool = False,
    country: str | None = None,
    confusions: Confusions = CONFUSIONS,
) -> set[str]:
    """Every text one look-alike substitution away from `text` ('AB123CD' → 'A8123CD', …).

    With `valid_only`, only those that are still plates of some format (of `country`,
    if given): what a reader could plausibly have produced without the grammar noticing.
    """
    plate = normalise(text)
    out = {
        plate[:i] + alt + plate[i + 1 :]
        for i, ch in enumerate(plate)
        for alt in confusions.alternatives(ch)
    }
    if valid_only:
        out = {v for v in out if is_valid(v, country)}
    return out


def lookalike_key(text: str, confusions: Confusions = CONFUSIONS) -> str:
    """The text with every character replaced by its look-alike class's representative.

    Plates one (or more) look-alike substitutions apart share the key: index a hotlist
    by it (see the module's notes).
    """
    return confusions.key(normalise(text))


def lookalike_distance(a: str, b: str, confusions: Confusions = CONFUSIONS) -> int | None:
    """How many look-alike substitutions separate `a` and `b` (0 if equal); None if no
    sequence of them does (other lengths, or a difference outside the classes)."""
    return confusions.distance(normalise(a), normalise(b))
