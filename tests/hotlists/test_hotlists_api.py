"""Hotlists over HTTP and from the command line: roles, purpose, import, problem+json."""

from __future__ import annotations

from pathlib import Path

import httpx
from typer.testing import CliRunner

from conftest import PURPOSE, World
from vigila.hotlists.cli import hotlist_app

PROBLEM = "application/problem+json"
LIST = {"id": "furti", "name": "Veicoli rubati", "kind": "stolen", "agency_id": "pl-test",
        "priority": 80, "policy": "one_substitution"}


def create(world: World, who: str = "supervisor") -> httpx.Response:
    return world.client.post("/api/hotlists", json=LIST, headers=world.headers(who))


def upload(world: World, body: str | bytes, ctype: str = "text/csv", who: str = "supervisor",
           **params: str) -> httpx.Response:
    return world.client.post("/api/hotlists/furti/import", content=body, params=params,
                             headers={**world.headers(who), "Content-Type": ctype})


def test_lists_and_roles(world: World) -> None:
    for who in ("operator", "investigator", "dpo"):
        assert create(world, who).status_code == 403
    r = create(world, "admin")
    assert r.status_code == 201, r.text
    assert r.json()["revision"] == 1 and r.json()["entry_count"] == 0
    assert create(world).status_code == 409
    assert world.client.get("/api/hotlists", headers=world.headers("operator")).json()[0][
        "id"] == "furti"
    assert world.client.get("/api/hotlists", headers=world.headers("judge")).status_code == 403
    r = world.client.patch("/api/hotlists/furti", json={"priority": 95},
                           headers=world.headers("supervisor"))
    assert r.status_code == 200 and r.json()["priority"] == 95, r.text
    r = world.client.patch("/api/hotlists/furti", json={"priority": 101},
                           headers=world.headers("supervisor"))
    assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM)
    r = world.client.get("/api/hotlists/nessuna", headers=world.headers("operator"))
    assert r.status_code == 404 and r.headers["content-type"].startswith(PROBLEM)


def test_entries_need_a_purpose_and_are_audited(world: World) -> None:
    create(world)
    r = world.client.post("/api/hotlists/furti/entries", headers=world.headers("supervisor"),
                          json={"plate": "ab 123 cd", "reason": "furto", "priority": 70})
    assert r.status_code == 201 and r.json()["plate"] == "AB123CD", r.text
    r = world.client.post("/api/hotlists/furti/entries", headers=world.headers("supervisor"),
                          json={"plate": "AB#123"})
    assert r.status_code == 422 and r.json()["field"] == "body.plate", r.text
    path = "/api/hotlists/furti/entries"
    assert world.client.get(path, headers=world.headers("operator")).status_code == 428
    assert world.client.get(path, headers=world.headers("admin", **PURPOSE)).status_code == 403
    r = world.client.get(path, headers=world.headers("operator", **PURPOSE))
    assert r.status_code == 200 and [e["plate"] for e in r.json()["items"]] == ["AB123CD"]
    audit = world.client.get("/api/audit", params={"action": "hotlist.entries.read"},
                             headers=world.headers("dpo", **PURPOSE))
    assert audit.status_code == 200, audit.text
    entry = audit.json()["items"][0]
    assert entry["purpose"] == PURPOSE["text"] and entry["actor"] == "operator"
    r = world.client.delete(f"{path}/AB-123-CD", headers=world.headers("operator"))
    assert r.status_code == 403
    assert world.client.delete(f"{path}/AB-123-CD",
                               headers=world.headers("supervisor")).status_code == 204
    assert world.client.delete(f"{path}/AB123CD",
                               headers=world.headers("supervisor")).status_code == 404


def test_import_over_http(world: World) -> None:
    create(world)
    r = upload(world, "plate,priority\nAB123CD,90\nEF456GH,150\n")
    assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["errors"] == [{"field": "priority", "message": "150 is not between 0 and 100",
                               "row": 3}]
    r = upload(world, "plate,priority\nAB123CD,90\nEF456GH,150\n", good_rows="true")
    assert r.status_code == 200 and r.json()["added"] == 1 and r.json()["rejected"] == 1
    r = upload(world, "LM789NP\n", "text/plain; charset=utf-8", mode="replace")
    assert r.status_code == 200, r.text
    assert (r.json()["added"], r.json()["removed"]) == (1, 1)
    assert upload(world, "LM789NP\n", "application/json").status_code == 415
    assert upload(world, "LM789NP\n", mode="sostituisci").status_code == 422
    assert upload(world, "velocità\n".encode("latin-1"), "text/plain").status_code == 422
    assert upload(world, "LM789NP\n", "text/plain", who="operator").status_code == 403
    r = world.client.get("/api/hotlists/furti", headers=world.headers("operator"))
    assert r.json()["entry_count"] == 1 and r.json()["revision"] == 3


def test_command_line(world: World, tmp_path: Path) -> None:
    env = {"VIGILA_DATABASE_URL": world.settings.database_url,
           "VIGILA_DATA_DIR": str(world.settings.data_dir)}
    runner = CliRunner()
    result = runner.invoke(hotlist_app, ["create", "locale", "--name", "ZTL", "--kind", "local",
                                         "--agency", "pl-test", "--policy",
                                         "one_substitution"], env=env)
    assert result.exit_code == 0, result.output
    listed = tmp_path / "lista.csv"
    listed.write_text("plate,reason\nAB123CD,transito ZTL\nAB-12?,\n", encoding="utf-8")
    result = runner.invoke(hotlist_app, ["import", str(listed), "--list", "locale"], env=env)
    assert result.exit_code == 2 and "row 3, plate" in result.output, result.output
    assert "--good-rows" in result.output
    result = runner.invoke(hotlist_app, ["import", str(listed), "--list", "locale",
                                         "--good-rows"], env=env)
    assert result.exit_code == 0 and "1 added" in result.output, result.output
    result = runner.invoke(hotlist_app, ["list"], env=env)
    assert "locale\tlocal\tpl-test" in result.output and "entries=1" in result.output
    match = ["match", "AB123C0", "--purpose", "verifica transito", "--reference", "ZTL 9/26"]
    result = runner.invoke(hotlist_app, match, env=env)
    assert result.exit_code == 0 and "AB123CD\tlook-alike" in result.output, result.output
    result = runner.invoke(hotlist_app, [*match[:1], "ZZ999ZZ", *match[2:]], env=env)
    assert result.exit_code == 1 and "no hit" in result.output
