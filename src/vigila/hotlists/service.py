"""Hotlists: create, read, change, add and remove entries, import files, look a plate up.

What lists exist is configuration (registry.read); what they hold is personal data: a
plate on a list is read only with personal.read and a purpose, and every such read is
audited. Every change bumps the list's `revision`, which is how matchers learn of it.
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from vigila.access import audit
from vigila.access.principal import Principal, Purpose
from vigila.access.roles import Permission
from vigila.core.errors import Conflict, FieldError, InvalidInput, NotFound
from vigila.core.pagination import Page, check_limit, decode_cursor, encode_cursor
from vigila.core.timeutil import utcnow
from vigila.hotlists import importer
from vigila.hotlists.importer import FileFormat
from vigila.hotlists.matcher import Hit, build_list, hits_in
from vigila.hotlists.models import (
    EntryIn,
    Hotlist,
    HotlistEntry,
    HotlistImportReport,
    HotlistIn,
    HotlistPatch,
    ImportMode,
)
from vigila.hotlists.tables import hotlist_entries, hotlists
from vigila.plates import CONFUSIONS, normalise
from vigila.registry.tables import agencies

MAX_REPORTED_ERRORS = 1000  # a report of a million bad rows helps nobody


def _hotlist(conn: Connection, hotlist_id: str) -> Hotlist:
    row = conn.execute(sa.select(hotlists).where(hotlists.c.id == hotlist_id)).mappings().first()
    if row is None:
        raise NotFound(f"no hotlist {hotlist_id!r}")
    return Hotlist.model_validate(dict(row))


def _check_agency(conn: Connection, agency_id: str) -> None:
    if conn.execute(sa.select(agencies.c.id).where(agencies.c.id == agency_id)).first() is None:
        raise InvalidInput.on("agency_id", f"no agency {agency_id!r}")


def _bump(conn: Connection, hotlist_id: str, **values: Any) -> None:
    conn.execute(hotlists.update().where(hotlists.c.id == hotlist_id).values(
        revision=hotlists.c.revision + 1, updated_at=utcnow(), **values))


# --- lists -------------------------------------------------------------------

def list_hotlists(conn: Connection, actor: Principal) -> list[Hotlist]:
    actor.require(Permission.REGISTRY_READ)
    rows = conn.execute(sa.select(hotlists).order_by(hotlists.c.id)).mappings()
    return [Hotlist.model_validate(dict(r)) for r in rows]


def get_hotlist(conn: Connection, actor: Principal, hotlist_id: str) -> Hotlist:
    actor.require(Permission.REGISTRY_READ)
    return _hotlist(conn, hotlist_id)


def create_hotlist(conn: Connection, actor: Principal, data: HotlistIn) -> Hotlist:
    actor.require(Permission.HOTLISTS_MANAGE)
    if conn.execute(sa.select(hotlists.c.id).where(hotlists.c.id == data.id)).first():
        raise Conflict(f"hotlist {data.id!r} exists", [FieldError("id", "already exists")])
    _check_agency(conn, data.agency_id)
    now = utcnow()
    conn.execute(hotlists.insert().values(**data.model_dump(mode="json"), revision=1,
                                          entry_count=0, created_at=now, updated_at=now))
    audit.record(conn, actor, "hotlist.create", f"hotlist/{data.id}",
                 detail=data.model_dump(mode="json"))
    return _hotlist(conn, data.id)


def update_hotlist(conn: Connection, actor: Principal, hotlist_id: str,
                   patch: HotlistPatch) -> Hotlist:
    actor.require(Permission.HOTLISTS_MANAGE)
    before = _hotlist(conn, hotlist_id)
    changes = patch.model_dump(exclude_unset=True, mode="json")
    for key, value in changes.items():
        if value is None:
            raise InvalidInput.on(key, "cannot be removed")
    if "agency_id" in changes:
        _check_agency(conn, changes["agency_id"])
    if changes:
        _bump(conn, hotlist_id, **changes)
    after = _hotlist(conn, hotlist_id)
    b, a = before.model_dump(mode="json"), after.model_dump(mode="json")
    diff = {k: {"from": b[k], "to": a[k]} for k in changes if b[k] != a[k]}
    audit.record(conn, actor, "hotlist.update", f"hotlist/{hotlist_id}",
                 detail={"changes": diff})
    return after


# --- entries -----------------------------------------------------------------

def _entry(row: Any) -> HotlistEntry:
    return HotlistEntry.model_validate(dict(row))


_ENTRY_COLUMNS = (hotlist_entries.c.hotlist_id, hotlist_entries.c.plate,
                  hotlist_entries.c.country, hotlist_entries.c.priority,
                  hotlist_entries.c.reason, hotlist_entries.c.expires_at,
                  hotlist_entries.c.added_at)


def list_entries(conn: Connection, actor: Principal, purpose: Purpose, hotlist_id: str,
                 cursor: str | None = None, limit: int = 100,
                 plate: str | None = None) -> Page[HotlistEntry]:
    """A page of a list's entries in plate order; the read is audited with its purpose."""
    actor.require(Permission.PERSONAL_READ)
    check_limit(limit)
    after = decode_cursor(cursor)
    _hotlist(conn, hotlist_id)
    e = hotlist_entries.c
    q = sa.select(*_ENTRY_COLUMNS).where(e.hotlist_id == hotlist_id)
    if plate is not None:
        q = q.where(e.plate == normalise(plate))
    if after is not None:
        q = q.where(e.plate > str(after))
    rows = list(conn.execute(q.order_by(e.plate).limit(limit + 1)).mappings())
    items = [_entry(r) for r in rows[:limit]]
    more = len(rows) > limit
    audit.record(conn, actor, "hotlist.entries.read", f"hotlist/{hotlist_id}", purpose=purpose,
                 detail={"returned": len(items), "plate": None if plate is None else
                         normalise(plate), "cursor": cursor})
    return Page(items=items, next_cursor=encode_cursor(items[-1].plate) if more else None)


def add_entry(conn: Connection, actor: Principal, hotlist_id: str,
              data: EntryIn) -> HotlistEntry:
    actor.require(Permission.HOTLISTS_MANAGE)
    _hotlist(conn, hotlist_id)
    now = utcnow()
    if data.expires_at is not None and data.expires_at <= now:
        raise InvalidInput.on("expires_at", "is past: the entry would never match")
    e = hotlist_entries.c
    if conn.execute(sa.select(e.id).where(e.hotlist_id == hotlist_id,
                                          e.plate == data.plate)).first():
        raise Conflict(f"{data.plate} is already on hotlist {hotlist_id!r}",
                       [FieldError("plate", "already listed")])
    conn.execute(hotlist_entries.insert().values(
        hotlist_id=hotlist_id, lookalike_key=CONFUSIONS.key(data.plate), added_at=now,
        **data.model_dump()))
    _bump(conn, hotlist_id, entry_count=hotlists.c.entry_count + 1)
    audit.record(conn, actor, "hotlist.entry.add", f"hotlist/{hotlist_id}/{data.plate}",
                 detail=data.model_dump(mode="json"))
    row = conn.execute(sa.select(*_ENTRY_COLUMNS).where(
        e.hotlist_id == hotlist_id, e.plate == data.plate)).mappings().one()
    return _entry(row)


def remove_entry(conn: Connection, actor: Principal, hotlist_id: str, plate: str) -> None:
    actor.require(Permission.HOTLISTS_MANAGE)
    _hotlist(conn, hotlist_id)
    text = normalise(plate)
    e = hotlist_entries.c
    gone = conn.execute(hotlist_entries.delete().where(e.hotlist_id == hotlist_id,
                                                       e.plate == text)).rowcount
    if not gone:
        raise NotFound(f"{text} is not on hotlist {hotlist_id!r}")
    _bump(conn, hotlist_id, entry_count=hotlists.c.entry_count - 1)
    audit.record(conn, actor, "hotlist.entry.remove", f"hotlist/{hotlist_id}/{text}")


def import_entries(conn: Connection, actor: Principal, hotlist_id: str, raw: bytes, *,
                   fmt: FileFormat, mode: ImportMode = ImportMode.MERGE,
                   good_rows: bool = False, source: str = "upload") -> HotlistImportReport:
    """Check every row, then write all (or, with `good_rows`, the good ones) or nothing.

    Merge adds new plates and gives listed ones the file's values; replace makes the file
    the whole list. Either way in the caller's transaction, audited once with the counts.
    """
    actor.require(Permission.HOTLISTS_MANAGE)
    started = time.perf_counter()
    _hotlist(conn, hotlist_id)
    now = utcnow()
    parsed = importer.parse(raw, fmt, now=now)
    if parsed.rows == 0:
        raise InvalidInput.on("file", "no rows to import")
    # A file with no good row commits nothing, even with good_rows: a replace would
    # otherwise empty the list.
    commit = bool(parsed.entries) and (not parsed.errors or good_rows)
    added = updated = removed = 0
    if commit:
        before = importer.existing_plates(conn, hotlist_id)
        incoming = {entry[0] for entry in parsed.entries}
        updated = len(incoming & before)
        added = len(incoming) - updated
        if mode is ImportMode.REPLACE:
            # Drop only what the file leaves out, and update the rest in place: the same
            # list as delete-all-and-insert, a fraction of the index work when a national
            # list changes by a few per cent, and each plate keeps its added_at.
            gone = before - incoming
            removed = len(gone)
            if gone:
                importer.remove(conn, hotlist_id, gone, every=removed == len(before))
        importer.write(conn, hotlist_id, parsed.entries, upsert=bool(updated), added_at=now)
        _bump(conn, hotlist_id, entry_count=len(before) + added - removed)
    errors = sorted(parsed.errors, key=lambda e: e.row or 0)
    report = HotlistImportReport(
        hotlist_id=hotlist_id, mode=mode, rows=parsed.rows,
        imported=added + updated, added=added, updated=updated, removed=removed,
        rejected=parsed.bad_rows, committed=commit,
        errors=[e.as_dict() for e in errors[:MAX_REPORTED_ERRORS]],
        errors_total=len(errors), seconds=round(time.perf_counter() - started, 3))
    audit.record(conn, actor, "hotlist.import", f"hotlist/{hotlist_id}",
                 outcome="ok" if commit else "rejected",
                 detail={"source": source[:200], "format": fmt.value, "mode": mode.value,
                         "rows": report.rows, "added": added, "updated": updated,
                         "removed": removed, "rejected": report.rejected})
    return report


def rejected(report: HotlistImportReport, retry: str = "good_rows=true") -> InvalidInput:
    """The error a refused import raises: its bad rows, their fields and why; `retry` is
    how the caller's interface asks for the good rows alone."""
    errors = [FieldError(str(e["field"]), str(e["message"]), e.get("row"))
              for e in report.errors]
    first = errors[0]
    return InvalidInput(
        f"{report.rejected} of {report.rows} rows have errors (first: row {first.row}, "
        f"{first.field}: {first.message}); nothing was imported. "
        f"Fix them, or import only the good rows with {retry}.",
        errors,
    )


# --- look-ups ----------------------------------------------------------------

def lookup(conn: Connection, actor: Principal, purpose: Purpose, plate: str,
           at: datetime | None = None) -> list[Hit]:
    """The hits a read of `plate` would raise now, from the database (audited).

    The same rules as `HotlistMatcher.match`, through the look-alike key's index: for a
    person asking about one plate, without loading a million entries.
    """
    actor.require(Permission.PERSONAL_READ)
    text = normalise(plate)
    key = CONFUSIONS.key(text)
    now = at or utcnow()
    h, e = hotlists.c, hotlist_entries.c
    rows = conn.execute(
        sa.select(e.hotlist_id, e.plate, e.lookalike_key, e.priority, e.expires_at, e.reason,
                  e.country)
        .join(hotlists, h.id == e.hotlist_id)
        .where(e.lookalike_key == key, h.active.is_(True))).all()
    by_list: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        by_list[row.hotlist_id].append(tuple(row)[1:])
    metas = conn.execute(sa.select(hotlists).where(h.id.in_(sorted(by_list)))).mappings()
    lists = [build_list(m, by_list[m["id"]], now) for m in metas]
    hits = hits_in(lists, text, key, now.timestamp())
    audit.record(conn, actor, "hotlist.lookup", f"plate/{text}", purpose=purpose,
                 detail={"hits": [f"{hit.hotlist_id}:{hit.plate}" for hit in hits]})
    return hits

