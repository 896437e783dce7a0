"""Exporting evidence on SQLite and PostgreSQL: the package, its signature, its audit entry,
and what is refused (other zones, no video, bad input) without writing anything."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import stat
import subprocess
import zipfile
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from footage import (
    AUTHORITY,
    END,
    REFERENCE,
    START,
    T0,
    add_investigator_a,
    export,
    ffmpeg_missing,
    make_segments,
    principal,
    record,
)

from conftest import PURPOSE, World
from vigila.access import audit
from vigila.core import Forbidden, InvalidInput, NotFound
from vigila.evidence import installation_key, load_public_key, packages_dir
from vigila.evidence.keys import KEY_FILE

pytestmark = pytest.mark.skipif(ffmpeg_missing, reason="ffmpeg and ffprobe are needed")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return make_segments(tmp_path_factory.mktemp("footage"))


@pytest.fixture
def recorded(world: World, files: list[Path]) -> World:
    record(world.db, world.settings.recordings_root, files)
    return world


def _audit(world: World, action: str) -> list[dict[str, object]]:
    with world.db.read() as conn:
        return audit.entries(conn, audit.AuditQuery(action=action), 100)


def test_export_writes_a_signed_package_and_audits_it(recorded: World) -> None:
    world = recorded
    made = export(world.db, world.settings, principal(world, "investigator"),
                  ["CAM-A1", "CAM-B1", "CAM-A2"])
    out = packages_dir(world.settings)
    assert made.name.startswith("Proc-pen-n-1234-2026-R-G-N-R-2")
    assert sorted(p.name for p in out.iterdir()) == [made.name, f"{made.name}.zip"]
    folder = made.folder
    names = {p.relative_to(folder).as_posix() for p in folder.rglob("*")}
    clip_a = f"clips/CAM-A1_{START:%Y%m%dT%H%M%SZ}_{END:%Y%m%dT%H%M%SZ}.mp4"
    clip_b = clip_a.replace("CAM-A1", "CAM-B1")
    assert names == {"manifest.json", "manifest.json.sig", "public-key.pem", "LEGGIMI.txt",
                     "clips", clip_a, clip_b}

    body = (folder / "manifest.json").read_bytes()
    manifest = json.loads(body)
    key = installation_key(world.settings.keys_dir)
    # The signature is Ed25519 over the exact bytes, checkable with the key alone.
    key.public.verify(base64.b64decode((folder / "manifest.json.sig").read_bytes()), body)
    assert manifest["signature"] == {"algorithm": "Ed25519", "key_id": key.key_id,
                                     "file": "manifest.json.sig", "encoding": "base64",
                                     "over": "the exact bytes of manifest.json"}
    assert (folder / "public-key.pem").read_bytes() == key.public_pem
    assert made.manifest_sha256 == hashlib.sha256(body).hexdigest()
    assert (manifest["format"], manifest["format_version"]) == ("vigila-evidence", 1)
    assert manifest["package"] == made.name
    assert manifest["operator"]["username"] == "investigator"
    assert manifest["operator"]["roles"] == ["investigator"]
    assert manifest["purpose"] == PURPOSE
    assert manifest["request"] == {"reference": REFERENCE, "authority": AUTHORITY}
    assert manifest["range"] == {"start": "2026-11-25T10:00:01.000000Z",
                                 "end": "2026-11-25T10:00:11.000000Z"}
    assert manifest["software"] == {"name": "Vigila", "version": "test"}

    a1, b1, a2 = manifest["cameras"]
    # Starts on the key frame before 10:00:01, ends with the frame that reaches 10:00:11.
    assert a1["clip"]["file"] == clip_a
    assert (a1["clip"]["start"], a1["clip"]["end"]) == ("2026-11-25T10:00:00.000000Z",
                                                        "2026-11-25T10:00:11.000000Z")
    assert a1["clip"]["bytes"] == (folder / clip_a).stat().st_size
    assert a1["clip"]["sha256"] == hashlib.sha256((folder / clip_a).read_bytes()).hexdigest()
    assert [s["path"][-12:] for s in a1["sources"]] == ["10/00.00.mp4", "10/00.04.mp4",
                                                        "10/00.08.mp4"]
    assert a1["gaps"] == []
    assert b1["video"] and len(b1["sources"]) == 2
    assert b1["gaps"] == [{"start": "2026-11-25T10:00:04.000000Z",
                           "end": "2026-11-25T10:00:08.000000Z",
                           "reason": "connection refused"}]
    assert a2 == {"camera": "CAM-A2", "name": "Dispositivo CAM-A2", "video": False,
                  "clip": None, "sources": [], "gaps": [{
                      "start": "2026-11-25T10:00:01.000000Z",
                      "end": "2026-11-25T10:00:11.000000Z", "reason": "no recording"}]}
    listed = {f["path"]: f["sha256"] for f in manifest["files"]}
    assert set(listed) == {"LEGGIMI.txt", clip_a, clip_b}
    readme = (folder / "LEGGIMI.txt").read_text()
    assert "Come verificare" in readme and "How to verify" in readme
    assert "11:00:01 ora italiana" in readme and key.key_id in readme

    # The zip holds the same files, stored, under the package's name.
    with zipfile.ZipFile(made.zip_path) as archive:
        members = {i.filename: i for i in archive.infolist()}
        assert set(members) == {f"{made.name}/{n}" for n in names if n != "clips"}
        assert {i.compress_type for i in members.values()} == {zipfile.ZIP_STORED}
        assert archive.read(f"{made.name}/manifest.json") == body

    [entry] = _audit(world, "evidence.export")
    assert entry["actor"] == "investigator"
    assert (entry["purpose"], entry["reference"]) == (PURPOSE["text"], PURPOSE["reference"])
    assert entry["recipient"] == AUTHORITY
    assert entry["resource"] == f"evidence:{made.name}"
    assert entry["detail"] == {
        "cameras": ["CAM-A1", "CAM-B1", "CAM-A2"], "reference": REFERENCE,
        "authority": AUTHORITY, "package": made.name, "manifest_sha256": made.manifest_sha256,
        "range": manifest["range"], "no_video": ["CAM-A2"]}

    # Independent of Vigila: what LEGGIMI.txt tells the recipient to run.
    if shutil.which("openssl"):
        (folder.parent / "key.pem").write_bytes(key.public_pem)
        (folder.parent / "sig.bin").write_bytes(
            base64.b64decode((folder / "manifest.json.sig").read_bytes()))
        checked = subprocess.run(
            ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(folder.parent / "key.pem"),
             "-rawin", "-in", str(folder / "manifest.json"), "-sigfile",
             str(folder.parent / "sig.bin")], capture_output=True, text=True, check=False)
        assert checked.returncode == 0, checked.stderr

    # The same request again gets a package of its own.
    again = export(world.db, world.settings, principal(world, "supervisor"), ["CAM-A1"])
    assert again.name != made.name and again.folder.is_dir()


def test_installation_key_is_private_and_never_replaced(recorded: World) -> None:
    keys = recorded.settings.keys_dir
    first = installation_key(keys)
    path = keys / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    assert installation_key(keys).key_id == first.key_id
    assert load_public_key(first.public_pem) == first.public
    with pytest.raises(InvalidInput, match="not a PEM public key"):
        load_public_key(b"-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")
    ec_key = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(InvalidInput, match="not an Ed25519 public key"):
        load_public_key(ec_key)
    assert len(first.key_id) == 16


def test_other_zones_and_unknown_cameras_are_not_found(recorded: World) -> None:
    world = recorded
    who = principal(world, add_investigator_a(world))
    for cameras in (["CAM-B1"], ["CAM-A1", "CAM-B1"], ["CAM-NONE"], ["NVR-A"], ["CAM-X"]):
        with pytest.raises(NotFound, match="no camera"):
            export(world.db, world.settings, who, cameras)
    with pytest.raises(Forbidden):  # an operator sees video but does not export it
        export(world.db, world.settings, principal(world, "operator_a"), ["CAM-A1"])
    with pytest.raises(Forbidden):
        export(world.db, world.settings, principal(world, "judge"), ["CAM-A1"])
    assert not packages_dir(world.settings).exists()
    assert _audit(world, "evidence.export") == []
    # Its own zone it exports.
    assert export(world.db, world.settings, who, ["CAM-A1"]).cameras[0].video


def test_no_video_at_all_is_not_found(recorded: World) -> None:
    world = recorded
    who = principal(world, "investigator")
    later = T0 + timedelta(hours=1)
    with pytest.raises(NotFound, match="no video for CAM-A1, CAM-A2 between"):
        export(world.db, world.settings, who, ["CAM-A1", "CAM-A2"], start=later,
               end=later + timedelta(minutes=1))
    with pytest.raises(NotFound):
        export(world.db, world.settings, who, ["CAM-A2"])
    out = packages_dir(world.settings)
    assert not out.exists() or list(out.iterdir()) == []
    assert _audit(world, "evidence.export") == []


def test_bad_requests_are_refused(recorded: World) -> None:
    who = principal(recorded, "investigator")
    for cameras, start, end, message in (
        (["CAM-A1"], datetime(2026, 11, 25, 10, 0), END, "UTC offset"),
        (["CAM-A1"], END, START, "after the start"),
        (["CAM-A1"], START, START + timedelta(hours=5), "at most 4 hours"),
        (["CAM-A1", "CAM-A1"], START, END, "twice"),
        ([], START, END, "at least one"),
        (["../CAM-A1"], START, END, "bad camera id"),
    ):
        with pytest.raises(InvalidInput, match=message):
            export(recorded.db, recorded.settings, who, cameras, start=start, end=end)
    assert not packages_dir(recorded.settings).exists()
