"""Load the sample city and demo accounts into an installation (for `vigila demo`)."""

from __future__ import annotations

import json
import logging
import os
import random
import secrets
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa
from argon2 import PasswordHasher
from sqlalchemy.engine import Connection

from vigila import hotlists, registry
from vigila.access import Principal, Role, users
from vigila.access.tables import users as users_table
from vigila.hotlists.tables import hotlist_entries
from vigila.hotlists.tables import hotlists as hotlists_table
from vigila.registry.models import PLATE_READING, DeviceStatus
from vigila.registry.tables import devices
from vigila.sim.city import NOTICE, sample_city
from vigila.sim.reads import PlateFactory, ReaderInfo, lookalike
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
    DemoAccount("lettore.varchi", "Gateway lettori targhe dei varchi", "pl-prato",
                (Role.READER,), None, "lettori targhe: invia letture / plate readers: posts reads"),
)
READER_USERNAME = "lettore.varchi"
HOTLIST_ID = "demo-rubati"
HOTLIST_SIZE = 20
HIT_EVERY = 40  # one read in 40 is a listed plate exactly: an alarm every 20 s at 2 reads/s
_HOTLIST_SEED = 2026  # the same plates on every installation: a demo script can name them

_REASONS = (
    "Furto denunciato il {d} presso il Comando di Polizia Locale di Prato",
    "Furto su strada denunciato il {d} ai Carabinieri di Prato",
    "Veicolo provento di rapina, denuncia del {d} (Questura di Prato)",
    "Furto con chiavi sottratte in abitazione, denuncia del {d}",
    "Targhe rubate il {d}: possono essere montate su un altro veicolo",
    "Noleggio non restituito, appropriazione indebita denunciata il {d}",
    "Furto in parcheggio di centro commerciale, denuncia del {d}",
)


@dataclass(frozen=True)
class DemoReads:
    """What the read simulator needs: the reader account, the readers, the hotlist."""

    username: str
    password: str | None  # None: the account predates this data directory's credentials
    readers: list[ReaderInfo]
    hotlist_id: str
    hotlist_plates: list[str]


def load_sample_city(db: Database, hasher: PasswordHasher, data_dir: Path,
                     who: Principal) -> dict[str, str]:
    """Load once; later runs find the devices there and only return the passwords (after
    adding what a newer Vigila's demo has and this installation lacks: accounts, the demo
    hotlist)."""
    creds_file = data_dir / "demo-credentials.json"
    with db.read() as conn:
        loaded = conn.execute(sa.select(sa.func.count()).select_from(devices)).scalar()
    if loaded and creds_file.exists():
        stored: dict[str, str] = json.loads(creds_file.read_text())
        with db.write() as conn:
            added = _missing_accounts(conn, who, hasher, stored)
            _ensure_hotlist(conn, who)
        if added:
            _save(creds_file, {**stored, **added})
        return {**stored, **added}
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
        _ensure_hotlist(conn, who)
    creds = {u: f"demo-{p}" for u, p in passwords.items()}
    _save(creds_file, creds)
    return creds


def _save(creds_file: Path, creds: dict[str, str]) -> None:
    creds_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(creds_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(creds, fh, indent=1)


def _missing_accounts(conn: Connection, who: Principal, hasher: PasswordHasher,
                      creds: dict[str, str]) -> dict[str, str]:
    """Create the demo accounts this installation lacks; their passwords."""
    existing = set(conn.execute(sa.select(users_table.c.username)).scalars())
    added = {}
    for a in ACCOUNTS:
        if a.username in existing or a.username in creds:
            continue
        password = f"demo-{secrets.token_urlsafe(9)}"
        users.create(conn, who, users.UserCreate(
            username=a.username, full_name=a.full_name, agency_id=a.agency_id,
            roles=list(a.roles), all_zones=a.zones is None, zone_ids=list(a.zones or ()),
            password=password), hasher)
        added[a.username] = password
    return added


def hotlist_entries_for_demo() -> list[hotlists.EntryIn]:
    """The demo hotlist's plates (generated, the same every time) with Italian reasons.

    Each has an 0, 8, 5, B or S, so the simulator can misread it into an OCR look-alike."""
    rng = random.Random(_HOTLIST_SEED)
    plates = PlateFactory(rng)
    chosen: list[str] = []
    while len(chosen) < HOTLIST_SIZE:
        plate = plates.italian_motorcycle() if len(chosen) % 10 == 9 else plates.italian_car()
        if plate not in chosen and lookalike(plate, rng) is not None:
            chosen.append(plate)
    first = date(2026, 1, 7)
    return [hotlists.EntryIn(
        plate=plate, country="IT",
        reason=rng.choice(_REASONS).format(
            d=(first + timedelta(days=rng.randint(0, 300))).strftime("%d/%m/%Y")))
        for plate in chosen]


def _ensure_hotlist(conn: Connection, who: Principal) -> None:
    found = conn.execute(sa.select(hotlists_table.c.id)
                         .where(hotlists_table.c.id == HOTLIST_ID)).first()
    if found is not None:
        return
    hotlists.create_hotlist(conn, who, hotlists.HotlistIn(
        id=HOTLIST_ID, name="Veicoli rubati (demo)", kind=hotlists.HotlistKind.STOLEN,
        agency_id="pl-prato", priority=80, policy=hotlists.LookalikePolicy.ONE_SUBSTITUTION))
    for entry in hotlist_entries_for_demo():
        hotlists.add_entry(conn, who, HOTLIST_ID, entry)


def demo_reads(db: Database, creds: dict[str, str]) -> DemoReads:
    """The plate readers in service, the demo hotlist's plates, the reader account."""
    d, e = devices.c, hotlist_entries.c
    with db.read() as conn:
        readers = [ReaderInfo(r.id, r.direction, r.lane) for r in conn.execute(
            sa.select(d.id, d.direction, d.lane)
            .where(d.kind.in_(sorted(k.value for k in PLATE_READING)),
                   d.status.in_([DeviceStatus.ACTIVE.value, DeviceStatus.MAINTENANCE.value]))
            .order_by(d.id))]
        plates = list(conn.execute(sa.select(e.plate).where(e.hotlist_id == HOTLIST_ID)
                                   .order_by(e.plate)).scalars())
    return DemoReads(READER_USERNAME, creds.get(READER_USERNAME), readers, HOTLIST_ID, plates)


def banner(base_url: str, creds: dict[str, str], db_url: str, reads: DemoReads | None = None,
           reads_per_second: float = 0, hit_every: int = 0) -> str:
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
    if reads is not None and reads_per_second > 0:
        every = (f" una lettura su {hit_every} / one read in {hit_every}," if hit_every
                 else "")
        lines += [
            f"  Letture targhe simulate / Simulated plate reads: {reads_per_second:g}/s, "
            f"{len(reads.readers)} lettori / readers, utente / user {reads.username}",
            f"    Lista / Hotlist:     {reads.hotlist_id}, {len(reads.hotlist_plates)} targhe "
            f"rubate / stolen plates:{every} più sosia OCR / plus OCR look-alikes",
            f"    Letture / Reads:     POST {base_url}/api/reads",
            f"    Allarmi / Alarms:    {base_url}/api/alarms",
            f"    In diretta / Live:   {base_url}/api/alarms/stream   (SSE)",
            f"    Passaggi / Transits: {base_url}/api/transits?plate=...",
            "    (come / as supervisore o operatore, con finalità / with a purpose: "
            "headers Vigila-Purpose, Vigila-Reference)",
            "",
        ]
    return "\n".join(lines)


class _QuietReadPosts(logging.Filter):
    """Drops uvicorn's access-log lines of reads posted and taken: at a few a second they
    would bury everything else; the simulator reports its counts instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 5:
            method, path, status = args[1], str(args[2]), args[4]
            if method == "POST" and path.startswith("/api/reads") and status in (200, 201):
                return False
        return True


def quiet_demo_logging() -> None:
    """For `vigila demo`: the simulator's messages on stderr, the reads' access log off."""
    logging.getLogger("uvicorn.access").addFilter(_QuietReadPosts())
    sim_log = logging.getLogger("vigila.sim.reads")
    if not sim_log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     [letture] %(message)s"))
        sim_log.addHandler(handler)
        sim_log.setLevel(logging.INFO)
        sim_log.propagate = False
