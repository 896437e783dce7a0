"""A few plate readers and transits for the search tests, written straight to the tables.

Readers: LPR-A1..A3 in zona-a (west to east), LPR-B2 in zona-b, besides the world's
LPR-B1 (zona-b) and CAM-X (no zone). The target AB123CD passes A1, A2, A3 then B1; a
convoy companion (CC111CC) shares A1, A2, A3; EE333EE shares A1 and A2; DD222DD only A1.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from conftest import CONSOLE, device
from vigila import registry
from vigila.access import Principal, Role
from vigila.access.tables import audit_log
from vigila.plates import lookalike_key
from vigila.reads.tables import transits
from vigila.store import Database

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
SINCE, UNTIL = T0 - timedelta(hours=1), T0 + timedelta(hours=3)
PURPOSE_TEXT = "indagine furto aggravato"
PURPOSE_REF = "RG 77/2026"
READERS = {"LPR-A1": ("zona-a", 43.871, 11.091), "LPR-A2": ("zona-a", 43.874, 11.094),
           "LPR-A3": ("zona-a", 43.877, 11.097), "LPR-B2": ("zona-b", 43.896, 11.116)}


def investigator(zones: Iterable[str] | None = None) -> Principal:
    """An investigator as the service sees one: all zones, or only those given."""
    return Principal(None, "inv-test", "pl-test", frozenset({Role.INVESTIGATOR}),
                     all_zones=zones is None, zone_ids=frozenset(zones or ()))


def transit(plate: str, device_id: str, at: datetime, direction: str | None = None,
            **extra: Any) -> dict[str, Any]:
    """Every column a transit row needs, as the ingest would fill it."""
    return {"id": uuid.uuid4(), "device_id": device_id, "plate": plate,
            "plate_key": lookalike_key(plate), "plate_raw": plate, "format_id": "generic",
            "country": "IT", "confidence": 0.9, "time": at, "received_at": at,
            "direction": direction, "lane": None, "event_id": uuid.uuid4().hex,
            "vendor": "generic", "flags": "", "hit": False, **extra}


def insert(db: Database, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    with db.write() as conn:
        conn.execute(transits.insert(), rows)
    return rows


def add_readers(db: Database) -> None:
    with db.write() as conn:
        for reader_id, (zone, lat, lon) in READERS.items():
            registry.create_device(conn, CONSOLE, registry.DeviceIn.model_validate(device(
                reader_id, zone, "plate_reader", lat=lat, lon=lon, anpr_vendor="tattile",
                lane=1, direction="inbound")))


def populate(db: Database) -> dict[str, list[dict[str, Any]]]:
    """The story of the module docstring; returns the rows by plate."""
    add_readers(db)
    m = timedelta(minutes=1)
    s = timedelta(seconds=1)
    rows = [
        transit("AB123CD", "LPR-A1", T0, "inbound", hit=True, flags="low_confidence,hotlist"),
        transit("AB123CD", "LPR-A2", T0 + 5 * m, "outbound"),
        transit("AB123CD", "LPR-A3", T0 + 10 * m, "inbound"),
        transit("AB123CD", "LPR-B1", T0 + 20 * m, "inbound"),
        transit("A8123CD", "LPR-A2", T0 + 60 * m),  # one look-alike substitution away
        transit("48I23CD", "LPR-A3", T0 + 61 * m),  # three: same key, too far
        transit("AB456EF", "LPR-A1", T0 + 2 * m),
        transit("XB123CD", "LPR-B2", T0 + 30 * m),
        transit("ZZ999ZZ", "CAM-X", T0 + 3 * m),
        transit("CC111CC", "LPR-A1", T0 + 30 * s),
        transit("CC111CC", "LPR-A2", T0 + 5 * m - 20 * s),
        transit("CC111CC", "LPR-A3", T0 + 10 * m + 40 * s),
        transit("EE333EE", "LPR-A1", T0 + 20 * s),
        transit("EE333EE", "LPR-A2", T0 + 5 * m + 5 * s),
        transit("DD222DD", "LPR-A1", T0 + 10 * s),
        transit("DD222DD", "LPR-A2", T0 + 15 * m),  # ten minutes after the target: not with it
    ]
    insert(db, rows)
    by_plate: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_plate.setdefault(row["plate"], []).append(row)
    return by_plate


def audit_entries(db: Database, action: str) -> list[dict[str, Any]]:
    with db.read() as conn:
        return [dict(r) for r in conn.execute(
            sa.select(audit_log).where(audit_log.c.action == action)
            .order_by(audit_log.c.seq)).mappings()]
