"""The command line, on both databases: what an administrator at the server would type."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vigila.cli import app as cli

runner = CliRunner()


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> dict[str, str]:
    return {"VIGILA_DATABASE_URL": db_url, "VIGILA_DATA_DIR": str(tmp_path / "data")}


def run(env: dict[str, str], *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = runner.invoke(cli, list(args), env=env, input=stdin)
    return result.exit_code, result.output


def test_help_everywhere(env: dict[str, str]) -> None:
    code, out = run(env, "--help")
    assert code == 0
    for group in ("db", "audit", "agency", "zone", "device", "user", "plan", "sim"):
        code, out = run(env, group, "--help")
        assert code == 0 and "Usage" in out, group
    code, out = run(env, "device", "import", "--help")
    assert code == 0 and "--good-rows" in out


def test_registry_round_trip(env: dict[str, str], tmp_path: Path) -> None:
    assert run(env, "db", "upgrade")[0] == 0
    assert run(env, "agency", "create", "pl-x", "Polizia Locale X", "polizia_locale")[0] == 0
    zones = {"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {"id": "centro", "name": "Centro", "kind": "centre"},
        "geometry": {"type": "Polygon", "coordinates": [[[11, 43], [11.1, 43], [11.1, 43.1],
                                                         [11, 43.1], [11, 43]]]}}]}
    (tmp_path / "zones.geojson").write_text(json.dumps(zones))
    assert run(env, "zone", "import", str(tmp_path / "zones.geojson"))[0] == 0
    code, out = run(env, "zone", "import", str(tmp_path / "zones.geojson"))
    assert code == 2 and "feature 1" in out and "nothing imported" in out
    redrawn = zones["features"][0]["geometry"]
    (tmp_path / "redrawn.json").write_text(json.dumps(redrawn))
    code, out = run(env, "zone", "update", "centro", "--name", "Centro storico",
                    "--geometry", str(tmp_path / "redrawn.json"))
    assert code == 0, out
    assert "Centro storico" in run(env, "zone", "list")[1]
    assert run(env, "agency", "update", "pl-x", "--name", "Polizia Locale di X")[0] == 0
    assert "Polizia Locale di X" in run(env, "agency", "list")[1]
    code, out = run(env, "device", "create", "id=CAM-1", "kind=camera", "name=Via Roma",
                    "lat=43.05", "lon=11.05", "agency_id=pl-x", "zone_id=centro", "fps=25")
    assert code == 0, out
    assert json.loads(out)["fps"] == 25
    code, out = run(env, "device", "create", "id=CAM-2", "kind=camera", "name=X", "lat=143",
                    "lon=11", "agency_id=pl-x")
    assert code == 2 and "lat" in out
    code, out = run(env, "device", "update", "CAM-1", "heading=45", "notes=")
    assert code == 0 and json.loads(out)["heading"] == 45
    code, out = run(env, "device", "list")
    assert "CAM-1" in out and "centro" in out
    csv_file = tmp_path / "in.csv"
    csv_file.write_text("id,kind,name,lat,lon,agency_id,zone_id\n"
                        "CAM-3,camera,Uno,43.05,11.05,pl-x,centro\n"
                        "CAM-4,camera,Due,43.05,11.05,pl-x,altrove\n")
    code, out = run(env, "device", "import", str(csv_file))
    assert code == 2 and "row 3, zone_id" in out and "nothing imported" in out
    code, out = run(env, "device", "import", str(csv_file), "--good-rows")
    assert code == 0 and "1 imported, 1 rejected" in out
    code, out = run(env, "device", "export", "--format", "geojson")
    assert code == 0 and len(json.loads(out)["features"]) == 2
    assert run(env, "device", "retire", "CAM-3", "--reason", "test")[0] == 0
    code, out = run(env, "zone", "delete", "centro")
    assert code == 2 and "in use" in out
    code, out = run(env, "user", "create", "mario", "--agency", "pl-x", "--role", "operator",
                    "--zone", "centro", "--password-stdin", stdin="una password lunga\n")
    assert code == 0, out
    code, out = run(env, "user", "list")
    assert "mario" in out and "centro" in out
    code, out = run(env, "audit", "verify")
    assert code == 0 and "intact" in out
    code, out = run(env, "audit", "export", "--purpose", "richiesta del Garante",
                    "--reference", "prot. 42/2026", "--out", str(tmp_path / "a.jsonl"))
    assert code == 0, out
    actions = [json.loads(x)["action"] for x in (tmp_path / "a.jsonl").read_text().splitlines()]
    for action in ("agency.create", "zone.create", "device.create", "device.update",
                   "device.import", "device.retire", "user.create", "audit.verify"):
        assert action in actions, action


def test_audit_export_needs_a_purpose(env: dict[str, str], tmp_path: Path) -> None:
    code, out = run(env, "audit", "export", "--purpose", "", "--reference", "",
                    "--out", str(tmp_path / "a.jsonl"))
    assert code == 2 and "purpose" in out
    assert not (tmp_path / "a.jsonl").exists()


def test_unreadable_files_are_an_error_not_a_traceback(env: dict[str, str],
                                                       tmp_path: Path) -> None:
    (tmp_path / "bad.geojson").write_bytes(b"{not json")
    for args in (("zone", "import", str(tmp_path / "bad.geojson")),
                 ("device", "import", str(tmp_path / "missing.csv")),
                 ("device", "import", str(tmp_path / "bad.geojson"))):
        code, out = run(env, *args)
        assert code == 2, (args, out)
        assert "error:" in out
