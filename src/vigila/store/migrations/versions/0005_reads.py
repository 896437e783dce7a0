"""Plate reads: transits, alarms, hourly counts, the upstream queue, webhooks.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

from vigila.store.types import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "transits",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("device_id", sa.String(64),
                  sa.ForeignKey("devices.id", name="fk_transits_device_id_devices"),
                  nullable=False),
        sa.Column("plate", sa.String(16), nullable=False),
        sa.Column("plate_key", sa.String(16), nullable=False),
        sa.Column("plate_raw", sa.String(64), nullable=False),
        sa.Column("format_id", sa.String(32), nullable=False),
        sa.Column("country", sa.String(2)),
        sa.Column("confidence", sa.Float),
        sa.Column("time", UTCDateTime, nullable=False),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.Column("direction", sa.String(16)),
        sa.Column("lane", sa.Integer),
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("vendor", sa.String(32), nullable=False),
        sa.Column("flags", sa.String(200), nullable=False),
        sa.Column("extra", sa.JSON),
        sa.Column("hit", sa.Boolean, nullable=False),
        sa.Column("plate_image", sa.String(255)),
        sa.Column("plate_image_sha256", sa.String(64)),
        sa.Column("context_image", sa.String(255)),
        sa.Column("context_image_sha256", sa.String(64)),
        sa.UniqueConstraint("device_id", "event_id", name="uq_transits_device_id_event_id"),
    )
    op.create_index("ix_transits_plate_time", "transits", ["plate", "time"])
    op.create_index("ix_transits_plate_key_time", "transits", ["plate_key", "time"])
    if op.get_bind().dialect.name == "postgresql":
        # Prefix wildcards (LIKE 'AB%') use this index whatever the database's collation.
        op.execute("CREATE INDEX ix_transits_plate_pattern ON transits "
                   "(plate varchar_pattern_ops)")
    op.create_index("ix_transits_device_id_time", "transits", ["device_id", "time"])
    op.create_index("ix_transits_time", "transits", ["time"])
    op.create_index("ix_transits_hit_received_at", "transits", ["hit", "received_at"])

    op.create_table(
        "alarms",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("transit_id", sa.Uuid,
                  sa.ForeignKey("transits.id", name="fk_alarms_transit_id_transits"),
                  nullable=False),
        sa.Column("device_id", sa.String(64),
                  sa.ForeignKey("devices.id", name="fk_alarms_device_id_devices"),
                  nullable=False),
        sa.Column("zone_id", sa.String(64)),
        sa.Column("hotlist_id", sa.String(64),
                  sa.ForeignKey("hotlists.id", name="fk_alarms_hotlist_id_hotlists"),
                  nullable=False),
        sa.Column("hotlist_kind", sa.String(32), nullable=False),
        sa.Column("plate", sa.String(16), nullable=False),
        sa.Column("read", sa.String(16), nullable=False),
        sa.Column("match", sa.String(16), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("reason", sa.String(500)),
        sa.Column("time", UTCDateTime, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("acknowledged_by", sa.Integer,
                  sa.ForeignKey("users.id", name="fk_alarms_acknowledged_by_users")),
        sa.Column("acknowledged_at", UTCDateTime),
        sa.Column("outcome", sa.String(16)),
        sa.Column("note", sa.String(1000)),
        sa.Column("closed_by", sa.Integer,
                  sa.ForeignKey("users.id", name="fk_alarms_closed_by_users")),
        sa.Column("closed_at", UTCDateTime),
    )
    op.create_index("ix_alarms_transit_id", "alarms", ["transit_id"])
    op.create_index("ix_alarms_state", "alarms", ["state"])
    op.create_index("ix_alarms_created_at", "alarms", ["created_at"])

    op.create_table(
        "transit_counts",
        sa.Column("device_id", sa.String(64),
                  sa.ForeignKey("devices.id", name="fk_transit_counts_device_id_devices"),
                  primary_key=True),
        sa.Column("hour", UTCDateTime, primary_key=True),
        sa.Column("direction", sa.String(16), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )

    op.create_table(
        "forward_queue",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("transit_id", sa.Uuid, nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("last_error", sa.String(500)),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("sent_at", UTCDateTime),
        sa.UniqueConstraint("transit_id", name="uq_forward_queue_transit_id"),
    )
    op.create_index("ix_forward_queue_state_next_attempt_at", "forward_queue",
                    ["state", "next_attempt_at"])

    op.create_table(
        "webhooks",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("url", sa.String(1024), nullable=False),
        sa.Column("secret", sa.String(128)),
        sa.Column("zone_id", sa.String(64)),
        sa.Column("min_priority", sa.Integer, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("webhooks")
    op.drop_index("ix_forward_queue_state_next_attempt_at", table_name="forward_queue")
    op.drop_table("forward_queue")
    op.drop_table("transit_counts")
    for name in ("ix_alarms_created_at", "ix_alarms_state", "ix_alarms_transit_id"):
        op.drop_index(name, table_name="alarms")
    op.drop_table("alarms")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_transits_plate_pattern")
    for name in ("ix_transits_hit_received_at", "ix_transits_time", "ix_transits_device_id_time",
                 "ix_transits_plate_key_time", "ix_transits_plate_time"):
        op.drop_index(name, table_name="transits")
    op.drop_table("transits")
