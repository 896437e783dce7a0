"""Recording index: segments and recording gaps.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

from vigila.store.types import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                     autoincrement=True)


def upgrade() -> None:
    # camera_id is not a foreign key: the recorder may record cameras the registry lacks.
    op.create_table(
        "segments",
        _id(),
        sa.Column("camera_id", sa.String(64), nullable=False),
        sa.Column("start", UTCDateTime, nullable=False),
        sa.Column("end", UTCDateTime, nullable=False),
        sa.Column("duration", sa.Float, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.UniqueConstraint("path", name="uq_segments_path"),
    )
    op.create_index("ix_segments_camera_id_start", "segments", ["camera_id", "start"])
    op.create_table(
        "recording_gaps",
        _id(),
        sa.Column("camera_id", sa.String(64), nullable=False),
        sa.Column("start", UTCDateTime, nullable=False),
        sa.Column("end", UTCDateTime, nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
    )
    op.create_index("ix_recording_gaps_camera_id_start", "recording_gaps",
                    ["camera_id", "start"])


def downgrade() -> None:
    op.drop_index("ix_recording_gaps_camera_id_start", table_name="recording_gaps")
    op.drop_table("recording_gaps")
    op.drop_index("ix_segments_camera_id_start", table_name="segments")
    op.drop_table("segments")
