"""Every search query is served by an index: the plans, on SQLite and PostgreSQL.

Thousands of transits over two months, statistics gathered, then EXPLAIN of the very
statements the search runs. No sequential scan of transits is allowed, and each query
must use the index its design names (vigila.reads.search).
"""

from __future__ import annotations

import random
import string
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from search_city import T0, add_readers, insert, investigator, transit
from sqlalchemy import event
from sqlalchemy.engine import Connection

from conftest import seed
from vigila.core import Settings
from vigila.reads import search
from vigila.reads.search_models import TransitQuery
from vigila.reads.tables import transits
from vigila.store import Database

ROWS = 6000
READERS = ["LPR-A1", "LPR-A2", "LPR-A3", "LPR-B1", "LPR-B2"]


@pytest.fixture
def busy(db: Database, settings: Settings) -> Database:
    seed(db, settings)
    add_readers(db)
    rnd = random.Random(7)
    letters = "ABCDEFGHJKLMNPRSTVWXYZ"
    rows = []
    for i in range(ROWS):
        plate = ("".join(rnd.choices(letters, k=2)) + "".join(rnd.choices(string.digits, k=3))
                 + "".join(rnd.choices(letters, k=2)))
        at = T0 - timedelta(minutes=rnd.randrange(60 * 24 * 60))
        rows.append(transit(plate, READERS[i % len(READERS)], at))
    rows.append(transit("AB123CD", "LPR-A1", T0 - timedelta(hours=1)))
    insert(db, rows)
    with db.write() as conn:
        conn.exec_driver_sql("ANALYZE")
    return db


def explain(conn: Connection, stmt: sa.Select[Any]) -> str:
    """The plan of `stmt`, run as the search runs it with EXPLAIN put in front."""
    sqlite = conn.dialect.name == "sqlite"
    prefix = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "

    def rewrite(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any,
                _many: bool) -> tuple[str, Any]:
        return prefix + statement, parameters

    event.listen(conn, "before_cursor_execute", rewrite, retval=True)
    try:
        rows = conn.execute(stmt).cursor.fetchall()
    finally:
        event.remove(conn, "before_cursor_execute", rewrite)
    return "\n".join(str(r[-1] if sqlite else r[0]) for r in rows)


def plan_of(db: Database, **query: Any) -> str:
    query.setdefault("since", T0 - timedelta(days=30))
    query.setdefault("until", T0)
    q = TransitQuery(**query)
    with db.read() as conn:
        return explain(conn, search.search_statement(
            investigator(), q, q.since, q.until, dialect=conn.dialect.name,  # type: ignore[arg-type]
            limit=101))


def uses(plan: str, index: str) -> None:
    assert index in plan, plan
    assert "SCAN transits" not in plan and "Seq Scan on transits" not in plan, plan


def test_exact_uses_the_key_index(busy: Database) -> None:
    uses(plan_of(busy, plate="AB123CD"), "ix_transits_plate_key_time")


def test_prefix_pattern_uses_the_key_index(busy: Database) -> None:
    uses(plan_of(busy, pattern="AB?12*"), "ix_transits_plate_key_time")


def test_transits_have_one_plate_index(busy: Database) -> None:
    names = {ix["name"] for ix in sa.inspect(busy.engine).get_indexes("transits")}
    assert {n for n in names if "plate" in (n or "")} == {"ix_transits_plate_key_time"}


def test_lookalike_uses_the_key_index(busy: Database) -> None:
    uses(plan_of(busy, plate="AB123CD", fuzzy=True), "ix_transits_plate_key_time")


def test_unanchored_pattern_is_bounded_by_time(busy: Database) -> None:
    plan = plan_of(busy, pattern="?B12*", since=T0 - timedelta(days=1))
    uses(plan, "ix_transits_time")


def test_zone_scope_keeps_the_index(busy: Database) -> None:
    q = TransitQuery(plate="AB123CD", since=T0 - timedelta(days=30), until=T0)
    with busy.read() as conn:
        plan = explain(conn, search.search_statement(
            investigator(["zona-a"]), q, q.since, q.until,  # type: ignore[arg-type]
            dialect=conn.dialect.name, limit=101))
    uses(plan, "ix_transits_plate_key_time")


def test_convoy_neighbours_use_the_device_index(busy: Database) -> None:
    stmt = sa.select(transits.c.id, transits.c.plate, transits.c.time).where(
        transits.c.device_id == "LPR-A1", transits.c.time >= T0 - timedelta(minutes=1),
        transits.c.time <= T0 + timedelta(minutes=1), transits.c.plate != "AB123CD")
    with busy.read() as conn:
        plan = explain(conn, stmt)
    # Over a two-minute window PostgreSQL may find the time index as good; either is fine.
    uses(plan, "ix_transits_device_id_time" if "device_id_time" in plan else "ix_transits_time")
