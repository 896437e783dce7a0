"""Read tables: transits, the alarms their hits raise, hourly counts, the upstream queue.

A transit's id is a UUID minted by the ingest before the row exists, so its image files can
be named after it and written before the row that refers to them. `UNIQUE(device_id,
event_id)` makes the ingest idempotent: a reader that retries sends the same event id.

`hit` marks a transit that matched a hotlist: minimisation deletes the others after a day
(Garante, decisions 752/2025 and 531/2025), and keeps a hit with its alarm until the case
closes. `transit_counts` are the traffic statistics that outlive the transits: no plate.
"""

import sqlalchemy as sa

from vigila.store import UTCDateTime, metadata

# BIGINT on PostgreSQL, INTEGER on SQLite (its rowid alias).
_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")

transits = sa.Table(
    "transits",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("device_id", sa.String(64), sa.ForeignKey("devices.id"), nullable=False),
    sa.Column("plate", sa.String(16), nullable=False),  # normalised
    sa.Column("plate_key", sa.String(16), nullable=False),  # the grammar's lookalike_key
    sa.Column("plate_raw", sa.String(64), nullable=False),  # as the reader sent it
    sa.Column("format_id", sa.String(32), nullable=False),  # the grammar's; "generic" if none
    sa.Column("country", sa.String(2)),  # the reader's, else the format's
    sa.Column("confidence", sa.Float),
    sa.Column("time", UTCDateTime, nullable=False),  # the reader's clock
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("direction", sa.String(16)),  # inbound | outbound | NULL
    sa.Column("lane", sa.Integer),
    sa.Column("event_id", sa.String(128), nullable=False),  # the reader's, or derived ("~...")
    sa.Column("vendor", sa.String(32), nullable=False),
    sa.Column("flags", sa.String(200), nullable=False),  # comma-separated, "" when none
    # The vendor's other fields (plate colour, vehicle type...); SQL NULL when a reader
    # sent nothing more (most do), not the JSON text 'null'.
    sa.Column("extra", sa.JSON(none_as_null=True)),
    sa.Column("hit", sa.Boolean, nullable=False),
    sa.Column("plate_image", sa.String(255)),  # relative to the images root
    sa.Column("plate_image_sha256", sa.String(64)),
    sa.Column("context_image", sa.String(255)),
    sa.Column("context_image_sha256", sa.String(64)),
    sa.UniqueConstraint("device_id", "event_id"),
    # The one plate index: every plate query goes through the look-alike key (see
    # vigila.reads.search), since each plate index costs an insert a random page.
    sa.Index("ix_transits_plate_key_time", "plate_key", "time"),
    sa.Index("ix_transits_device_id_time", "device_id", "time"),
    sa.Index("ix_transits_time", "time"),
    sa.Index("ix_transits_hit_received_at", "hit", "received_at"),
)

alarms = sa.Table(
    "alarms",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("transit_id", sa.Uuid, sa.ForeignKey("transits.id"), nullable=False, index=True),
    sa.Column("device_id", sa.String(64), sa.ForeignKey("devices.id"), nullable=False),
    sa.Column("zone_id", sa.String(64)),  # the device's when raised: the topic and the scope
    sa.Column("hotlist_id", sa.String(64), sa.ForeignKey("hotlists.id"), nullable=False),
    sa.Column("hotlist_kind", sa.String(32), nullable=False),
    sa.Column("plate", sa.String(16), nullable=False),  # as listed
    sa.Column("read", sa.String(16), nullable=False),  # as read, normalised
    sa.Column("match", sa.String(16), nullable=False),  # exact | lookalike
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("reason", sa.String(500)),
    sa.Column("time", UTCDateTime, nullable=False),  # the transit's
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("state", sa.String(16), nullable=False, index=True),  # new|acknowledged|closed
    sa.Column("acknowledged_by", sa.Integer, sa.ForeignKey("users.id")),
    sa.Column("acknowledged_at", UTCDateTime),
    sa.Column("outcome", sa.String(16)),  # stopped | not_found | misread
    sa.Column("note", sa.String(1000)),
    sa.Column("closed_by", sa.Integer, sa.ForeignKey("users.id")),
    sa.Column("closed_at", UTCDateTime),
    sa.Index("ix_alarms_created_at", "created_at"),
)

# Per reader and UTC hour; direction "" when the reader gave none. No plate, ever.
transit_counts = sa.Table(
    "transit_counts",
    metadata,
    sa.Column("device_id", sa.String(64), sa.ForeignKey("devices.id"), primary_key=True),
    sa.Column("hour", UTCDateTime, primary_key=True),
    sa.Column("direction", sa.String(16), primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
)

# The transits to send upstream (SCNTT-style). The body is built at enqueue time so the
# queue outlives the transit's minimisation; `transit_id` is the upstream idempotency key.
forward_queue = sa.Table(
    "forward_queue",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("transit_id", sa.Uuid, nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # pending | sent | dead
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("last_error", sa.String(500)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("sent_at", UTCDateTime),
    sa.UniqueConstraint("transit_id"),
    sa.Index("ix_forward_queue_state_next_attempt_at", "state", "next_attempt_at"),
)

# Where alarms are posted, besides the console and MQTT.
webhooks = sa.Table(
    "webhooks",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("url", sa.String(1024), nullable=False),
    sa.Column("secret", sa.String(128)),  # HMAC-SHA256 of the body in a header, when set
    sa.Column("zone_id", sa.String(64)),  # only this zone's alarms; NULL: all
    sa.Column("min_priority", sa.Integer, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)
