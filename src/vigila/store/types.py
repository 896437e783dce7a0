"""Column types shared by every capability."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from vigila.core.timeutil import as_utc


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on SQLite (which keeps no zone) as on PostgreSQL."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: Vigila stores UTC only")
        utc = as_utc(value)
        # SQLite compares timestamps as text: store them all in one zone-less form.
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else as_utc(value)
