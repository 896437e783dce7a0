"""`vigila evidence key|export|verify` on both databases, as an administrator would type them."""

from __future__ import annotations

from pathlib import Path

import pytest
from footage import END, REFERENCE, START, ffmpeg_missing, make_segments, record
from typer.testing import CliRunner

from conftest import World
from vigila.access import audit
from vigila.cli import app as cli
from vigila.evidence import installation_key, packages_dir

pytestmark = pytest.mark.skipif(ffmpeg_missing, reason="ffmpeg and ffprobe are needed")
runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return make_segments(tmp_path_factory.mktemp("footage"))


@pytest.fixture
def env(world: World, files: list[Path]) -> dict[str, str]:
    record(world.db, world.settings.recordings_root, files)
    return {"VIGILA_DATABASE_URL": world.settings.database_url,
            "VIGILA_DATA_DIR": str(world.settings.data_dir)}


def test_key_export_verify(world: World, env: dict[str, str], tmp_path: Path) -> None:
    result = runner.invoke(cli, ["evidence", "key"], env=env)
    assert result.exit_code == 0, result.output
    key = installation_key(world.settings.keys_dir)
    assert key.public_pem.decode() in result.output
    assert f"key id: {key.key_id}" in result.output
    pem = tmp_path / "vigila.pem"
    result = runner.invoke(cli, ["evidence", "key", "--out", str(pem)], env=env)
    assert result.exit_code == 0 and pem.read_bytes() == key.public_pem  # the same key

    result = runner.invoke(cli, [
        "evidence", "export", "--camera", "CAM-A1", "--camera", "CAM-B1",
        "--from", START.isoformat(), "--to", END.isoformat().replace("+00:00", "Z"),
        "--reference", REFERENCE, "--purpose", "richiesta della Procura",
        "--authority", "Procura di Prato"], env=env)
    assert result.exit_code == 0, result.output
    [archive] = packages_dir(world.settings).glob("*.zip")
    assert f"zip:     {archive}" in result.output
    assert "CAM-B1: clips/CAM-B1_" in result.output and "1 gaps" in result.output
    with world.db.read() as conn:
        [entry] = audit.entries(conn, audit.AuditQuery(action="evidence.export"), 10)
    assert entry["actor"].startswith("cli:")
    assert (entry["purpose"], entry["reference"]) == ("richiesta della Procura", REFERENCE)

    result = runner.invoke(cli, ["evidence", "verify", str(archive), "--key", str(pem)])
    assert result.exit_code == 0, result.output
    assert "VERIFICATO / VERIFIED" in result.output


def test_export_errors_exit_2_and_write_nothing(world: World, env: dict[str, str]) -> None:
    common = ["--reference", REFERENCE, "--purpose", "richiesta della Procura"]
    for args, message in (
        (["--camera", "CAM-NONE", "--from", START.isoformat(), "--to", END.isoformat()],
         "no camera 'CAM-NONE'"),
        (["--camera", "CAM-A1", "--from", "2026-11-25T10:00:00", "--to", END.isoformat()],
         "UTC offset"),
        (["--camera", "CAM-A1", "--from", "2026-11-26T10:00:00Z",
          "--to", "2026-11-26T10:01:00Z"], "no video for CAM-A1"),
    ):
        result = runner.invoke(cli, ["evidence", "export", *args, *common], env=env)
        assert result.exit_code == 2, result.output
        assert message in result.output
    assert not packages_dir(world.settings).exists() or not any(
        packages_dir(world.settings).iterdir())
