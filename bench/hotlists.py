"""Hotlist benchmark: a million-entry import on SQLite and PostgreSQL, and the matcher's rate.

Generates N plates (Italian current format AA000AA, from a seed) as a CSV with every
column (priority, reason, expires_at on one row in ten, country) and as a TXT of plates
alone, then, on each database:

* import the CSV into an empty list (merge), the path of a first load;
* import it again with mode=replace (delete the million, write the million);
* import the TXT into a second empty list.

Each is one call of `vigila.hotlists.import_entries` in one write transaction, timed from
the bytes in memory to the commit. PostgreSQL is a throw-away cluster started as the
tests start theirs (tests/pgserver.py), which runs with fsync off: its figures leave out
the disk flush at commit.

Then the matcher: `HotlistMatcher` loaded from the SQLite database (two lists, 2 N
entries, both with the one-substitution policy so every read takes the slower path), its
load time and the memory it holds (traced allocations), and reads per second over a mix
of misses, exact hits and look-alike hits. The peer is the other recipe of
`vigila.plates.lookalike`: every one-substitution variant of the read looked up in a set
of the listed plates.

    python bench/hotlists.py [--entries 1000000] [--seed 7] [--reads 200000]
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from pgserver import PostgresServer  # noqa: E402
from vigila import registry  # noqa: E402
from vigila.access import Principal  # noqa: E402
from vigila.hotlists import (  # noqa: E402
    FileFormat,
    HotlistIn,
    HotlistKind,
    HotlistMatcher,
    ImportMode,
    LookalikePolicy,
    create_hotlist,
    import_entries,
)
from vigila.plates import lookalikes, normalise  # noqa: E402
from vigila.store import Database, upgrade  # noqa: E402

LETTERS = "ABCDEFGHJKLMNPRSTVWXYZ"  # the Italian series skips I, O, Q, U
REASONS = ("furto", "appropriazione indebita", "rapina", "smarrimento targhe",
           "denuncia 112", "segnalazione SDI")
CONSOLE = Principal.console("bench")


def plates(n: int, rng: random.Random) -> list[str]:
    out: set[str] = set()
    while len(out) < n:
        out.add("".join((rng.choice(LETTERS), rng.choice(LETTERS), f"{rng.randrange(1000):03d}",
                         rng.choice(LETTERS), rng.choice(LETTERS))))
    return sorted(out, key=lambda _: rng.random())


def as_csv(items: list[str], rng: random.Random) -> bytes:
    later = (datetime.now(UTC) + timedelta(days=365)).date().isoformat()
    lines = ["plate,priority,reason,expires_at,country"]
    for p in items:
        expires = later if rng.random() < 0.1 else ""
        lines.append(f"{p},{rng.randrange(40, 101)},{rng.choice(REASONS)},{expires},IT")
    return ("\n".join(lines) + "\n").encode()


def setup(db: Database, lists: dict[str, LookalikePolicy]) -> None:
    upgrade(db)
    with db.write() as conn:
        registry.create_agency(conn, CONSOLE, registry.AgencyIn(
            id="ps-sdi", name="Polizia di Stato (SDI)", kind=registry.AgencyKind.POLIZIA_DI_STATO))
        for hid, policy in lists.items():
            create_hotlist(conn, CONSOLE, HotlistIn(id=hid, name=hid, kind=HotlistKind.STOLEN,
                                                    agency_id="ps-sdi", policy=policy))


def timed_import(db: Database, hid: str, raw: bytes, fmt: FileFormat, mode: ImportMode) -> float:
    started = time.perf_counter()
    with db.write() as conn:
        report = import_entries(conn, CONSOLE, hid, raw, fmt=fmt, mode=mode, source="bench")
    seconds = time.perf_counter() - started
    assert report.committed and report.rejected == 0, report.errors[:3]
    return seconds


def bench_imports(name: str, db: Database, files: dict[str, bytes], n: int) -> None:
    fuzzy = LookalikePolicy.ONE_SUBSTITUTION
    setup(db, {"stolen": fuzzy, "stolen-txt": fuzzy})
    first = timed_import(db, "stolen", files["csv"], FileFormat.CSV, ImportMode.MERGE)
    again = timed_import(db, "stolen", files["next"], FileFormat.CSV, ImportMode.REPLACE)
    txt = timed_import(db, "stolen-txt", files["txt"], FileFormat.TXT, ImportMode.MERGE)
    print(f"{name:10} import {n:,} CSV into an empty list:   {first:5.1f} s "
          f"({n / first:,.0f} rows/s)")
    print(f"{name:10} replace it by the next day's CSV:      {again:5.1f} s")
    print(f"{name:10} import {n:,} TXT into an empty list:   {txt:5.1f} s")


def rate(fn: Callable[[str], object], reads: list[str]) -> float:
    started = time.perf_counter()
    for r in reads:
        fn(r)
    return len(reads) / (time.perf_counter() - started)


def bench_matcher(db: Database, listed: list[str], n_reads: int, rng: random.Random) -> None:
    gc.collect()
    tracemalloc.start()
    started = time.perf_counter()
    matcher = HotlistMatcher(db)  # two lists: the replaced CSV one and the TXT one
    matcher.refresh()
    load = time.perf_counter() - started
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"matcher    load {matcher.entries:,} entries ({len(matcher.revisions)} lists): "
          f"{load:.1f} s, {held / 2**20:,.0f} MiB held ({held / matcher.entries:.0f} B/entry)")

    misses = plates(n_reads, random.Random(rng.random()))
    exact = rng.sample(listed, n_reads // 100)
    swaps = {"B": "8", "D": "0", "Z": "2", "S": "5", "0": "D", "1": "I", "8": "B"}
    near = []
    for p in rng.sample(listed, n_reads // 100):
        i = next((i for i, ch in enumerate(p) if ch in swaps), None)
        if i is not None:
            near.append(p[:i] + swaps[p[i]] + p[i + 1:])
    reads = misses[: n_reads - len(exact) - len(near)] + exact + near
    rng.shuffle(reads)
    hits = sum(1 for r in reads if matcher.match(r))
    ours = rate(matcher.match, reads)
    print(f"matcher    {len(reads):,} reads ({len(exact):,} exact, {len(near):,} look-alike, "
          f"the rest misses; {hits:,} hit): {ours:,.0f} reads/s")

    plate_set = set(listed)

    def peer(read: str) -> bool:
        plate = normalise(read)
        return plate in plate_set or any(v in plate_set for v in lookalikes(plate))

    theirs = rate(peer, reads)
    print(f"peer       variants looked up in a set of {len(plate_set):,}: {theirs:,.0f} reads/s "
          f"(one list; the matcher searched two)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--reads", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-postgresql", action="store_true")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    print(f"# hotlists: {args.entries:,} entries, seed {args.seed}; Python "
          f"{platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}")
    listed = plates(args.entries, rng)
    # The next day's list: 2 % of the plates gone (found), as many new ones (stolen).
    churn = args.entries // 50
    known = set(listed)
    fresh = [p for p in plates(3 * churn, random.Random(args.seed + 1)) if p not in known][:churn]
    files = {"csv": as_csv(listed, rng), "txt": ("\n".join(listed) + "\n").encode(),
             "next": as_csv(listed[churn:] + fresh, rng)}
    print(f"files      CSV {len(files['csv']) / 1e6:.1f} MB, TXT {len(files['txt']) / 1e6:.1f} "
          f"MB; the next day's CSV drops {churn:,} plates and adds {len(fresh):,}")
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = Database(f"sqlite:///{tmp}/bench.db")
        bench_imports("SQLite", sqlite, files, args.entries)
        if not args.no_postgresql:
            with PostgresServer() as server:
                pg = Database(server.create_database("bench"), pool=False)
                bench_imports("PostgreSQL", pg, files, args.entries)
                pg.dispose()
        bench_matcher(sqlite, listed, args.reads, rng)
        sqlite.dispose()


if __name__ == "__main__":
    main()
