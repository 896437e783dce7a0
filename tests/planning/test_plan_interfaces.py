"""`vigila plan ...` and /api/plan: the same planners, reached as people and machines do."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from conftest import World
from vigila.cli import app as cli

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_reference_plan_answers_the_question(tmp_path: Path) -> None:
    env = {"VIGILA_DATA_DIR": str(tmp_path)}
    result = runner.invoke(cli, ["plan", "capacity", str(ROOT / "examples/reference-plan.yaml"),
                                 "--json"], env=env)
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert isinstance(plan["sufficient"], bool)
    table = runner.invoke(cli, ["plan", "capacity", str(ROOT / "examples/reference-plan.yaml")],
                          env=env)
    assert table.exit_code == 0 and "Mbit/s" in table.output


def test_unknown_key_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    text = (ROOT / "examples/reference-plan.yaml").read_text()
    bad.write_text(text.replace("nic_gbps", "nic_gbs", 1))
    result = runner.invoke(cli, ["plan", "capacity", str(bad)],
                           env={"VIGILA_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 2
    assert "nic_gbs" in result.output


def test_capacity_from_the_registry_over_the_api(world: World) -> None:
    r = world.client.get("/api/plan/capacity", headers=world.headers("admin"))
    assert r.status_code == 200, r.text
    assert r.json()["ingest_mbps"] > 0
    # A plan sums every zone: a user scoped to one zone may not see the totals.
    assert world.client.get("/api/plan/capacity",
                            headers=world.headers("operator_a")).status_code == 403


def test_capacity_what_if_over_the_api(world: World) -> None:
    import yaml

    doc = yaml.safe_load((ROOT / "examples/reference-plan.yaml").read_text())
    r = world.client.post("/api/plan/capacity", json=doc, headers=world.headers("admin"))
    assert r.status_code == 200, r.text
    doc["servers"]["nic_gbs"] = 10
    r = world.client.post("/api/plan/capacity", json=doc, headers=world.headers("admin"))
    assert r.status_code == 422 and "nic_gbs" in r.json()["field"]


def test_coverage_and_gates_from_the_command_line(tmp_path: Path) -> None:
    from test_coverage import greedy_trap

    (tmp_path / "cov.json").write_text(json.dumps(greedy_trap()))
    env = {"VIGILA_DATA_DIR": str(tmp_path)}
    result = runner.invoke(cli, ["plan", "coverage", str(tmp_path / "cov.json"),
                                 "--out", str(tmp_path / "out")], env=env)
    assert result.exit_code == 0, result.output
    assert "OPTIMAL" in result.output
    assert (tmp_path / "out/coverage.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "out/coverage.geojson").read_text())["type"] == \
        "FeatureCollection"
    result = runner.invoke(cli, ["plan", "gates", str(ROOT / "examples/gates-small.json"),
                                 "--out", str(tmp_path / "out"), "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["readers"]
    (tmp_path / "bad.json").write_text('{"roads": {"type": "Point"}}')
    result = runner.invoke(cli, ["plan", "gates", str(tmp_path / "bad.json"),
                                 "--out", str(tmp_path / "out")], env=env)
    assert result.exit_code == 2 and "error:" in result.output
