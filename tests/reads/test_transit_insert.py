"""The ingest's own insert of transits (straight to the driver: multi-row INSERTs on SQLite,
COPY into a staging table and one INSERT from it on PostgreSQL) stores exactly what
`transits.insert()` stores, and skips the duplicates of (device, event id) the way ON
CONFLICT DO NOTHING did.

Both databases (the `world` fixture). Rows are compared as the database holds them: SQLite's
`quote()` of each column (its storage class and text), PostgreSQL's `::text`.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa

from conftest import World
from vigila.core import EventBus
from vigila.reads import Ingest, RawRead
from vigila.reads.ingest import _SQLITE_MAX_ROWS, _insert_transits, time_ordered_id
from vigila.reads.tables import transit_counts, transits

COLUMNS = [c.name for c in transits.c]
NOT_COMPARED = {"id", "event_id"}  # each path gets its own


def rows(prefix: str, n: int = 12) -> list[dict[str, Any]]:
    """Rows as the ingest builds them, with the odd values a reader can leave."""
    base = datetime(2026, 3, 29, 0, 59, 59, 999_999, tzinfo=UTC)
    rome = timezone(timedelta(hours=2))
    out = []
    for i in range(n):
        at = base + timedelta(seconds=i * 37)
        out.append({
            "id": time_ordered_id(), "device_id": "LPR-B1", "plate": f"AB{i:03d}CD",
            "plate_key": f"AB{i:03d}CD".replace("0", "O"), "plate_raw": f"ab {i:03d} cd",
            "format_id": "it_current" if i % 3 else "generic",
            "country": None if i % 4 == 0 else "IT",
            "confidence": None if i % 5 == 0 else i / 13,
            "time": at.astimezone(rome) if i % 2 else at,  # any zone in, UTC stored
            "received_at": at + timedelta(microseconds=i),
            "direction": (None, "inbound", "outbound")[i % 3],
            "lane": None if i % 2 else i % 16 + 1,
            "event_id": f"{prefix}-{i}", "vendor": "generic" if i % 2 else "tattile",
            "flags": "" if i % 3 else "late,unknown_format", "hit": i % 7 == 0,
            "extra": None if i % 2 else {"colour": "rosso", "n": str(i), "è": "ü"},
            "plate_image": None if i % 3 else f"2026/03/29/{i}-plate.jpg",
            "plate_image_sha256": None if i % 3 else "a" * 64,
            "context_image": None, "context_image_sha256": None,
        })
    return out


def stored(world: World, prefix: str) -> dict[str, tuple[Any, ...]]:
    """event id -> the row as the database holds it, the compared columns only."""
    shown = [c for c in COLUMNS if c not in NOT_COMPARED]
    with world.db.read() as conn:
        if conn.dialect.name == "postgresql":
            cols = ", ".join(f"{c}::text" for c in shown)
        else:
            cols = ", ".join(f"quote({c})" for c in shown)
        got = conn.execute(sa.text(f"SELECT event_id, {cols} FROM transits "
                                   "WHERE event_id LIKE :p"), {"p": f"{prefix}-%"}).all()
    return {r[0].removeprefix(f"{prefix}-"): tuple(r[1:]) for r in got}


def test_the_fast_insert_stores_what_sqlalchemy_stores(world: World) -> None:
    reference, fast = rows("ref"), rows("new")
    with world.db.write() as conn:
        conn.execute(transits.insert(), reference)
        inserted = _insert_transits(conn, fast)
    assert inserted == {r["id"] for r in fast}
    old, new = stored(world, "ref"), stored(world, "new")
    assert len(old) == len(fast)
    assert new == old
    with world.db.read() as conn:  # the ids too, read back through the column type
        ids = set(conn.execute(sa.select(transits.c.id).where(
            transits.c.event_id.like("new-%"))).scalars())
    assert ids == inserted


def test_duplicates_are_skipped_and_not_reported_inserted(world: World) -> None:
    first = rows("dup", 10)
    with world.db.write() as conn:
        assert _insert_transits(conn, first[:6]) == {r["id"] for r in first[:6]}
    before = stored(world, "dup")
    # A retry of the first four (new ids, as a retried read gets) among six not seen yet.
    again = [{**r, "id": time_ordered_id(), "plate_raw": "changed"} for r in first[:4]]
    with world.db.write() as conn:
        inserted = _insert_transits(conn, again + first[6:])
    assert inserted == {r["id"] for r in first[6:]}
    after = stored(world, "dup")
    assert len(after) == 10
    assert all(after[k] == v for k, v in before.items())  # the stored reads are untouched
    with world.db.write() as conn:  # all of them again: nothing new
        assert _insert_transits(conn, [{**r, "id": uuid.uuid4()} for r in first]) == set()
    assert stored(world, "dup") == after


def test_a_batch_over_one_statement_is_stored_whole(world: World) -> None:
    """On SQLite the rows go in several multi-row INSERTs (`_SQLITE_MAX_ROWS` each): a
    batch of two and a bit statements, then again with a duplicate in every part."""
    many = [{**r, "event_id": f"big-{k}", "id": time_ordered_id()}
            for k, r in enumerate(rows("x", 12) * 100)]  # 1,200 rows
    assert len(many) > 2 * _SQLITE_MAX_ROWS
    with world.db.write() as conn:
        assert _insert_transits(conn, many[::2]) == {r["id"] for r in many[::2]}
    again = [{**r, "id": time_ordered_id()} for r in many]
    with world.db.write() as conn:
        inserted = _insert_transits(conn, again)
    assert inserted == {r["id"] for r in again[1::2]}
    with world.db.read() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(transits).where(
            transits.c.event_id.like("big-%"))).scalar_one()
    assert count == len(many)


def test_batches_posted_together_are_stored_once_each(world: World) -> None:
    """Four threads send overlapping batches at once, as retrying readers do: on SQLite
    they queue for the one writer in the ingest, on PostgreSQL they meet in the unique
    index; either way every read is stored once, and each duplicate names the stored one."""
    ingest = Ingest(world.db, world.settings, EventBus())
    at = datetime.now(UTC).replace(microsecond=0)
    shared = [RawRead(f"AB{i:03d}CD", "LPR-B1", at, event_id=f"c-{i}") for i in range(120)]
    batches = [[*shared[k::2], *shared[:k:-3],
                *(RawRead(f"ZZ{i:03d}ZZ", "LPR-B1", at, event_id=f"own-{k}-{i}")
                  for i in range(30))] for k in range(4)]
    with ThreadPoolExecutor(4) as pool:
        reports = list(pool.map(ingest.ingest, batches))
    assert all(r.rejected == 0 for r in reports)
    with world.db.read() as conn:
        stored = dict(conn.execute(sa.select(transits.c.event_id, transits.c.id)).all())
    assert len(stored) == 120 + 4 * 30
    assert sum(r.stored for r in reports) == len(stored)
    for batch, report in zip(batches, reports, strict=True):
        for read, result in zip(batch, report.results, strict=True):
            assert result.status in ("stored", "duplicate")
            if "same_batch" not in result.flags:  # a repeat within one batch names none
                assert result.transit_id == stored[read.event_id]
    with world.db.read() as conn:
        counted = conn.execute(sa.select(sa.func.sum(transit_counts.c.count))).scalar_one()
    assert counted == len(stored)
