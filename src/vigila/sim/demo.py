"""Load the sample city and demo accounts into an installation (for `vigila demo`)."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from argon2 import PasswordHasher

from vigila import registry
from vigila.access import Principal, Role, users
from vigila.registry.tables import devices
from vigila.sim.city import NOTICE, sample_city
from vigila.store import Database


@dataclass(frozen=True)
class DemoAccount:
    username: str
    full_name: str
    agency_id: str
    roles: tuple[Role, ...]
    zones: tuple[str, ...] | None  # None: every zone
    note: str


ACCOUNTS = (
    DemoAccount("admin", "Amministratore di sistema", "pl-prato", (Role.ADMINISTRATOR,), None,
                "amministratore / administrator"),
    DemoAccount("operatore", "Operatore centrale", "pl-prato", (Role.OPERATOR,), None,
                "operatore di centrale, tutte le zone / control-room operator, all zones"),
    DemoAccount("operatore.centro", "Operatore centro storico", "pl-prato", (Role.OPERATOR,),
                ("centro-storico",), "solo centro storico / centre only"),
    DemoAccount("supervisore", "Ufficiale di turno", "pl-prato", (Role.SUPERVISOR,), None,
                "supervisore / supervisor"),
    DemoAccount("investigatore", "Ispettore Questura", "ps-questura-prato", (Role.INVESTIGATOR,),
                None, "investigatore Polizia di Stato / investigator"),
    DemoAccount("carabiniere", "Maresciallo Carabinieri", "cc-prato", (Role.INVESTIGATOR,),
                ("periferia", "stazione-centrale"), "investigatore, due zone / two zones"),
    DemoAccount("dpo", "Responsabile protezione dati", "pl-prato", (Role.DPO,), None,
                "RPD / data-protection officer"),
    DemoAccount("procura", "Sostituto Procuratore", "ag-procura-prato", (Role.JUDICIAL_VIEWER,),
                (), "autorità giudiziaria / judicial authority"),
)


def load_sample_city(db: Database, hasher: PasswordHasher, data_dir: Path,
                     who: Principal) -> dict[str, str]:
    """Load once; later runs find the devices there and only return the passwords."""
    creds_file = data_dir / "demo-credentials.json"
    with db.read() as conn:
        loaded = conn.execute(sa.select(sa.func.count()).select_from(devices)).scalar()
    if loaded and creds_file.exists():
        stored: dict[str, str] = json.loads(creds_file.read_text())
        return stored
    city = sample_city()
    passwords = {a.username: secrets.token_urlsafe(9) for a in ACCOUNTS}
    with db.write() as conn:
        for agency in city.agencies:
            registry.create_agency(conn, who, registry.AgencyIn.model_validate(agency))
        for zone in city.zones:
            registry.create_zone(conn, who, registry.ZoneIn.model_validate(zone))
        report = registry.import_devices(conn, who, list(enumerate(city.devices, start=1)),
                                         good_rows=False, source="sample-city")
        if not report.committed:
            raise RuntimeError(f"sample city failed to load: {report.errors[:3]}")
        for a in ACCOUNTS:
            users.create(conn, who, users.UserCreate(
                username=a.username, full_name=a.full_name, agency_id=a.agency_id,
                roles=list(a.roles), all_zones=a.zones is None, zone_ids=list(a.zones or ()),
                password=f"demo-{passwords[a.username]}"), hasher)
    creds = {u: f"demo-{p}" for u, p in passwords.items()}
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(creds_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(creds, fh, indent=1)
    return creds


def banner(base_url: str, creds: dict[str, str], db_url: str) -> str:
    lines = [
        "",
        "Vigila — demo",
        f"  {NOTICE}",
        "",
        f"  API docs (Swagger):  {base_url}/api/docs",
        f"  OpenAPI:             {base_url}/api/openapi.json",
        f"  Health:              {base_url}/api/health",
        f"  Database:            {db_url}",
        "",
        "  Accounts (utente / password):",
    ]
    notes = {a.username: a.note for a in ACCOUNTS}
    for user, password in creds.items():
        lines.append(f"    {user:<18} {password:<20} {notes.get(user, '')}")
    lines += [
        "",
        "  Try / Prova:",
        f"    TOKEN=$(curl -s {base_url}/api/auth/login -H 'content-type: application/json' \\",
        f"      -d '{{\"username\":\"admin\",\"password\":\"{creds.get('admin', '')}\"}}' "
        "| python3 -c 'import sys,json;print(json.load(sys.stdin)[\"token\"])')",
        f"    curl -s -H \"Authorization: Bearer $TOKEN\" '{base_url}/api/devices?limit=5'",
        "",
    ]
    return "\n".join(lines)
