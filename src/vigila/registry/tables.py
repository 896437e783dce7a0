"""Registry tables: agencies, zones, devices."""

import sqlalchemy as sa

from vigila.store import UTCDateTime, metadata

agencies = sa.Table(
    "agencies",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

zones = sa.Table(
    "zones",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("geometry", sa.JSON, nullable=False),  # GeoJSON Polygon/MultiPolygon, WGS 84
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

devices = sa.Table(
    "devices",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False, index=True),
    sa.Column("lat", sa.Float, nullable=False),
    sa.Column("lon", sa.Float, nullable=False),
    sa.Column("heading", sa.Float),
    sa.Column("zone_id", sa.String(64), sa.ForeignKey("zones.id"), index=True),
    sa.Column("agency_id", sa.String(64), sa.ForeignKey("agencies.id"), nullable=False),
    sa.Column("main_stream_url", sa.String(1024)),
    sa.Column("sub_stream_url", sa.String(1024)),
    sa.Column("codec", sa.String(16)),
    sa.Column("width", sa.Integer),
    sa.Column("height", sa.Integer),
    sa.Column("fps", sa.Float),
    sa.Column("bitrate_kbps", sa.Integer),
    sa.Column("anpr_vendor", sa.String(32)),
    sa.Column("lane", sa.Integer),
    sa.Column("direction", sa.String(16)),
    sa.Column("recording_server_id", sa.String(64), sa.ForeignKey("devices.id"), index=True),
    sa.Column("address", sa.String(255)),
    sa.Column("installed_on", sa.Date),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("notes", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("retired_at", UTCDateTime),
)
