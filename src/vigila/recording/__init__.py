"""Recording: RTSP streams into fragmented MP4 segments, indexed, with gaps recorded.

This first slice is the standalone recorder (`Recorder`, `CameraRecorder`); the
index goes to a `SegmentSink` (`JsonlSink` writes ``index.jsonl`` and
``gaps.jsonl``; a database sink can take its place).
"""

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

__all__ = [
    "GAPS_FILE",
    "INDEX_FILE",
    "CameraRecorder",
    "DatabaseSink",
    "Gap",
    "JsonlSink",
    "Recorder",
    "RescanReport",
    "Segment",
    "SegmentSink",
    "TimelineEntry",
    "camera_id_from_url",
    "check_camera_id",
    "check_rtsp_url",
    "read_jsonl",
    "redact_url",
    "rescan",
    "timeline",
]
