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

    @property
    def recordings_root(self) -> Path:
        return self.recordings_dir or self.data_dir / "recordings"

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

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
        )
