"""Alarms POSTed to the webhooks an administrator set up, signed, retried, audited.

Each event becomes one delivery per active webhook whose zone and minimum priority match.
A delivery is one JSON body, the same bytes on every attempt, with headers:

- `Vigila-Event`: `alarm` or `alarm-changed`;
- `Vigila-Delivery`: an id that stays the same across retries, for the receiver to de-duplicate;
- `Vigila-Signature: sha256=<hex>`: the HMAC-SHA256 of the body under the webhook's secret,
  when it has one.

A few worker threads take deliveries whose time has come; a failed attempt (an error, a
timeout, an answer other than 2xx) is put back with a growing delay rather than slept on,
so a receiver that is down holds up nobody else. Each delivery, made or given up, is a
transfer of personal data to a third party: it is audited with the recipient.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import logging
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from vigila import __version__
from vigila.access import audit
from vigila.alarms import wire
from vigila.alarms.models import WebhookStatus, WebhookTarget
from vigila.alarms.workflow import matching_webhooks
from vigila.store import Database

log = logging.getLogger(__name__)
RETRY_DELAYS_S = (1.0, 2.0, 4.0, 8.0)  # five attempts over about fifteen seconds


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class _Event:
    name: str
    data: dict[str, Any]


@dataclass
class _Delivery:
    target: WebhookTarget
    name: str
    alarm_id: int | None
    body: bytes
    delivery_id: str
    attempt: int = 1


class WebhookSender:
    def __init__(self, db: Database, *, workers: int = 4, timeout_s: float = 5.0,
                 retry_delays: Sequence[float] = RETRY_DELAYS_S, max_queued: int = 10_000) -> None:
        self.db = db
        self.workers = workers
        self.timeout_s = timeout_s
        self.retry_delays = tuple(retry_delays)  # one retry per delay
        self.max_queued = max_queued
        self._due: list[tuple[float, int, _Event | _Delivery]] = []
        self._order = itertools.count()
        self._cv = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self._delivered = self._retried = self._failed = 0

    def start(self) -> WebhookSender:
        with self._cv:
            self._stopping = False
        for n in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"vigila-webhooks-{n}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        with self._cv:
            self._stopping = True
            left = len(self._due)
            self._cv.notify_all()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()
        if left:
            log.error("webhooks: stopping with %d event(s) or delivery(ies) not done", left)

    def submit(self, name: str, data: dict[str, Any]) -> bool:
        """Queue an event for every matching webhook; never blocks."""
        return self._put(time.monotonic(), _Event(name, data))

    def status(self) -> WebhookStatus:
        with self._cv:
            return WebhookStatus(queued=len(self._due), delivered=self._delivered,
                                 retried=self._retried, failed=self._failed)

    # -- the workers -----------------------------------------------------------------------

    def _put(self, due: float, job: _Event | _Delivery) -> bool:
        with self._cv:
            if len(self._due) >= self.max_queued:
                self._failed += 1
                full = True
            else:
                heapq.heappush(self._due, (due, next(self._order), job))
                self._cv.notify()
                full = False
        if full:
            log.error("webhooks: queue full (%d); alarm %s not posted", self.max_queued,
                      _alarm_id(job))
        return not full

    def _next(self) -> _Event | _Delivery | None:
        with self._cv:
            while True:
                if self._stopping:
                    return None
                now = time.monotonic()
                if self._due and self._due[0][0] <= now:
                    return heapq.heappop(self._due)[2]
                self._cv.wait(self._due[0][0] - now if self._due else None)

    def _work(self) -> None:
        with httpx.Client(timeout=self.timeout_s, trust_env=False,
                          follow_redirects=False) as http:
            while (job := self._next()) is not None:
                try:
                    if isinstance(job, _Event):
                        self._expand(job)
                    else:
                        self._deliver(http, job)
                except Exception:
                    log.exception("webhooks: unexpected error on alarm %s", _alarm_id(job))

    def _expand(self, event: _Event) -> None:
        data = event.data
        zone = data.get("zone_id")
        priority = data.get("priority")
        with self.db.read() as conn:
            targets = matching_webhooks(conn, zone if isinstance(zone, str) else None,
                                        priority if isinstance(priority, int) else 0)
        body = wire.body(data)
        now = time.monotonic()
        for target in targets:
            self._put(now, _Delivery(target, event.name, wire.alarm_id_of(data), body,
                                     str(uuid.uuid4())))

    def _deliver(self, http: httpx.Client, job: _Delivery) -> None:
        headers = {"Content-Type": "application/json", "User-Agent": f"Vigila/{__version__}",
                   "Vigila-Event": job.name, "Vigila-Delivery": job.delivery_id}
        if job.target.secret:
            headers["Vigila-Signature"] = signature(job.target.secret, job.body)
        status: int | None = None
        try:
            r = http.post(job.target.url, content=job.body, headers=headers)
            status = r.status_code
            error = None if r.is_success else f"answered {r.status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        if error is None:
            self._audit(job, "ok", status, None)  # counted once on the record
            with self._cv:
                self._delivered += 1
            return
        if job.attempt <= len(self.retry_delays):
            delay = self.retry_delays[job.attempt - 1]
            log.warning("webhook %d (%s): attempt %d for alarm %s failed (%s); again in %.1f s",
                        job.target.id, job.target.url, job.attempt, job.alarm_id, error, delay)
            with self._cv:
                self._retried += 1
            job.attempt += 1
            self._put(time.monotonic() + delay, job)
            return
        log.error("webhook %d (%s): alarm %s not delivered after %d attempts: %s",
                  job.target.id, job.target.url, job.alarm_id, job.attempt, error)
        self._audit(job, "failed", status, error)
        with self._cv:
            self._failed += 1

    def _audit(self, job: _Delivery, outcome: str, status: int | None,
               error: str | None) -> None:
        resource = f"alarm/{job.alarm_id}" if job.alarm_id is not None else "alarms"
        try:
            with self.db.write() as conn:
                audit.record(conn, None, "alarm.webhook.deliver", resource, outcome=outcome,
                             recipient=job.target.url[:256],
                             detail={"webhook": job.target.id, "event": job.name,
                                     "delivery": job.delivery_id, "attempts": job.attempt,
                                     "status": status, "error": error})
        except Exception:
            log.exception("webhooks: could not audit delivery %s", job.delivery_id)


def _alarm_id(job: _Event | _Delivery) -> int | None:
    return wire.alarm_id_of(job.data) if isinstance(job, _Event) else job.alarm_id
