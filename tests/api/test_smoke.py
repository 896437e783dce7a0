import os
import subprocess
import sys
from pathlib import Path

from conftest import World


def test_admin_lists_devices(world: World) -> None:
    r = world.client.get("/api/devices", headers=world.headers("admin"))
    assert r.status_code == 200
    assert {d["id"] for d in r.json()["items"]} == {
        "NVR-A", "NVR-B", "CAM-A1", "CAM-A2", "CAM-B1", "LPR-B1", "CAM-X"}


def test_the_server_entry_point_sets_the_startup_heap_aside(tmp_path: Path) -> None:
    """uvicorn's import of vigila.api.asgi freezes what exists at start and collects young
    objects less often (the collector cost a fifth of a read's CPU under ingest)."""
    probe = ("import gc, vigila.api.asgi; "
             "print(gc.get_freeze_count(), gc.get_threshold()[0])")
    env = {**os.environ, "VIGILA_DATA_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         env=env, timeout=120, check=True).stdout.split()
    assert int(out[0]) > 50_000 and out[1] == "20000", out
