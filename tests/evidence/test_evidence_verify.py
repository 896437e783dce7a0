"""Verifying a package as its recipient would: with the given key, trusting nothing in it.

One package is exported per module (on a SQLite database of its own); each test
tampers with a copy, as a folder or as a zip, and `vigila evidence verify` is run on
some of them for its output and exit status.
"""

from __future__ import annotations

import base64
import json
import shutil
import stat
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from footage import AUTHORITY, REFERENCE, ffmpeg_missing, standalone_package
from typer.testing import CliRunner

from vigila.core import InvalidInput
from vigila.evidence import EvidencePackage, SigningKey, public_pem, verify_package
from vigila.evidence.cli import evidence_app

pytestmark = pytest.mark.skipif(ffmpeg_missing, reason="ffmpeg and ffprobe are needed")
runner = CliRunner()


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory,
         sqlite_template: Path) -> tuple[EvidencePackage, SigningKey]:
    base = tmp_path_factory.mktemp("package")
    shutil.copy(sqlite_template, base / "vigila.db")
    return standalone_package(base, f"sqlite:///{base / 'vigila.db'}")


@pytest.fixture
def package(made: tuple[EvidencePackage, SigningKey], tmp_path: Path) -> Path:
    """A copy of the package folder, to tamper with."""
    return Path(shutil.copytree(made[0].folder, tmp_path / made[0].name))


@pytest.fixture
def key(made: tuple[EvidencePackage, SigningKey]) -> bytes:
    return made[1].public_pem


def clip_of(folder: Path, camera: str = "CAM-A1") -> Path:
    [found] = (folder / "clips").glob(f"{camera}_*.mp4")
    return found


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x01
    path.write_bytes(bytes(data))


def rezip(folder: Path, target: Path, extra: Callable[[zipfile.ZipFile], None] | None = None,
          top: str | None = None) -> Path:
    """The folder as a zip (under `top`/ when given), plus whatever `extra` adds."""
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                name = path.relative_to(folder).as_posix()
                archive.write(path, f"{top}/{name}" if top else name)
        if extra is not None:
            extra(archive)
    return target


def test_the_exported_package_verifies(made: tuple[EvidencePackage, SigningKey],
                                       key: bytes) -> None:
    exported, signing = made
    for where in (exported.folder, exported.zip_path):
        report = verify_package(where, key)
        assert report.ok, report.problems
        assert report.signature_valid and report.key_id == signing.key_id
        assert report.problems == []
        assert sorted(report.files_checked) == sorted(
            ["LEGGIMI.txt", *(f"clips/{clip_of(exported.folder, c).name}"
                              for c in ("CAM-A1", "CAM-B1"))])
        custody = report.custody
        assert custody is not None
        assert (custody.package, custody.operator, custody.roles) == (
            exported.name, "investigator", ["investigator"])
        assert (custody.reference, custody.authority) == (REFERENCE, AUTHORITY)
        assert (custody.start, custody.end) == (exported.start, exported.end)
        assert custody.created_at == exported.created_at
        assert custody.key_id == signing.key_id
        assert [c.camera for c in custody.cameras] == ["CAM-A1", "CAM-B1", "CAM-A2"]
        assert custody.cameras == exported.cameras  # times, hashes, sources, gaps
        assert [g.reason for g in custody.cameras[1].gaps] == ["connection refused"]
        assert not custody.cameras[2].video
    # A zip with the files at its top level (no package folder) is as good.
    flat = rezip(exported.folder, exported.folder.parent / "flat.zip")
    assert verify_package(flat, key).ok
    flat.unlink()


def test_a_flipped_byte_in_a_clip_is_named(package: Path, key: bytes, tmp_path: Path) -> None:
    clip = clip_of(package)
    flip_byte(clip)
    name = f"clips/{clip.name}"
    report = verify_package(package, key)
    assert not report.ok and report.signature_valid
    assert report.problems == [f"{name}: SHA-256 differs from the manifest: the file was altered"]
    assert name not in report.files_checked and "LEGGIMI.txt" in report.files_checked
    # The same in a zip.
    archive = rezip(package, tmp_path / "tampered.zip", top=package.name)
    assert verify_package(archive, key).problems == report.problems
    # A clip cut short is named too.
    listed = {f["path"]: f["bytes"]
              for f in json.loads((package / "manifest.json").read_text())["files"]}
    clip.write_bytes(clip.read_bytes()[:1000])
    assert verify_package(package, key).problems == [
        f"{name}: 1000 bytes, the manifest says {listed[name]}"]


def test_an_edited_manifest_breaks_the_signature(package: Path, key: bytes) -> None:
    manifest = package / "manifest.json"
    manifest.write_text(manifest.read_text().replace(AUTHORITY, "Procura di Firenze"))
    report = verify_package(package, key)
    assert not report.ok and not report.signature_valid
    assert report.custody is None  # nothing unsigned is shown as custody
    [problem] = report.problems
    assert problem.startswith("manifest.json.sig: the signature does not match manifest.json")


def test_another_key_fails(package: Path) -> None:
    other = public_pem(Ed25519PrivateKey.generate().public_key())
    report = verify_package(package, other)
    assert not report.ok and not report.signature_valid and report.custody is None
    # The copy of the key inside the package is never what is trusted.
    (package / "public-key.pem").write_bytes(other)
    assert not verify_package(package, other).ok


def test_unlisted_and_missing_files_are_reported(package: Path, key: bytes) -> None:
    (package / "clips" / "extra.mp4").write_bytes(b"not evidence")
    (package / "notes.txt").write_text("added later")
    clip = clip_of(package, "CAM-B1")
    clip.unlink()
    report = verify_package(package, key)
    assert not report.ok
    assert sorted(report.problems) == sorted([
        f"clips/{clip.name}: missing",
        "clips/extra.mp4: not listed in manifest.json (an extra file in the clips folder)",
        "notes.txt: not listed in manifest.json"])


def test_links_in_a_folder_are_refused(package: Path, key: bytes, tmp_path: Path) -> None:
    clip = clip_of(package)
    real = tmp_path / "elsewhere.mp4"
    clip.rename(real)
    clip.symlink_to(real)  # same bytes, but through a link
    report = verify_package(package, key)
    assert not report.ok
    assert f"clips/{clip.name}: a symbolic link, refused" in report.problems
    assert f"clips/{clip.name}: missing" in report.problems


@pytest.mark.parametrize("evil", ["../escaped.txt", "/tmp/absolute.txt", "pkg/../../up.txt",
                                  "C:/drive.txt", "pkg\\..\\back.txt", "link"])
def test_zips_with_path_tricks_are_refused(package: Path, key: bytes, tmp_path: Path,
                                           evil: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def add(archive: zipfile.ZipFile) -> None:
        info = zipfile.ZipInfo(evil)
        if evil == "link":  # a symbolic link member pointing out of the package
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
        else:
            archive.writestr(info, "payload")

    archive = rezip(package, tmp_path / "evil.zip", add)
    monkeypatch.chdir(tmp_path)  # where a naive extraction would write
    report = verify_package(archive, key)
    assert not report.ok and report.custody is None
    assert len(report.problems) == 1 and "refused" in report.problems[0]
    assert repr(evil) in report.problems[0]
    assert {p.name for p in tmp_path.iterdir()} == {"evil.zip", package.name}


def test_a_signed_manifest_cannot_point_outside(package: Path, made: tuple[EvidencePackage,
                                                                          SigningKey],
                                                key: bytes) -> None:
    """Even a manifest the right key signed never makes verify read outside the package."""
    manifest = json.loads((package / "manifest.json").read_text())
    manifest["files"].append({"path": "../../etc/passwd", "bytes": 1, "sha256": "0" * 64})
    body = json.dumps(manifest).encode()
    (package / "manifest.json").write_bytes(body)
    (package / "manifest.json.sig").write_bytes(base64.b64encode(made[1].sign(body)))
    report = verify_package(package, key)
    assert report.signature_valid and not report.ok
    assert report.problems == ["unsafe file name in manifest.json, refused: '../../etc/passwd'"]


def test_unusable_input(package: Path, key: bytes, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="not a PEM public key"):
        verify_package(package, b"garbage")
    with pytest.raises(InvalidInput, match="neither a package folder nor a"):
        verify_package(tmp_path / "nothing-here", key)
    (tmp_path / "not.zip").write_bytes(b"PK not really")
    with pytest.raises(InvalidInput, match="not a readable zip"):
        verify_package(tmp_path / "not.zip", key)
    (package / "manifest.json.sig").unlink()
    assert verify_package(package, key).problems == ["manifest.json.sig: missing"]


def test_cli_verify_prints_custody_and_exits_by_outcome(package: Path, key: bytes,
                                                        tmp_path: Path) -> None:
    key_file = tmp_path / "chiave.pem"
    key_file.write_bytes(key)
    result = runner.invoke(evidence_app, ["verify", str(package), "--key", str(key_file)])
    assert result.exit_code == 0, result.output
    for text in ("Firma / Signature:", "valida / valid", "Catena di custodia / Chain of custody",
                 "Operatore / Operator:", "investigator", REFERENCE, AUTHORITY,
                 "Telecamera / Camera CAM-B1", "Interruzione / Gap", "connection refused",
                 "nessun video nell'intervallo / no video in the range",
                 "ora italiana", "Esito / Result: VERIFICATO / VERIFIED"):
        assert text in result.output, text

    clip = clip_of(package)
    flip_byte(clip)
    result = runner.invoke(evidence_app, ["verify", str(package), "--key", str(key_file)])
    assert result.exit_code == 1
    assert f"clips/{clip.name}: SHA-256 differs" in result.output
    assert "NON VERIFICATO / NOT VERIFIED" in result.output

    other = tmp_path / "other.pem"
    other.write_bytes(public_pem(Ed25519PrivateKey.generate().public_key()))
    result = runner.invoke(evidence_app, ["verify", str(package), "--key", str(other)])
    assert result.exit_code == 1 and "NON VALIDA / NOT VALID" in result.output
    assert "Catena di custodia" not in result.output

    for args in ([str(package), "--key", str(tmp_path / "missing.pem")],
                 [str(tmp_path / "missing"), "--key", str(key_file)],
                 [str(package), "--key", str(package / "LEGGIMI.txt")]):
        result = runner.invoke(evidence_app, ["verify", *args])
        assert result.exit_code == 2, (args, result.output)
        assert "error" in result.output
