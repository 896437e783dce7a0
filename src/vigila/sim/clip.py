"""The clip the simulated cameras replay, made once with ffmpeg and cached.

A synthetic scene (ffmpeg's ``testsrc2``, no people and no plates) with a
time code burned in, encoded the way a city camera streams: H.264 High, no
B-frames, a key frame every 2 s, about 4 Mbit/s at 1080p25 for the main
stream, 640x360 for the sub stream.  The file is raw Annex-B H.264, which the
RTSP server (``rtsp_server.py``) splits into frames and replays without
decoding.  Encoding is done here once; replaying costs well under 1 % of a
core per stream where live encoding would cost ~40 %.

The file name carries a digest of the recipe, so a changed recipe makes a
new clip instead of reusing a stale one; files are written under a
temporary name and renamed into place.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from vigila.core import VigilaError

# fonts-dejavu-core (Debian) puts it here; the others are other distributions' homes.
FONT_CANDIDATES = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"),
    Path("/usr/share/fonts/dejavu/DejaVuSansMono.ttf"),
    Path("/usr/share/fonts/TTF/DejaVuSansMono.ttf"),
)


class ClipError(VigilaError):
    """The clip cannot be made: a tool or font is missing, or ffmpeg failed."""

    status = 503
    title = "Simulated camera clip unavailable"
    slug = "sim-clip-unavailable"


@dataclass(frozen=True)
class ClipSpec:
    """How a clip is encoded."""

    name: str  # "main" or "sub"
    width: int
    height: int
    fps: int = 25
    seconds: int = 12  # a whole number of GOPs, so the loop lands on a key frame
    gop_seconds: int = 2
    bitrate_kbps: int = 4000
    font_size: int = 64

    def __post_init__(self) -> None:
        if self.seconds % self.gop_seconds:
            raise ValueError("a clip must hold a whole number of GOPs")

    def filter_graph(self, font: Path) -> str:
        # Bottom left (testsrc2 prints its own small counter top left). drawtext's
        # escaping: ':' separates options, so the time code's colons are escaped.
        margin = max(8, self.font_size // 2)
        return (
            f"drawtext=fontfile='{font}':timecode='00\\:00\\:00\\:00':rate={self.fps}"
            f":fontsize={self.font_size}:fontcolor=white:box=1:boxcolor=black@0.6"
            f":boxborderw={max(4, self.font_size // 6)}:x={margin}:y=h-th-{margin}"
        )

    def ffmpeg_args(self, font: Path, output: Path) -> list[str]:
        return [
            "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
            "-f", "lavfi",
            "-i", f"testsrc2=size={self.width}x{self.height}:rate={self.fps}",
            "-t", str(self.seconds),
            "-vf", self.filter_graph(font),
            *self.encoder_args(output),
        ]  # fmt: skip

    def encoder_args(self, output: Path) -> list[str]:
        """ffmpeg's output options: how every simulated clip is encoded, whatever its input."""
        gop = self.fps * self.gop_seconds
        rate = f"{self.bitrate_kbps}k"
        return [
            "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high",
            "-pix_fmt", "yuv420p",
            "-bf", "0",  # like most IP cameras: frames in decode order, no reordering
            "-b:v", rate, "-maxrate", rate, "-bufsize", f"{2 * self.bitrate_kbps}k",
            "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
            # SPS/PPS before every key frame, so a client may start at any of them.
            "-x264-params", "repeat-headers=1",
            "-bsf:v", "h264_mp4toannexb",
            "-an", "-f", "h264", str(output),
        ]  # fmt: skip

    def file_name(self) -> str:
        recipe = "\0".join(self.ffmpeg_args(Path("FONT"), Path("OUT")))
        digest = hashlib.sha256(recipe.encode()).hexdigest()[:10]
        return f"clip-{self.name}-{self.width}x{self.height}p{self.fps}-{digest}.h264"


MAIN = ClipSpec("main", 1920, 1080, bitrate_kbps=4000, font_size=64)
SUB = ClipSpec("sub", 640, 360, bitrate_kbps=512, font_size=24)


def find_font() -> Path:
    for path in FONT_CANDIDATES:
        if path.is_file():
            return path
    raise ClipError(
        "no DejaVu Sans Mono font for the clip's time code (looked in "
        + ", ".join(str(p) for p in FONT_CANDIDATES)
        + "); install the Debian package fonts-dejavu-core (scripts/install-system.sh)"
    )


def find_ffmpeg() -> str:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise ClipError("ffmpeg is not installed; install the Debian package ffmpeg "
                        "(scripts/install-system.sh)")
    return ffmpeg


def publish(tmp: Path, target: Path) -> None:
    """Move a finished clip into place: readers see no clip or a whole one."""
    with tmp.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, target)


def ensure_clip(cache_dir: Path, spec: ClipSpec = MAIN) -> Path:
    """The clip for `spec` in `cache_dir`, encoding it first if it is not there."""
    target = cache_dir / spec.file_name()
    if target.is_file() and target.stat().st_size > 0:
        return target
    ffmpeg = find_ffmpeg()
    font = find_font()
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / f".{target.name}.{os.getpid()}.tmp"
    try:
        result = subprocess.run([ffmpeg, *spec.ffmpeg_args(font, tmp)],
                                capture_output=True, text=True, timeout=300, check=False)
        if result.returncode != 0 or not tmp.is_file() or tmp.stat().st_size == 0:
            raise ClipError(f"ffmpeg could not make the {spec.name} clip "
                            f"(exit {result.returncode}): {result.stderr.strip()[-2000:]}")
        publish(tmp, target)
    except subprocess.TimeoutExpired as exc:
        raise ClipError(f"ffmpeg took too long to make the {spec.name} clip") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return target
