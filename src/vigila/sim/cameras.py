"""Simulated cameras: N H.264 streams over RTSP from a real RTSP server.

`CameraSimulator` makes (or finds) the clip, starts ``rtsp_server.py`` under
Debian's system Python (GStreamer's RTSP server through ``gi``, which the
venv does not have) and talks to it over the server's stdin/stdout: one JSON
line each way.  Each camera is ``rtsp://<address>:<port>/<camera-id>/main``
(and ``/sub``); a camera can be dropped and restored, for fault tests.

    with CameraSimulator(camera_ids(3)) as sim:
        url = sim.url("CAM-0001")
        sim.drop("CAM-0001")     # its clients are cut off, new ones get 404
        sim.restore("CAM-0001")
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from pydantic import TypeAdapter, ValidationError

from vigila.core import InvalidInput, NotFound, Settings, VigilaError
from vigila.registry.models import DeviceId
from vigila.sim.clip import MAIN, SUB, ensure_clip

SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")
SYSTEM_PYTHON = Path("/usr/bin/python3")
# What the server needs from Debian (scripts/install-system.sh installs them).
DEBIAN_PACKAGES = (
    "python3-gi",
    "gir1.2-gst-rtsp-server-1.0",
    "gstreamer1.0-rtsp",
    "gstreamer1.0-plugins-good",
    "gstreamer1.0-plugins-bad",
)
_DEVICE_ID: TypeAdapter[str] = TypeAdapter(DeviceId)  # camera ids are device ids
NO_GI_EXIT = 3  # rtsp_server.py's exit status when gi or the RTSP server is missing


class SimulatorError(VigilaError):
    """The simulated cameras cannot start or do not answer."""

    status = 503
    title = "Camera simulator unavailable"
    slug = "sim-unavailable"


def camera_ids(count: int, prefix: str = "CAM-", first: int = 1) -> list[str]:
    """`count` camera ids numbered like the sample city's: CAM-0001, CAM-0002, ..."""
    if count < 1:
        raise ValueError("at least one camera")
    return [f"{prefix}{number:04d}" for number in range(first, first + count)]


def default_cache_dir() -> Path:
    return Settings.from_env().data_dir / "sim"


class CameraSimulator:
    """A running simulated RTSP server with one mount per camera; a context manager."""

    def __init__(
        self,
        cameras: Sequence[str],
        *,
        port: int = 0,  # 0: the server picks a free one
        address: str = "127.0.0.1",
        sub_streams: bool = True,
        cache_dir: Path | None = None,
        # Annex-B H.264 for /main instead of the standard clip, e.g. plate_images.traffic_clip
        main_clip: Path | None = None,
        log_path: Path | None = None,  # the server's stderr; a temporary file if None
        python: Path = SYSTEM_PYTHON,
        ready_timeout: float = 60.0,
    ) -> None:
        if not cameras:
            raise InvalidInput.on("cameras", "at least one camera")
        if len(set(cameras)) != len(cameras):
            raise InvalidInput.on("cameras", "camera ids repeat")
        for camera_id in cameras:
            try:
                _DEVICE_ID.validate_python(camera_id)
            except ValidationError as exc:
                raise InvalidInput.on("cameras", f"bad camera id {camera_id!r}: up to 64 "
                                      "letters, digits, '.', '_', '-', starting with a letter "
                                      "or digit") from exc
        self.cameras = list(cameras)
        self.address = address
        self.sub_streams = sub_streams
        self.cache_dir = cache_dir if cache_dir is not None else default_cache_dir()
        self.main_clip = main_clip
        self.log_path = log_path
        self.python = python
        self.ready_timeout = ready_timeout
        self._requested_port = port
        self._port: int | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._log: IO[bytes] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._lock = threading.Lock()

    # --- life ----------------------------------------------------------------

    def start(self) -> Self:
        if self._proc is not None:
            raise SimulatorError("the simulated cameras are already running")
        if not self.python.is_file():
            raise SimulatorError(
                f"{self.python} not found: the simulated cameras run under Debian's system "
                f"Python with the packages {' '.join(DEBIAN_PACKAGES)} "
                "(scripts/install-system.sh)")
        if self.main_clip is not None and not self.main_clip.is_file():
            raise SimulatorError(f"the main clip {self.main_clip} does not exist")
        main = self.main_clip if self.main_clip is not None else ensure_clip(self.cache_dir, MAIN)
        args = [str(self.python), "-I", str(SERVER_SCRIPT),
                "--address", self.address, "--port", str(self._requested_port),
                "--main", str(main)]
        if self.sub_streams:
            args += ["--sub", str(ensure_clip(self.cache_dir, SUB))]
        args += ["--", *self.cameras]
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("w+b")
        else:
            self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives until stop()
        # No PYTHON* variables from the venv reach the system Python (-I ignores them too).
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        self._proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
            text=True, encoding="utf-8", bufsize=1, env=env, start_new_session=True)
        threading.Thread(target=self._read_stdout, args=(self._proc.stdout,),
                         name="camera-sim-stdout", daemon=True).start()
        try:
            ready = self._next_line(self.ready_timeout, "start")
            if not ready.get("ready"):
                raise SimulatorError(f"unexpected first line from the RTSP server: {ready}")
            self._port = int(ready["port"])
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL if the server has not gone within `timeout` seconds."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if proc.stdin is not None:
                with contextlib.suppress(OSError):  # a broken pipe: the server has gone
                    proc.stdin.close()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # --- what it serves ------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise SimulatorError("the simulated cameras are not running")
        return self._port

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int:
        """The RTSP server's process id (for CPU figures)."""
        if self._proc is None:
            raise SimulatorError("the simulated cameras are not running")
        return self._proc.pid

    def url(self, camera_id: str, sub: bool = False) -> str:
        self._known(camera_id)
        if sub and not self.sub_streams:
            raise SimulatorError("the simulator was started without sub streams")
        return f"rtsp://{self.address}:{self.port}/{camera_id}/{'sub' if sub else 'main'}"

    def audio_url(self, camera_id: str) -> str:
        """The camera's audio-only stream: an RTSP source with no video, for fault tests."""
        self._known(camera_id)
        return f"rtsp://{self.address}:{self.port}/{camera_id}/audio"

    def urls(self) -> dict[str, str]:
        return {camera_id: self.url(camera_id) for camera_id in self.cameras}

    # --- control -------------------------------------------------------------

    def drop(self, camera_id: str) -> None:
        """Take a camera off the air: its clients are disconnected, new ones refused."""
        self._known(camera_id)
        self._command({"cmd": "drop", "camera": camera_id})

    def restore(self, camera_id: str) -> None:
        """Put a dropped camera back on the air."""
        self._known(camera_id)
        self._command({"cmd": "restore", "camera": camera_id})

    def states(self) -> dict[str, str]:
        """Each camera's state, "up" or "down", as the server reports it."""
        states: dict[str, str] = self._command({"cmd": "list"})["cameras"]
        return states

    def _known(self, camera_id: str) -> None:
        if camera_id not in self.cameras:
            raise NotFound(f"no simulated camera {camera_id!r}")

    def _command(self, request: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
        with self._lock:
            proc = self._proc
            if proc is None or proc.stdin is None or proc.poll() is not None:
                raise SimulatorError("the simulated cameras are not running"
                                     + self._stderr_tail())
            try:
                proc.stdin.write(json.dumps(request) + "\n")
                proc.stdin.flush()
            except OSError as exc:
                raise SimulatorError(f"the RTSP server does not listen: {exc}"
                                     + self._stderr_tail()) from exc
            reply = self._next_line(timeout, str(request.get("cmd")))
        if not reply.get("ok"):
            raise SimulatorError(f"the RTSP server refused {request}: {reply.get('error')}")
        return reply

    # --- the server's output -------------------------------------------------

    def _read_stdout(self, stream: IO[str] | None) -> None:
        if stream is None:
            return
        for line in stream:
            self._lines.put(line)
        self._lines.put(None)  # end of output: the server has gone

    def _next_line(self, timeout: float, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SimulatorError(f"the RTSP server did not answer within {timeout:.0f} s "
                                     f"({what})" + self._stderr_tail())
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise SimulatorError(self._death_notice(what))
            line = line.strip()
            if not line:
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                continue  # not ours: stray output from a library
            if isinstance(value, dict):
                return value

    def _death_notice(self, what: str) -> str:
        code: int | None = None
        if self._proc is not None:
            try:
                code = self._proc.wait(5)
            except subprocess.TimeoutExpired:
                code = None
        message = f"the RTSP server stopped ({what}, exit status {code})"
        if code == NO_GI_EXIT:
            message += ("; it needs the Debian packages " + " ".join(DEBIAN_PACKAGES)
                        + " (scripts/install-system.sh)")
        return message + self._stderr_tail()

    def _stderr_tail(self, limit: int = 4000) -> str:
        if self._log is None:
            return ""
        try:
            self._log.flush()
            self._log.seek(0)
            text = self._log.read().decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""
        return f":\n{text[-limit:]}" if text else ""
