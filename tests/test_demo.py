"""`vigila demo` loads the sample city; `vigila serve` answers over real HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import sqlalchemy as sa
from typer.testing import CliRunner

from vigila.cli import app as cli
from vigila.store import Database


def test_demo_loads_the_sample_city_once(db_url: str, tmp_path: Path) -> None:
    env = {"VIGILA_DATABASE_URL": db_url, "VIGILA_DATA_DIR": str(tmp_path)}
    runner = CliRunner()
    first = runner.invoke(cli, ["demo", "--no-serve"], env=env)
    assert first.exit_code == 0, first.output
    assert "Illustrative data" in first.output and "/api/docs" in first.output
    creds = json.loads((tmp_path / "demo-credentials.json").read_text())
    assert oct((tmp_path / "demo-credentials.json").stat().st_mode)[-3:] == "600"
    assert creds["admin"] in first.output
    second = runner.invoke(cli, ["demo", "--no-serve"], env=env)
    assert second.exit_code == 0 and creds["admin"] in second.output
    db = Database(db_url)
    with db.read() as conn:
        count = dict(conn.execute(sa.text(
            "SELECT kind, count(*) FROM devices GROUP BY kind")).all())
        schools = conn.execute(sa.text("SELECT count(*) FROM zones WHERE kind = 'school'")).scalar()
    db.dispose()
    assert sum(count.values()) == 320
    assert count["plate_reader"] == 21 and count["recording_server"] == 3
    assert schools == 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_answers_over_http(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "VIGILA_DATA_DIR": str(tmp_path)}
    env.pop("VIGILA_DATABASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "vigila", "serve", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health") as r:
                    health = json.load(r)
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        assert health == {"status": "ok", "version": health["version"], "database": "sqlite"}
        assert (tmp_path / "vigila.db").exists()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/openapi.json") as r:
            assert "/api/devices" in json.load(r)["paths"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
