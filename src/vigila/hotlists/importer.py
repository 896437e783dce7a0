"""Hotlist files in, entries out: parse and check every row, then write them in bulk.

A national list holds about a million plates, and its import must take well under a
minute. So rows are checked in one tight loop of plain Python (no model per row: the
grammar's `normalise` costs about 0.4 µs on a canonical plate, a Pydantic model twenty
times that), and written with the driver's fastest path: `executemany` on SQLite, COPY on
PostgreSQL.

Formats: TXT holds one plate per line (blank lines and lines starting with # are
skipped); CSV has a header naming at least `plate`, and may add `priority`, `reason`,
`expires_at`, `country`; its delimiter is the header's comma, semicolon, tab or bar.
Rows are numbered as a person sees them: the TXT line, the CSV row with the header as 1.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from operator import itemgetter
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from vigila.core.errors import FieldError, InvalidInput
from vigila.core.timeutil import as_utc
from vigila.hotlists.models import MAX_REASON
from vigila.hotlists.tables import hotlist_entries
from vigila.plates import CONFUSIONS, normalise

MAX_ROWS = 2_000_000  # twice the national stolen-vehicle list
COLUMNS = ("plate", "priority", "reason", "expires_at", "country")
_DELIMITERS = ",;\t|"
_ROME = ZoneInfo("Europe/Rome")  # a bare date in a file means a day in Rome


class FileFormat(StrEnum):
    CSV = "csv"
    TXT = "txt"


# plate, lookalike_key, country, priority, reason, expires_at
Entry = tuple[str, str, str | None, int | None, str | None, datetime | None]


@dataclass
class ParsedFile:
    entries: list[Entry] = field(default_factory=list)
    errors: list[FieldError] = field(default_factory=list)
    rows: int = 0  # data rows read
    bad_rows: int = 0


def decode(raw: bytes) -> str:
    """UTF-8 (a BOM, as Excel writes, is dropped); anything else is refused, with where."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"the file is not UTF-8 (byte {exc.start} is 0x{raw[exc.start]:02x}): "
            "save it as UTF-8 and try again",
            [FieldError("file", f"not UTF-8 at byte {exc.start}")],
        ) from exc


def parse(raw: bytes, fmt: FileFormat, *, now: datetime) -> ParsedFile:
    """Every row checked; good rows become entries, bad ones errors naming row and field.

    A plate that appears twice is an error on its second row: which of two priorities or
    reasons was meant is for the person to say.
    """
    text = decode(raw)
    out = ParsedFile()
    lines = _txt_rows(text) if fmt is FileFormat.TXT else _csv_rows(text)
    seen: dict[str, int] = {}
    errors = out.errors
    entries = out.entries
    for number, plate_raw, extra in lines:
        out.rows += 1
        if out.rows > MAX_ROWS:
            raise InvalidInput.on("file", f"at most {MAX_ROWS} rows per import")
        if isinstance(extra, FieldError):
            errors.append(extra)
            out.bad_rows += 1
            continue
        row_errors = len(errors)
        try:
            plate = normalise(plate_raw)
        except InvalidInput as exc:
            errors.append(FieldError("plate", exc.errors[0].message, number))
            plate = ""
        if plate:
            first = seen.get(plate)
            if first is not None:
                errors.append(FieldError(
                    "plate", f"{plate} appears twice in the file (first at row {first})", number))
            else:
                seen[plate] = number
        country = priority = reason = expires = None
        if extra:
            country, priority, reason, expires = _extra(extra, number, now, errors)
        if len(errors) != row_errors:
            out.bad_rows += 1
            continue
        entries.append((plate, CONFUSIONS.key(plate), country, priority, reason, expires))
    return out


# A row: its number, the plate cell, and the other cells (None for a TXT line) or why the
# row cannot be read at all.
_Row = tuple[int, str, dict[str, str] | FieldError | None]


def _txt_rows(text: str) -> Iterator[_Row]:
    # Split on newlines only, so line numbers are those an editor shows.
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.strip()
        if line and line[0] != "#":
            yield number, line, None


def _csv_rows(text: str) -> Iterator[_Row]:
    end = text.find("\n")
    first_line = text if end < 0 else text[:end]
    delimiter = next((d for d in _DELIMITERS if d in first_line), ",")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration as exc:
        raise InvalidInput.on("file", "the file is empty") from exc
    except csv.Error as exc:
        raise InvalidInput.on("file", f"not a readable CSV: {exc}") from exc
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        raise InvalidInput(
            f"unknown columns: {', '.join(unknown)} (known: {', '.join(COLUMNS)})",
            [FieldError(h or "(empty)", "unknown column", 1) for h in unknown])
    if len(set(header)) != len(header):
        raise InvalidInput.on("header", "a column appears twice")
    if "plate" not in header:
        raise InvalidInput("the header must name a plate column",
                           [FieldError("plate", "missing column", 1)])
    width = len(header)
    at = header.index("plate")
    others = [(i, h) for i, h in enumerate(header) if h != "plate"]
    try:
        for number, cells in enumerate(reader, start=2):
            if len(cells) != width:
                if not any(c.strip() for c in cells):
                    continue
                why = f"{len(cells)} cells; the header has {width}"
                yield number, "", FieldError("(row)", why, number)
                continue
            plate = cells[at].strip()
            if not plate and not any(c.strip() for c in cells):
                continue
            extra = {h: v for i, h in others if (v := cells[i].strip())}
            yield number, plate, extra
    except csv.Error as exc:
        why = f"not a readable CSV near row {reader.line_num}: {exc}"
        raise InvalidInput.on("file", why) from exc


def _extra(cells: dict[str, str], number: int, now: datetime,
           errors: list[FieldError]) -> tuple[str | None, int | None, str | None, datetime | None]:
    country = priority = reason = expires = None
    if (text := cells.get("country")) is not None:
        if len(text) == 2 and text.isascii() and text.isalpha():
            country = text.upper()
        else:
            errors.append(FieldError("country", "two letters (ISO 3166-1), e.g. IT", number))
    if (text := cells.get("priority")) is not None:
        try:
            priority = int(text)
        except ValueError:
            errors.append(FieldError("priority", f"{text!r} is not a whole number", number))
        else:
            if not 0 <= priority <= 100:
                errors.append(FieldError("priority", f"{priority} is not between 0 and 100",
                                         number))
    if (text := cells.get("reason")) is not None:
        if len(text) > MAX_REASON:
            errors.append(FieldError("reason", f"at most {MAX_REASON} characters", number))
        elif "\x00" in text:
            errors.append(FieldError("reason", "must not contain the NUL character", number))
        else:
            reason = text
    if (text := cells.get("expires_at")) is not None:
        try:
            expires = parse_expiry(text)
        except ValueError as exc:
            errors.append(FieldError("expires_at", str(exc), number))
        else:
            if expires <= now:
                errors.append(FieldError("expires_at", f"{text} is past: the entry would "
                                         "never match", number))
    return country, priority, reason, expires


def parse_expiry(text: str) -> datetime:
    """ISO 8601 with an offset, or a date: the entry lasts to the end of that day in Rome."""
    if len(text) == 10:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            pass
        else:
            return as_utc(datetime.combine(day + timedelta(days=1), time(), _ROME))
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not a date (2026-12-31) nor an ISO 8601 time "
                         "with offset (2026-12-31T23:00:00Z)") from None
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset; add one (Z, +01:00) or give a date")
    return as_utc(value)


# --- writing -----------------------------------------------------------------

_COLS = ("hotlist_id", "plate", "lookalike_key", "country", "priority", "reason",
         "expires_at", "added_at")
# What a listed plate takes from a new row; the key follows from the plate, and added_at
# stays: it says since when the plate is listed.
_UPDATED = ("country", "priority", "reason", "expires_at")


def existing_plates(conn: Connection, hotlist_id: str) -> set[str]:
    return set(conn.execute(sa.select(hotlist_entries.c.plate)
                            .where(hotlist_entries.c.hotlist_id == hotlist_id)).scalars())


def remove(conn: Connection, hotlist_id: str, plates: Collection[str], *, every: bool) -> None:
    """Delete `plates` from the list (`every`: they are the whole list, delete it at once)."""
    e = hotlist_entries.c
    if every:
        conn.execute(hotlist_entries.delete().where(e.hotlist_id == hotlist_id))
        return
    ordered = sorted(plates)
    for start in range(0, len(ordered), 5000):  # under SQLite's limit on bound parameters
        conn.execute(hotlist_entries.delete().where(
            e.hotlist_id == hotlist_id, e.plate.in_(ordered[start:start + 5000])))


def write(conn: Connection, hotlist_id: str, entries: list[Entry], *, upsert: bool,
          added_at: datetime) -> None:
    """Insert `entries` into the list; with `upsert`, a listed plate gets the new values.

    Runs in the caller's transaction, through its DBAPI connection, so it commits or rolls
    back with the audit entry. Sorts `entries` by plate: the unique index then grows at
    its end instead of at random pages, which made a million inserts 2.5 times faster.
    """
    if not entries:
        return
    entries.sort(key=itemgetter(0))
    if conn.dialect.name == "postgresql":
        _write_postgresql(conn, hotlist_id, entries, upsert=upsert, added_at=added_at)
    else:
        _write_sqlite(conn, hotlist_id, entries, upsert=upsert, added_at=added_at)


def _write_sqlite(conn: Connection, hotlist_id: str, entries: list[Entry], *,
                  upsert: bool, added_at: datetime) -> None:
    # The driver gets what UTCDateTime would store, without SQLAlchemy's per-row work.
    bind = hotlist_entries.c.added_at.type.bind_processor(conn.dialect)
    assert bind is not None
    stamp = bind(added_at)
    sql = (f"INSERT INTO hotlist_entries ({', '.join(_COLS)}) "
           f"VALUES ({', '.join('?' * len(_COLS))})")
    if upsert:
        sql += (" ON CONFLICT (hotlist_id, plate) DO UPDATE SET "
                + ", ".join(f"{c} = excluded.{c}" for c in _UPDATED))
    rows = ((hotlist_id, p, k, c, pr, r, None if e is None else bind(e), stamp)
            for p, k, c, pr, r, e in entries)
    raw: Any = conn.connection.dbapi_connection
    cursor = raw.cursor()
    try:
        cursor.executemany(sql, rows)
    finally:
        cursor.close()


def _write_postgresql(conn: Connection, hotlist_id: str, entries: list[Entry], *,
                      upsert: bool, added_at: datetime) -> None:
    raw: Any = conn.connection.dbapi_connection
    target = "hotlist_entries"
    if upsert:
        # COPY cannot resolve conflicts: stage the rows, then one INSERT ... ON CONFLICT.
        conn.exec_driver_sql(
            f"CREATE TEMP TABLE hotlist_import ON COMMIT DROP AS SELECT {', '.join(_COLS)} "
            "FROM hotlist_entries WITH NO DATA")
        target = "hotlist_import"
    columns = ", ".join(_COLS)
    with raw.cursor() as cursor, cursor.copy(
            f"COPY {target} ({columns}) FROM STDIN") as copy:
        for p, k, c, pr, r, e in entries:
            copy.write_row((hotlist_id, p, k, c, pr, r, e, added_at))
    if upsert:
        conn.exec_driver_sql(
            f"INSERT INTO hotlist_entries ({columns}) SELECT {columns} FROM hotlist_import "
            "ON CONFLICT (hotlist_id, plate) DO UPDATE SET "
            + ", ".join(f"{c} = EXCLUDED.{c}" for c in _UPDATED))
        conn.exec_driver_sql("DROP TABLE hotlist_import")
