"""Alarms to an MQTT broker: QoS 1, not retained, one topic level per zone and device.

paho's network thread does the I/O and reconnects with a growing delay. A message
published while the broker is away is kept in paho's outgoing queue and sent at the
reconnect, as is one sent but not yet acknowledged; the queue is bounded, and what does
not fit is counted, logged and shown in the status, never dropped silently.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from vigila.alarms import wire
from vigila.alarms.models import MqttStatus
from vigila.core.timeutil import utcnow
from vigila.recording import redact_url

log = logging.getLogger(__name__)
QOS = 1


def parse_mqtt_url(url: str) -> tuple[str, int, bool]:
    """(host, port, tls) of mqtt://host[:port] or mqtts://host[:port]."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError(f"mqtt_url must be mqtt://host[:port] or mqtts://host[:port], "
                         f"not {redact_url(url)!r}")
    tls = scheme == "mqtts"
    return parts.hostname, parts.port or (8883 if tls else 1883), tls


class MqttPublisher:
    """One client for the installation's broker; `publish` never waits on the network."""

    def __init__(self, url: str, *, max_queued: int = 10_000, reconnect_min_s: int = 1,
                 reconnect_max_s: int = 30, keepalive_s: int = 30) -> None:
        self.host, self.port, tls = parse_mqtt_url(url)
        self.url = redact_url(url)
        self.max_queued = max_queued
        self.keepalive_s = keepalive_s
        client_id = f"vigila-{socket.gethostname()[:20]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=paho.MQTTv311, clean_session=True)
        parts = urlsplit(url)
        if parts.username:
            self.client.username_pw_set(unquote(parts.username),
                                        unquote(parts.password) if parts.password else None)
        if tls:
            self.client.tls_set()
        # Nothing to resend from an earlier life: every message is queued here until acked.
        self.client.max_queued_messages_set(max_queued)
        self.client.reconnect_delay_set(reconnect_min_s, reconnect_max_s)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self._lock = threading.Lock()
        self._pending: set[int] = set()  # message ids sent or queued, not yet acknowledged
        self._acked_early: set[int] = set()
        self._published = 0
        self._dropped = 0
        self._connected_since: datetime | None = None
        self._last_error: str | None = None
        self._started = False

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> MqttPublisher:
        if not self._started:
            self._started = True
            self.client.connect_async(self.host, self.port, keepalive=self.keepalive_s)
            self.client.loop_start()  # connects, and reconnects, with backoff
        return self

    def stop(self, flush_s: float = 2.0) -> None:
        """Give the queue a moment to drain, then disconnect; what is left is logged."""
        if not self._started:
            return
        deadline = time.monotonic() + flush_s
        while self.queued and self.connected and time.monotonic() < deadline:
            time.sleep(0.02)
        left = self.queued
        if left:
            log.error("MQTT %s: stopping with %d alarm message(s) not acknowledged",
                      self.url, left)
        self.client.disconnect()
        self.client.loop_stop()
        self._started = False

    # -- publishing ------------------------------------------------------------------------

    def publish(self, name: str, data: dict[str, Any]) -> bool:
        """Queue an event for the broker; False (counted and logged) when the buffer is full."""
        topic = wire.topic_for(name, data)
        # Not under our lock: paho calls on_publish holding its own, and takes it in publish.
        info = self.client.publish(topic, wire.body(data), qos=QOS, retain=False)
        with self._lock:
            if info.rc in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                # NO_CONN: paho keeps it and sends it at the reconnect. The broker may have
                # acknowledged it already, on paho's thread.
                if info.mid in self._acked_early:
                    self._acked_early.discard(info.mid)
                    self._published += 1
                else:
                    self._pending.add(info.mid)
                return True
            self._dropped += 1
            self._last_error = f"not queued: {paho.error_string(info.rc)}"
            queued = len(self._pending)
        log.error("MQTT %s: alarm %s on %s dropped: %s (%d queued)", self.url,
                  data.get("id"), topic, paho.error_string(info.rc), queued)
        return False

    # -- paho's callbacks, on its network thread --------------------------------------------

    def _on_connect(self, _client: paho.Client, _userdata: Any, _flags: Any,
                    reason: ReasonCode, _properties: Any) -> None:
        if reason.is_failure:
            with self._lock:
                self._last_error = f"connection refused: {reason}"
            log.warning("MQTT %s refused the connection: %s", self.url, reason)
            return
        with self._lock:
            self._connected_since = utcnow()
            queued = len(self._pending)
        log.info("MQTT connected to %s:%d; %d alarm message(s) to send", self.host, self.port,
                 queued)

    def _on_disconnect(self, _client: paho.Client, _userdata: Any, _flags: Any,
                       reason: ReasonCode, _properties: Any) -> None:
        with self._lock:
            was = self._connected_since is not None
            self._connected_since = None
            if reason.is_failure:
                self._last_error = f"disconnected: {reason}"
            queued = len(self._pending)
        if was and reason.is_failure:
            log.warning("MQTT %s lost (%s); %d alarm message(s) wait for the reconnect",
                        self.url, reason, queued)

    def _on_publish(self, _client: paho.Client, _userdata: Any, mid: int,
                    _reason: ReasonCode, _properties: Any) -> None:
        with self._lock:
            if mid in self._pending:
                self._pending.discard(mid)
                self._published += 1
            else:
                self._acked_early.add(mid)

    # -- status ----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self.client.is_connected()

    @property
    def queued(self) -> int:
        with self._lock:
            return len(self._pending)

    def status(self) -> MqttStatus:
        with self._lock:
            return MqttStatus(enabled=True, url=self.url, connected=self.client.is_connected(),
                              queued=len(self._pending), published=self._published,
                              dropped=self._dropped, last_error=self._last_error,
                              connected_since=self._connected_since)
