"""Hotlist tables: the lists and their entries.

`revision` counts every change to a list or its entries, so a matcher in any process
finds out what to reload with one small query. `entry_count` is kept by the writes
rather than counted: a million-entry list would make every listing slow.
"""

import sqlalchemy as sa

from vigila.store import UTCDateTime, metadata

# BIGINT on PostgreSQL, INTEGER on SQLite (its rowid alias: no extra index to maintain).
_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")

hotlists = sa.Table(
    "hotlists",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("agency_id", sa.String(64), sa.ForeignKey("agencies.id"), nullable=False),
    sa.Column("priority", sa.Integer, nullable=False),  # for entries that name none
    sa.Column("policy", sa.String(32), nullable=False),  # exact | one_substitution
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("entry_count", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

hotlist_entries = sa.Table(
    "hotlist_entries",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("hotlist_id", sa.String(64), sa.ForeignKey("hotlists.id"), nullable=False),
    sa.Column("plate", sa.String(16), nullable=False),  # normalised
    # Serves look-alike and exact lookups across lists alike (a plate fixes its key),
    # so the plate needs no index of its own.
    sa.Column("lookalike_key", sa.String(16), nullable=False, index=True),
    sa.Column("country", sa.String(2)),
    sa.Column("priority", sa.Integer),  # NULL: the list's
    sa.Column("reason", sa.String(500)),
    sa.Column("expires_at", UTCDateTime),
    sa.Column("added_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("hotlist_id", "plate"),
)
