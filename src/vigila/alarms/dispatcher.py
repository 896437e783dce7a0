"""From the bus to the channels: the console's streams, the MQTT broker, the webhooks.

The bus calls its handlers on the publisher's thread, which is the ingest's: the handler
here only puts the event on a queue. One thread takes it from there and hands it to each
channel, none of which waits on the network either (the hub schedules on the event loop,
paho queues for its own thread, the webhooks have their workers), so a slow or absent
receiver delays neither the ingest nor the other channels.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from vigila.alarms import wire
from vigila.alarms.models import DeliveryStatus, MqttStatus
from vigila.alarms.mqtt import MqttPublisher
from vigila.alarms.sse import AlarmHub
from vigila.alarms.webhooks import WebhookSender
from vigila.core.events import Event, EventBus
from vigila.core.settings import Settings
from vigila.store import Database

log = logging.getLogger(__name__)
TOPIC_PREFIX = "reads.alarm."  # ALARM_TOPIC and ALARM_CHANGED_TOPIC


class AlarmDispatcher:
    def __init__(self, settings: Settings, db: Database, bus: EventBus, *,
                 metrics: CollectorRegistry | None = None, max_queued: int = 10_000) -> None:
        self.bus = bus
        self.hub = AlarmHub()
        self.mqtt = MqttPublisher(settings.mqtt_url) if settings.mqtt_url else None
        self.webhooks = WebhookSender(db)
        self._inbox: queue.Queue[tuple[str, dict[str, Any]] | None] = \
            queue.Queue(max_queued)
        self._dropped = 0
        self._lock = threading.Lock()  # the bus calls from any thread
        self._thread: threading.Thread | None = None
        self._unsubscribe: Callable[[], None] | None = None
        if metrics is not None:
            metrics.register(_DeliveryMetrics(self))

    def start(self) -> AlarmDispatcher:
        if self._thread is not None:
            return self
        if self.mqtt is not None:
            self.mqtt.start()
        self.webhooks.start()
        self._thread = threading.Thread(target=self._run, name="vigila-alarms", daemon=True)
        self._thread.start()
        self._unsubscribe = self.bus.subscribe(TOPIC_PREFIX, self._on_event)
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._inbox.put(None)  # after whatever is queued: that is handed on first
        self._thread.join(10)
        self._thread = None
        self.hub.close()
        self.webhooks.stop()
        if self.mqtt is not None:
            self.mqtt.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None

    def _on_event(self, event: Event) -> None:
        name = wire.EVENT_NAMES.get(event.topic)
        if name is None:
            return
        try:
            self._inbox.put_nowait((name, event.data))
        except queue.Full:
            with self._lock:
                self._dropped += 1
            log.error("alarm %s not dispatched: %d events queued already",
                      event.data.get("id"), self._inbox.qsize())

    def _run(self) -> None:
        while (item := self._inbox.get()) is not None:
            name, data = item
            channels: list[tuple[str, Callable[[str, dict[str, Any]], object]]] = [
                ("console", self.hub.publish), ("webhooks", self.webhooks.submit)]
            if self.mqtt is not None:
                channels.insert(1, ("mqtt", self.mqtt.publish))
            for channel, send in channels:
                try:
                    send(name, data)
                except Exception:
                    log.exception("alarm %s: %s failed", data.get("id"), channel)

    def status(self) -> DeliveryStatus:
        return DeliveryStatus(
            running=self.running, queued=self._inbox.qsize(), dropped=self._dropped,
            mqtt=self.mqtt.status() if self.mqtt is not None else MqttStatus(enabled=False),
            webhooks=self.webhooks.status(), streams=self.hub.status())


class _DeliveryMetrics(Collector):
    """The status, for Prometheus: an alarm channel that is down must page someone."""

    def __init__(self, dispatcher: AlarmDispatcher) -> None:
        self.dispatcher = dispatcher

    def collect(self) -> Iterable[Metric]:
        s = self.dispatcher.status()
        queued = GaugeMetricFamily("vigila_alarm_queued", "alarm events waiting, per channel",
                                   labels=["channel"])
        queued.add_metric(["dispatcher"], s.queued)
        queued.add_metric(["mqtt"], s.mqtt.queued)
        queued.add_metric(["webhooks"], s.webhooks.queued)
        yield queued
        done = CounterMetricFamily("vigila_alarm_deliveries", "alarm events per channel and "
                                   "result", labels=["channel", "result"])
        done.add_metric(["dispatcher", "dropped"], s.dropped)
        done.add_metric(["mqtt", "published"], s.mqtt.published)
        done.add_metric(["mqtt", "dropped"], s.mqtt.dropped)
        done.add_metric(["webhooks", "delivered"], s.webhooks.delivered)
        done.add_metric(["webhooks", "retried"], s.webhooks.retried)
        done.add_metric(["webhooks", "failed"], s.webhooks.failed)
        done.add_metric(["console", "cut"], s.streams.cut)
        yield done
        yield GaugeMetricFamily("vigila_alarm_mqtt_connected", "1 when the MQTT broker is "
                                "connected (0 as well when none is configured)",
                                value=int(s.mqtt.connected))
        yield GaugeMetricFamily("vigila_alarm_streams", "open alarm streams (consoles)",
                                value=s.streams.subscribers)
