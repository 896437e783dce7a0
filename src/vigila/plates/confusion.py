"""OCR look-alike classes: which characters a plate reader mistakes for each other.

The classes are a partition (every character in at most one class), so "one
substitution within a class" has a canonical key: map each character to its class's
first member. Two texts of equal length whose keys are equal differ only by such
substitutions; see `vigila.plates.lookalike_key` for the hotlist index built on it.
"""

from __future__ import annotations

from collections.abc import Iterable

from vigila.plates.formats import ALNUM

# The confusions of plate fonts under glare, dirt and low resolution. Each string is a
# class, most likely reading first: position-aware repair tries members in this order.
# Letter pairs matter most to hotlists, since no grammar catches them. C/G (a known
# weakness of the Italian font) is left out: in a partition G would join 6 and C, and C
# would pass for 6, which puts 'AB123C0' closer to a motorcycle than to AB 123 CD. A
# hotlist that wants it passes its own classes, say ("CG", "6B8"...).
DEFAULT_CLASSES: tuple[str, ...] = (
    "0ODQ", "1I", "2Z", "4A", "5S", "6G", "7T", "8B", "EF", "PR", "UV",
)


class Confusions:
    """A look-alike policy: a partition of A-Z0-9 into classes (a hotlist may pick its own)."""

    def __init__(self, classes: Iterable[str] = DEFAULT_CLASSES) -> None:
        self.classes = tuple(classes)
        seen: set[str] = set()
        for cls in self.classes:
            if len(cls) < 2 or not set(cls) <= ALNUM:
                raise ValueError(f"a class lists two or more of A-Z0-9, not {cls!r}")
            if seen & set(cls) or len(set(cls)) != len(cls):
                raise ValueError(f"classes must not overlap ({cls!r})")
            seen |= set(cls)
        self._others = {ch: cls.replace(ch, "") for cls in self.classes for ch in cls}
        self._key = str.maketrans({ch: cls[0] for cls in self.classes for ch in cls})

    def __repr__(self) -> str:
        return f"Confusions({self.classes!r})"

    def key(self, text: str) -> str:
        """`text` with each character replaced by its class's representative."""
        return text.translate(self._key)

    def alternatives(self, ch: str) -> str:
        """The characters `ch` may be a misreading of, most likely first ('' if none)."""
        return self._others.get(ch, "")

    def distance(self, a: str, b: str) -> int | None:
        """How many within-class substitutions turn `a` into `b`; None if none can."""
        if len(a) != len(b):
            return None
        count = 0
        for x, y in zip(a, b, strict=True):
            if x != y:
                if y not in self._others.get(x, ""):
                    return None
                count += 1
        return count


CONFUSIONS = Confusions()
