"""The recording service: the registry says what to record, the recorder records it.

One service runs per recording server (``VIGILA_RECORDER_SERVER``; unset: every
camera). On start it rescans the recording root — after a crash it indexes what the
index missed and quarantines what cannot be read — then records every active camera
with an RTSP main stream assigned to it, following registry changes (its events at
once, and a look every 5 s).
A maintenance thread writes each camera's health to ``camera_health`` (so any API
process can show it), publishes ``recording.camera.online|offline`` on the event bus
when a camera changes state, runs the retention purge, and guards the disk: when only
held video is left above the high-water mark, recording stops with a
``recording.disk.full`` alarm rather than deleting evidence.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa

from vigila.access import audit
from vigila.core import Event, EventBus, Settings
from vigila.core.timeutil import parse_instant, utcnow
from vigila.recording.index import DatabaseSink, RescanReport, rescan
from vigila.recording.recorder import RTSP_SCHEMES, CameraRecorder
from vigila.recording.retention import (
    DiskReport,
    PurgeReport,
    enforce_disk,
    purge_expired,
)
from vigila.recording.tables import camera_health
from vigila.registry.models import AnprVendor, DeviceKind, DeviceStatus
from vigila.registry.tables import devices
from vigila.store import Database

log = logging.getLogger(__name__)

DISK_FULL = "disk_full"  # the state of every camera while recording is stopped for space


@dataclass
class ServiceOptions:
    segment_seconds: float = 10.0
    tick_seconds: float = 2.0  # health and disk checks
    purge_every_seconds: float = 300.0
    # Registry events wake the service at once, but only within this process (and may come
    # before their transaction commits): a periodic look at the registry catches the rest.
    sync_every_seconds: float = 5.0
    recorder: dict[str, Any] = field(default_factory=dict)  # CameraRecorder options
    # Record just these registry cameras, at these URLs (the demo's simulated few).
    streams: Mapping[str, str] | None = None
    # Plate reading on cameras registered as camera_anpr with anpr_vendor "vigila": given
    # (camera id, stream URL), a started worker with stop(). Injected by the caller so that
    # recording does not depend on the ANPR engine (vision/anpr/video.StreamReader).
    plate_reading: Callable[[str, str], PlateWorker] | None = None


class PlateWorker(Protocol):
    def stop(self) -> None: ...


def wanted_cameras(conn: sa.Connection, server_id: str | None) -> dict[str, str]:
    """Camera id -> main stream URL for each camera this server should record."""
    q = sa.select(devices.c.id, devices.c.main_stream_url).where(
        devices.c.kind.in_([DeviceKind.CAMERA.value, DeviceKind.CAMERA_ANPR.value]),
        devices.c.status == DeviceStatus.ACTIVE.value,
        devices.c.main_stream_url.is_not(None))
    if server_id is not None:
        q = q.where(devices.c.recording_server_id == server_id)
    return {camera: url for camera, url in conn.execute(q).all()
            if url.split("://", 1)[0].lower() in RTSP_SCHEMES}


def plate_reading_cameras(conn: sa.Connection, server_id: str | None) -> dict[str, str]:
    """Camera id -> the stream to read plates from (the sub-stream where there is one:
    smaller frames, cheaper to decode) for cameras read by Vigila's engine."""
    q = sa.select(devices.c.id, devices.c.main_stream_url, devices.c.sub_stream_url).where(
        devices.c.kind == DeviceKind.CAMERA_ANPR.value,
        devices.c.anpr_vendor == AnprVendor.VIGILA.value,
        devices.c.status == DeviceStatus.ACTIVE.value)
    if server_id is not None:
        q = q.where(devices.c.recording_server_id == server_id)
    return {camera: sub or main for camera, main, sub in conn.execute(q).all()
            if sub or main}


class RecordingService:
    def __init__(self, db: Database, settings: Settings, bus: EventBus | None = None, *,
                 server_id: str | None = None, options: ServiceOptions | None = None) -> None:
        self.db = db
        self.settings = settings
        self.bus = bus or EventBus()
        self.server_id = server_id if server_id is not None else settings.recorder_server
        self.options = options or ServiceOptions()
        self.root: Path = settings.recordings_root
        self.sink = DatabaseSink(db)
        self.cameras: dict[str, CameraRecorder] = {}
        self.plate_readers: dict[str, tuple[str, PlateWorker]] = {}  # camera -> (url, worker)
        self.disk_full = False
        self.last_rescan: RescanReport | None = None
        self.last_purge: PurgeReport | None = None
        self.last_disk: DiskReport | None = None
        self._states: dict[str, str] = {}  # the last online/offline published per camera
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._unsubscribe: Any = None

    # --- life ----------------------------------------------------------------

    def start(self) -> RecordingService:
        self.root.mkdir(parents=True, exist_ok=True)
        self.last_rescan = rescan(self.db, self.root)
        if self.last_rescan.indexed or self.last_rescan.quarantined:
            log.warning("rescan: %d segments indexed, %d quarantined",
                        self.last_rescan.indexed, self.last_rescan.quarantined)
        self._check_disk()
        self.sync()
        self._unsubscribe = self.bus.subscribe("registry.device.", lambda _e: self._wake.set())
        self._thread = threading.Thread(target=self._loop, daemon=True, name="recording")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._thread is not None:
            self._thread.join(15)
            self._thread = None
        with self._lock:
            self._stop_cameras(list(self.cameras))
            self._sync_plate_readers({})
            self._report_health()

    def __enter__(self) -> RecordingService:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # --- what to record -------------------------------------------------------

    def sync(self) -> None:
        """Start recorders for newly wanted cameras, stop the ones no longer wanted."""
        with self.db.read() as conn:
            wanted = wanted_cameras(conn, self.server_id)
            reading = (plate_reading_cameras(conn, self.server_id)
                       if self.options.plate_reading is not None else {})
        if self.options.streams is not None:
            wanted = {c: self.options.streams[c] for c in wanted if c in self.options.streams}
            reading = {c: self.options.streams[c] for c in reading if c in self.options.streams}
        self._sync_plate_readers(reading)
        with self._lock:
            gone = [c for c, rec in self.cameras.items() if wanted.get(c) != rec.url]
            self._stop_cameras(gone)
            for camera, url in sorted(wanted.items()):
                if camera not in self.cameras:
                    recorder = CameraRecorder(camera, url, self.root, self.sink,
                                              segment_seconds=self.options.segment_seconds,
                                              **{"engine": self.settings.recording_engine,
                                                 **self.options.recorder})
                    self.cameras[camera] = recorder
                    if not self.disk_full:  # else it starts when space is back
                        recorder.start()

    def _sync_plate_readers(self, wanted: dict[str, str]) -> None:
        start = self.options.plate_reading
        with self._lock:
            for camera in [c for c, (url, _) in self.plate_readers.items()
                           if wanted.get(c) != url]:
                self.plate_readers.pop(camera)[1].stop()
            for camera, url in sorted(wanted.items()):
                if camera not in self.plate_readers and start is not None:
                    self.plate_readers[camera] = (url, start(camera, url))

    def _stop_cameras(self, ids: list[str]) -> None:
        for camera in ids:
            self.cameras[camera].request_stop()
        for camera in ids:
            self.cameras.pop(camera).stop()
            with self.db.write() as conn:
                conn.execute(camera_health.delete().where(camera_health.c.camera_id == camera))
            self._states.pop(camera, None)

    def _pause_cameras(self) -> None:
        """Stop recording (the open segments are closed and indexed), keep the cameras."""
        for recorder in self.cameras.values():
            recorder.request_stop()
        for recorder in self.cameras.values():
            recorder.stop()
        self._report_health()

    # --- the maintenance loop -------------------------------------------------

    def _loop(self) -> None:
        next_purge = 0.0
        next_sync = self.options.sync_every_seconds
        elapsed = 0.0
        while not self._stop.is_set():
            woke = self._wake.wait(self.options.tick_seconds)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                if woke or elapsed >= next_sync:
                    self.sync()
                    next_sync = elapsed + self.options.sync_every_seconds
                self._report_health()
                if elapsed >= next_purge:
                    self.purge()
                    next_purge = elapsed + self.options.purge_every_seconds
                self._check_disk()
            except Exception:  # the loop must outlive a database hiccup
                log.exception("recording maintenance failed")
            elapsed += self.options.tick_seconds

    def purge(self, now: datetime | None = None) -> PurgeReport:
        self.last_purge = purge_expired(self.db, self.root,
                                        default_days=self.settings.retention_days, now=now)
        return self.last_purge

    def _check_disk(self) -> None:
        report = enforce_disk(self.db, self.root,
                              quota_bytes=self.settings.recording_quota_bytes,
                              high_water_percent=self.settings.disk_high_water_percent)
        self.last_disk = report
        with self._lock:
            if report.only_held_left and not self.disk_full:
                self.disk_full = True
                self._pause_cameras()
                detail = {"used_bytes": report.usage.used, "limit_bytes": report.usage.limit,
                          "server": self.server_id}
                with self.db.write() as conn:
                    audit.record(conn, None, "recording.disk_full", "recordings",
                                 actor_name="system:disk", outcome="alarm", detail=detail)
                log.error("recording stopped: the disk holds only video under legal hold")
                self.bus.publish(Event("recording.disk.full", detail))
            elif self.disk_full and not report.usage.over:
                self.disk_full = False
                detail = {"used_bytes": report.usage.used, "limit_bytes": report.usage.limit,
                          "server": self.server_id}
                with self.db.write() as conn:
                    audit.record(conn, None, "recording.disk_ok", "recordings",
                                 actor_name="system:disk", detail=detail)
                self.bus.publish(Event("recording.disk.ok", detail))
                for recorder in self.cameras.values():
                    recorder.start(gap_reason="disk full: only held video left")

    # --- health ------------------------------------------------------------------

    def status(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {camera: rec.status() for camera, rec in self.cameras.items()}

    def _report_health(self) -> None:
        now = utcnow()
        rows = []
        with self._lock:
            for camera, status in self.status().items():
                state = DISK_FULL if self.disk_full else status["state"]
                rows.append(_health_row(camera, self.server_id, state, status, now))
                # Retries pass through "connecting": only online <-> offline is news.
                before = self._states.get(camera)
                if before != state and state in ("online", "offline"):
                    self._states[camera] = state
                    self.bus.publish(Event(f"recording.camera.{state}", {
                        "camera": camera, "state": state, "previous": before,
                        "last_error": status["last_error"], "fps": status["fps"],
                        "bitrate_bps": status["bitrate_bps"],
                        "last_frame_at": status["last_frame_at"]}))
        if not rows:
            return
        with self.db.write() as conn:
            ids = [row["camera_id"] for row in rows]
            conn.execute(camera_health.delete().where(camera_health.c.camera_id.in_(ids)))
            conn.execute(camera_health.insert(), rows)


def _when(text: str | None) -> datetime | None:
    return parse_instant(text) if text else None


def _health_row(camera: str, server: str | None, state: str, status: dict[str, Any],
                now: datetime) -> dict[str, Any]:
    return {"camera_id": camera, "server_id": server, "state": state, "fps": status["fps"],
            "bitrate_bps": status["bitrate_bps"],
            "last_frame_at": _when(status["last_frame_at"]),
            "last_segment_end": _when(status["last_segment_end"]),
            "offline_since": _when(status["offline_since"]),
            "last_error": (status["last_error"] or None) and status["last_error"][:300],
            "updated_at": now}
