"""Time: timezone-aware UTC inside, ISO 8601 on the wire."""

from __future__ import annotations

from datetime import UTC, datetime

from vigila.core.errors import InvalidInput


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Naive datetimes come back from SQLite; they were stored as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def utc_instant(value: datetime, field: str, *, naive_is_utc: bool = False) -> datetime:
    """A time from a user or a device, in UTC; InvalidInput naming `field` otherwise.

    A naive time is refused (ambiguous) unless `naive_is_utc`, as the API's query filters
    take it; a time that leaves the calendar in UTC (0001-01-01T00:00+01:00) is refused
    rather than overflowing.
    """
    if value.tzinfo is None and not naive_is_utc:
        raise InvalidInput.on(field, "must carry a UTC offset, e.g. 2026-01-31T08:00:00Z")
    try:
        return as_utc(value)
    except OverflowError as exc:
        raise InvalidInput.on(field, "outside the years 1 to 9999 in UTC") from exc


def iso(value: datetime) -> str:
    return as_utc(value).isoformat().replace("+00:00", "Z")


def parse_instant(text: str) -> datetime:
    """Parse ISO 8601 with an explicit offset; a naive time is ambiguous and refused."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError("time must carry a UTC offset, e.g. 2026-01-31T08:00:00Z")
    return value.astimezone(UTC)
