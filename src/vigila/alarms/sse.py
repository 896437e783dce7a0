"""Alarms to the console as server-sent events: a hub that fans out to every open stream.

`publish` may be called from any thread: each stream's queue lives on its event loop and
is fed through `call_soon_threadsafe`, so the publisher never waits on a client. A client
that falls `queue_size` events behind is cut off, not waited for; its browser reconnects
with Last-Event-ID and catches up from the database. A stream sees only its user's zones,
and its user is looked up again every `heartbeat_s`, so a logout, a role or a zone taken
away ends or narrows the stream within that time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from vigila.access.principal import Principal
from vigila.access.roles import Permission
from vigila.alarms import wire
from vigila.alarms.models import StreamStatus

log = logging.getLogger(__name__)

RETRY_MS = 3000


@dataclass(frozen=True)
class Frame:
    """One event in the text/event-stream format, with what the hub filters it by."""

    data: bytes
    alarm_id: int | None = None  # raised alarms only: their id is the stream's event id
    zone_id: str | None = None


KEEP_ALIVE = Frame(b": keep-alive\n\n")
Replay = Callable[[], Awaitable[Sequence[Frame]]]
Refresh = Callable[[], Awaitable[Principal | None]]  # None: the session is over


def frame(name: str, data: dict[str, Any]) -> Frame:
    alarm_id = wire.alarm_id_of(data) if name == wire.RAISED else None
    head = f"event: {name}\n" + (f"id: {alarm_id}\n" if alarm_id is not None else "")
    zone = data.get("zone_id")
    return Frame(head.encode() + b"data: " + wire.body(data) + b"\n\n", alarm_id,
                 zone if isinstance(zone, str) else None)


@dataclass(eq=False)
class _Subscriber:
    who: Principal
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[Frame | None]
    cut: bool = field(default=False)


class AlarmHub:
    def __init__(self, *, queue_size: int = 256, heartbeat_s: float = 15.0) -> None:
        self.queue_size = queue_size
        self.heartbeat_s = heartbeat_s
        self._subscribers: set[_Subscriber] = set()
        self._lock = threading.Lock()
        self._cut = 0

    # -- any thread ------------------------------------------------------------------------

    def publish(self, name: str, data: dict[str, Any]) -> None:
        """Offer an event to every stream whose user sees its zone; never blocks."""
        item = frame(name, data)
        with self._lock:
            targets = [s for s in self._subscribers if s.who.sees_zone(item.zone_id)]
        for sub in targets:
            try:
                sub.loop.call_soon_threadsafe(self._offer, sub, item)
            except RuntimeError:  # its loop is closed: the server is gone
                self._drop(sub)

    def close(self) -> None:
        """End every stream (the server is stopping)."""
        with self._lock:
            subs = list(self._subscribers)
        for sub in subs:
            with contextlib.suppress(RuntimeError):
                sub.loop.call_soon_threadsafe(self._offer, sub, None)

    def status(self) -> StreamStatus:
        with self._lock:
            return StreamStatus(subscribers=len(self._subscribers), cut=self._cut)

    def _drop(self, sub: _Subscriber) -> None:
        with self._lock:
            self._subscribers.discard(sub)

    # -- the event loop --------------------------------------------------------------------

    def _offer(self, sub: _Subscriber, item: Frame | None) -> None:
        if sub.cut:
            return
        try:
            sub.queue.put_nowait(item)
        except asyncio.QueueFull:
            sub.cut = True
            self._drop(sub)
            with self._lock:
                self._cut += 1
            log.warning("alarm stream of %s cut: %d events behind", sub.who.username,
                        self.queue_size)

    async def stream(self, who: Principal, *, replay: Replay | None = None,
                     refresh: Refresh | None = None) -> AsyncIterator[bytes]:
        """The body of one text/event-stream response, until the client or the server ends it.

        It subscribes first and replays after, so nothing raised in between is missed; an
        alarm in both is sent once.
        """
        sub = _Subscriber(who, asyncio.get_running_loop(), asyncio.Queue(self.queue_size))
        with self._lock:
            self._subscribers.add(sub)
        try:
            # First bytes out at once: the client knows it is subscribed.
            yield f"retry: {RETRY_MS}\n: vigila alarms\n\n".encode()
            replayed = 0
            if replay is not None:
                for past in await replay():
                    replayed = max(replayed, past.alarm_id or 0)
                    yield past.data
            checked = time.monotonic()
            while True:
                wait = max(0.0, checked + self.heartbeat_s - time.monotonic())
                try:
                    item = await asyncio.wait_for(sub.queue.get(), wait)
                except TimeoutError:
                    item = KEEP_ALIVE
                if item is None or sub.cut:
                    return
                if time.monotonic() - checked >= self.heartbeat_s:
                    checked = time.monotonic()
                    if refresh is not None:
                        now = await refresh()
                        if now is None or not now.can(Permission.PERSONAL_READ):
                            return
                        sub.who = now  # zones granted or taken away since it opened
                if item is not KEEP_ALIVE and (not sub.who.sees_zone(item.zone_id) or (
                        item.alarm_id is not None and item.alarm_id <= replayed)):
                    continue  # queued before a zone was taken away; or sent by the replay
                yield item.data
        finally:
            self._drop(sub)

