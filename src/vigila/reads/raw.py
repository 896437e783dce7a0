"""A plate read as a reader sends it, before validation: the adapters' common output.

Vendor adapters (generic JSON, Hikvision ISAPI, Tattile XML) turn their wire format into
`RawRead`s; ingest validates them (plate grammar, device, time, images) and stores each as
a transit. Nothing here is trusted yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class RawImage:
    kind: str  # "plate" (the crop) or "context" (the scene)
    data: bytes
    content_type: str | None = None  # as declared by the sender; ingest checks the bytes


# Not frozen: a frozen dataclass sets each field through object.__setattr__, which cost
# 2.5 of the ~150 us a read takes at ingest; nothing mutates a RawRead after it is made.
@dataclass(slots=True)
class RawRead:
    plate: str  # as read, not normalised
    device: str  # the registry's device id, or the vendor's own id for the adapter to map
    time: datetime | None  # aware; None when the sender gave none (ingest refuses it)
    event_id: str | None = None  # the reader's own id of the event: idempotency key
    confidence: float | None = None  # 0-1 (adapters scale vendor percentages)
    direction: str | None = None  # "inbound" | "outbound" | None
    lane: int | None = None
    country: str | None = None  # ISO 3166-1 alpha-2 when the reader says
    images: list[RawImage] = field(default_factory=list)
    vendor: str = "generic"
    extra: dict[str, str] = field(default_factory=dict)  # vendor fields kept for the record
