"""Recording: RTSP streams into fragmented MP4 segments, indexed, with gaps recorded.

`Recorder` / `CameraRecorder` record (standalone they index into JSON Lines, in
Vigila into the database through `DatabaseSink`); `RecordingService` drives them from
the registry, reports health, runs retention and guards the disk; legal holds keep
video from both; `list_health` shows health to the API.
"""

from vigila.recording.health import CameraHealth, list_health
from vigila.recording.holds import (
    Hold,
    HoldIn,
    HoldRelease,
    create_hold,
    get_hold,
    list_holds,
    release_hold,
)
from vigila.recording.index import (
    DatabaseSink,
    RescanReport,
    TimelineEntry,
    rescan,
    timeline,
)
from vigila.recording.recorder import (
    GAPS_FILE,
    INDEX_FILE,
    CameraRecorder,
    Gap,
    JsonlSink,
    Recorder,
    Segment,
    SegmentSink,
    camera_id_from_url,
    check_camera_id,
    check_rtsp_url,
    read_jsonl,
    redact_url,
)
from vigila.recording.retention import (
    PurgeReport,
    Retention,
    RetentionIn,
    enforce_disk,
    list_retention,
    purge_expired,
    set_retention,
)
from vigila.recording.service import RecordingService, ServiceOptions

__all__ = [
    "GAPS_FILE",
    "INDEX_FILE",
    "CameraHealth",
    "CameraRecorder",
    "DatabaseSink",
    "Gap",
    "Hold",
    "HoldIn",
    "HoldRelease",
    "JsonlSink",
    "PurgeReport",
    "Recorder",
    "RecordingService",
    "RescanReport",
    "Retention",
    "RetentionIn",
    "Segment",
    "SegmentSink",
    "ServiceOptions",
    "TimelineEntry",
    "camera_id_from_url",
    "check_camera_id",
    "check_rtsp_url",
    "create_hold",
    "enforce_disk",
    "get_hold",
    "list_health",
    "list_holds",
    "list_retention",
    "purge_expired",
    "read_jsonl",
    "redact_url",
    "release_hold",
    "rescan",
    "set_retention",
    "timeline",
]
