"""Access tables: users, roles, zone scopes, sessions, login throttle, audit chain."""

import sqlalchemy as sa

from vigila.store import UTCDateTime, metadata

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("full_name", sa.String(200), nullable=False),
    sa.Column("email", sa.String(254)),
    sa.Column("agency_id", sa.String(64), sa.ForeignKey("agencies.id"), nullable=False),
    sa.Column("all_zones", sa.Boolean, nullable=False, default=False),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("password_changed_at", UTCDateTime, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

user_roles = sa.Table(
    "user_roles",
    metadata,
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("role", sa.String(32), primary_key=True),
)

user_zones = sa.Table(
    "user_zones",
    metadata,
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("zone_id", sa.String(64), sa.ForeignKey("zones.id"), primary_key=True),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),  # SHA-256 of the token
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime),
    sa.Column("client", sa.String(64)),
)

login_throttle = sa.Table(
    "login_throttle",
    metadata,
    sa.Column("key", sa.String(160), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("locked_until", UTCDateTime),
    sa.Column("last_failure_at", UTCDateTime, nullable=False),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=False),
    sa.Column("at", UTCDateTime, nullable=False, index=True),
    sa.Column("actor", sa.String(128), nullable=False, index=True),
    sa.Column("actor_agency", sa.String(64)),
    sa.Column("action", sa.String(64), nullable=False, index=True),
    sa.Column("resource", sa.String(512), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("detail", sa.JSON, nullable=False),
    sa.Column("purpose", sa.Text),
    sa.Column("reference", sa.String(256)),
    sa.Column("recipient", sa.String(256)),
    sa.Column("client", sa.String(64)),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)
