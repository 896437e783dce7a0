"""Plate reads: from a reader's message to a stored transit, its alarms, and their life.

- `Ingest` validates reads (registry device, plate grammar, time, images), stores each as
  a transit with its images on disk, matches it against the hotlists and raises alarms,
  published on the bus after the commit; idempotent per device and reader event id.
- `RawRead` is what the vendor adapters (`vigila.reads.adapters`: Hikvision ISAPI,
  Tattile XML) and the generic JSON API produce for the ingest.
"""

from vigila.reads.ingest import Ingest, image_extension
from vigila.reads.models import (
    ALARM_CHANGED_TOPIC,
    ALARM_TOPIC,
    Alarm,
    AlarmEvent,
    AlarmOutcome,
    AlarmState,
    ImageIn,
    IngestReport,
    ReadBatch,
    ReadDirection,
    ReadIn,
    ReadResult,
    Transit,
)
from vigila.reads.raw import RawImage, RawRead

__all__ = [
    "ALARM_CHANGED_TOPIC",
    "ALARM_TOPIC",
    "Alarm",
    "AlarmEvent",
    "AlarmOutcome",
    "AlarmState",
    "ImageIn",
    "Ingest",
    "IngestReport",
    "RawImage",
    "RawRead",
    "ReadBatch",
    "ReadDirection",
    "ReadIn",
    "ReadResult",
    "Transit",
    "image_extension",
]
