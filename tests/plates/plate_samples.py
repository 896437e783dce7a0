"""Random plates drawn from the format table itself, for property tests."""

from __future__ import annotations

from hypothesis import strategies as st

from vigila.plates import FORMATS, PlateFormat
from vigila.plates.formats import Run

SPECIFIC = tuple(f for f in FORMATS if f.id != "generic")


@st.composite
def plate_of(draw: st.DrawFn, fmt: PlateFormat) -> str:
    """A text that `fmt` admits: a shape, a length, a layout, then the characters."""
    shape = draw(st.sampled_from(fmt.shapes))
    lengths = [n for n in range(shape.min_len, shape.longest + 1) if any(shape.layouts(n))]
    layout = draw(st.sampled_from(list(shape.layouts(draw(st.sampled_from(lengths))))))
    out: list[str] = []
    for seg, _, length in layout:
        if isinstance(seg, Run):
            out.extend(draw(st.sampled_from(sorted(seg.chars))) for _ in range(length))
        else:
            out.append(draw(st.sampled_from(sorted(w for w in seg.words if len(w) == length))))
    return "".join(out)


@st.composite
def plates(draw: st.DrawFn, formats: tuple[PlateFormat, ...] = SPECIFIC) -> tuple[PlateFormat, str]:
    fmt = draw(st.sampled_from(formats))
    return fmt, draw(plate_of(fmt))
