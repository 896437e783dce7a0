"""Plate-read benchmark: ingest with a million-entry hotlist, alarm latency to the MQTT
broker, and transit search over ten million rows, on SQLite and PostgreSQL.

Set-up, the same for both databases: the migrated schema, one agency, 7 zones, 21 plate
readers, a READER account, and a hotlist of N plates (Italian AA000AA from the seed,
look-alike policy one_substitution) imported with `vigila.hotlists.import_entries`. Each
measurement then starts from a fresh copy of that database (a file copy on SQLite,
CREATE DATABASE ... TEMPLATE on PostgreSQL).

1. Ingest. The server is `python -m vigila serve` (uvicorn, one worker process, as
   shipped: h11, access log at info level to a file) in a process of its own on a free
   loopback port; the clients are threads of this process, each with its own keep-alive
   connection (http.client), logged in once as the READER. Reads are generated as a
   reader sends them (plate, device, time, event_id, confidence, direction, lane,
   country; no images): 1 % hit the hotlist (a fifth of them by one OCR look-alike), the
   rest miss. Batched: `{"reads": [...]}` of 1,000 reads from C clients for S seconds;
   single: one read per POST from C clients for S seconds. The rate is the reads the
   server answered "stored", over the wall time from the first request to the last
   answer. Beside it, in this process and one thread: the route's own steps
   (`Authenticator.resolve`, the JSON parse and validation of the route, `Ingest.ingest`,
   the response's `model_dump` and JSON), timed one by one, which shows where a read's
   time goes and what HTTP adds. The peer, the storage floor: the same rows, built as the
   ingest builds them, inserted in transactions of 1,000 by a bare SQLAlchemy executemany
   into the transits table, on SQLite also by the driver's executemany (the values bound
   by the column types before the clock starts), and on PostgreSQL also by COPY
   (psycopg), for S seconds of insert time each.
2. Alarm latency. Mosquitto (tests/mosquitto.py) on a free loopback port, the server with
   VIGILA_MQTT_URL set, a paho subscriber (QoS 1) on `vigila/alarms/#` in this process.
   Hotlist plates are posted one at a time as single reads while a background client
   posts misses at R reads/s (batches of R/10 every 0.1 s); the latency is from just
   before the POST to the alarm's arrival at the subscriber (both clocks
   `time.perf_counter` of this process). The peer is the broker's floor: a bare paho
   client publishing the same payload (QoS 1) to the same broker and subscriber, one at a
   time, under the same background load.
3. Search. T transits over 30 days to now are generated from the seed (21 readers; half
   the traffic from a pool of T/100 regular plates with log-normal frequencies, so some
   plates pass hundreds of times and the average regular ~50 times; 1 % of the regulars'
   reads are OCR look-alikes of the plate; the other half are plates seen once; every row
   has plate and context image paths and SHA-256, as readers with pictures leave them)
   and bulk-loaded: on PostgreSQL by COPY with the table's indexes and constraints
   dropped and re-created from their own definitions (then ANALYZE); on SQLite by
   executemany with the named indexes dropped and re-created (no ANALYZE: the app runs
   none). Then Q queries of each kind, on random plates: exact (a regular with 35-70
   transits, the newest 100 over the 30 days), prefix pattern `AB1*` (30 days), infix
   pattern `*12C*` (one day), look-alike (fuzzy=true, 30 days). Each query is run three
   ways, in rotating order: `vigila.reads.search.search_transits` in a write
   transaction, as the API runs it (the SELECT, the audit entry, the commit); the same
   `search_statement` through SQLAlchemy alone (no audit); and the peer, the same SQL
   through the bare driver (psycopg, sqlite3) with no ORM (for look-alike: its first
   page of rows by plate_key, before the distance filter). On SQLite the sweep is run
   at several sizes, each with a batched ingest run on that database; the largest size
   "served well" is the largest where exact p99 < 10 ms and batched ingest >= 10,000
   reads/s.

PostgreSQL is a throw-away cluster from tests/pgserver.py (default memory settings,
shared_buffers 128 MB); it starts with fsync off, which this benchmark switches back on
(fsync, synchronous_commit, full_page_writes, with ALTER SYSTEM) for every measurement,
bulk loads excepted, so that commits cost what they cost in service (--pg-no-fsync keeps
them off). SQLite runs as the app opens it: WAL, synchronous=NORMAL. Everything, the
data sets included, lies in the page cache of a machine with enough memory.

    python bench/plates.py --quick                     # small sizes, 10 s runs: a check
    python bench/plates.py --write-docs                # the full run (about an hour)
    python bench/plates.py --parts search --transits 1000000 --sqlite-sizes 1000000
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import cProfile
import http.client
import importlib
import io
import itertools
import json
import math
import os
import platform
import pstats
import queue
import random
import re
import shlex
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, cast

import paho.mqtt.client as paho
import psycopg
import sqlalchemy as sa
from benchdoc import current_section, disk_of, put_section
from paho.mqtt.enums import CallbackAPIVersion
from starlette.responses import JSONResponse, Response

from vigila import registry
from vigila.access import Authenticator, Principal, Purpose, Role, hasher, users
from vigila.api.app import settle_heap
from vigila.api.routes_reads import _json_reads
from vigila.core import EventBus, Settings
from vigila.hotlists import (
    FileFormat,
    HotlistIn,
    HotlistKind,
    ImportMode,
    LookalikePolicy,
    create_hotlist,
    import_entries,
)
from vigila.plates import CONFUSIONS, lookalikes
from vigila.reads import Ingest
from vigila.reads.ingest import time_ordered_id
from vigila.reads.search import search_statement, search_transits
from vigila.reads.search_models import TransitQuery
from vigila.reads.tables import transits
from vigila.store import Database, upgrade

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "BENCHMARKS.md"
SECTION = "## Plate reads (ingest, alarms, search)"
BEGIN = "<!-- begin: written by bench/plates.py --write-docs -->"
END = "<!-- end: bench/plates.py -->"
HOST = "127.0.0.1"
TICKS = os.sysconf("SC_CLK_TCK")
CONSOLE = Principal.console("bench")
AGENCY = "pl-bench"
HOTLIST = "rubati"
READER_USER = "lettore-bench"
PASSWORD = "correct horse battery staple, bench"
WHY = Purpose("benchmark: ricerca transiti", "BENCH/2026")
INVESTIGATOR = Principal(None, "bench-investigator", AGENCY, frozenset({Role.INVESTIGATOR}),
                         all_zones=True)

# Targets (issue point 9).
TARGET_BATCHED = 10_000  # reads/s
TARGET_ALARM_P99_MS = 50.0
TARGET_EXACT_MS = 10.0

LETTERS = "ABCDEFGHJKLMNPRSTVWXYZ"  # the Italian series skips I, O, Q, U
PAIRS = [a + b for a in LETTERS for b in LETTERS]
DIGITS = [f"{i:03d}" for i in range(1000)]
HIT_RATE = 0.01
LOOKALIKE_SHARE = 0.2  # of the hits
BATCH = 1000
SEARCH_LIMIT = 100
DAYS = 30
KINDS = ("exact", "prefix", "infix", "fuzzy")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- the installation: readers, accounts, the hotlist --------------------------------------


@dataclass(frozen=True)
class Reader:
    id: str
    zone: str
    direction: str
    lane: int
    vendor: str
    lat: float
    lon: float


READERS = tuple(
    Reader(f"LPR-{i + 1:02d}", f"varco-{i // 3 + 1}", ("inbound", "outbound")[i % 2],
           1 + (i // 2) % 2, ("hikvision", "tattile", "tattile")[i % 3],
           43.8605 + 0.01 * (i // 3) + 0.002 * (i % 3), 11.0805 + 0.002 * (i % 3))
    for i in range(21))
ZONES = sorted({r.zone for r in READERS})


def zone_square(index: int) -> dict[str, Any]:
    lat, lon = 43.86 + 0.01 * index, 11.08
    ring = [[lon, lat], [lon + 0.009, lat], [lon + 0.009, lat + 0.009], [lon, lat + 0.009],
            [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


def random_plate(rng: random.Random) -> str:
    return PAIRS[rng.randrange(484)] + DIGITS[rng.randrange(1000)] + PAIRS[rng.randrange(484)]


def unique_plates(n: int, rng: random.Random) -> list[str]:
    out: dict[str, None] = {}
    while len(out) < n:
        out[random_plate(rng)] = None
    return list(out)


def seed_installation(db: Database, settings: Settings, hotlist: Sequence[str]) -> float:
    """The schema, the registry, the READER account and the hotlist; returns the seconds
    the hotlist import took."""
    upgrade(db)
    with db.write() as conn:
        registry.create_agency(conn, CONSOLE, registry.AgencyIn(
            id=AGENCY, name="Polizia Locale (benchmark)",
            kind=registry.AgencyKind.POLIZIA_LOCALE))
        for i, zone in enumerate(ZONES):
            registry.create_zone(conn, CONSOLE, registry.ZoneIn.model_validate({
                "id": zone, "name": f"Varco {i + 1}", "kind": "gate",
                "geometry": zone_square(i)}))
        for r in READERS:
            registry.create_device(conn, CONSOLE, registry.DeviceIn.model_validate({
                "id": r.id, "kind": "plate_reader", "name": f"Lettore {r.id}", "lat": r.lat,
                "lon": r.lon, "zone_id": r.zone, "agency_id": AGENCY, "anpr_vendor": r.vendor,
                "lane": r.lane, "direction": r.direction}))
        users.create(conn, CONSOLE, users.UserCreate(
            username=READER_USER, full_name="Lettori targhe (benchmark)", agency_id=AGENCY,
            roles=[Role.READER], all_zones=True, password=PASSWORD), hasher(settings))
        create_hotlist(conn, CONSOLE, HotlistIn(
            id=HOTLIST, name="Veicoli rubati (SDI)", kind=HotlistKind.STOLEN, agency_id=AGENCY,
            priority=80, policy=LookalikePolicy.ONE_SUBSTITUTION))
    raw = ("\n".join(hotlist) + "\n").encode()
    started = time.perf_counter()
    with db.write() as conn:
        report = import_entries(conn, CONSOLE, HOTLIST, raw, fmt=FileFormat.TXT,
                                mode=ImportMode.MERGE, source="bench")
    seconds = time.perf_counter() - started
    assert report.committed and report.rejected == 0, report.errors[:3]
    return seconds


# --- reads as readers send them --------------------------------------------------------------

_READ_JSON = ('{"plate":"%s","device":"%s","time":"%s","event_id":"%s","confidence":%.2f,'
              '"direction":"%s","lane":%d,"country":"IT"}')


class ReadSource:
    """Plates to read: misses that are no look-alike of any listed plate, listed plates,
    and look-alikes of listed plates (valid Italian plates still)."""

    def __init__(self, hotlist: Sequence[str], rng: random.Random, pool: int = 200_000) -> None:
        keys = {CONFUSIONS.key(p) for p in hotlist}
        misses: list[str] = []
        while len(misses) < pool:
            plate = random_plate(rng)
            if CONFUSIONS.key(plate) not in keys:
                misses.append(plate)
        self.misses = misses
        self.exact = rng.sample(list(hotlist), min(len(hotlist), 20_000))
        self.near: list[str] = []
        for plate in self.exact[:5_000]:
            variants = sorted(lookalikes(plate, valid_only=True, country="IT"))
            if variants:
                self.near.append(rng.choice(variants))
        self.ids = itertools.count()

    def plate(self, rng: random.Random) -> str:
        if rng.random() >= HIT_RATE:
            return self.misses[rng.randrange(len(self.misses))]
        if self.near and rng.random() < LOOKALIKE_SHARE:
            return self.near[rng.randrange(len(self.near))]
        return self.exact[rng.randrange(len(self.exact))]

    def event_id(self) -> str:
        return f"b{next(self.ids)}"  # itertools.count: atomic under the GIL

    def read_json(self, rng: random.Random, at: str, plate: str | None = None) -> str:
        r = READERS[rng.randrange(len(READERS))]
        return _READ_JSON % (plate or self.plate(rng), r.id, at, self.event_id(),
                             0.6 + 0.39 * rng.random(), r.direction, r.lane)

    def batch_body(self, rng: random.Random, n: int = BATCH) -> bytes:
        at = datetime.now(UTC).isoformat(timespec="milliseconds")
        return ('{"reads":[' + ",".join(self.read_json(rng, at) for _ in range(n))
                + "]}").encode()

    def single_body(self, rng: random.Random, plate: str | None = None) -> bytes:
        return self.read_json(rng, datetime.now(UTC).isoformat(timespec="milliseconds"),
                              plate).encode()

    def rows(self, rng: random.Random, n: int = BATCH) -> list[dict[str, Any]]:
        """Transit rows as `Ingest` builds them (no images), for the storage floor."""
        now = datetime.now(UTC)
        out = []
        for _ in range(n):
            plate = self.plate(rng)
            r = READERS[rng.randrange(len(READERS))]
            out.append({
                "id": time_ordered_id(), "device_id": r.id, "plate": plate,
                "plate_key": CONFUSIONS.key(plate), "plate_raw": plate, "format_id": "it_car",
                "country": "IT", "confidence": round(0.6 + 0.39 * rng.random(), 2),
                "time": now, "received_at": now, "direction": r.direction, "lane": r.lane,
                "event_id": self.event_id(), "vendor": "generic", "flags": "",
                "hit": False, "extra": None, "plate_image": None, "plate_image_sha256": None,
                "context_image": None, "context_image_sha256": None})
        return out


# --- processes: CPU from /proc ---------------------------------------------------------------


def proc_ticks(pid: int) -> int:
    """utime + stime of a process and its reaped children; 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            rest = handle.read().decode("ascii", "replace").rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(rest[11]) + int(rest[12]) + int(rest[13]) + int(rest[14])


def tree_ticks(root: int) -> int:
    """CPU ticks of a process and all its live descendants."""
    parents: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as handle:
                    rest = handle.read().decode("ascii", "replace").rsplit(")", 1)[1].split()
                parents[int(name)] = int(rest[1])
            except OSError:
                continue
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = proc_ticks(root), list(children.get(root, []))
    while todo:
        pid = todo.pop()
        total += proc_ticks(pid)
        todo.extend(children.get(pid, []))
    return total


def machine_ticks() -> tuple[int, int]:
    """(total, idle + iowait) jiffies of all CPUs."""
    with open("/proc/stat", "rb") as handle:
        fields = [int(v) for v in handle.readline().split()[1:9]]
    return sum(fields), fields[3] + fields[4]


class CpuWatch:
    """CPU of the server, of PostgreSQL's processes, of this process, and the machine's
    idle share, over one measurement."""

    def __init__(self, server_pid: int, db_pid: int | None) -> None:
        self.server_pid = server_pid
        self.db_pid = db_pid

    def sample(self) -> tuple[float, int, int, int, int, int]:
        total, idle = machine_ticks()
        own = os.times()
        return (time.perf_counter(), tree_ticks(self.server_pid),
                tree_ticks(self.db_pid) if self.db_pid else 0,
                round((own.user + own.system) * TICKS), total, idle)

    @staticmethod
    def figures(a: tuple[float, int, int, int, int, int],
                b: tuple[float, int, int, int, int, int]) -> dict[str, float]:
        wall = b[0] - a[0]
        pct = [100.0 * (b[i] - a[i]) / TICKS / wall for i in (1, 2, 3)]
        idle = 100.0 * (b[5] - a[5]) / max(1, b[4] - a[4])
        busy = (100.0 - idle) * len(os.sched_getaffinity(0))  # % of one core, all processes
        return {"server_pct": pct[0], "db_pct": pct[1], "client_pct": pct[2], "idle_pct": idle,
                "others_pct": max(0.0, busy - sum(pct)),
                "server_cpu_s": (b[1] - a[1]) / TICKS, "db_cpu_s": (b[2] - a[2]) / TICKS}


# --- the throw-away services (tests/pgserver.py, tests/mosquitto.py) ---------------------------


class PgServer(Protocol):
    @property
    def port(self) -> int: ...
    @property
    def data_dir(self) -> Path: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def url(self, dbname: str) -> str: ...
    def dsn(self, dbname: str) -> str: ...
    def create_database(self, name: str, template: str | None = None) -> str: ...
    def drop_database(self, name: str) -> None: ...


class Broker(Protocol):
    @property
    def port(self) -> int: ...
    @property
    def url(self) -> str: ...
    def start(self, timeout_s: float = 10.0) -> Any: ...
    def stop(self) -> None: ...


def _tests_module(name: str) -> Any:
    """tests/ is no package: its fixtures are loaded as top-level modules."""
    if str(ROOT / "tests") not in sys.path:
        sys.path.insert(0, str(ROOT / "tests"))
    return importlib.import_module(name)


def new_postgres() -> PgServer:
    return cast(PgServer, _tests_module("pgserver").PostgresServer())


def new_broker() -> Broker:
    return cast(Broker, _tests_module("mosquitto").Mosquitto())


def pg_durable(server: PgServer, on: bool) -> None:
    value = "on" if on else "off"
    with psycopg.connect(server.dsn("postgres"), autocommit=True) as conn:
        for name in ("fsync", "synchronous_commit", "full_page_writes"):
            conn.execute(f"ALTER SYSTEM SET {name} = {value}")
        conn.execute("SELECT pg_reload_conf()")
        if on:
            conn.execute("CHECKPOINT")


def postmaster_pid(server: PgServer) -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int((server.data_dir / "postmaster.pid").read_text().split()[0])
    return None


# --- the app server ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def request(port: int, method: str, path: str, body: bytes | None = None,
            token: str | None = None, timeout: float = 600) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class AppServer:
    """`python -m vigila serve` on a free loopback port, in a session of its own."""

    def __init__(self, work: Path, name: str, database_url: str,
                 mqtt_url: str | None = None, workers: int = 1,
                 settings: Mapping[str, str] | None = None) -> None:
        self.port = free_port()
        self.name = name
        env = {k: v for k, v in os.environ.items() if not k.startswith("VIGILA_")}
        env.update(VIGILA_DATA_DIR=str(work / f"data-{name}"), VIGILA_DATABASE_URL=database_url)
        env.update(settings or {})
        if mqtt_url:
            env["VIGILA_MQTT_URL"] = mqtt_url
        self.log_path = work / f"server-{name}.log"
        self._log = self.log_path.open("wb")
        self.launched = time.perf_counter()
        self.ready_s: float | None = None  # launch → /api/health answers (hotlists loaded)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vigila", "serve", "--host", HOST, "--port", str(self.port),
             "--workers", str(workers)],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=subprocess.STDOUT, start_new_session=True)
        self.token = ""

    def start(self, timeout_s: float = 120.0) -> AppServer:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            with contextlib.suppress(OSError, http.client.HTTPException):
                if request(self.port, "GET", "/api/health", timeout=5)[0] == 200:
                    self.ready_s = time.perf_counter() - self.launched
                    status, body = request(self.port, "POST", "/api/auth/login", json.dumps(
                        {"username": READER_USER, "password": PASSWORD}).encode())
                    if status != 200:
                        raise RuntimeError(f"login refused: {status} {body[:300]!r}")
                    self.token = json.loads(body)["token"]
                    return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the server did not start; its log:\n{self.tail()}")

    def warm(self, source: ReadSource, rng: random.Random) -> float:
        """One small batch, untimed by the runs (the server loads the hotlists into its
        matcher before it answers at all; this is the first batch's time)."""
        started = time.perf_counter()
        status, body = request(self.port, "POST", "/api/reads", source.batch_body(rng, 20),
                               self.token)
        if status != 200:
            raise RuntimeError(f"warm-up batch refused: {status} {body[:300]!r}")
        return time.perf_counter() - started

    def tail(self) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])
        return "(no log)"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(2)  # SIGINT: uvicorn shuts down cleanly
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


# --- HTTP load --------------------------------------------------------------------------------

_STORED = b'"status":"stored"'
_ALARMED = re.compile(rb'"alarms":\[\d')


@dataclass
class Load:
    mode: str  # batched | single
    clients: int
    wall_s: float = 0.0
    requests: int = 0
    stored: int = 0
    alarms: int = 0
    errors: int = 0
    first_error: str = ""
    latencies_ms: list[float] = field(default_factory=list)
    done: list[tuple[float, int]] = field(default_factory=list)  # (answered at, stored)
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.stored / self.wall_s if self.wall_s else 0.0

    def trend(self) -> tuple[float, float]:
        """Reads/s stored in the first and in the last fifth of the run."""
        fifth = self.wall_s / 5
        if not fifth:
            return math.nan, math.nan
        first = sum(n for at, n in self.done if at <= fifth)
        last = sum(n for at, n in self.done if at > self.wall_s - fifth)
        return first / fifth, last / fifth


def run_load(server: AppServer, source: ReadSource, mode: str, clients: int, seconds: float,
             seed: int, db_pid: int | None) -> Load:
    result = Load(mode, clients)
    lock = threading.Lock()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {server.token}"}
    start = time.perf_counter()
    deadline = start + seconds
    ends: list[float] = []

    def client(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        conn = http.client.HTTPConnection(HOST, server.port, timeout=600)
        lat: list[float] = []
        done: list[tuple[float, int]] = []
        requests = stored = alarms = errors = 0
        error = ""
        last = time.perf_counter()
        try:
            while time.perf_counter() < deadline:
                body = source.batch_body(rng) if mode == "batched" else source.single_body(rng)
                sent = time.perf_counter()
                try:
                    conn.request("POST", "/api/reads", body=body, headers=headers)
                    response = conn.getresponse()
                    data = response.read()
                except (OSError, http.client.HTTPException) as exc:
                    errors += 1
                    error = error or repr(exc)
                    conn.close()
                    conn = http.client.HTTPConnection(HOST, server.port, timeout=600)
                    continue
                last = time.perf_counter()
                lat.append((last - sent) * 1000)
                requests += 1
                if mode == "batched" and response.status == 200:
                    done.append((last - start, data.count(_STORED)))
                    stored += done[-1][1]
                elif mode == "single" and response.status == 201:
                    done.append((last - start, 1))
                    stored += 1
                else:
                    errors += 1
                    error = error or f"{response.status} {data[:200]!r}"
                alarms += len(_ALARMED.findall(data))
        finally:
            conn.close()
            with lock:
                result.latencies_ms += lat
                result.done += done
                result.requests += requests
                result.stored += stored
                result.alarms += alarms
                result.errors += errors
                result.first_error = result.first_error or error
                ends.append(last)

    watch = CpuWatch(server.proc.pid, db_pid)
    before = watch.sample()
    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = watch.sample()
    result.wall_s = max(ends) - start
    result.cpu = CpuWatch.figures(before, after)
    return result


# --- in process: the route's steps one by one, and the storage floor ----------------------------


@dataclass
class Steps:
    """Seconds (wall, and CPU of this thread) per step, over `reads` reads."""

    reads: int = 0
    requests: int = 0
    wall: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)

    def add(self, step: str, wall: float, cpu: float) -> None:
        self.wall[step] = self.wall.get(step, 0.0) + wall
        self.cpu[step] = self.cpu.get(step, 0.0) + cpu

    def rate(self, *steps: str) -> float:
        spent = sum(self.wall.get(s, 0.0) for s in steps)
        return self.reads / spent if spent else 0.0

    def us(self, step: str, cpu: bool = False) -> float:
        table = self.cpu if cpu else self.wall
        return 1e6 * table.get(step, 0.0) / max(1, self.reads)


STEPS = ("auth", "parse", "ingest", "respond")


def route_steps(db: Database, settings: Settings, source: ReadSource, mode: str,
                seconds: float, seed: int, profile: cProfile.Profile | None = None) -> Steps:
    """What POST /api/reads does, in this thread, step by step, for `seconds` of work."""
    rng = random.Random(seed)
    auth = Authenticator(db, settings)
    token = auth.login(READER_USER, PASSWORD, HOST).token
    ingest = Ingest(db, settings, EventBus())
    ingest.ingest(_json_reads(source.batch_body(rng, 20))[0])  # loads the matcher
    out = Steps()
    spent = 0.0
    while spent < seconds:
        body = source.batch_body(rng) if mode == "batched" else source.single_body(rng)
        if profile is not None:
            profile.enable()
        marks = [(time.perf_counter(), time.thread_time())]
        auth.resolve(token, HOST)
        marks.append((time.perf_counter(), time.thread_time()))
        reads, _single = _json_reads(body)
        marks.append((time.perf_counter(), time.thread_time()))
        report = ingest.ingest(reads)
        marks.append((time.perf_counter(), time.thread_time()))
        if mode == "batched":  # renders the body, as the route does
            Response(report.model_dump_json(), media_type="application/json")
        else:
            JSONResponse(report.results[0].model_dump(mode="json"))
        marks.append((time.perf_counter(), time.thread_time()))
        if profile is not None:
            profile.disable()
        assert report.stored == len(reads), report.results[0]
        for step, (a, b) in zip(STEPS, itertools.pairwise(marks), strict=True):
            out.add(step, b[0] - a[0], b[1] - a[1])
        spent += marks[-1][0] - marks[0][0]
        out.reads += len(reads)
        out.requests += 1
    return out


def _copy_sql(columns: Sequence[str]) -> str:
    return f"COPY transits ({', '.join(columns)}) FROM STDIN"


def storage_floor(db: Database, source: ReadSource, seconds: float, seed: int,
                  dsn: str | None) -> dict[str, float]:
    """Rows per second of insert time: SQLAlchemy executemany; on SQLite the driver's
    executemany; on PostgreSQL (`dsn`) COPY."""
    rng = random.Random(seed)
    out: dict[str, float] = {}
    rows, spent = 0, 0.0
    while spent < seconds:
        batch = source.rows(rng)
        started = time.perf_counter()
        with db.write() as conn:
            conn.execute(transits.insert(), batch)
        spent += time.perf_counter() - started
        rows += len(batch)
    out["executemany"] = rows / spent
    if db.dialect == "sqlite":
        # The driver alone: values bound by the column types before the clock starts.
        columns = [c.name for c in transits.c]
        sql = (f"INSERT INTO transits ({', '.join(columns)}) "
               f"VALUES ({', '.join('?' * len(columns))})")
        rows, spent = 0, 0.0
        while spent < seconds:
            with db.write() as conn:
                binds = [c.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
                         for c in transits.c]
                tuples = [tuple(v if b is None else b(v)
                                for v, b in zip((r[c] for c in columns), binds, strict=True))
                          for r in source.rows(rng)]
                raw: Any = conn.connection.dbapi_connection
                started = time.perf_counter()
                raw.executemany(sql, tuples)
            spent += time.perf_counter() - started  # the commit included
            rows += len(tuples)
        out["driver"] = rows / spent
    if dsn is not None:
        columns = list(source.rows(rng, 1)[0])
        rows, spent = 0, 0.0
        with psycopg.connect(dsn) as conn:
            while spent < seconds:
                tuples = [tuple(r.values()) for r in source.rows(rng)]
                started = time.perf_counter()
                with conn.transaction(), conn.cursor() as cur, \
                        cur.copy(_copy_sql(columns)) as copy:
                    for values in tuples:
                        copy.write_row(values)
                spent += time.perf_counter() - started
                rows += len(tuples)
        out["copy"] = rows / spent
    return out


# --- alarms over MQTT -------------------------------------------------------------------------


class Subscriber:
    """A paho client on `vigila/alarms/#`, QoS 1, noting when each message arrives."""

    def __init__(self, broker: Broker) -> None:
        self.arrivals: queue.Queue[tuple[str, float, bytes]] = queue.Queue()
        self.subscribed = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-sub-{os.getpid()}",
                                  protocol=paho.MQTTv311, clean_session=True)
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.connect(HOST, broker.port, keepalive=60)
        self.client.loop_start()
        if not self.subscribed.wait(10):
            raise RuntimeError("the MQTT subscription was not acknowledged")

    def _on_connect(self, client: paho.Client, _u: Any, _f: Any, _r: Any, _p: Any) -> None:
        client.subscribe("vigila/alarms/#", qos=1)

    def _on_subscribe(self, _c: Any, _u: Any, _m: Any, _r: Any, _p: Any) -> None:
        self.subscribed.set()

    def _on_message(self, _c: Any, _u: Any, message: paho.MQTTMessage) -> None:
        at = time.perf_counter()
        if "/bench-peer/" in message.topic:
            key = message.topic.rsplit("/", 1)[1]
        else:
            try:
                key = str(json.loads(message.payload).get("read"))
            except ValueError:
                key = "?"
        self.arrivals.put((key, at, message.payload))

    def wait_for(self, key: str, timeout_s: float) -> tuple[float, bytes] | None:
        deadline = time.perf_counter() + timeout_s
        while (left := deadline - time.perf_counter()) > 0:
            try:
                got, at, payload = self.arrivals.get(timeout=left)
            except queue.Empty:
                return None
            if got == key:
                return at, payload
        return None

    def drain(self) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                self.arrivals.get_nowait()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Background:
    """Misses posted in batches of rate/10 every 0.1 s, on a connection of its own."""

    def __init__(self, server: AppServer, source: ReadSource, rate: int, seed: int) -> None:
        self.server, self.source, self.rate = server, source, rate
        self.rng = random.Random(seed)
        self.stop_flag = threading.Event()
        self.sent = 0
        self.errors = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.started = 0.0
        self.wall = 0.0

    def _run(self) -> None:
        per = max(1, self.rate // 10)
        conn = http.client.HTTPConnection(HOST, self.server.port, timeout=600)
        headers = {"Content-Type": "application/json",
                   "Authorization": f"Bearer {self.server.token}"}
        tick = time.perf_counter()
        while not self.stop_flag.is_set():
            at = datetime.now(UTC).isoformat(timespec="milliseconds")
            body = ('{"reads":[' + ",".join(
                self.source.read_json(self.rng, at, self.source.misses[
                    self.rng.randrange(len(self.source.misses))]) for _ in range(per))
                + "]}").encode()
            try:
                conn.request("POST", "/api/reads", body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                self.sent += data.count(_STORED)
                self.errors += response.status != 200
            except (OSError, http.client.HTTPException):
                self.errors += 1
                conn.close()
                conn = http.client.HTTPConnection(HOST, self.server.port, timeout=600)
            tick += 0.1
            delay = tick - time.perf_counter()
            if delay > 0:
                self.stop_flag.wait(delay)
            else:
                tick = time.perf_counter()  # behind: do not burst to catch up
        conn.close()

    def __enter__(self) -> Background:
        if self.rate > 0:
            self.started = time.perf_counter()
            self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self.rate > 0:
            self.stop_flag.set()
            self.thread.join(60)
            self.wall = time.perf_counter() - self.started

    @property
    def achieved(self) -> float:
        return self.sent / self.wall if self.wall else 0.0


def measure_alarms(server: AppServer, broker: Broker, source: ReadSource, plates: list[str],
                   background: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    sub = Subscriber(broker)
    conn = http.client.HTTPConnection(HOST, server.port, timeout=600)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {server.token}"}

    def post_alarm(plate: str) -> tuple[float, float, tuple[float, bytes] | None, int]:
        body = source.single_body(rng, plate)
        started = time.perf_counter()
        conn.request("POST", "/api/reads", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        answered = time.perf_counter()
        return started, answered, sub.wait_for(plate, 5.0), response.status

    out: dict[str, Any] = {"background_target": background}
    try:
        # Until the app's MQTT client is connected, alarms wait in its queue: warm up.
        for plate in plates[:40]:
            if post_alarm(plate)[2] is not None:
                break
        else:
            raise RuntimeError("no alarm reached the broker; server log:\n" + server.tail())
        sub.drain()
        latencies, answers, lost, statuses = [], [], 0, set()
        payload = b""
        with Background(server, source, background, seed + 1) as load:
            for plate in plates[40:]:
                started, answered, got, status = post_alarm(plate)
                statuses.add(status)
                answers.append((answered - started) * 1000)
                if got is None:
                    lost += 1
                else:
                    latencies.append((got[0] - started) * 1000)
                    payload = got[1]
                time.sleep(rng.uniform(0.0, 0.01))
            # The broker's floor: a bare client, the same payload, the same subscriber.
            peer = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-peer-{os.getpid()}",
                               protocol=paho.MQTTv311, clean_session=True)
            peer.connect(HOST, broker.port, keepalive=60)
            peer.loop_start()
            time.sleep(0.2)
            floor, floor_lost = [], 0
            for i in range(len(plates) - 40):
                topic = f"vigila/alarms/bench-peer/{i}"
                started = time.perf_counter()
                peer.publish(topic, payload, qos=1)
                got = sub.wait_for(str(i), 5.0)
                if got is None:
                    floor_lost += 1
                else:
                    floor.append((got[0] - started) * 1000)
                time.sleep(rng.uniform(0.0, 0.01))
            peer.disconnect()
            peer.loop_stop()
        out.update(alarms=len(latencies), lost=lost, statuses=sorted(statuses),
                   latency_ms=latencies, answer_ms=answers, floor_ms=floor,
                   floor_lost=floor_lost, payload_bytes=len(payload),
                   background=load.achieved, background_errors=load.errors)
    finally:
        conn.close()
        sub.stop()
    return out


# --- search data ------------------------------------------------------------------------------

COLUMNS = ("id", "device_id", "plate", "plate_key", "plate_raw", "format_id", "country",
           "confidence", "time", "received_at", "direction", "lane", "event_id", "vendor",
           "flags", "extra", "hit", "plate_image", "plate_image_sha256", "context_image",
           "context_image_sha256")


class TransitData:
    """`n` transits over `DAYS` days up to `end`, in time order, the same for a seed."""

    def __init__(self, n: int, seed: int, end: datetime) -> None:
        self.n, self.seed = n, seed
        self.end = end
        self.start = end - timedelta(days=DAYS)
        rng = random.Random(seed)
        self.regulars = unique_plates(max(50, n // 100), rng)
        weights = [rng.lognormvariate(0.0, 1.0) for _ in self.regulars]
        self.cum = list(itertools.accumulate(weights))
        self.counts = [0] * len(self.regulars)
        self.sample: list[str] = []  # plates as stored, one in `every`, for the patterns
        self.every = max(1, n // 20_000)
        self._variants: dict[int, list[str]] = {}

    def chunks(self, fmt: str, size: int = 20_000) -> Iterator[Any]:
        """Lists of tuples (`sqlite`) or COPY text (`pg`)."""
        rng = random.Random(self.seed + 1)
        rnd, rr, bits = rng.random, rng.randrange, rng.getrandbits
        key = CONFUSIONS.key
        t0 = self.start.timestamp()
        step = (self.end.timestamp() - t0) / self.n
        total = self.cum[-1]
        cum, regulars, counts = self.cum, self.regulars, self.counts
        zone = "+00" if fmt == "pg" else ""
        cache: dict[int, tuple[str, str]] = {}

        def stamp(t: float) -> tuple[str, str]:
            minute = int(t) - int(t) % 60
            found = cache.get(minute)
            if found is None:
                if len(cache) > 4:
                    cache.clear()
                text = time.strftime("%Y-%m-%d %H:%M:", time.gmtime(minute))
                found = cache[minute] = (text, text[:10].replace("-", "/"))
            return f"{found[0]}{t - minute:09.6f}{zone}", found[1]

        for base in range(0, self.n, size):
            out: list[Any] = []
            for i in range(base, min(self.n, base + size)):
                t = t0 + (i + rnd()) * step
                if rnd() < 0.5:
                    k = bisect.bisect_right(cum, rnd() * total)
                    k = min(k, len(regulars) - 1)
                    plate = regulars[k]
                    if rnd() < 0.01:
                        plate = self._misread(k, rng)
                    else:
                        counts[k] += 1
                else:
                    plate = PAIRS[rr(484)] + DIGITS[rr(1000)] + PAIRS[rr(484)]
                if i % self.every == 0:
                    self.sample.append(plate)
                r = READERS[rr(21)]
                ident = f"{bits(128):032x}"
                at, day = stamp(t)
                got, _ = stamp(t + 0.2 + 0.8 * rnd())
                pimg = f"{day}/{ident}-plate.jpg"
                cimg = f"{day}/{ident}-context.jpg"
                conf = f"{0.6 + 0.39 * rnd():.3f}"
                if fmt == "pg":
                    out.append(
                        f"{ident}\t{r.id}\t{plate}\t{key(plate)}\t{plate}\tit_car\tIT\t{conf}\t"
                        f"{at}\t{got}\t{r.direction}\t{r.lane}\tg{i}\t{r.vendor}\t\tnull\tf\t"
                        f"{pimg}\t{bits(256):064x}\t{cimg}\t{bits(256):064x}\n")
                else:
                    out.append((ident, r.id, plate, key(plate), plate, "it_car", "IT",
                                float(conf), at, got, r.direction, r.lane, f"g{i}", r.vendor,
                                "", "null", 0, pimg, f"{bits(256):064x}", cimg,
                                f"{bits(256):064x}"))
            yield "".join(out) if fmt == "pg" else out

    def _misread(self, k: int, rng: random.Random) -> str:
        variants = self._variants.get(k)
        if variants is None:
            variants = sorted(lookalikes(self.regulars[k], valid_only=True, country="IT"))
            self._variants[k] = variants or [self.regulars[k]]
            variants = self._variants[k]
        return variants[rng.randrange(len(variants))]

    def targets(self, lo: int = 35, hi: int = 70, at_least: int = 50) -> list[str]:
        """Regular plates with about 50 transits (the closest to 50 if too few qualify)."""
        chosen = [p for p, c in zip(self.regulars, self.counts, strict=True) if lo <= c <= hi]
        if len(chosen) < at_least:
            ranked = sorted(zip(self.regulars, self.counts, strict=True),
                            key=lambda pc: abs(pc[1] - 50))
            chosen = [p for p, _ in ranked[:at_least]]
        return chosen

    def mean_count(self, plates: Sequence[str]) -> float:
        index = {p: i for i, p in enumerate(self.regulars)}
        return statistics.mean(self.counts[index[p]] for p in plates) if plates else 0.0


@dataclass
class Loaded:
    rows: int
    insert_s: float
    index_s: float
    bytes: int
    data: TransitData


def load_sqlite(path: Path, data: TransitData) -> Loaded:
    """Bulk load into a seeded SQLite file: named indexes dropped, rows inserted, indexes
    re-created from their own SQL."""
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode=DELETE")
        con.execute("PRAGMA synchronous=OFF")
        con.execute("PRAGMA cache_size=-1048576")
        con.execute("PRAGMA temp_store=MEMORY")
        indexes = con.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND "
                              "tbl_name = 'transits' AND sql IS NOT NULL").fetchall()
        for name, _ in indexes:
            con.execute(f'DROP INDEX "{name}"')
        started = time.perf_counter()
        marks = ", ".join("?" * len(COLUMNS))
        sql = f"INSERT INTO transits ({', '.join(COLUMNS)}) VALUES ({marks})"
        con.execute("BEGIN")
        for n, chunk in enumerate(data.chunks("sqlite")):
            con.executemany(sql, chunk)
            if n % 25 == 24:
                con.execute("COMMIT")
                con.execute("BEGIN")
        con.execute("COMMIT")
        inserted = time.perf_counter() - started
        started = time.perf_counter()
        for _, create in indexes:
            con.execute(create)
        indexed = time.perf_counter() - started
        con.execute("PRAGMA journal_mode=WAL")
    finally:
        con.close()
    return Loaded(data.n, inserted, indexed, path.stat().st_size, data)


def load_postgresql(dsn: str, data: TransitData) -> Loaded:
    """COPY into a seeded database: the table's indexes and constraints (and the foreign
    keys that point at it) dropped, then re-created from their own definitions; ANALYZE."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        own = conn.execute(
            "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'transits'::regclass ORDER BY contype DESC").fetchall()
        pointing = conn.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
            "FROM pg_constraint WHERE confrelid = 'transits'::regclass "
            "AND conrelid <> 'transits'::regclass").fetchall()
        names = {c[0] for c in own}
        before = conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE "
                              "tablename = 'transits' ORDER BY indexname").fetchall()
        plain = [(n, d) for n, d in before if n not in names]
        for table, name, _ in pointing:
            conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _, _ in own:
            conn.execute(f'ALTER TABLE transits DROP CONSTRAINT "{name}"')
        for name, _ in plain:
            conn.execute(f'DROP INDEX "{name}"')
        started = time.perf_counter()
        with conn.cursor() as cur, cur.copy(_copy_sql(COLUMNS)) as copy:
            for chunk in data.chunks("pg"):
                copy.write(chunk)
        inserted = time.perf_counter() - started
        started = time.perf_counter()
        for name, _kind, definition in sorted(own, key=lambda c: c[1] == "f"):  # p, u, then f
            conn.execute(f'ALTER TABLE transits ADD CONSTRAINT "{name}" {definition}')
        for _, definition in plain:
            conn.execute(definition)
        for table, name, definition in pointing:
            conn.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        conn.execute("ANALYZE transits")
        indexed = time.perf_counter() - started
        after = conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE "
                             "tablename = 'transits' ORDER BY indexname").fetchall()
        assert after == before, (before, after)
        size = conn.execute("SELECT pg_total_relation_size('transits')").fetchone()
    return Loaded(data.n, inserted, indexed, int(size[0]) if size else 0, data)


# --- search ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    kind: str
    text: str  # the plate, or the pattern
    since: datetime
    until: datetime

    def model(self) -> TransitQuery:
        if self.kind in ("prefix", "infix"):
            return TransitQuery(pattern=self.text, since=self.since, until=self.until,
                                limit=SEARCH_LIMIT)
        return TransitQuery(plate=self.text, fuzzy=self.kind == "fuzzy", since=self.since,
                            until=self.until, limit=SEARCH_LIMIT)


def make_queries(data: TransitData, count: int, seed: int) -> dict[str, list[Query]]:
    rng = random.Random(seed)
    targets = data.targets()
    start, end = data.start, data.end + timedelta(seconds=1)
    out: dict[str, list[Query]] = {k: [] for k in KINDS}
    for _ in range(count):
        out["exact"].append(Query("exact", rng.choice(targets), start, end))
        out["fuzzy"].append(Query("fuzzy", rng.choice(targets), start, end))
        out["prefix"].append(Query("prefix", rng.choice(data.sample)[:3] + "*", start, end))
        day = data.start + timedelta(days=rng.randrange(DAYS))
        out["infix"].append(Query("infix", "*" + rng.choice(data.sample)[3:6] + "*", day,
                                  day + timedelta(days=1)))
    return out


_SELECT = ("SELECT t.id, t.device_id, t.plate, t.plate_raw, t.format_id, t.country, "
           "t.confidence, t.time, t.received_at, t.direction, t.lane, t.event_id, t.vendor, "
           "t.flags, t.hit, t.plate_image_sha256, t.context_image_sha256, "
           "d.name AS device_name, d.zone_id FROM transits t JOIN devices d ON d.id = t.device_id "
           "WHERE {where} AND t.time >= {p} AND t.time < {p} "
           "ORDER BY t.time DESC, t.id DESC LIMIT {limit}")


def _upper(prefix: str) -> str:
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    chars = list(prefix)
    while chars:
        i = alphabet.index(chars[-1])
        if i + 1 < len(alphabet):
            chars[-1] = alphabet[i + 1]
            return "".join(chars)
        chars.pop()
    return "~"


def peer_sql(query: Query, dialect: str) -> tuple[str, list[Any]]:
    """The search's SELECT written by hand for the bare driver (one page, LIMIT 101)."""
    p = "%s" if dialect == "postgresql" else "?"
    if dialect == "postgresql":
        since: Any = query.since
        until: Any = query.until
    else:  # how SQLAlchemy stores a UTC instant on SQLite
        since = query.since.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        until = query.until.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if query.kind == "exact":  # the key drives the index, the plate filters
        where = f"t.plate_key = {p} AND t.plate = {p}"
        args = [CONFUSIONS.key(query.text), query.text]
    elif query.kind == "fuzzy":
        where, args = f"t.plate_key = {p}", [CONFUSIONS.key(query.text)]
    elif query.kind == "prefix":
        prefix = query.text.rstrip("*")
        key = CONFUSIONS.key(prefix)
        lower = f"t.plate_key >= {p}"
        if dialect == "sqlite":
            lower = f"likelihood({lower}, 0.001)"
        where = f"t.plate LIKE {p} ESCAPE '\\' AND {lower} AND t.plate_key < {p}"
        args = [prefix + "%", key, _upper(key)]
    else:
        where, args = f"t.plate LIKE {p} ESCAPE '\\'", ["%" + query.text.strip("*") + "%"]
    sql = _SELECT.format(where=where, p=p, limit=SEARCH_LIMIT + 1)
    return sql, [*args, since, until]


def plan_of(run: Callable[[str, list[Any]], list[Any]], query: Query, dialect: str) -> str:
    sql, args = peer_sql(query, dialect)
    if dialect == "postgresql":
        lines = [str(r[0]).strip() for r in run("EXPLAIN (COSTS OFF) " + sql, args)]
        return "; ".join(line.removeprefix("-> ").strip() for line in lines
                         if "Scan" in line or "Sort" in line or "Limit" in line)
    return "; ".join(str(r[3]) for r in run("EXPLAIN QUERY PLAN " + sql, args))


@dataclass
class SearchResult:
    kind: str
    lib_ms: list[float] = field(default_factory=list)  # search_transits, audited, committed
    select_ms: list[float] = field(default_factory=list)  # search_statement via SQLAlchemy
    peer_ms: list[float] = field(default_factory=list)  # the bare driver
    returned: list[int] = field(default_factory=list)
    plan: str = ""


def run_searches(db: Database, queries: dict[str, list[Query]],
                 peer: Callable[[str, list[Any]], list[Any]]) -> dict[str, SearchResult]:
    dialect = db.dialect
    out: dict[str, SearchResult] = {}
    for kind, items in queries.items():
        res = out[kind] = SearchResult(kind)
        res.plan = plan_of(peer, items[0], dialect)
        for n, query in enumerate(items):
            model = query.model()
            sql, args = peer_sql(query, dialect)

            def lib(model: TransitQuery = model, res: SearchResult = res) -> None:
                started = time.perf_counter()
                with db.write() as conn:
                    page = search_transits(conn, INVESTIGATOR, WHY, model)
                res.lib_ms.append((time.perf_counter() - started) * 1000)
                res.returned.append(len(page.items))

            def select(model: TransitQuery = model, query: Query = query,
                       res: SearchResult = res) -> None:
                started = time.perf_counter()
                with db.read() as conn:
                    conn.execute(search_statement(INVESTIGATOR, model, query.since, query.until,
                                                  dialect=dialect,
                                                  limit=SEARCH_LIMIT + 1)).all()
                res.select_ms.append((time.perf_counter() - started) * 1000)

            def bare(sql: str = sql, args: list[Any] = args, res: SearchResult = res) -> None:
                started = time.perf_counter()
                peer(sql, args)
                res.peer_ms.append((time.perf_counter() - started) * 1000)

            ways: list[Callable[[], None]] = [lib, select, bare]
            for way in ways[n % 3:] + ways[:n % 3]:
                way()
    return out


def pg_peer(dsn: str) -> tuple[Callable[[str, list[Any]], list[Any]], Callable[[], None]]:
    conn = psycopg.connect(dsn, autocommit=True)

    def run(sql: str, args: list[Any]) -> list[Any]:
        return conn.execute(sql, args).fetchall()

    return run, conn.close


def sqlite_peer(path: Path) -> tuple[Callable[[str, list[Any]], list[Any]], Callable[[], None]]:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)

    def run(sql: str, args: list[Any]) -> list[Any]:
        return conn.execute(sql, args).fetchall()

    return run, conn.close


# --- statistics and report ---------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def med(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def ms(value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:,.0f}"


def rate(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:,.0f}"


def machine_info(work: Path, pg_version: str) -> dict[str, str]:
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 2**20:.0f} GiB"
    mosquitto = "unknown"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        first = subprocess.run(["/usr/sbin/mosquitto", "-h"], capture_output=True, text=True,
                               timeout=10, check=False).stdout.splitlines()
        mosquitto = first[0].split()[-1] if first else mosquitto
    import uvicorn

    return {"cpu": cpu, "cores": str(len(os.sched_getaffinity(0))), "memory": memory,
            "kernel": platform.release(), "python": sys.version.split()[0],
            "sqlite": sqlite3.sqlite_version, "postgresql": pg_version,
            "mosquitto": mosquitto, "uvicorn": uvicorn.__version__,
            "disk": disk_of(work), "date": time.strftime("%Y-%m-%d"),
            "load": " ".join(f"{v:.2f}" for v in os.getloadavg())}


def machine_line(info: dict[str, str]) -> str:
    return (f"{info['cpu']}, {info['cores']} CPUs, {info['memory']}, kernel {info['kernel']}, "
            f"Python {info['python']}, SQLite {info['sqlite']}, PostgreSQL {info['postgresql']}, "
            f"Mosquitto {info['mosquitto']}, uvicorn {info['uvicorn']}, data on {info['disk']}, "
            f"{info['date']} (load average at the start: {info['load']})")


def ingest_table(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> list[str]:
    dbs = [d for d in ("sqlite", "postgresql") if d in results]
    names = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
    head = "| measure | " + " | ".join(names[d] for d in dbs) + " |"
    rows = [head, "|---|" + "---|" * len(dbs)]

    def row(label: str, cell: Callable[[dict[str, Any]], str]) -> None:
        cells = []
        for d in dbs:
            try:
                cells.append(cell(results[d]))
            except (KeyError, TypeError, ValueError, ZeroDivisionError):
                cells.append("-")
        rows.append(f"| {label} | " + " | ".join(cells) + " |")

    def load_cell(r: dict[str, Any], mode: str) -> str:
        load: Load = r[mode]
        return (f"**{rate(load.rate)}** (request p50 {ms(med(load.latencies_ms))} ms, "
                f"p99 {ms(pct(load.latencies_ms, 99))} ms)")

    row(f"HTTP batched: {BATCH:,}/request, {args.clients} clients, reads/s stored",
        lambda r: load_cell(r, "batched"))
    row(f"HTTP single: 1/request, {args.single_clients} clients, reads/s stored",
        lambda r: load_cell(r, "single"))
    row("HTTP batched: reads/s in the first fifth of the run → the last fifth",
        lambda r: " → ".join(rate(v) for v in r["batched"].trend()))
    row("in process, batched: the route's steps (auth, parse, ingest, respond), reads/s",
        lambda r: rate(r["steps_batched"].rate(*STEPS)))
    row("in process, batched: `Ingest.ingest` alone, reads/s",
        lambda r: rate(r["steps_batched"].rate("ingest")))
    row("in process, single: the route's steps, reads/s",
        lambda r: rate(r["steps_single"].rate(*STEPS)))
    row("peer: SQLAlchemy executemany into transits, 1,000/transaction, rows/s",
        lambda r: rate(r["floor"]["executemany"]))
    row("peer: sqlite3 executemany into transits (values bound beforehand), 1,000/transaction, "
        "rows/s", lambda r: rate(r["floor"]["driver"]))
    row("peer: COPY into transits (psycopg), 1,000/transaction, rows/s",
        lambda r: rate(r["floor"]["copy"]))
    row("HTTP batched / storage floor (the faster peer)",
        lambda r: f"{r['batched'].rate / max(r['floor'].values()):.2f}")
    row("`Ingest.ingest` / storage floor",
        lambda r: f"{r['steps_batched'].rate('ingest') / max(r['floor'].values()):.2f}")
    row("HTTP batched / in-process route steps",
        lambda r: f"{r['batched'].rate / r['steps_batched'].rate(*STEPS):.2f}")
    row("HTTP batched: CPU % of one core, server / PostgreSQL / clients / other processes; "
        "machine idle %", lambda r: cpu_cell(r["batched"]))
    row("HTTP single: the same", lambda r: cpu_cell(r["single"]))
    row("HTTP batched: server CPU per read (µs)",
        lambda r: f"{1e6 * r['batched'].cpu['server_cpu_s'] / max(1, r['batched'].stored):.0f}")
    row("HTTP single: server CPU per read (µs)",
        lambda r: f"{1e6 * r['single'].cpu['server_cpu_s'] / max(1, r['single'].stored):.0f}")
    row("alarms raised (batched run; ~1 % of reads hit)", lambda r: f"{r['batched'].alarms:,}")
    row("errors (batched / single)",
        lambda r: f"{r['batched'].errors} / {r['single'].errors}")
    return rows


def cpu_cell(load: Load) -> str:
    c = load.cpu
    return (f"{c['server_pct']:.0f} / {c['db_pct']:.0f} / {c['client_pct']:.0f} / "
            f"{c['others_pct']:.0f}; {c['idle_pct']:.0f}")


def steps_table(results: dict[str, dict[str, Any]]) -> list[str]:
    rows = ["| database, mode | auth | parse + validate | `Ingest.ingest` | respond | total |",
            "|---|---|---|---|---|---|"]
    for d in ("sqlite", "postgresql"):
        if d not in results:
            continue
        for mode in ("batched", "single"):
            s: Steps | None = results[d].get(f"steps_{mode}")
            if s is None:
                continue
            cells = [f"{s.us(step):.1f} ({s.us(step, True):.1f})" for step in STEPS]
            total = sum(s.us(step) for step in STEPS)
            total_cpu = sum(s.us(step, True) for step in STEPS)
            rows.append(f"| {d}, {mode} | " + " | ".join(cells)
                        + f" | {total:.1f} ({total_cpu:.1f}) |")
    return rows


def alarm_table(results: dict[str, dict[str, Any]]) -> list[str]:
    dbs = [d for d in ("sqlite", "postgresql") if d in results and "alarms" in results[d]]
    names = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
    rows = ["| measure | " + " | ".join(names[d] for d in dbs) + " |",
            "|---|" + "---|" * len(dbs)]
    if not dbs:
        return []

    def row(label: str, cell: Callable[[dict[str, Any]], str]) -> None:
        rows.append(f"| {label} | " + " | ".join(cell(results[d]["alarms"]) for d in dbs) + " |")

    def lat(key: str) -> Callable[[dict[str, Any]], str]:
        return lambda a: (f"{ms(med(a[key]))} / {ms(pct(a[key], 99))} / "
                          f"{ms(max(a[key]) if a[key] else math.nan)}")

    row("alarms measured (lost: none arrived within 5 s)",
        lambda a: f"{a['alarms']} (lost {a['lost']})")
    row("POST → alarm on the broker's subscriber, ms p50 / p99 / max", lat("latency_ms"))
    row("POST → HTTP answer, ms p50 / p99 / max", lat("answer_ms"))
    row("peer: bare paho publish → same subscriber, ms p50 / p99 / max", lat("floor_ms"))
    row("background misses, reads/s (asked / stored)",
        lambda a: f"{a['background_target']:,} / {a['background']:,.0f}")
    row("message size, bytes", lambda a: f"{a['payload_bytes']:,}")
    return rows


def search_table(runs: list[dict[str, Any]]) -> list[str]:
    rows = ["| database | transits | query | `search_transits` (audited), ms p50 / p99 | "
            "its SELECT via SQLAlchemy, ms p50 / p99 | peer: bare driver, ms p50 / p99 | "
            "rows returned, mean | plan (peer's SQL) |",
            "|---|---|---|---|---|---|---|---|"]
    for run in runs:
        for kind in KINDS:
            res: SearchResult = run["search"][kind]
            rows.append(
                f"| {run['name']} | {run['rows']:,} | {kind} | {ms(med(res.lib_ms))} / "
                f"{ms(pct(res.lib_ms, 99))} | {ms(med(res.select_ms))} / "
                f"{ms(pct(res.select_ms, 99))} | {ms(med(res.peer_ms))} / "
                f"{ms(pct(res.peer_ms, 99))} | {statistics.mean(res.returned):.0f} | "
                f"{res.plan.replace('|', '/')} |")
    return rows


def sweep_table(runs: list[dict[str, Any]]) -> list[str]:
    rows = ["| database | transits | load: insert + indexes, s | size on disk | exact p99, ms "
            "(target < 10) | batched ingest at this size, reads/s (target >= 10,000) | "
            "first → last fifth of that run | served well |", "|---|---|---|---|---|---|---|---|"]
    for run in runs:
        exact = pct(run["search"]["exact"].lib_ms, 99)
        load: Load | None = run.get("batched")
        good = exact < TARGET_EXACT_MS and load is not None and load.rate >= TARGET_BATCHED
        verdict = ("yes" if good else "no") if run["db"] == "sqlite" else "n/a"
        rows.append(f"| {run['name']} | {run['rows']:,} | {run['insert_s']:.0f} + "
                    f"{run['index_s']:.0f} | {run['bytes'] / 2**30:.2f} GiB | {ms(exact)} | "
                    f"{rate(load.rate) if load else '-'} | "
                    f"{' → '.join(rate(v) for v in load.trend()) if load else '-'} | {verdict} |")
    return rows


def verdicts(results: dict[str, dict[str, Any]], runs: list[dict[str, Any]]) -> list[str]:
    lines = []
    for d, name in (("sqlite", "SQLite"), ("postgresql", "PostgreSQL")):
        r = results.get(d, {})
        if "batched" in r:
            got = r["batched"].rate
            lines.append(f"- {name}, batched ingest over HTTP >= {TARGET_BATCHED:,} reads/s: "
                         f"{'met' if got >= TARGET_BATCHED else 'not met'} ({got:,.0f}).")
        if "alarms" in r and r["alarms"]["latency_ms"]:
            p99 = pct(r["alarms"]["latency_ms"], 99)
            lines.append(f"- {name}, alarm p99 < {TARGET_ALARM_P99_MS:.0f} ms: "
                         f"{'met' if p99 < TARGET_ALARM_P99_MS else 'not met'} ({p99:.1f} ms, "
                         f"{r['alarms']['lost']} lost).")
    for run in runs:
        if run["db"] == "postgresql":
            p99 = pct(run["search"]["exact"].lib_ms, 99)
            lines.append(f"- PostgreSQL, exact search < {TARGET_EXACT_MS:.0f} ms at "
                         f"{run['rows']:,} transits: "
                         f"{'met' if p99 < TARGET_EXACT_MS else 'not met'} (p99 {p99:.2f} ms, "
                         f"p50 {med(run['search']['exact'].lib_ms):.2f} ms).")
    sqlite_runs = [r for r in runs if r["db"] == "sqlite"]
    if sqlite_runs:
        good = [r["rows"] for r in sqlite_runs
                if pct(r["search"]["exact"].lib_ms, 99) < TARGET_EXACT_MS
                and r.get("batched") is not None and r["batched"].rate >= TARGET_BATCHED]
        tried = ", ".join(f"{r['rows']:,}" for r in sqlite_runs)
        lines.append(f"- The largest size SQLite serves well (exact p99 < 10 ms and batched "
                     f"ingest >= 10,000 reads/s; sizes tried: {tried}): "
                     + (f"**{max(good):,} transits**." if good else "**none of the sizes "
                        "tried** (see the table for which condition failed)."))
    return lines


def report(results: dict[str, dict[str, Any]], runs: list[dict[str, Any]],
           info: dict[str, str], command: str, args: argparse.Namespace,
           notes: list[str]) -> str:
    machine = machine_line(info) if info else "(not recorded: the run stopped early)"
    parts = [f"Command: `{command}`  ", f"Machine: {machine}", ""]
    setup = (f"Hotlist {args.hotlist:,} plates (one_substitution); {len(READERS)} plate "
             f"readers; server `python -m vigila serve`, {args.workers} uvicorn worker(s); "
             f"runs of {args.seconds:g} s; {args.queries} queries per kind; "
             f"alarms: {args.alarms} one at a time with {args.background:,} reads/s of misses "
             f"beside; PostgreSQL durability "
             f"{'off (--pg-no-fsync)' if args.pg_no_fsync else 'on (fsync, synchronous_commit)'}.")
    parts += [setup, ""]
    for d in ("sqlite", "postgresql"):
        if d in results and "hotlist_s" in results[d]:
            warm, ready = results[d].get("warm_s"), results[d].get("ready_s")
            parts.append(f"Hotlist import ({args.hotlist:,} plates) on {d}: "
                         f"{results[d]['hotlist_s']:.1f} s"
                         + (f"; the server from launch to its first answer (it loads the "
                            f"hotlists before it serves): {ready:.1f} s" if ready else "")
                         + (f"; its first batch of 20 reads: {warm * 1000:.0f} ms"
                            if warm is not None else "") + ".  ")
    parts.append("")
    if any("batched" in r for r in results.values()):
        parts += ["### Ingest", "", *ingest_table(results, args), "",
                  "Where a read's time goes, in process, one thread: µs per read, wall "
                  "(CPU of this thread; PostgreSQL's own work is not in it). auth is "
                  "`Authenticator.resolve` (per request), parse is the route's JSON parse "
                  "and `ReadIn` validation, respond the answer's JSON as the route renders it "
                  "(pydantic's `model_dump_json` for a batch).",
                  "", *steps_table(results), ""]
    table = alarm_table(results)
    if table:
        parts += ["### Alarm latency (POST → MQTT)", "",
                  "From just before the POST of a single read of a listed plate to the "
                  "alarm's arrival at a paho subscriber (QoS 1) on the same broker; one alarm "
                  "at a time, misses posted beside it in batches every 0.1 s.", "", *table, ""]
    if runs:
        parts += ["### Search", "",
                  f"Exact, look-alike and prefix queries over the {DAYS} days of data, infix "
                  "over one day, newest 100 first. `search_transits` runs as the API runs "
                  "it: in a write transaction with its audit entry and the commit; the "
                  "SQLAlchemy column is its `search_statement` alone in a read transaction; "
                  "the peer is the same SELECT through the bare driver (for look-alike, its "
                  "first page by plate_key, before the distance filter). Plans are the "
                  "database's own (PostgreSQL analysed after the load; SQLite not, as the "
                  "app leaves it).", "", *search_table(runs), ""]
        sqlite_runs = [r for r in runs if r["db"] == "sqlite"]
        pg_runs = [r for r in runs if r["db"] == "postgresql"]
        parts += ["Sizes, load times and the batched ingest on the loaded database:", "",
                  *sweep_table(pg_runs + sqlite_runs), ""]
        for run in runs:
            parts.append(f"{run['name']} {run['rows']:,}: exact queries on plates with "
                         f"{run['target_mean']:.0f} transits on average "
                         f"({run['targets']:,} such plates).  ")
        parts.append("")
    parts += ["### Targets", "", *verdicts(results, runs), ""]
    if notes:
        parts += ["Notes:", "", *[f"- {n}" for n in notes], ""]
    return "\n".join(parts)


def _subsection(text: str, heading: str) -> str:
    """A '### ' subsection of `text`, from its heading to the next one (or "")."""
    found = re.search(rf"^{re.escape(heading)}.*?(?=^### |\Z)", text, re.S | re.M)
    return found.group(0).rstrip("\n") if found else ""  # a line's two spaces are its break


def keep_unmeasured(text: str, path: Path, parts: set[str]) -> str:
    """`text` with the subsections this run did not measure (alarms, search) taken from the
    section as it stands, each marked with the run it comes from, so that re-measuring the
    ingest alone does not wipe the hour-long search figures."""
    old = current_section(path, SECTION, END)
    if not old or parts >= {"alarms", "search"}:
        return text
    command = re.search(r"^Command: `([^`]*)`", old, re.M)
    date = re.search(r"^Machine: .*?(\d{4}-\d{2}-\d{2}) \(load", old, re.M)
    source = (f"earlier run, `{command.group(1) if command else '?'}` of "
              f"{date.group(1) if date else '?'}")
    kept: list[str] = []
    for part, heading in (("alarms", "### Alarm latency"), ("search", "### Search")):
        block = _subsection(old, heading)
        if part not in parts and block:
            head, _, body = block.partition("\n")
            if not body.lstrip().startswith("*Not re-measured"):  # else it says whence already
                body = f"\n*Not re-measured: from the {source}.*\n{body}"
            kept.append(f"{head}\n{body}")
    kinds = {"batched ingest over HTTP": "ingest", "alarm p99": "alarms",
             "exact search": "search", "serves well": "search"}
    day = date.group(1) if date else "?"
    old_lines = [line if "(from the " in line else f"{line} (from the earlier run of {day})"
                 for line in _subsection(old, "### Targets").splitlines()
                 if line.startswith("- ") and all(
                     k not in line or part not in parts for k, part in kinds.items())]
    before, mark, after = text.partition("### Targets\n\n")
    if not mark:
        return text
    targets, gap, tail = after.partition("\n\n")
    return (before + "\n\n".join(kept) + ("\n\n" if kept else "") + mark
            + "\n".join([*targets.splitlines(), *old_lines]) + gap + tail)


def write_docs(text: str, path: Path) -> None:
    """Replace this benchmark's section; the rest of the file is left as it is."""
    intro = (__doc__ or "").split("\n\n")[0].replace("\n", " ")
    put_section(path, SECTION, END,
                f"{SECTION}\n\n{BEGIN}\n\n{intro} Method: the docstring of `bench/plates.py`."
                f"\n\n{text.rstrip()}\n\n{END}\n\n")


# --- the phases -----------------------------------------------------------------------------------


class Site:
    """One database kind: its seeded template, and fresh copies of it."""

    def __init__(self, kind: str, work: Path, server: PgServer | None) -> None:
        self.kind = kind
        self.work = work
        self.pg = server
        self.copies = 0
        self.template_path = work / "template.db"

    def settings(self, url: str, name: str) -> Settings:
        return Settings(data_dir=self.work / f"data-{name}", database_url=url)

    def seed(self, hotlist: Sequence[str]) -> float:
        if self.pg is None:
            url = f"sqlite:///{self.template_path}"
        else:
            url = self.pg.create_database("template_bench")
        db = Database(url, pool=False)
        try:
            seconds = seed_installation(db, self.settings(url, "template"), hotlist)
            if self.pg is None:
                with db.engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            db.dispose()
        return seconds

    def fresh(self, name: str) -> str:
        """A database URL: a copy of the seeded template."""
        self.copies += 1
        if self.pg is None:
            path = self.work / f"{name}.db"
            shutil.copyfile(self.template_path, path)
            return f"sqlite:///{path}"
        return self.pg.create_database(f"{name}_{self.copies}", template="template_bench")

    def drop(self, url: str) -> None:
        if self.pg is None:
            path = Path(sa.engine.make_url(url).database or "")
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        else:
            self.pg.drop_database(sa.engine.make_url(url).database or "")

    def dsn(self, url: str) -> str | None:
        if self.pg is None:
            return None
        return self.pg.dsn(sa.engine.make_url(url).database or "")

    @property
    def db_pid(self) -> int | None:
        return postmaster_pid(self.pg) if self.pg is not None else None


def phase_ingest(site: Site, source: ReadSource, args: argparse.Namespace,
                 out: dict[str, Any]) -> None:
    kind = site.kind
    seconds = args.seconds
    url = site.fresh("inproc")
    db = Database(url)
    settle_heap()  # the garbage collector as the server process has it (vigila.api.asgi)
    try:
        profile = cProfile.Profile() if args.profile else None
        log(f"{kind}: in process, the route's steps, batched, {seconds:g} s")
        out["steps_batched"] = route_steps(db, site.settings(url, "inproc"), source, "batched",
                                           seconds, args.seed + 11, profile)
        if profile is not None:
            text = io.StringIO()
            pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(30)
            (site.work / f"profile-{kind}-batched.txt").write_text(text.getvalue())
            print(f"--- cProfile, {kind}, in process, batched (by own time) ---")
            print("\n".join(text.getvalue().splitlines()[:60]))
        log(f"{kind}: in process, the route's steps, single, {seconds:g} s")
        profile = cProfile.Profile() if args.profile else None
        out["steps_single"] = route_steps(db, site.settings(url, "inproc"), source, "single",
                                          seconds, args.seed + 12, profile)
        if profile is not None:
            text = io.StringIO()
            pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(30)
            (site.work / f"profile-{kind}-single.txt").write_text(text.getvalue())
            print(f"--- cProfile, {kind}, in process, single (by own time) ---")
            print("\n".join(text.getvalue().splitlines()[:60]))
    finally:
        db.dispose()
        site.drop(url)

    url = site.fresh("floor")
    db = Database(url)
    try:
        log(f"{kind}: storage floor, {seconds:g} s of inserts"
            + (" each way" if site.pg is not None else ""))
        out["floor"] = storage_floor(db, source, seconds, args.seed + 13, site.dsn(url))
    finally:
        db.dispose()
        site.drop(url)

    url = site.fresh("http")
    server = AppServer(site.work, f"{kind}-http", url, workers=args.workers).start()
    try:
        out["warm_s"] = server.warm(source, random.Random(args.seed))
        out["ready_s"] = server.ready_s
        log(f"{kind}: HTTP batched, {args.clients} clients, {seconds:g} s "
            f"(server pid {server.proc.pid}, port {server.port})")
        out["batched"] = run_load(server, source, "batched", args.clients, seconds,
                                  args.seed + 14, site.db_pid)
        log(f"   {out['batched'].rate:,.0f} reads/s")
        log(f"{kind}: HTTP single, {args.single_clients} clients, {seconds:g} s")
        out["single"] = run_load(server, source, "single", args.single_clients, seconds,
                                 args.seed + 15, site.db_pid)
        log(f"   {out['single'].rate:,.0f} reads/s")
    finally:
        server.stop()
        site.drop(url)


def phase_alarms(site: Site, source: ReadSource, hotlist: Sequence[str],
                 args: argparse.Namespace, out: dict[str, Any]) -> None:
    broker = new_broker()
    broker.start()
    url = site.fresh("alarms")
    server = AppServer(site.work, f"{site.kind}-alarms", url, mqtt_url=broker.url,
                       workers=args.workers).start()
    try:
        server.warm(source, random.Random(args.seed))
        plates = random.Random(args.seed + 21).sample(list(hotlist), args.alarms + 40)
        log(f"{site.kind}: {args.alarms} alarms, one at a time, {args.background:,} reads/s "
            f"of misses beside (broker port {broker.port})")
        out["alarms"] = measure_alarms(server, broker, source, plates, args.background,
                                       args.seed + 22)
        a = out["alarms"]
        log(f"   p50 {med(a['latency_ms']):.1f} ms, p99 {pct(a['latency_ms'], 99):.1f} ms; "
            f"broker floor p50 {med(a['floor_ms']):.2f} ms")
    finally:
        server.stop()
        broker.stop()
        site.drop(url)


def enough_disk(work: Path, rows: int, notes: list[str], name: str) -> bool:
    need = rows * 1200  # bytes: rows and indexes (~700 B) with room for the ingest and WAL
    free = shutil.disk_usage(work).free
    if free < need:
        notes.append(f"{name} {rows:,} transits skipped: {free / 2**30:.0f} GiB free on "
                     f"{work}, about {need / 2**30:.0f} GiB needed.")
        return False
    return True


def phase_search(site: Site, rows: int, source: ReadSource, args: argparse.Namespace,
                 end: datetime) -> dict[str, Any]:
    name = "SQLite" if site.pg is None else "PostgreSQL"
    url = site.fresh(f"search{rows}")
    data = TransitData(rows, args.seed + 31, end)
    try:
        log(f"{site.kind}: loading {rows:,} transits")
        if site.pg is None:
            path = Path(sa.engine.make_url(url).database or "")
            loaded = load_sqlite(path, data)
        else:
            if not args.pg_no_fsync:
                pg_durable(site.pg, False)
            try:
                loaded = load_postgresql(site.dsn(url) or "", data)
            finally:
                if not args.pg_no_fsync:
                    pg_durable(site.pg, True)
        log(f"   insert {loaded.insert_s:.0f} s, indexes {loaded.index_s:.0f} s, "
            f"{loaded.bytes / 2**30:.2f} GiB")
        queries = make_queries(data, args.queries, args.seed + 32)
        targets = data.targets()
        db = Database(url)
        run_peer, close_peer = (sqlite_peer(path) if site.pg is None
                                else pg_peer(site.dsn(url) or ""))
        try:
            log(f"{site.kind}: {args.queries} queries of each kind, three ways")
            results = run_searches(db, queries, run_peer)
        finally:
            close_peer()
            db.dispose()
        for kind in KINDS:
            r = results[kind]
            log(f"   {kind:6} lib p50 {med(r.lib_ms):.2f} p99 {pct(r.lib_ms, 99):.2f}; "
                f"peer p50 {med(r.peer_ms):.2f} p99 {pct(r.peer_ms, 99):.2f} ms")
        run: dict[str, Any] = {"db": site.kind, "name": name, "rows": rows,
                               "insert_s": loaded.insert_s, "index_s": loaded.index_s,
                               "bytes": loaded.bytes, "search": results,
                               "targets": len(targets), "target_mean": data.mean_count(targets)}
        if not args.no_ingest_at_size:
            # The loader writes DAYS days of transits that matched nothing; with the default
            # 24 hours the server's first minimisation pass would spend the run deleting
            # the older ones, a backlog no running installation has. Keep them all.
            keep = {"VIGILA_READS_UNMATCHED_HOURS": str((DAYS + 1) * 24)}
            server = AppServer(site.work, f"{site.kind}-size{rows}", url,
                               workers=args.workers, settings=keep).start()
            try:
                server.warm(source, random.Random(args.seed))
                log(f"{site.kind}: HTTP batched at {rows:,} transits, {args.seconds:g} s")
                run["batched"] = run_load(server, source, "batched", args.clients,
                                          args.seconds, args.seed + 33, site.db_pid)
                log(f"   {run['batched'].rate:,.0f} reads/s")
            finally:
                server.stop()
        return run
    finally:
        if not args.keep:
            site.drop(url)


# --- main --------------------------------------------------------------------------------------


def _sizes(text: str) -> list[int]:
    try:
        values = [int(v.replace("_", "")) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a list of sizes: {text!r}") from exc
    if any(v < 1000 for v in values):
        raise argparse.ArgumentTypeError("sizes are 1000 transits or more")
    return sorted(set(values))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="small sizes for a check: 100k hotlist, 200k transits (SQLite 100k "
                         "and 200k), 10 s runs, 100 queries and 100 alarms")
    ap.add_argument("--hotlist", type=int, help="hotlist plates (default 1,000,000)")
    ap.add_argument("--transits", type=int, help="transits on PostgreSQL (default 10,000,000)")
    ap.add_argument("--sqlite-sizes", type=_sizes,
                    help="transits on SQLite, comma-separated (default 1M,3M,10M)")
    ap.add_argument("--seconds", type=float, help="each ingest run (default 60)")
    ap.add_argument("--queries", type=int, help="queries per kind (default 200)")
    ap.add_argument("--alarms", type=int, help="alarms measured per database (default 500)")
    ap.add_argument("--background", type=int, default=1000,
                    help="reads/s of misses posted beside the alarms (default 1000; 0: none)")
    ap.add_argument("--clients", type=int, default=4, help="batched clients (default 4)")
    ap.add_argument("--workers", type=int, default=1,
                    help="uvicorn worker processes of the server (default 1, as shipped)")
    ap.add_argument("--single-clients", type=int, default=4,
                    help="single-read clients (default 4)")
    ap.add_argument("--parts", default="ingest,alarms,search",
                    help="which measures: ingest, alarms, search (default all)")
    ap.add_argument("--databases", default="sqlite,postgresql",
                    help="sqlite, postgresql (default both)")
    ap.add_argument("--no-ingest-at-size", action="store_true",
                    help="skip the batched ingest run on each loaded search database")
    ap.add_argument("--pg-no-fsync", action="store_true",
                    help="leave the test cluster's fsync/synchronous_commit off")
    ap.add_argument("--profile", action="store_true",
                    help="cProfile the in-process route steps; print the top functions")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", action="store_true",
                    help="keep the working folder: SQLite files, server logs, profiles (the "
                         "PostgreSQL cluster is removed all the same)")
    ap.add_argument("--write-docs", action="store_true",
                    help="record the figures in docs/BENCHMARKS.md (its own section)")
    ap.add_argument("--docs", type=Path, default=DOCS, help="the file --write-docs writes")
    args = ap.parse_args(argv)
    quick = args.quick
    args.hotlist = args.hotlist or (100_000 if quick else 1_000_000)
    args.transits = args.transits or (200_000 if quick else 10_000_000)
    args.sqlite_sizes = args.sqlite_sizes or ([100_000, 200_000] if quick
                                              else [1_000_000, 3_000_000, 10_000_000])
    args.seconds = args.seconds or (10.0 if quick else 60.0)
    args.queries = args.queries or (100 if quick else 200)
    args.alarms = args.alarms or (100 if quick else 500)
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    databases = [d for d in ("sqlite", "postgresql") if d in args.databases]
    if not parts <= {"ingest", "alarms", "search"} or not databases:
        ap.error("--parts takes ingest, alarms, search; --databases sqlite, postgresql")
    command = "python bench/plates.py " + shlex.join(argv)

    work = Path(tempfile.mkdtemp(prefix="vigila-bench-plates-"))
    notes: list[str] = []
    results: dict[str, dict[str, Any]] = {}
    runs: list[dict[str, Any]] = []
    pg: PgServer | None = None
    failed = False
    pg_version = "not run"
    info: dict[str, str] = {}
    try:
        rng = random.Random(args.seed)
        log(f"command: {command}; working folder {work}")
        hotlist = unique_plates(args.hotlist, rng)
        source = ReadSource(hotlist, rng)
        if "postgresql" in databases:
            pg = new_postgres()
            pg.start()
            if not args.pg_no_fsync:
                pg_durable(pg, True)
            with psycopg.connect(pg.dsn("postgres")) as conn:
                row = conn.execute("SHOW server_version").fetchone()
                pg_version = str(row[0]).split()[0] if row else "?"
        info = machine_info(work, pg_version)
        log(machine_line(info))
        end = datetime.now(UTC).replace(microsecond=0)
        for kind in databases:
            site = Site(kind, work / kind, pg if kind == "postgresql" else None)
            site.work.mkdir()
            out = results.setdefault(kind, {})
            log(f"{kind}: seeding, hotlist of {args.hotlist:,} plates")
            out["hotlist_s"] = site.seed(hotlist)
            log(f"   hotlist import {out['hotlist_s']:.1f} s")
            if "ingest" in parts:
                phase_ingest(site, source, args, out)
            if "alarms" in parts:
                phase_alarms(site, source, hotlist, args, out)
            if "search" in parts:
                sizes = args.sqlite_sizes if kind == "sqlite" else [args.transits]
                for rows in sizes:
                    if enough_disk(work, rows, notes, kind):
                        runs.append(phase_search(site, rows, source, args, end))
    except BaseException:
        failed = True
        raise
    finally:
        if pg is not None:
            pg.stop()
        if results or runs:
            text = report(results, runs, info, command, args, notes)
            print("\n" + text)
            if args.write_docs and not failed:
                write_docs(keep_unmeasured(text, args.docs, parts), args.docs)
                print(f"recorded in {args.docs}")
        if args.keep or failed:
            print(f"working folder kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
