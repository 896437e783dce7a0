"""The shapes of plate reads on the wire and in the events other capabilities consume."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from vigila.core.text import NoNul

# Bus topics. The payload of each is the model's `model_dump(mode="json")`.
ALARM_TOPIC = "reads.alarm.raised"  # a hit raised an alarm (after commit); payload AlarmEvent
ALARM_CHANGED_TOPIC = "reads.alarm.changed"  # acknowledged or closed; payload Alarm


class ReadDirection(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class AlarmState(StrEnum):
    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    CLOSED = "closed"


class AlarmOutcome(StrEnum):
    STOPPED = "stopped"  # the vehicle was stopped
    NOT_FOUND = "not_found"  # a patrol went, the vehicle was gone
    MISREAD = "misread"  # the read was wrong: not the listed plate


Text64 = Annotated[str, StringConstraints(max_length=64), NoNul]


class ImageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Annotated[str, StringConstraints(pattern="^(plate|context)$")]
    data: Annotated[str, StringConstraints(max_length=8_000_000)]  # base64
    content_type: Annotated[str, StringConstraints(max_length=100), NoNul] | None = None


class ReadIn(BaseModel):
    """One read as a generic reader posts it (JSON; images as base64)."""

    model_config = ConfigDict(extra="forbid")
    plate: Text64
    device: Text64
    time: AwareDatetime
    event_id: Annotated[str, StringConstraints(min_length=1, max_length=128), NoNul] | None = None
    confidence: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] | None = None
    direction: ReadDirection | None = None
    lane: Annotated[int, Field(ge=1, le=16)] | None = None
    country: Annotated[str, StringConstraints(pattern="^[A-Za-z]{2}$")] | None = None
    images: Annotated[list[ImageIn], Field(max_length=4, default_factory=list)]


class ReadBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reads: Annotated[list[ReadIn], Field(min_length=1, max_length=10_000)]


class ReadResult(BaseModel):
    """What became of one read of a request: stored, a duplicate of one stored, or refused."""

    index: int
    status: str  # stored | duplicate | rejected
    transit_id: UUID | None = None
    flags: list[str] = Field(default_factory=list)
    alarms: list[int] = Field(default_factory=list)  # ids of the alarms it raised
    errors: list[dict[str, str]] = Field(default_factory=list)  # when rejected: field, message


class IngestReport(BaseModel):
    stored: int
    duplicates: int
    rejected: int
    alarms: int
    results: list[ReadResult]


class Transit(BaseModel):
    id: UUID
    device_id: str
    plate: str
    plate_raw: str
    format_id: str
    country: str | None
    confidence: float | None
    time: datetime
    received_at: datetime
    direction: ReadDirection | None
    lane: int | None
    event_id: str
    vendor: str
    flags: list[str]
    extra: dict[str, str] | None = None  # the vendor's other fields, as sent
    hit: bool
    plate_image_sha256: str | None
    context_image_sha256: str | None


class Alarm(BaseModel):
    id: int
    transit_id: UUID
    device_id: str
    zone_id: str | None
    hotlist_id: str
    hotlist_kind: str
    plate: str  # as listed
    read: str  # as read
    match: str  # exact | lookalike
    priority: int
    reason: str | None
    time: datetime  # of the transit
    created_at: datetime
    state: AlarmState
    acknowledged_by: int | None
    acknowledged_at: datetime | None
    outcome: AlarmOutcome | None
    note: str | None
    closed_by: int | None
    closed_at: datetime | None


class AlarmEvent(Alarm):
    """An alarm as pushed: with what the console and a patrol need without another query."""

    device_name: str
    lat: float
    lon: float
    direction: ReadDirection | None
    confidence: float | None
    hotlist_name: str
    received_at: datetime  # when the read arrived: pushers measure their latency from it
