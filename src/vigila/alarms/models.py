"""What the alarms capability accepts and returns besides the alarms themselves.

`Alarm` and `AlarmEvent` are the plate reads' (vigila.reads.models): the ingest raises
alarms, this capability delivers them and carries them through their workflow.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from vigila.core.text import NoNul
from vigila.reads.models import AlarmOutcome

MAX_ID = 2**63 - 1  # a BIGINT on PostgreSQL: a larger id can only be missing
Priority = Annotated[int, Field(ge=0, le=100, description="0 (lowest) to 100 (highest)")]


class AlarmClose(BaseModel):
    """How it ended: the vehicle stopped, not found, or the read was wrong."""

    model_config = ConfigDict(extra="forbid")
    outcome: AlarmOutcome
    note: Annotated[str, StringConstraints(max_length=1000, strip_whitespace=True),
                    NoNul] | None = None


def check_webhook_url(url: str) -> str:
    """An absolute http(s) URL with a host; the receiver's, kept as written."""
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise ValueError("blanks or control characters in the URL")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number in range
    except ValueError as exc:
        raise ValueError(f"not a URL: {exc}") from exc
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("must be an http:// or https:// URL")
    if not parts.hostname:
        raise ValueError("no host in the URL")
    if port == 0:
        raise ValueError("port 0 is not a port to post to")
    return url


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: Annotated[str, StringConstraints(min_length=1, max_length=1024)] = Field(
        description="http:// or https://; alarms are POSTed to it as JSON")
    secret: Annotated[str, StringConstraints(min_length=16, max_length=128), NoNul] | None = \
        Field(default=None, description="when set, each body is signed: "
                                        "Vigila-Signature: sha256=<hex HMAC-SHA256 of the body>")
    zone_id: Annotated[str, StringConstraints(max_length=64), NoNul] | None = Field(
        default=None, description="only this zone's alarms; none: every zone")
    min_priority: Priority = 0
    active: bool = True

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_webhook_url(value)


class Webhook(BaseModel):
    """A webhook as shown: the secret never leaves the server."""

    id: int
    url: str
    has_secret: bool
    zone_id: str | None
    min_priority: int
    active: bool
    created_at: datetime


class WebhookTarget(BaseModel):
    """A webhook as the sender needs it, secret included: never sent to a client."""

    id: int
    url: str
    secret: str | None


class MqttStatus(BaseModel):
    enabled: bool
    url: str | None = None  # without its password
    connected: bool = False
    queued: int = 0  # accepted, not yet acknowledged by the broker (QoS 1)
    published: int = 0  # acknowledged by the broker
    dropped: int = 0  # refused: the buffer was full
    last_error: str | None = None
    connected_since: datetime | None = None


class WebhookStatus(BaseModel):
    queued: int = 0  # deliveries waiting, retries included
    delivered: int = 0
    retried: int = 0  # attempts that failed and were tried again
    failed: int = 0  # given up after the last attempt (audited, logged)


class StreamStatus(BaseModel):
    subscribers: int = 0
    cut: int = 0  # streams ended because their client fell too far behind


class DeliveryStatus(BaseModel):
    """How alarms are getting out: what waits, what went, what was lost and why."""

    running: bool
    queued: int  # events not yet handed to the channels
    dropped: int  # events refused: the dispatcher's queue was full
    mqtt: MqttStatus
    webhooks: WebhookStatus
    streams: StreamStatus
