"""Storage: migrations on both databases, SQLite in WAL, UTC in and out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from vigila.registry.tables import agencies
from vigila.store import Database, current_revision, head_revision, upgrade


def test_migrations_reach_head_and_are_idempotent(db: Database) -> None:
    assert current_revision(db) == head_revision()
    upgrade(db)
    assert current_revision(db) == head_revision()
    names = set(sa.inspect(db.engine).get_table_names())
    assert {"agencies", "zones", "devices", "users", "sessions", "audit_log"} <= names


def test_fresh_database_is_migrated_from_nothing(tmp_path: object) -> None:
    db = Database(f"sqlite:///{tmp_path}/sub/dir/new.db")
    assert current_revision(db) is None
    upgrade(db)
    assert current_revision(db) == head_revision()
    with db.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    db.dispose()


def test_times_are_utc_in_and_out(db: Database) -> None:
    rome = timezone(timedelta(hours=1))
    at = datetime(2026, 1, 31, 9, 30, tzinfo=rome)
    with db.write() as conn:
        conn.execute(agencies.insert().values(id="a-1", name="A", kind="other",
                                              created_at=at, updated_at=at))
    with db.read() as conn:
        back = conn.execute(sa.select(agencies.c.created_at)).scalar_one()
        earlier = conn.execute(sa.select(sa.func.count()).where(
            agencies.c.created_at < datetime(2026, 1, 31, 8, 31, tzinfo=UTC))).scalar()
    assert back == at and back.utcoffset() == timedelta(0)
    assert earlier == 1
    with pytest.raises(sa.exc.StatementError, match="naive"), db.write() as conn:
        conn.execute(agencies.insert().values(id="a-2", name="B", kind="other",
                                              created_at=datetime(2026, 1, 1),
                                              updated_at=datetime(2026, 1, 1)))


def test_a_failed_write_leaves_nothing(db: Database) -> None:
    now = datetime.now(UTC)
    with pytest.raises(sa.exc.IntegrityError), db.write() as conn:
        conn.execute(agencies.insert().values(id="a-1", name="A", kind="other",
                                              created_at=now, updated_at=now))
        conn.execute(agencies.insert().values(id="a-1", name="A", kind="other",
                                              created_at=now, updated_at=now))
    with db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(agencies)).scalar() == 0
