"""What ffprobe and a hash say of a segment file: readable length, size, SHA-256."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path


def probe_duration(path: Path, ffprobe: str = "ffprobe") -> float | None:
    """Seconds of video that can actually be read, or None when ffprobe cannot read it.

    ``format=duration`` alone over-states a cut fragmented MP4: the header of the last,
    truncated fragment still declares its full length. So the packets are read too and
    the smaller of the two is kept.
    """
    try:
        result = subprocess.run(
            [ffprobe, "-v", "error", "-select_streams", "v:0",
             "-show_entries", "format=duration:packet=pts_time,duration_time", "-of", "json",
             str(path)], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    try:
        data = json.loads(result.stdout)
        declared = float(data.get("format", {}).get("duration", "nan"))
        times = [(float(p["pts_time"]), float(p.get("duration_time", 0.0)))
                 for p in data.get("packets", []) if "pts_time" in p]
    except (ValueError, TypeError, AttributeError, KeyError):
        return None
    if not times:
        return None
    readable = max(pts + dur for pts, dur in times) - min(pts for pts, _ in times)
    duration = min(declared, readable) if declared == declared else readable  # NaN check
    return duration if duration > 0 else None


def file_digest(path: Path) -> tuple[int, str]:
    """Size in bytes and SHA-256, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
