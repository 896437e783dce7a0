"""A throw-away Mosquitto broker for tests, on 127.0.0.1 and a free port.

Started from a generated configuration: one loopback listener, anonymous clients,
persistence off unless a directory is given (to test a broker that restarts and keeps
its clients' sessions). Run as root, Mosquitto drops to its own `mosquitto` user, so a
persistence directory is handed to that user. No pytest dependency.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

HOST = "127.0.0.1"
BINARY = "/usr/sbin/mosquitto"
_OS_USER = "mosquitto"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class Mosquitto:
    def __init__(self, port: int | None = None, persistence_dir: Path | None = None) -> None:
        self.fixed_port = port
        self.persistence_dir = persistence_dir
        self._port: int | None = None
        self._dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("Mosquitto is not started")
        return self._port

    @property
    def url(self) -> str:
        return f"mqtt://{HOST}:{self.port}"

    @property
    def log(self) -> str:
        if self._dir is None:
            return "(not started)"
        path = self._dir / "mosquitto.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else "(no log)"

    def start(self, timeout_s: float = 10.0) -> Mosquitto:
        if not Path(BINARY).exists():
            raise RuntimeError(f"{BINARY} not found: apt-get install mosquitto")
        self._dir = Path(tempfile.mkdtemp(prefix="vigila-mqtt-"))
        self._dir.chmod(0o755)
        if self.persistence_dir is not None:
            self.persistence_dir.mkdir(parents=True, exist_ok=True)
            if os.geteuid() == 0:
                user = pwd.getpwnam(_OS_USER)
                os.chown(self.persistence_dir, user.pw_uid, user.pw_gid)
        last = ""
        for _ in range(1 if self.fixed_port else 3):
            port = self.fixed_port or free_port()
            if self._launch(port, timeout_s):
                self._port = port
                return self
            last = self.log
            if "in use" not in last:
                break
        self.stop()
        raise RuntimeError(f"mosquitto did not start:\n{last}")

    def _launch(self, port: int, timeout_s: float) -> bool:
        assert self._dir is not None
        lines = [f"listener {port} {HOST}", "allow_anonymous true", "log_dest stderr",
                 "log_type error", "log_type warning", "log_type notice"]
        if self.persistence_dir is not None:
            lines += ["persistence true", f"persistence_location {self.persistence_dir}/",
                      "autosave_interval 0"]
        else:
            lines.append("persistence false")
        conf = self._dir / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n")
        conf.chmod(0o644)
        with (self._dir / "mosquitto.log").open("ab") as log:
            self._process = subprocess.Popen([BINARY, "-c", str(conf)], stdout=log,
                                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            try:
                with socket.create_connection((HOST, port), timeout=0.2):
                    return True
            except OSError:
                time.sleep(0.02)
        return False

    def stop(self) -> None:
        """SIGTERM (a persistent broker saves its sessions then), SIGKILL if it lingers."""
        if self._process is not None:
            if self._process.poll() is None:
                self._process.terminate()
                try:
                    self._process.wait(5)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait(5)
            self._process = None
        self._port = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
