"""What the benchmarks share: the file system they measured on, and their section of
docs/BENCHMARKS.md (each script owns one, from its heading to its end marker)."""

from __future__ import annotations

import contextlib
import os
import platform
import re
from collections.abc import Callable
from pathlib import Path


def disk_of(path: str | Path) -> str:
    """The file system a path is on, from /proc/mounts (the longest matching mount point)."""
    best = ("", "unknown", "unknown")
    target = str(Path(path).resolve())
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            device, point, kind = line.split()[:3]
            inside = target == point or target.startswith(point.rstrip("/") + "/")
            if inside and len(point) > len(best[0]):
                best = (point, device, kind)
    return f"{best[1]} ({best[2]})"


def cpu_name() -> str:
    """The processor's model name from /proc/cpuinfo, else what Python knows of it."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def _pattern(heading: str, end: str | None) -> re.Pattern[str]:
    # The section runs to its end marker; a section written before markers existed (or
    # one without them) runs to the next '## ' heading.
    upto = rf"(?:.*?{re.escape(end)}\n*|.*?(?=^## |\Z))" if end else r".*?(?=^## |\Z)"
    return re.compile(rf"^{re.escape(heading)}\n{upto}", re.S | re.M)


def current_section(path: Path, heading: str, end: str | None) -> str:
    """The section as it stands now, or "" (a benchmark may keep some of it)."""
    doc = path.read_text(encoding="utf-8") if path.exists() else ""
    found = _pattern(heading, end).search(doc)
    return found.group(0) if found else ""


def put_section(path: Path, heading: str, end: str | None, text: str,
                edit: Callable[[str], str] | None = None) -> None:
    """Replace the section (or append it), then `edit` the whole document if given; the
    file is replaced in one step, so a reader never sees half of it."""
    doc = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    found = _pattern(heading, end).search(doc)
    if found:
        doc = doc[:found.start()] + text + doc[found.end():]
    else:
        doc = doc.rstrip("\n") + "\n\n" + text
    if edit is not None:
        doc = edit(doc)
    doc = doc.rstrip("\n") + "\n"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(doc, encoding="utf-8")
    os.replace(tmp, path)
