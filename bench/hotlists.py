"""Hotlist benchmark: a million-entry import on SQLite and PostgreSQL, and the matcher's rate.

Generates N plates (Italian current format AA000AA, from a seed) as a CSV with every
column (priority, reason, expires_at on one row in ten, country) and as a TXT of plates
alone, then, on each database:

* import the CSV into an empty list (merge), the path of a first load;
* import the next day's CSV (2 % of the plates gone, as many new) with mode=replace, which
  deletes the plates the file leaves out, updates the rest in place and adds the new ones;
* import the TXT into a second empty list.

Each is one call of `vigila.hotlists.import_entries` in one write transaction, timed from
the bytes in memory to the commit. PostgreSQL is a throw-away cluster started as the
tests start theirs (tests/pgserver.py), which runs with fsync off: its figures leave out
the disk flush at commit.

Then the matcher: `HotlistMatcher` loaded from the SQLite database (two lists, 2 N
entries, both with the one-substitution policy so every read takes the slower path), its
load time and the memory it holds (allocations traced on a second load, so that tracing
does not slow the timed one), and reads per second over a mix of misses, exact hits and
look-alike hits. The peer is the other recipe of `vigila.plates.lookalike`: every
one-substitution variant of the read looked up in a set of the listed plates (loaded from
the same database, timed and traced the same way).

With --write-docs the figures, the command and the machine go into docs/BENCHMARKS.md
(--docs PATH for another file), section "Hotlists (import and matcher)": that section alone
is written, replaced when present, and the "Recorded so far" line at the top names it.

    python bench/hotlists.py [--entries 1000000] [--seed 7] [--reads 200000] [--write-docs]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import platform
import random
import re
import shlex
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from benchdoc import cpu_name, disk_of, put_section

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from pgserver import PostgresServer  # type: ignore[import-not-found, unused-ignore]  # noqa: E402
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
from vigila.hotlists.tables import hotlist_entries  # noqa: E402
from vigila.plates import lookalikes, normalise  # noqa: E402
from vigila.store import Database, upgrade  # noqa: E402

LETTERS = "ABCDEFGHJKLMNPRSTVWXYZ"  # the Italian series skips I, O, Q, U
REASONS = ("furto", "appropriazione indebita", "rapina", "smarrimento targhe",
           "denuncia 112", "segnalazione SDI")
CONSOLE = Principal.console("bench")
DOCS = ROOT / "docs" / "BENCHMARKS.md"
SECTION = "## Hotlists (import and matcher)"
BEGIN = "<!-- begin: written by bench/hotlists.py --write-docs -->"
END = "<!-- end: bench/hotlists.py -->"
TARGET_ENTRIES = 1_000_000  # the issue: "a million entries import in under a minute"
TARGET_SECONDS = 60.0


def plates(n: int, rng: random.Random) -> list[str]:
    out: set[str] = set()
    while len(out) < n:
        out.add("".join((rng.choice(LETTERS), rng.choice(LETTERS), f"{rng.randrange(1000):03d}",
                         rng.choice(LETTERS), rng.choice(LETTERS))))
    items = sorted(out)  # a set's order follows the string hash, which changes per run
    rng.shuffle(items)
    return items


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


IMPORTS = (  # the file, the list, its format, the mode, what the table calls it
    ("csv", "stolen", FileFormat.CSV, ImportMode.MERGE, "CSV into an empty list (merge)"),
    ("next", "stolen", FileFormat.CSV, ImportMode.REPLACE, "next day's CSV over it (replace)"),
    ("txt", "stolen-txt", FileFormat.TXT, ImportMode.MERGE, "TXT into an empty list (merge)"),
)


def bench_imports(name: str, db: Database, files: dict[str, bytes],
                  counts: dict[str, int]) -> list[dict[str, Any]]:
    fuzzy = LookalikePolicy.ONE_SUBSTITUTION
    setup(db, {"stolen": fuzzy, "stolen-txt": fuzzy})
    out: list[dict[str, Any]] = []
    for key, hid, fmt, mode, what in IMPORTS:
        seconds = timed_import(db, hid, files[key], fmt, mode)
        n = counts[key]
        out.append({"database": name, "import": what, "entries": n, "seconds": seconds})
        print(f"{name:10} {what:34} {n:>9,}: {seconds:6.1f} s ({n / seconds:,.0f} entries/s)",
              flush=True)
    return out


def db_version(db: Database) -> str:
    query = "select sqlite_version()" if db.dialect == "sqlite" else "show server_version"
    with db.read() as conn:
        return str(conn.execute(sa.text(query)).scalar()).split()[0]


def rate(fn: Callable[[str], object], reads: list[str]) -> float:
    started = time.perf_counter()
    for r in reads:
        fn(r)
    return len(reads) / (time.perf_counter() - started)


def timed_load(build: Callable[[], Any]) -> tuple[Any, float]:
    gc.collect()
    started = time.perf_counter()
    built = build()
    return built, time.perf_counter() - started


def held_by(build: Callable[[], object]) -> int:
    """Bytes a second, fresh build holds: allocations traced while it was built, still live.

    Traced apart from the timed build, which tracemalloc would slow down."""
    gc.collect()
    tracemalloc.start()
    try:
        built = build()
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del built
    return held


def bench_matcher(db: Database, listed: list[str], n_reads: int,
                  rng: random.Random) -> dict[str, Any]:
    def load() -> HotlistMatcher:
        matcher = HotlistMatcher(db)  # two lists: the replaced CSV one and the TXT one
        matcher.refresh()
        return matcher

    def load_peer() -> set[str]:  # the TXT list: the listed plates
        e = hotlist_entries.c
        with db.read() as conn:
            return set(conn.execute(sa.select(e.plate).where(e.hotlist_id == "stolen-txt"))
                       .scalars())

    matcher, load_s = timed_load(load)
    held = held_by(load)
    print(f"matcher    load {matcher.entries:,} entries ({len(matcher.revisions)} lists): "
          f"{load_s:.2f} s, {held / 2**20:,.0f} MiB held ({held / matcher.entries:.0f} B/entry)")
    plate_set, peer_load_s = timed_load(load_peer)
    peer_held = held_by(load_peer)
    assert plate_set == set(listed)
    print(f"peer       load {len(plate_set):,} plates into a set: {peer_load_s:.2f} s, "
          f"{peer_held / 2**20:,.0f} MiB held ({peer_held / len(plate_set):.0f} B/entry)")

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

    def peer(read: str) -> bool:
        plate = normalise(read)
        return plate in plate_set or any(v in plate_set for v in lookalikes(plate))

    peer_hits = sum(1 for r in reads if peer(r))
    theirs = rate(peer, reads)
    print(f"peer       variants looked up in a set of {len(plate_set):,}: {theirs:,.0f} reads/s "
          f"({peer_hits:,} hit; one list, the matcher searched two)")
    return {"lists": len(matcher.revisions), "entries": matcher.entries, "load_s": load_s,
            "held": held, "reads": len(reads), "exact": len(exact), "near": len(near),
            "hits": hits, "rate": ours, "peer_entries": len(plate_set),
            "peer_load_s": peer_load_s, "peer_held": peer_held, "peer_hits": peer_hits,
            "peer_rate": theirs}


# --- the machine and the document ---------------------------------------------------------


def machine(versions: dict[str, str], where: str) -> dict[str, str]:
    cpu = cpu_name()
    memory = "unknown"
    system = f"{platform.system()} {platform.release()}"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 2**20:.1f} GiB"
                break
    with contextlib.suppress(OSError):
        system = platform.freedesktop_os_release().get("PRETTY_NAME", system)
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu, "arch": platform.machine(), "cpus": str(os.cpu_count()),
            "usable": str(usable), "memory": memory, "os": system,
            "kernel": platform.release(), "python": platform.python_version(),
            "sqlite": versions.get("SQLite", "unknown"),
            "postgresql": versions.get("PostgreSQL", "not run"), "disk": disk_of(where),
            "date": time.strftime("%Y-%m-%d")}


def machine_line(info: dict[str, str]) -> str:
    return (f"Machine: {info['cpu']} ({info['arch']}), {info['cpus']} CPUs ({info['usable']} "
            f"usable), {info['memory']} RAM, {info['os']}, kernel {info['kernel']}, Python "
            f"{info['python']}, SQLite {info['sqlite']}, PostgreSQL {info['postgresql']}; "
            f"databases on {info['disk']}; {info['date']}")


def verdict(entries: int, seconds: float) -> str:
    if entries >= TARGET_ENTRIES:
        return "**met**" if seconds < TARGET_SECONDS else "**not met**"
    projected = seconds * TARGET_ENTRIES / entries
    return (f"not judged: {entries:,} entries, not a million (at this rate a million, "
            f"linearly: {projected:.0f} s)")


def table(head: list[str], rows: list[list[str]]) -> str:
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
                     + ["| " + " | ".join(row) + " |" for row in rows])


def _mib(held: int, entries: int) -> str:
    return f"{held / 2**20:,.1f} MiB ({held / entries:,.0f} B/entry)"


METHOD = """\
N plates in the Italian current format (AA000AA, distinct, generated from the seed) are
written as a CSV with every column (priority, reason, `expires_at` on one row in ten,
country) and as a TXT of plates alone. On each database, in this order: the CSV into an
empty list (`mode=merge`, a first load); the next day's CSV, 2 % of the plates gone and as
many new, over that list (`mode=replace`: the plates the file leaves out deleted, the rest
updated in place, the new ones added); the TXT into a second empty list. Each import is one
call of `vigila.hotlists.import_entries` in one write transaction, timed from the file's
bytes in memory to the commit: parsing and checking every row, the look-alike key of every
plate, the writes, the list's revision and the audit record. Both lists use the
one-substitution look-alike policy. SQLite is a file in a temporary folder with Vigila's
settings (WAL, `synchronous=NORMAL`). PostgreSQL is a throw-away cluster on the same
machine, started as the tests start theirs (`tests/pgserver.py`) and reached over TCP on
127.0.0.1; it runs with **fsync off** (and `synchronous_commit` and `full_page_writes`
off), so its figures leave out the flush to disk at commit that a production server pays.

The matcher: `HotlistMatcher(db).refresh()` loads both lists left in the SQLite database
(the replaced CSV list and the TXT list, 2 N entries), timed from the call to the matcher
ready; the memory it holds is measured on a second load under `tracemalloc` (allocations
made during the load and still live), so that tracing does not slow the timed one. The
reads are misses, 1 % exact hits and about 1 % one look-alike away from a listed plate,
shuffled; reads/s is their number over the wall time of calling `match` on each, one
thread. The peer is the other recipe of `vigila.plates.lookalike`: the read normalised,
then it and each of its one-substitution variants looked up in a Python set of the listed
plates (one list, N plates, loaded from the same database by a plain `SELECT`, timed and
traced the same way); it answers found or not, where the matcher builds the hits."""


MATCHER_HEAD = ["", "entries held", "load", "memory held", "reads/s", "reads hit"]


def docs_section(imports: list[dict[str, Any]], m: dict[str, Any], info: dict[str, str],
                 command: str, files_line: str) -> str:
    head = ["database", "import", "entries", "time", "entries/s",
            f"target: {TARGET_ENTRIES:,} in under {TARGET_SECONDS:.0f} s"]
    rows = [[r["database"], r["import"], f"{r['entries']:,}", f"{r['seconds']:.2f} s",
             f"{r['entries'] / r['seconds']:,.0f}", verdict(r["entries"], r["seconds"])]
            for r in imports]
    if info["postgresql"] == "not run":
        rows.append(["PostgreSQL", "not run (`--no-postgresql`)", "", "", "", ""])
    matcher_rows = [
        ["Vigila `HotlistMatcher.match`", f"{m['lists']} lists, {m['entries']:,}",
         f"{m['load_s']:.2f} s", _mib(m["held"], m["entries"]), f"{m['rate']:,.0f}",
         f"{m['hits']:,}"],
        ["peer: variants looked up in a set", f"1 list, {m['peer_entries']:,}",
         f"{m['peer_load_s']:.2f} s", _mib(m["peer_held"], m["peer_entries"]),
         f"{m['peer_rate']:,.0f}", f"{m['peer_hits']:,}"],
    ]
    ratio = m["rate"] / m["peer_rate"]
    return (f"{SECTION}\n\n{BEGIN}\n\n{METHOD}\n\n"
            f"Command: `{command}`  \n{machine_line(info)}\n\n{files_line}\n\n"
            f"### Import\n\n{table(head, rows)}\n\n"
            f"The target is the issue's: \"a million entries import in under a minute\", judged "
            f"on each row of a run of {TARGET_ENTRIES:,} entries or more.\n\n"
            f"### Matcher\n\n{m['reads']:,} reads: {m['exact']:,} exact hits, {m['near']:,} one "
            f"look-alike away, the rest misses.\n\n"
            f"{table(MATCHER_HEAD, matcher_rows)}\n\n"
            f"Vigila / peer, reads/s: {ratio:.2f} (the matcher searched two lists, the peer "
            f"one).\n\n{END}\n\n")


RECORDED = re.compile(r"^(Recorded so far: )([^\n(]+?)( \(below\))", re.M)


def name_in_intro(doc: str) -> str:
    """Add the hotlists to the intro's "Recorded so far: ... (below)" list, if not there."""
    top = doc.find("\n## ")
    found = RECORDED.search(doc, 0, len(doc) if top < 0 else top)
    if found is None:
        print("note: no 'Recorded so far: ... (below)' line above the first section; "
              "name the hotlists there by hand", file=sys.stderr)
        return doc
    items = [i for i in re.split(r",\s*|\s+and\s+", found.group(2).strip()) if i]
    if any("hotlist" in i.lower() for i in items):
        return doc
    items.append("hotlists")
    names = items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
    return doc[:found.start(2)] + names + doc[found.end(2):]


def write_docs(text: str, path: Path) -> None:
    """Replace this benchmark's section; of the rest only the intro's list of what is
    recorded changes, and only when it does not name the hotlists yet."""
    put_section(path, SECTION, END, text, edit=name_in_intro)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--reads", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-postgresql", action="store_true")
    parser.add_argument("--write-docs", action="store_true",
                        help="record the figures in the benchmarks document, section "
                             "'Hotlists (import and matcher)'")
    parser.add_argument("--docs", type=Path, default=DOCS, metavar="PATH",
                        help="the benchmarks document (default docs/BENCHMARKS.md)")
    args = parser.parse_args(argv)
    if args.entries < 100 or args.reads < 100:
        parser.error("--entries and --reads: 100 or more")
    command = " ".join(["python bench/hotlists.py", *map(shlex.quote, argv)]).strip()
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
    counts = {"csv": args.entries, "txt": args.entries,
              "next": args.entries - churn + len(fresh)}
    files_line = (f"Files: CSV {len(files['csv']) / 1e6:.1f} MB, TXT "
                  f"{len(files['txt']) / 1e6:.1f} MB; the next day's CSV drops {churn:,} "
                  f"plates and adds {len(fresh):,}.")
    print(files_line)
    versions: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = Database(f"sqlite:///{tmp}/bench.db")
        imports = bench_imports("SQLite", sqlite, files, counts)
        versions["SQLite"] = db_version(sqlite)
        if not args.no_postgresql:
            with PostgresServer() as server:
                pg = Database(server.create_database("bench"), pool=False)
                imports += bench_imports("PostgreSQL", pg, files, counts)
                versions["PostgreSQL"] = db_version(pg)
                pg.dispose()
        matched = bench_matcher(sqlite, listed, args.reads, rng)
        sqlite.dispose()
        info = machine(versions, tmp)
    print(f"command: {command}\n{machine_line(info)}")
    if args.write_docs:
        write_docs(docs_section(imports, matched, info, command, files_line), args.docs)
        print(f"recorded in {args.docs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
