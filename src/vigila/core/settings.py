"""Settings from the environment (VIGILA_*), with embedded defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SystemExit(f"{name} must be a whole number, got {raw!r}") from exc


def _choice(name: str, choices: tuple[str, ...]) -> str:
    """The variable's value, one of `choices` (the first when unset)."""
    value = os.environ.get(name, "").strip().lower() or choices[0]
    if value not in choices:
        raise SystemExit(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    session_hours: int = 8  # one control-room shift
    max_body_bytes: int = 20 * 1024 * 1024
    login_max_failures: int = 5
    login_lock_seconds: int = 60  # doubles with each further failure
    login_lock_max_seconds: int = 900
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    # Recording. The root defaults to <data_dir>/recordings; the signing key to <data_dir>/keys.
    recordings_dir: Path | None = None
    retention_days: int = 7  # DL 11/2009 art. 6 c. 8: municipal urban security, 7 days
    disk_high_water_percent: int = 90  # past this, the oldest unheld video goes
    recording_quota_bytes: int = 0  # a cap on the recording root's size; 0: the disk decides
    recorder_server: str | None = None  # record the cameras assigned to this server id
    # auto: the in-process RTSP client for H.264 over TCP, ffmpeg for other streams;
    # native or ffmpeg: that engine only (docs/OPERATIONS.md).
    recording_engine: str = "auto"
    # Plate reads. Minimisation (Garante 752/2025, 531/2025): a transit matching no hotlist
    # is kept only long enough to serve a hotlist added late and an urgent search.
    reads_unmatched_hours: int = 24
    reads_hit_max_days: int = 365  # a hit stays with its alarm until the case closes, at most this
    reads_closed_days: int = 30  # after its alarm closes, a hit stays this long for appeals
    reads_counts_days: int = 1825  # hourly counts hold no plate: traffic statistics, 5 years
    reads_max_image_bytes: int = 5 * 1024 * 1024
    reads_max_clock_skew_seconds: int = 300  # a read from further in the future is refused
    mqtt_url: str | None = None  # mqtt://host:port; alarms go to vigila/alarms/<zone>/<device>
    forward_url: str | None = None  # the national system's endpoint; None: no forwarding
    forward_format: str = "json"  # json | xml

    @property
    def recordings_root(self) -> Path:
        return self.recordings_dir or self.data_dir / "recordings"

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def read_images_root(self) -> Path:
        return self.data_dir / "reads"

    @classmethod
    def from_env(cls) -> Settings:
        data_dir = Path(os.environ.get("VIGILA_DATA_DIR", "data")).resolve()
        url = os.environ.get("VIGILA_DATABASE_URL") or f"sqlite:///{data_dir / 'vigila.db'}"
        return cls(
            data_dir=data_dir,
            database_url=url,
            session_hours=_int("VIGILA_SESSION_HOURS", 8),
            max_body_bytes=_int("VIGILA_MAX_BODY_BYTES", 20 * 1024 * 1024),
            login_max_failures=_int("VIGILA_LOGIN_MAX_FAILURES", 5),
            login_lock_seconds=_int("VIGILA_LOGIN_LOCK_SECONDS", 60),
            recordings_dir=Path(rec).resolve() if (rec := os.environ.get("VIGILA_RECORDINGS_DIR"))
            else None,
            retention_days=_int("VIGILA_RETENTION_DAYS", 7),
            disk_high_water_percent=_int("VIGILA_DISK_HIGH_WATER_PERCENT", 90),
            recording_quota_bytes=_int("VIGILA_RECORDING_QUOTA_BYTES", 0),
            recorder_server=os.environ.get("VIGILA_RECORDER_SERVER") or None,
            recording_engine=_choice("VIGILA_RECORDING_ENGINE", ("auto", "native", "ffmpeg")),
            reads_unmatched_hours=_int("VIGILA_READS_UNMATCHED_HOURS", 24),
            reads_hit_max_days=_int("VIGILA_READS_HIT_MAX_DAYS", 365),
            reads_closed_days=_int("VIGILA_READS_CLOSED_DAYS", 30),
            reads_counts_days=_int("VIGILA_READS_COUNTS_DAYS", 1825),
            reads_max_image_bytes=_int("VIGILA_READS_MAX_IMAGE_BYTES", 5 * 1024 * 1024),
            reads_max_clock_skew_seconds=_int("VIGILA_READS_MAX_CLOCK_SKEW_SECONDS", 300),
            mqtt_url=os.environ.get("VIGILA_MQTT_URL") or None,
            forward_url=os.environ.get("VIGILA_FORWARD_URL") or None,
            forward_format=os.environ.get("VIGILA_FORWARD_FORMAT") or "json",
        )
