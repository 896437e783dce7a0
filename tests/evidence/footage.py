"""Recorded video for the evidence tests: real segments, indexed in a real database.

Segments are made once per module the way the recorder makes them (the simulated
cameras' clip, stream-copied into fragmented MP4 segments with timestamps reset): three
of 4 s, a key frame every 2 s. `record` lays them out in a world's recording root:

    CAM-A1 (zona-a)  00-04 04-08 08-12
    CAM-B1 (zona-b)  00-04 ----- 08-12   outage 04-08 "connection refused"
    CAM-A2 (zona-a)  nothing
"""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from conftest import CONSOLE, PASSWORD, PURPOSE, World, seed
from vigila.access import Principal, Purpose, Role, hasher, users
from vigila.core import Settings
from vigila.evidence import (
    EvidencePackage,
    SigningKey,
    export_evidence,
    installation_key,
    packages_dir,
)
from vigila.recording.index import insert_gap, insert_segment
from vigila.recording.probe import file_digest
from vigila.recording.recorder import Gap, Segment
from vigila.sim import clip as sim_clip
from vigila.store import Database

T0 = datetime(2026, 11, 25, 10, 0, 0, tzinfo=UTC)
START, END = T0 + timedelta(seconds=1), T0 + timedelta(seconds=11)
SEGMENT = 4
SMALL = sim_clip.ClipSpec("evidence-test", 320, 240, seconds=12, bitrate_kbps=300,
                          font_size=16)
REFERENCE = "Proc. pen. n. 1234/2026 R.G.N.R."
AUTHORITY = "Procura della Repubblica di Prato"
WHY = Purpose(PURPOSE["text"], PURPOSE["reference"])
ffmpeg_missing = shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None


def make_segments(folder: Path) -> list[Path]:
    raw = sim_clip.ensure_clip(folder / "cache", SMALL)
    out = folder / "segments"
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-framerate", "25", "-i", str(raw),
                    "-map", "0:v:0", "-c", "copy", "-f", "segment", "-segment_time",
                    str(SEGMENT), "-reset_timestamps", "1", "-segment_format", "mp4",
                    "-segment_format_options",
                    "movflags=+frag_keyframe+empty_moov+default_base_moof",
                    str(out / "seg-%03d.mp4")], check=True, timeout=60)
    files = sorted(out.glob("seg-*.mp4"))
    assert len(files) == 3
    return files


def record(db: Database, root: Path, files: list[Path]) -> None:
    layout = {"CAM-A1": [(0, files[0]), (4, files[1]), (8, files[2])],
              "CAM-B1": [(0, files[0]), (8, files[2])]}
    with db.write() as conn:
        for camera, pieces in layout.items():
            for offset, source in pieces:
                start = T0 + timedelta(seconds=offset)
                relative = f"{camera}/{start:%Y-%m-%d}/{start:%H}/{start:%M.%S}.mp4"
                (root / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, root / relative)
                size, digest = file_digest(root / relative)
                insert_segment(conn, Segment(camera, start, start + timedelta(seconds=SEGMENT),
                                             size, relative, digest))
        insert_gap(conn, Gap("CAM-B1", T0 + timedelta(seconds=4), T0 + timedelta(seconds=8),
                             "connection refused"))


def principal(world: World, name: str) -> Principal:
    who: Principal = world.client.app.state.vigila.auth.resolve(world.tokens[name], None)
    return who


def add_investigator_a(world: World) -> str:
    """An investigator granted zona-a only (the seeded zona-a user is an operator)."""
    with world.db.write() as conn:
        users.create(conn, CONSOLE, users.UserCreate(
            username="investigator_a", full_name="Investigator A", agency_id="pl-test",
            roles=[Role.INVESTIGATOR], zone_ids=["zona-a"], password=PASSWORD),
            hasher(world.settings))
    world.tokens["investigator_a"] = world.login("investigator_a")
    return "investigator_a"


def export(db: Database, settings: Settings, who: Principal, cameras: list[str], *,
           start: datetime = START, end: datetime = END) -> EvidencePackage:
    return export_evidence(
        db, who, WHY, root=settings.recordings_root, cameras=cameras, start=start,
        end=end, reference=REFERENCE, authority=AUTHORITY, out_dir=packages_dir(settings),
        key=installation_key(settings.keys_dir), software_version="test")


def standalone_package(base: Path, db_url: str) -> tuple[EvidencePackage, SigningKey]:
    """One package on a SQLite database of its own, for tests that only read packages."""
    settings = Settings(data_dir=base / "data", database_url=db_url, argon2_time_cost=1,
                        argon2_memory_kib=1024)
    db = Database(db_url)
    try:
        seed(db, settings)
        record(db, settings.recordings_root, make_segments(base))
        investigator = Principal(None, "investigator", "pl-test",
                                 frozenset({Role.INVESTIGATOR}), True)
        made = export(db, settings, investigator, ["CAM-A1", "CAM-B1", "CAM-A2"])
    finally:
        db.dispose()
    return made, installation_key(settings.keys_dir)
