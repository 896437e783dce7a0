"""Retention policies, legal holds, camera health.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

from vigila.store.types import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "retention_policies",
        sa.Column("camera_id", sa.String(64), primary_key=True),
        sa.Column("days", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "legal_holds",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("authority", sa.String(200), nullable=False),
        sa.Column("reference", sa.String(200), nullable=False),
        sa.Column("request_date", sa.Date, nullable=False),
        sa.Column("start", UTCDateTime, nullable=False),
        sa.Column("end", UTCDateTime, nullable=False),
        sa.Column("notes", sa.Text),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("released_by", sa.String(200)),
        sa.Column("released_at", UTCDateTime),
        sa.Column("release_reason", sa.Text),
    )
    op.create_table(
        "legal_hold_cameras",
        sa.Column("hold_id", _ID, sa.ForeignKey("legal_holds.id"), primary_key=True),
        sa.Column("camera_id", sa.String(64), primary_key=True),
    )
    op.create_index("ix_legal_hold_cameras_camera_id", "legal_hold_cameras", ["camera_id"])
    op.create_table(
        "camera_health",
        sa.Column("camera_id", sa.String(64), primary_key=True),
        sa.Column("server_id", sa.String(64)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("fps", sa.Float),
        sa.Column("bitrate_bps", sa.Float),
        sa.Column("last_frame_at", UTCDateTime),
        sa.Column("last_segment_end", UTCDateTime),
        sa.Column("offline_since", UTCDateTime),
        sa.Column("last_error", sa.String(300)),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("camera_health")
    op.drop_index("ix_legal_hold_cameras_camera_id", table_name="legal_hold_cameras")
    op.drop_table("legal_hold_cameras")
    op.drop_table("legal_holds")
    op.drop_table("retention_policies")
