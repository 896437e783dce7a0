"""Alarms: delivered within a second, then carried through their workflow.

- `AlarmDispatcher` listens on the bus for alarms raised by the ingest and for changes,
  and hands each to the console's streams (`AlarmHub`, server-sent events), the MQTT
  broker (`MqttPublisher`: `vigila/alarms/<zone>/<device>`) and the webhooks
  (`WebhookSender`: signed, retried, audited); none of them can hold up the ingest.
- The workflow: list and read alarms (personal data: a purpose, audited), acknowledge,
  close with an outcome (stopped, not found, misread), each audited and announced.
- Webhooks: where alarms are posted, set up by administrators.
"""

from vigila.alarms.dispatcher import AlarmDispatcher
from vigila.alarms.models import (
    AlarmClose,
    DeliveryStatus,
    MqttStatus,
    StreamStatus,
    Webhook,
    WebhookIn,
    WebhookStatus,
)
from vigila.alarms.mqtt import MqttPublisher
from vigila.alarms.sse import AlarmHub
from vigila.alarms.webhooks import WebhookSender, signature
from vigila.alarms.wire import CHANGED, NO_ZONE, RAISED, TOPIC_ROOT, topic_for
from vigila.alarms.workflow import (
    acknowledge,
    announce,
    close,
    create_webhook,
    delete_webhook,
    get_alarm,
    list_alarms,
    list_webhooks,
    raised_after,
)

__all__ = [
    "CHANGED",
    "NO_ZONE",
    "RAISED",
    "TOPIC_ROOT",
    "AlarmClose",
    "AlarmDispatcher",
    "AlarmHub",
    "DeliveryStatus",
    "MqttPublisher",
    "MqttStatus",
    "StreamStatus",
    "Webhook",
    "WebhookIn",
    "WebhookSender",
    "WebhookStatus",
    "acknowledge",
    "announce",
    "close",
    "create_webhook",
    "delete_webhook",
    "get_alarm",
    "list_alarms",
    "list_webhooks",
    "raised_after",
    "signature",
    "topic_for",
]
