"""Recording index tables: the segments on disk and the outages between them.

`camera_id` is deliberately not a foreign key to ``devices``: the standalone
recorder may record cameras the registry does not know (yet), and the index
must still hold their footage.
"""

import sqlalchemy as sa

from vigila.store import UTCDateTime, metadata

# BIGINT on PostgreSQL (millions of segments a year), INTEGER on SQLite (its rowid alias).
_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")

segments = sa.Table(
    "segments",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("camera_id", sa.String(64), nullable=False),
    sa.Column("start", UTCDateTime, nullable=False),
    sa.Column("end", UTCDateTime, nullable=False),
    sa.Column("duration", sa.Float, nullable=False),
    sa.Column("bytes", sa.BigInteger, nullable=False),
    sa.Column("path", sa.String(1024), nullable=False),  # relative to the recording root
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.UniqueConstraint("path", name="uq_segments_path"),
    sa.Index("ix_segments_camera_id_start", "camera_id", "start"),
)

recording_gaps = sa.Table(
    "recording_gaps",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("camera_id", sa.String(64), nullable=False),
    sa.Column("start", UTCDateTime, nullable=False),
    sa.Column("end", UTCDateTime, nullable=False),
    sa.Column("reason", sa.String(64), nullable=False),
    sa.Index("ix_recording_gaps_camera_id_start", "camera_id", "start"),
)
