"""Time: timezone-aware UTC inside, ISO 8601 on the wire."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Naive datetimes come back from SQLite; they were stored as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def iso(value: datetime) -> str:
    return as_utc(value).isoformat().replace("+00:00", "Z")


def parse_instant(text: str) -> datetime:
    """Parse ISO 8601 with an explicit offset; a naive time is ambiguous and refused."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError("time must carry a UTC offset, e.g. 2026-01-31T08:00:00Z")
    return value.astimezone(UTC)
