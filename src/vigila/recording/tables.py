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

# Per-camera retention; a camera without a row keeps the installation default.
retention_policies = sa.Table(
    "retention_policies",
    metadata,
    sa.Column("camera_id", sa.String(64), primary_key=True),
    sa.Column("days", sa.Integer, nullable=False),
    sa.Column("reason", sa.Text),  # the legal basis, required past the default
    sa.Column("updated_by", sa.String(200), nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# A judicial or police request to keep video: never purged while released_at is NULL.
legal_holds = sa.Table(
    "legal_holds",
    metadata,
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

legal_hold_cameras = sa.Table(
    "legal_hold_cameras",
    metadata,
    sa.Column("hold_id", _ID, sa.ForeignKey("legal_holds.id"), primary_key=True),
    sa.Column("camera_id", sa.String(64), primary_key=True),
    sa.Index("ix_legal_hold_cameras_camera_id", "camera_id"),
)

# The last health each recorder reported, so any API process can show it.
camera_health = sa.Table(
    "camera_health",
    metadata,
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
