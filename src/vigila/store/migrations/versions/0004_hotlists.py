"""Hotlists and their entries.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

from vigila.store.types import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "hotlists",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("agency_id", sa.String(64),
                  sa.ForeignKey("agencies.id", name="fk_hotlists_agency_id_agencies"),
                  nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("policy", sa.String(32), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("entry_count", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "hotlist_entries",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("hotlist_id", sa.String(64),
                  sa.ForeignKey("hotlists.id", name="fk_hotlist_entries_hotlist_id_hotlists"),
                  nullable=False),
        sa.Column("plate", sa.String(16), nullable=False),
        sa.Column("lookalike_key", sa.String(16), nullable=False),
        sa.Column("country", sa.String(2)),
        sa.Column("priority", sa.Integer),
        sa.Column("reason", sa.String(500)),
        sa.Column("expires_at", UTCDateTime),
        sa.Column("added_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("hotlist_id", "plate", name="uq_hotlist_entries_hotlist_id_plate"),
    )
    op.create_index("ix_hotlist_entries_lookalike_key", "hotlist_entries", ["lookalike_key"])


def downgrade() -> None:
    op.drop_index("ix_hotlist_entries_lookalike_key", table_name="hotlist_entries")
    op.drop_table("hotlist_entries")
    op.drop_table("hotlists")
