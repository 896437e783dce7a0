"""In-process event bus: capabilities publish facts, consumers subscribe.

Publishing never fails the publisher: a consumer's error is logged and dropped,
so a broken console feed cannot stop a device from being registered.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from vigila.core.timeutil import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    topic: str  # dotted, e.g. "registry.device.created"
    data: dict[str, Any]
    at: datetime = field(default_factory=utcnow)


Handler = Callable[[Event], None]


class EventBus:
    def __init__(self) -> None:
        self._handlers: list[tuple[str, Handler]] = []
        self._lock = threading.Lock()

    def subscribe(self, prefix: str, handler: Handler) -> Callable[[], None]:
        """Receive events whose topic starts with prefix; returns an unsubscribe."""
        entry = (prefix, handler)
        with self._lock:
            self._handlers.append(entry)

        def unsubscribe() -> None:
            with self._lock:
                if entry in self._handlers:
                    self._handlers.remove(entry)

        return unsubscribe

    def publish(self, event: Event) -> None:
        with self._lock:
            targets = [h for p, h in self._handlers if event.topic.startswith(p)]
        for handler in targets:
            try:
                handler(event)
            except Exception:
                log.exception("event handler failed for %s", event.topic)
