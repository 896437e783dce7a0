"""Minimisation of plate reads, on SQLite and PostgreSQL: exactly what expired goes, files
first, alarms with their hits; counts outlive the transits; each batch is audited."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from conftest import seed
from vigila.access import Principal, Role, audit
from vigila.access.tables import audit_log
from vigila.core import Forbidden, InvalidInput, Settings
from vigila.hotlists.tables import hotlists
from vigila.plates import lookalike_key
from vigila.reads import minimise
from vigila.reads.cli import reads_app
from vigila.reads.tables import alarms, forward_queue, transit_counts, transits
from vigila.store import Database

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)
D = timedelta(days=1)


@pytest.fixture
def city(db: Database, settings: Settings) -> Database:
    seed(db, settings)
    with db.write() as conn:
        conn.execute(hotlists.insert().values(
            id="furti", name="Veicoli rubati", kind="stolen", agency_id="pl-test", priority=50,
            policy="exact", active=True, revision=1, entry_count=0, created_at=NOW - 400 * D,
            updated_at=NOW - 400 * D))
    return db


def add_transit(db: Database, settings: Settings, *, received: datetime, hit: bool = False,
                device: str = "LPR-B1", plate: str = "AB123CD", images: bool = False,
                alarm_states: tuple[tuple[str, datetime | None], ...] = ()) -> uuid.UUID:
    """A transit with every non-null column filled, its image files, its alarms."""
    tid = uuid.uuid4()
    row: dict[str, Any] = {
        "id": tid, "device_id": device, "plate": plate, "plate_key": lookalike_key(plate),
        "plate_raw": plate, "format_id": "it-car", "time": received - timedelta(seconds=2),
        "received_at": received, "event_id": f"ev-{tid.hex}", "vendor": "generic",
        "flags": "", "hit": hit, "country": "IT", "confidence": 0.9,
        "direction": "inbound", "lane": 1}
    if images:
        for kind in ("plate", "context"):
            rel = f"{received:%Y/%m/%d}/{tid}-{kind}.jpg"
            path = settings.read_images_root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"\xff\xd8\xff" + kind.encode())
            row[f"{kind}_image"] = rel
            row[f"{kind}_image_sha256"] = "0" * 64
    with db.write() as conn:
        conn.execute(transits.insert().values(**row))
        for state, closed_at in alarm_states:
            conn.execute(alarms.insert().values(
                transit_id=tid, device_id=device, zone_id=None, hotlist_id="furti",
                hotlist_kind="stolen", plate=plate, read=plate, match="exact", priority=50,
                time=row["time"], created_at=received, state=state, closed_at=closed_at,
                outcome="not_found" if state == "closed" else None))
    return tid


def remaining(db: Database) -> set[uuid.UUID]:
    with db.read() as conn:
        return set(conn.execute(sa.select(transits.c.id)).scalars())


def purge_entries(db: Database) -> list[dict[str, Any]]:
    with db.read() as conn:
        rows = conn.execute(sa.select(audit_log).where(audit_log.c.action == "reads.purge")
                            .order_by(audit_log.c.seq)).mappings().all()
    return [dict(r) for r in rows]


def test_purge_keeps_exactly_what_its_purpose_still_needs(city: Database,
                                                          settings: Settings) -> None:
    db = city
    root = settings.read_images_root
    add_transit(db, settings, received=NOW - 25 * H, images=True)
    add_transit(db, settings, received=NOW - 24 * H - timedelta(seconds=1), device="CAM-A1")
    fresh_unmatched = add_transit(db, settings, received=NOW - 23 * H, images=True)
    flagless_alarm = add_transit(db, settings, received=NOW - 30 * H,  # inconsistent: kept
                                 alarm_states=(("new", None),))
    h_open = add_transit(db, settings, received=NOW - 100 * D, hit=True, images=True,
                         alarm_states=(("new", None),))
    h_ack = add_transit(db, settings, received=NOW - 100 * D, hit=True,
                        alarm_states=(("acknowledged", None),))
    add_transit(db, settings, received=NOW - 101 * D, hit=True, images=True,
                alarm_states=(("closed", NOW - 31 * D),))
    h_closed_recent = add_transit(db, settings, received=NOW - 100 * D, hit=True,
                                  alarm_states=(("closed", NOW - 29 * D),))
    h_mixed = add_transit(db, settings, received=NOW - 100 * D, hit=True,
                          alarm_states=(("closed", NOW - 90 * D), ("new", None)))
    add_transit(db, settings, received=NOW - 366 * D, hit=True, device="CAM-A1",
                alarm_states=(("new", None), ("acknowledged", None)))
    add_transit(db, settings, received=NOW - 31 * D, hit=True)  # a hit with no alarm
    kept_files = {p for p in root.rglob("*.jpg")
                  if p.name.startswith((str(fresh_unmatched), str(h_open)))}

    report = minimise.purge(db, settings, now=NOW)

    assert remaining(db) == {fresh_unmatched, flagless_alarm, h_open, h_ack, h_closed_recent,
                             h_mixed}
    assert report.deleted[minimise.UNMATCHED] == 2
    assert report.deleted[minimise.HITS_OVER_AGE] == 1
    assert report.deleted[minimise.HITS_CLOSED] == 2
    assert report.devices[minimise.UNMATCHED] == Counter({"LPR-B1": 1, "CAM-A1": 1})
    assert report.alarms == 3 and report.images == 4 and report.missing_images == 0
    # Files of deleted transits gone, the others untouched, empty day folders removed.
    assert set(root.rglob("*.jpg")) == kept_files and len(kept_files) == 4
    assert not (root / f"{NOW - 101 * D:%Y/%m/%d}").exists()
    assert (root / f"{NOW - 101 * D:%Y/%m}").is_dir()  # still holds the open hit's day
    with db.read() as conn:
        left = set(conn.execute(sa.select(alarms.c.transit_id)).scalars())
    assert left == {flagless_alarm, h_open, h_ack, h_closed_recent, h_mixed}

    entries = purge_entries(db)
    assert {e["actor"] for e in entries} == {"system:minimisation"}
    by_category = {e["detail"]["category"]: e for e in entries}
    assert set(by_category) == {"unmatched", "hits_over_age", "hits_closed"}
    unmatched = by_category["unmatched"]
    assert unmatched["resource"] == "transits:unmatched"
    assert unmatched["detail"]["rows"] == 2 and unmatched["detail"]["images"] == 2
    assert unmatched["detail"]["devices"] == {"CAM-A1": 1, "LPR-B1": 1}
    assert unmatched["detail"]["rule"] == "reads_unmatched_hours=24"
    assert by_category["hits_over_age"]["detail"]["alarms"] == 2
    assert "AB123CD" not in str(entries)  # the trail says how many, never which plate
    assert report.audit_entries == 3
    with db.read() as conn:
        assert audit.verify(conn).ok

    # Nothing left to delete: nothing deleted, nothing written.
    again = minimise.purge(db, settings, now=NOW)
    assert again.total == 0 and again.audit_entries == 0
    assert len(purge_entries(db)) == 3
    # A day later the fresh transit has expired too; the closed-recent hit two days later.
    assert minimise.purge(db, settings, now=NOW + 2 * H).deleted[minimise.UNMATCHED] == 1
    assert minimise.purge(db, settings, now=NOW + 2 * D).deleted[minimise.HITS_CLOSED] == 1
    assert remaining(db) == {flagless_alarm, h_open, h_ack, h_mixed}


def test_purge_goes_in_batches_and_survives_missing_files(
        city: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    db = city
    monkeypatch.setattr(minimise, "BATCH", 3)
    ids = [add_transit(db, settings, received=NOW - 2 * D - n * H, images=n < 2)
           for n in range(7)]
    for path in settings.read_images_root.rglob(f"{ids[0]}-*.jpg"):
        path.unlink()  # a crash between files and rows, last time
    outside = settings.data_dir / "precious.jpg"
    outside.write_bytes(b"x")
    with db.write() as conn:  # a path the ingest never writes: the row goes, the file stays
        conn.execute(transits.update().where(transits.c.id == ids[6]).values(
            plate_image="../precious.jpg"))
    report = minimise.purge(db, settings, now=NOW)
    assert remaining(db) == set()
    assert report.deleted[minimise.UNMATCHED] == 7 and report.audit_entries == 3
    assert report.images == 2 and report.missing_images == 2
    assert outside.exists()
    rows = [e["detail"]["rows"] for e in purge_entries(db)]
    assert rows == [3, 3, 1]


def test_counts_outlive_transits_and_go_after_their_own_time(city: Database,
                                                            settings: Settings) -> None:
    db = city
    hour = NOW.replace(minute=0)
    old, young = hour - 1826 * D, hour - 1824 * D
    with db.write() as conn:
        for device in ("LPR-B1", "CAM-A1"):
            for at in (old, old + H, young):
                for direction in ("inbound", ""):
                    conn.execute(transit_counts.insert().values(
                        device_id=device, hour=at, direction=direction, count=7))
    add_transit(db, settings, received=NOW - 2 * D)
    report = minimise.purge(db, settings, now=NOW)
    assert report.deleted[minimise.UNMATCHED] == 1
    assert report.deleted[minimise.COUNTS] == 8
    assert report.devices[minimise.COUNTS] == Counter({"LPR-B1": 4, "CAM-A1": 4})
    with db.read() as conn:
        left = conn.execute(sa.select(transit_counts.c.hour).distinct()).scalars().all()
    assert left == [young]
    entry = [e for e in purge_entries(db) if e["resource"] == "transit_counts"]
    assert len(entry) == 1 and entry[0]["detail"]["devices"] == {"CAM-A1": 4, "LPR-B1": 4}


def test_forward_queue_sent_and_old_dead_letters_go(city: Database,
                                                   settings: Settings) -> None:
    db = city

    def queued(state: str, last: datetime) -> uuid.UUID:
        tid = uuid.uuid4()
        with db.write() as conn:
            conn.execute(forward_queue.insert().values(
                transit_id=tid, payload={"id": str(tid), "plate": "AB123CD", "reader": "LPR-B1"},
                state=state, attempts=1, next_attempt_at=last, created_at=last - H,
                sent_at=last if state == "sent" else None))
        return tid

    queued("sent", NOW - H)
    queued("dead", NOW - 8 * D)
    dead_recent = queued("dead", NOW - 6 * D)
    pending = queued("pending", NOW - H)
    queued("pending", NOW - 8 * D)  # nobody tried for a week: forwarding is off
    report = minimise.purge(db, settings, now=NOW)
    assert (report.deleted[minimise.FORWARD_SENT], report.deleted[minimise.FORWARD_DEAD],
            report.deleted[minimise.FORWARD_STALE]) == (1, 1, 1)
    with db.read() as conn:
        assert set(conn.execute(sa.select(forward_queue.c.transit_id)).scalars()) == {
            dead_recent, pending}
    resources = sorted(e["resource"] for e in purge_entries(db))
    assert resources == ["forward_queue:forward_dead", "forward_queue:forward_sent",
                         "forward_queue:forward_stale"]


def test_retention_table_names_every_category_and_the_values_in_force(
        settings: Settings) -> None:
    table = minimise.retention_table(settings)
    assert {r.category for r in table} == set(minimise.CATEGORIES)
    unmatched = next(r for r in table if r.category == minimise.UNMATCHED)
    assert (unmatched.value, unmatched.unit, unmatched.default) == (24, "hours", 24)
    assert "752/2025" in unmatched.legal_basis and "531/2025" in unmatched.legal_basis
    custom = Settings(data_dir=settings.data_dir, database_url=settings.database_url,
                      reads_unmatched_hours=6)
    assert next(r for r in minimise.retention_table(custom)
                if r.category == minimise.UNMATCHED).keep == "deleted 6 hours after arrival"
    assert all(r.legal_basis for r in table)


def test_hourly_counts_are_scoped_and_bounded(city: Database) -> None:
    db = city
    hour = NOW.replace(minute=0)
    with db.write() as conn:
        for device in ("LPR-B1", "CAM-A1"):
            for n in range(3):
                conn.execute(transit_counts.insert().values(
                    device_id=device, hour=hour - n * H, direction="outbound", count=n + 1))
    everyone = Principal(1, "op", "pl-test", frozenset({Role.OPERATOR}), True)
    zone_a = Principal(2, "op_a", "pl-test", frozenset({Role.OPERATOR}), False,
                       frozenset({"zona-a"}))
    judge = Principal(3, "judge", "pl-test", frozenset({Role.JUDICIAL_VIEWER}), True)
    with db.read() as conn:
        rows = minimise.hourly_counts(conn, everyone, None, hour - 2 * H, hour + H)
        assert len(rows) == 6 and rows[0].hour == hour - 2 * H
        assert {r.device_id for r in minimise.hourly_counts(conn, zone_a, None, hour - D,
                                                            hour + H)} == {"CAM-A1"}
        assert minimise.hourly_counts(conn, zone_a, ["LPR-B1"], hour - D, hour + H) == []
        only = minimise.hourly_counts(conn, everyone, ["LPR-B1"], hour - H, hour)
        assert [(r.device_id, r.count, r.direction) for r in only] == [("LPR-B1", 2,
                                                                        "outbound")]
        with pytest.raises(InvalidInput):
            minimise.hourly_counts(conn, everyone, None, hour, hour)
        with pytest.raises(Forbidden):
            minimise.hourly_counts(conn, judge, None, hour - D, hour)


def test_purge_command(city: Database, settings: Settings,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    add_transit(city, settings, received=datetime.now(UTC) - 2 * D)
    monkeypatch.setenv("VIGILA_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("VIGILA_DATABASE_URL", settings.database_url)
    result = CliRunner().invoke(reads_app, ["purge"])
    assert result.exit_code == 0, result.output
    assert "unmatched\t1\tLPR-B1=1" in result.output
    assert remaining(city) == set()
