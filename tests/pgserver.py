"""Throw-away PostgreSQL server for tests.

Runs ``initdb`` and ``pg_ctl`` in a fresh temporary directory, listening only
on 127.0.0.1 on a free port.  PostgreSQL refuses to run as root, so when the
current process is root the server binaries are run as the ``postgres`` OS user
(via ``runuser``).  Durability is switched off: the cluster is disposable.

This module deliberately has no pytest dependency.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

import psycopg
from psycopg import sql

SUPERUSER = "vigila"
HOST = "127.0.0.1"
_PG_OS_USER = "postgres"
_LOG_TAIL_LINES = 40
_START_ATTEMPTS = 3


def _version_key(path: str) -> tuple[int, ...]:
    """Sort key for ``/usr/lib/postgresql/<version>/bin`` paths."""
    version = Path(path).parent.name
    return tuple(int(part) for part in re.findall(r"\d+", version))


def find_bindir() -> Path | None:
    """Locate the PostgreSQL server binaries (the directory holding initdb).

    Tries ``pg_config --bindir`` first, then the newest
    ``/usr/lib/postgresql/*/bin``.  Returns None when none is found.
    """
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        try:
            result = subprocess.run(
                [pg_config, "--bindir"],
                capture_output=True,
                text=True,
                check=True,
                timeout=30,
            )
        except (OSError, subprocess.SubprocessError):
            pass
        else:
            candidate = Path(result.stdout.strip())
            # libpq-dev's pg_config may report /usr/bin, which has no initdb.
            if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
                return candidate
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    for raw in candidates:
        candidate = Path(raw)
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _pick_locale() -> str:
    """C.UTF-8 if the system has it, else plain C."""
    try:
        result = subprocess.run(
            ["locale", "-a"], capture_output=True, text=True, check=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return "C"
    available = {line.strip().lower() for line in result.stdout.splitlines()}
    if available & {"c.utf8", "c.utf-8"}:
        return "C.UTF-8"
    return "C"


def _quote_conf(value: str) -> str:
    """Quote a string for postgresql.conf."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


class PostgresServer:
    """A disposable PostgreSQL cluster on 127.0.0.1 with superuser ``vigila``."""

    def __init__(self) -> None:
        self._bindir: Path | None = None
        self._tmpdir: Path | None = None
        self._port: int | None = None
        self._running = False
        self._as_root = os.geteuid() == 0
        self._atexit_registered = False

    # -- properties ---------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("PostgresServer is not started")
        return self._port

    @property
    def directory(self) -> Path:
        if self._tmpdir is None:
            raise RuntimeError("PostgresServer is not started")
        return self._tmpdir

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def log_file(self) -> Path:
        return self.directory / "postgres.log"

    @property
    def running(self) -> bool:
        return self._running

    # -- process helpers ----------------------------------------------------

    def _cmd(self, *args: str) -> list[str]:
        if self._as_root:
            runuser = shutil.which("runuser") or "/usr/sbin/runuser"
            return [runuser, "-u", _PG_OS_USER, "--", *args]
        return list(args)

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        return subprocess.run(
            self._cmd(*args),
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
            cwd=self.directory,  # the postgres user may not be able to read our cwd
            env=env,
            stdin=subprocess.DEVNULL,
        )

    def _tool(self, name: str) -> str:
        assert self._bindir is not None
        return str(self._bindir / name)

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> None:
        if self._running:
            return
        bindir = find_bindir()
        if bindir is None:
            raise RuntimeError(
                "PostgreSQL server binaries not found (no initdb via pg_config "
                "--bindir or /usr/lib/postgresql/*/bin); run scripts/install-system.sh"
            )
        self._bindir = bindir

        tmpdir = Path(tempfile.mkdtemp(prefix="vigila-pg-"))
        self._tmpdir = tmpdir
        if not self._atexit_registered:
            atexit.register(self.stop)
            self._atexit_registered = True
        try:
            if self._as_root:
                try:
                    pg_user = pwd.getpwnam(_PG_OS_USER)
                except KeyError:
                    raise RuntimeError(
                        f"running as root but there is no {_PG_OS_USER!r} OS user "
                        "to run PostgreSQL as"
                    ) from None
                os.chown(tmpdir, pg_user.pw_uid, pg_user.pw_gid)
            self._initdb()
            self._configure()
            self._start_server()
        except BaseException:
            self._cleanup_dir()
            raise

    def _initdb(self) -> None:
        result = self._run(
            self._tool("initdb"),
            "-D",
            str(self.data_dir),
            "-A",
            "trust",
            "-U",
            SUPERUSER,
            "--encoding=UTF8",
            f"--locale={_pick_locale()}",
            "--no-sync",
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"initdb failed (exit {result.returncode}):\n"
                f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
            )

    def _configure(self) -> None:
        settings = {
            "listen_addresses": _quote_conf(HOST),
            "unix_socket_directories": _quote_conf(str(self.directory)),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
        }
        conf = self.data_dir / "postgresql.conf"
        lines = ["", "# vigila test cluster"]
        lines += [f"{key} = {value}" for key, value in settings.items()]
        # Owner is kept (root may append to a file the postgres user owns).
        with conf.open("a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")

    def _start_server(self) -> None:
        last_error = ""
        for _ in range(_START_ATTEMPTS):
            port = _free_port()
            result = self._run(
                self._tool("pg_ctl"),
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-o",
                f"-p {port}",
            )
            if result.returncode == 0:
                self._port = port
                self._running = True
                return
            log_tail = _tail(self.log_file)
            last_error = (
                f"pg_ctl start failed (exit {result.returncode}):\n"
                f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}\n"
                f"--- log tail ---\n{log_tail}"
            )
            # Retry only when another process grabbed the port in between.
            if "could not bind" not in log_tail:
                break
        raise RuntimeError(last_error)

    def stop(self) -> None:
        """Stop the server (immediate mode) and remove its temporary directory."""
        if self._atexit_registered:
            atexit.unregister(self.stop)
            self._atexit_registered = False
        if self._tmpdir is None:
            return
        try:
            if self._running:
                result = self._run(
                    self._tool("pg_ctl"),
                    "stop",
                    "-w",
                    "-m",
                    "immediate",
                    "-D",
                    str(self.data_dir),
                )
                if result.returncode != 0:
                    raise RuntimeError(
                        f"pg_ctl stop failed (exit {result.returncode}):\n"
                        f"{result.stdout}\n{result.stderr}\n"
                        f"--- log tail ---\n{_tail(self.log_file)}"
                    )
        finally:
            self._running = False
            self._port = None
            self._cleanup_dir()

    def _cleanup_dir(self) -> None:
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- connection info ----------------------------------------------------

    def url(self, dbname: str) -> str:
        """SQLAlchemy URL (psycopg 3 driver) for ``dbname``."""
        return f"postgresql+psycopg://{SUPERUSER}@{HOST}:{self.port}/{dbname}"

    def dsn(self, dbname: str) -> str:
        """Plain libpq DSN for ``dbname``."""
        return f"host={HOST} port={self.port} user={SUPERUSER} dbname={dbname}"

    def admin_dsn(self) -> str:
        """Plain libpq DSN to the ``postgres`` maintenance database."""
        return self.dsn("postgres")

    # -- database management ------------------------------------------------

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create database ``name`` (optionally from ``template``); return its URL.

        A template database must have no open connections while it is copied.
        """
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            query = sql.SQL("{} TEMPLATE {}").format(query, sql.Identifier(template))
        with psycopg.connect(self.admin_dsn(), autocommit=True) as conn:
            conn.execute(query)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` if it exists, terminating its connections."""
        query = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        with psycopg.connect(self.admin_dsn(), autocommit=True) as conn:
            conn.execute(query)
