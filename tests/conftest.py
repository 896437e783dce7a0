"""Test set-up: every storage test runs on SQLite and on a real PostgreSQL.

PostgreSQL is a throw-away cluster on a free loopback port (tests/pgserver.py),
started once per test process; each test gets a fresh database cloned from a
migrated template, and a fresh SQLite file copied from a migrated one.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pgserver import PostgresServer
from vigila import registry
from vigila.access import Principal, Role, hasher, users
from vigila.api import create_app
from vigila.core import Settings
from vigila.store import Database, upgrade

TEMPLATE = "vigila_template"
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        url = server.create_database(TEMPLATE)
        db = Database(url, pool=False)
        upgrade(db)
        db.dispose()
        yield server


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "vigila.db"
    db = Database(f"sqlite:///{path}")
    upgrade(db)
    db.dispose()  # the last connection to close folds the WAL back into the file
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        target = tmp_path / "vigila.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), target)
        yield f"sqlite:///{target}"
        return
    server: PostgresServer = request.getfixturevalue("pg_server")
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = server.create_database(name, template=TEMPLATE)
    yield url
    server.drop_database(name)


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    # Light argon2 parameters keep the suite fast; test_auth checks the real defaults.
    return Settings(data_dir=tmp_path / "data", database_url=db_url,
                    argon2_time_cost=1, argon2_memory_kib=1024)


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = Database(settings.database_url)
    yield database
    database.dispose()


CONSOLE = Principal.console("tests")

SQUARE_A = {"type": "Polygon", "coordinates": [[[11.09, 43.87], [11.10, 43.87], [11.10, 43.88],
                                                [11.09, 43.88], [11.09, 43.87]]]}
SQUARE_B = {"type": "Polygon", "coordinates": [[[11.11, 43.89], [11.12, 43.89], [11.12, 43.90],
                                                [11.11, 43.90], [11.11, 43.89]]]}


def device(device_id: str, zone: str | None, kind: str = "camera", **extra: Any) -> dict[str, Any]:
    lat, lon = (43.875, 11.095) if zone != "zona-b" else (43.895, 11.115)
    return {"id": device_id, "kind": kind, "name": f"Dispositivo {device_id}", "lat": lat,
            "lon": lon, "zone_id": zone, "agency_id": "pl-test", **extra}


@dataclass
class World:
    """A small city: two zones, a few devices, one user per role, logged in."""

    client: TestClient
    settings: Settings
    db: Database
    tokens: dict[str, str] = field(default_factory=dict)
    user_ids: dict[str, int] = field(default_factory=dict)

    def headers(self, who: str, **purpose: str) -> dict[str, str]:
        h = {"Authorization": f"Bearer {self.tokens[who]}"}
        if purpose:
            h["Vigila-Purpose"] = purpose["text"]
            h["Vigila-Reference"] = purpose["reference"]
        return h

    def login(self, username: str, password: str = PASSWORD) -> str:
        r = self.client.post("/api/auth/login", json={"username": username, "password": password})
        assert r.status_code == 200, r.text
        token: str = r.json()["token"]
        return token


PURPOSE = {"text": "verifica segnalazione furto", "reference": "RG 1234/2026"}

# username -> (roles, zones or None for all)
ACCOUNTS: dict[str, tuple[list[Role], list[str] | None]] = {
    "admin": ([Role.ADMINISTRATOR], None),
    "operator": ([Role.OPERATOR], None),
    "operator_a": ([Role.OPERATOR], ["zona-a"]),
    "admin_a": ([Role.ADMINISTRATOR], ["zona-a"]),
    "investigator": ([Role.INVESTIGATOR], None),
    "supervisor": ([Role.SUPERVISOR], None),
    "dpo": ([Role.DPO], None),
    "judge": ([Role.JUDICIAL_VIEWER], []),
    "reader": ([Role.READER], None),
}


def seed(db: Database, settings: Settings) -> dict[str, int]:
    ids = {}
    with db.write() as conn:
        registry.create_agency(conn, CONSOLE, registry.AgencyIn(
            id="pl-test", name="Polizia Locale di Prova", kind=registry.AgencyKind.POLIZIA_LOCALE))
        for zid, geometry, kind in (("zona-a", SQUARE_A, "centre"), ("zona-b", SQUARE_B, "school")):
            registry.create_zone(conn, CONSOLE, registry.ZoneIn.model_validate(
                {"id": zid, "name": zid.upper(), "kind": kind, "geometry": geometry}))
        for d in (device("NVR-A", "zona-a", "recording_server"),
                  device("NVR-B", "zona-b", "recording_server"),
                  device("CAM-A1", "zona-a", recording_server_id="NVR-A",
                         main_stream_url="rtsp://user:secret@127.0.0.1:8554/a1"),
                  device("CAM-A2", "zona-a", recording_server_id="NVR-A"),
                  device("CAM-B1", "zona-b", recording_server_id="NVR-B"),
                  device("LPR-B1", "zona-b", "plate_reader", anpr_vendor="tattile", lane=1,
                         direction="inbound", recording_server_id="NVR-B"),
                  device("CAM-X", None)):
            registry.create_device(conn, CONSOLE, registry.DeviceIn.model_validate(d))
        h = hasher(settings)
        for name, (roles, zones) in ACCOUNTS.items():
            ids[name] = users.create(conn, CONSOLE, users.UserCreate(
                username=name, full_name=name.title(), agency_id="pl-test", roles=roles,
                all_zones=zones is None, zone_ids=zones or [], password=PASSWORD), h).id
    return ids


@pytest.fixture
def world(settings: Settings, db: Database) -> Iterator[World]:
    app = create_app(settings, db)
    with TestClient(app) as client:
        # Tests write rows dated in the past; the purge at start must not race them.
        assert app.state.reads.first_pass_done.wait(60), "the minimisation pass at start hung"
        w = World(client, settings, db)
        w.user_ids = seed(db, settings)
        for name in ACCOUNTS:
            w.tokens[name] = w.login(name)
        yield w
