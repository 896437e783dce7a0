"""Text from outside: no NUL characters.

PostgreSQL's text types cannot store U+0000, so a NUL in a name, an id or a
filter would fail in the database; it is refused at the edge instead, on every
backend alike, naming the field.
"""

from __future__ import annotations

from pydantic import AfterValidator


def refuse_nul(value: str | None) -> str | None:
    if value is not None and "\x00" in value:
        raise ValueError("must not contain the NUL character (U+0000)")
    return value


# For Annotated[str, ..., NoNul]; the error names the field like any other.
NoNul = AfterValidator(refuse_nul)
