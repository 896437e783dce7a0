"""The background work of plate reads in the API process: minimisation and forwarding.

Minimisation runs once at start (a server that was down for a day owes a purge) and then
every `purge_seconds`; the forwarder runs only when `VIGILA_FORWARD_URL` names an upstream.
A failed pass is logged and retried at the next tick: the database may be away a moment.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from vigila.core import Settings
from vigila.reads.forwarding import Forwarder
from vigila.reads.minimise import purge
from vigila.store import Database

log = logging.getLogger(__name__)


class ReadsService:
    def __init__(self, db: Database, settings: Settings, *, purge_seconds: float = 600) -> None:
        self.db = db
        self.settings = settings
        self.purge_seconds = purge_seconds
        self.forwarder = Forwarder(db, settings) if settings.forward_url else None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Set once the pass at start is over: rows written before it may be purged by it.
        self.first_pass_done = threading.Event()

    def start(self) -> ReadsService:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="vigila-minimise", daemon=True)
        self._thread.start()
        if self.forwarder is not None:
            self.forwarder.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self.forwarder is not None:
            self.forwarder.stop()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def __enter__(self) -> ReadsService:
        return self.start()

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                report = purge(self.db, self.settings)
                if report.total:
                    log.info("minimisation: %s", dict(report.deleted))
            except Exception:
                log.exception("minimisation: pass failed")
            self.first_pass_done.set()
            self._stop.wait(self.purge_seconds)
