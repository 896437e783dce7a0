"""The audit chain: every change is logged, and any alteration is found."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from conftest import PURPOSE, World
from vigila.access import audit
from vigila.cli import app as cli
from vigila.store import Database

runner = CliRunner()


def _verify_cli(db: Database, *args: str) -> Any:
    return runner.invoke(cli, ["audit", "verify", *args],
                         env={"VIGILA_DATABASE_URL": db.url})


def _tamper(db: Database, sql: str) -> None:
    """What a DBA bypassing the application could do: disable the guard, then write."""
    with db.engine.connect() as conn:
        if db.dialect == "postgresql":
            conn.execute(sa.text("SET session_replication_role = replica"))  # skips triggers
        else:
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_log_no_update")
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_log_no_delete")
        conn.execute(sa.text(sql))
        conn.commit()


def _entries(db: Database) -> list[dict[str, Any]]:
    with db.read() as conn:
        return [dict(r) for r in conn.execute(sa.text(
            "SELECT seq, action, resource, actor FROM audit_log ORDER BY seq")).mappings()]


def _make_history(world: World) -> None:
    h = world.headers("admin")
    r = world.client.patch("/api/devices/CAM-A2", json={"name": "Piazza Duomo"}, headers=h)
    assert r.status_code == 200
    r = world.client.post("/api/devices/CAM-A2/retire", json={"reason": "guasto"}, headers=h)
    assert r.status_code == 200


def test_changes_logins_and_reads_are_logged(world: World) -> None:
    _make_history(world)
    r = world.client.get("/api/audit?action=device.", headers=world.headers("dpo", **PURPOSE))
    assert r.status_code == 200
    actions = [(e["action"], e["resource"], e["actor"]) for e in r.json()["items"]]
    assert ("device.update", "device/CAM-A2", "admin") in actions
    assert ("device.retire", "device/CAM-A2", "admin") in actions
    entries = _entries(world.db)
    assert any(e["action"] == "auth.login" and e["actor"] == "dpo" for e in entries)
    assert any(e["action"] == "user.create" for e in entries)
    # The consultation itself is logged, with why and the reference.
    with world.db.read() as conn:
        last = conn.execute(sa.text(
            "SELECT action, purpose, reference FROM audit_log ORDER BY seq DESC LIMIT 1")).one()
    assert tuple(last) == ("audit.read", PURPOSE["text"], PURPOSE["reference"])


def test_update_and_delete_are_refused_by_the_database(world: World) -> None:
    for statement in ("UPDATE audit_log SET actor = 'x' WHERE seq = 1",
                      "DELETE FROM audit_log WHERE seq = 1"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), world.db.write() as conn:
            conn.execute(sa.text(statement))
    if world.db.dialect == "postgresql":
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), world.db.write() as conn:
            conn.execute(sa.text("TRUNCATE audit_log"))
    assert _verify_cli(world.db).exit_code == 0


def test_verify_passes_on_an_untouched_chain(world: World) -> None:
    _make_history(world)
    result = _verify_cli(world.db)
    assert result.exit_code == 0, result.output
    assert "audit chain intact" in result.output


def test_altered_row_is_named(world: World) -> None:
    _make_history(world)
    target = next(e for e in _entries(world.db) if e["action"] == "device.update")["seq"]
    _tamper(world.db, f"UPDATE audit_log SET actor = 'nessuno' WHERE seq = {target}")
    result = _verify_cli(world.db)
    assert result.exit_code == 1
    assert f"BROKEN at entry {target}" in result.output
    assert "altered" in result.output


def test_removed_row_is_named(world: World) -> None:
    _make_history(world)
    _tamper(world.db, "DELETE FROM audit_log WHERE seq = 3")
    result = _verify_cli(world.db)
    assert result.exit_code == 1
    assert "BROKEN at entry 3" in result.output


def test_inserted_row_is_named(world: World) -> None:
    _make_history(world)
    with world.db.read() as conn:
        row = dict(conn.execute(sa.text("SELECT * FROM audit_log WHERE seq = 4")).mappings().one())
    # Shift the tail up by one and slip a forged entry in at 4, linked to 3.
    _tamper(world.db, "UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 4")
    _tamper(world.db, "UPDATE audit_log SET seq = seq - 999 WHERE seq >= 1004")
    forged = {**row, "actor": "intruso", "detail": json.dumps(row["detail"])
              if not isinstance(row["detail"], str) else row["detail"]}
    cols = ", ".join(forged)
    with world.db.engine.connect() as conn:
        if world.db.dialect == "postgresql":
            conn.execute(sa.text("SET session_replication_role = replica"))
        conn.execute(sa.text(f"INSERT INTO audit_log ({cols}) VALUES "
                             f"({', '.join(':' + c for c in forged)})"), forged)
        conn.commit()
    result = _verify_cli(world.db)
    assert result.exit_code == 1
    assert "BROKEN at entry 4" in result.output


def test_truncated_tail_is_found_against_a_recorded_head(world: World) -> None:
    with world.db.read() as conn:
        seq, digest = audit.head(conn)
    _tamper(world.db, f"DELETE FROM audit_log WHERE seq >= {seq - 1}")
    assert _verify_cli(world.db).exit_code == 0  # a shorter chain is still a chain...
    result = _verify_cli(world.db, "--expect-head", f"{seq}:{digest}")
    assert result.exit_code == 1  # ...but not the one recorded earlier
    assert "removed from the end" in result.output


def test_export_is_json_lines_that_verify_offline(world: World, tmp_path: Any) -> None:
    _make_history(world)
    r = world.client.get("/api/audit/export?recipient=Garante",
                         headers=world.headers("dpo", **PURPOSE))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/x-ndjson")
    lines = r.text.splitlines()
    assert len(lines) >= 10
    assert all(json.loads(line)["hash"] for line in lines)
    export = tmp_path / "audit.jsonl"
    export.write_text(r.text)
    assert runner.invoke(cli, ["audit", "verify", "--file", str(export)]).exit_code == 0
    rows = [json.loads(line) for line in lines]
    rows[5]["resource"] = "device/ALTRO"
    export.write_text("".join(json.dumps(x) + "\n" for x in rows))
    result = runner.invoke(cli, ["audit", "verify", "--file", str(export)])
    assert result.exit_code == 1
    assert f"entry {rows[5]['seq']}" in result.output
    # A filtered export has gaps: each entry and each adjacent link is still checked.
    r = world.client.get("/api/audit/export?action=device.",
                         headers=world.headers("dpo", **PURPOSE))
    export.write_text(r.text)
    result = runner.invoke(cli, ["audit", "verify", "--file", str(export)])
    assert result.exit_code == 0, result.output
    assert "gaps" in result.output
    rows = [json.loads(line) for line in r.text.splitlines()]
    rows[0]["actor"] = "qualcun altro"
    export.write_text("".join(json.dumps(x) + "\n" for x in rows))
    assert runner.invoke(cli, ["audit", "verify", "--file", str(export)]).exit_code == 1
    # The export is itself on the record, with its recipient.
    assert any(e["action"] == "audit.export" for e in _entries(world.db))


def test_no_api_can_change_the_log(world: World) -> None:
    spec = world.client.get("/api/openapi.json", headers=world.headers("admin")).json()
    for path, ops in spec["paths"].items():
        if path.startswith("/api/audit"):
            assert set(ops) == {"get"}, f"{path} offers {set(ops)}"


def test_concurrent_appends_keep_one_chain(world: World) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def patch(i: int) -> int:
        r = world.client.patch("/api/devices/CAM-A1", json={"notes": f"nota {i}"},
                               headers=world.headers("admin"))
        return r.status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        assert set(pool.map(patch, range(30))) == {200}
    with world.db.read() as conn:
        verdict = audit.verify(conn)
    assert verdict.ok, verdict.reason
    assert sum(1 for e in _entries(world.db) if e["action"] == "device.update") == 30
