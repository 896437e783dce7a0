"""Plate text from outside → the canonical form: upper-case A-Z and 0-9, nothing else.

Everything that stores, compares or searches plates goes through `normalise`, so a plate
typed as "ab-123 cd", read by a camera as "AB 123CD" or pasted as "AB·123·CD" is one key.
Separators are dropped; any other character is an error rather than silently dropped,
so a typo in a hotlist entry is caught instead of turning into a different plate.
"""

from __future__ import annotations

import re
import unicodedata

from vigila.core.errors import InvalidInput
from vigila.plates.formats import MAX_PLATE_CHARS

# Raw input longer than this is not a plate, whatever the separators.
MAX_RAW_CHARS = 64

_CANONICAL = re.compile(rf"[A-Z0-9]{{1,{MAX_PLATE_CHARS}}}")
# Written between groups of a plate: dots, middle dots (the official AA·000AA), slashes.
_SEPARATORS = frozenset(".,\u00b7\u2022\u2027\u2219\u22c5\u30fb\uff65/_'\u2019")
# Greek and Cyrillic capitals that look like Latin ones: OCR models trained on several
# scripts and text pasted from other keyboards produce them. (Unicode names, then Latin.)
_GREEK = ("ALPHA", "BETA", "EPSILON", "ZETA", "ETA", "IOTA", "KAPPA", "MU", "NU", "OMICRON",
          "RHO", "TAU", "UPSILON", "CHI")
_CYRILLIC = ("A", "VE", "IE", "KA", "EM", "EN", "O", "ER", "ES", "TE", "U", "HA",
             "BYELORUSSIAN-UKRAINIAN I", "JE", "DZE")
_HOMOGLYPHS = str.maketrans(
    "".join(unicodedata.lookup(f"GREEK CAPITAL LETTER {n}") for n in _GREEK)
    + "".join(unicodedata.lookup(f"CYRILLIC CAPITAL LETTER {n}") for n in _CYRILLIC),
    "ABEZHIKMNOPTYX" + "ABEKMHOPCTYXIJS",
)
_WILDCARDS = frozenset("?*")


def normalise(raw: str, *, field: str = "plate") -> str:
    """The canonical text of a plate: 'ab-123 cd' → 'AB123CD'.

    Upper-cases, folds accents and compatibility forms (full-width, Ü → U), maps Greek
    and Cyrillic look-alike capitals to Latin, drops spaces, dashes, dots and slashes.
    Raises InvalidInput naming `field` for empty, over-long or foreign-character input.
    """
    if isinstance(raw, str) and _CANONICAL.fullmatch(raw):
        return raw  # the common case: already canonical (hotlists, stored reads)
    return _clean(raw, field, keep=frozenset())


def normalise_pattern(pattern: str, *, field: str = "pattern") -> str:
    """A search pattern in canonical form, keeping ? (one character) and * (any run).

    Runs of * collapse to one. At least one literal character is required: a pattern of
    wildcards alone would list every plate, which is not a search.
    """
    for ch in "%_":
        if isinstance(pattern, str) and ch in pattern:
            raise InvalidInput.on(
                field, f"{ch!r} is not a wildcard here: use ? for one character, * for any"
            )
    text = re.sub(r"\*+", "*", _clean(pattern, field, keep=_WILDCARDS))
    if not any(ch not in _WILDCARDS for ch in text):
        raise InvalidInput.on(field, "must contain at least one letter or digit")
    return text


def wildcard_to_like(pattern: str, *, field: str = "pattern") -> str:
    r"""The SQL LIKE pattern for a search pattern: 'ab?12*' → 'AB_12%'.

    Use it with the escape character backslash (SQLAlchemy: `column.like(p, escape="\\")`).
    The canonical text cannot hold %, _ or backslash, so escaping never triggers today; it
    is kept so that a future, wider alphabet cannot turn a literal into a wildcard.
    """
    out = []
    for ch in normalise_pattern(pattern, field=field):
        if ch == "*":
            out.append("%")
        elif ch == "?":
            out.append("_")
        elif ch in "%_\\":
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def wildcard_to_regex(pattern: str, *, field: str = "pattern") -> re.Pattern[str]:
    """The anchored regex for a search pattern, matching canonical plate texts."""
    parts = []
    for ch in normalise_pattern(pattern, field=field):
        if ch == "*":
            parts.append("[A-Z0-9]*")
        elif ch == "?":
            parts.append("[A-Z0-9]")
        else:
            parts.append(re.escape(ch))
    return re.compile(r"\A" + "".join(parts) + r"\Z")


def _clean(raw: str, field: str, keep: frozenset[str]) -> str:
    if not isinstance(raw, str):
        raise InvalidInput.on(field, "must be text")
    if "\x00" in raw:
        raise InvalidInput.on(field, "must not contain the NUL character (U+0000)")
    if len(raw) > MAX_RAW_CHARS:
        raise InvalidInput.on(field, f"is too long to be a plate (over {MAX_RAW_CHARS} characters)")
    folded = unicodedata.normalize("NFKD", raw)
    out: list[str] = []
    for ch in folded.upper().translate(_HOMOGLYPHS):
        if ("A" <= ch <= "Z") or ("0" <= ch <= "9") or ch in keep:
            out.append(ch)
        elif ch.isspace() or ch in _SEPARATORS or unicodedata.category(ch) in ("Pd", "Mn"):
            continue  # separators, and the accents NFKD split off
        elif ch in _WILDCARDS:
            raise InvalidInput.on(field, "wildcards (? and *) belong in a search pattern")
        else:
            raise InvalidInput.on(
                field, f"contains {ch!r} (U+{ord(ch):04X}), which is not on any plate"
            )
    text = "".join(out)
    if not text:
        raise InvalidInput.on(field, "must contain at least one letter or digit")
    if sum(ch not in keep for ch in text) > MAX_PLATE_CHARS:
        raise InvalidInput.on(
            field, f"has more than {MAX_PLATE_CHARS} letters and digits, too many for a plate"
        )
    return text
