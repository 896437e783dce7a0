"""What every channel shares: the event names, the MQTT topics, the JSON bytes.

The same two facts go out on every channel, under one name each:

- `alarm`: a hit raised an alarm; the data is an `AlarmEvent`;
- `alarm-changed`: an alarm was acknowledged or closed; the data is an `Alarm`.

Server-sent events use the names as event types, webhooks send them in `Vigila-Event`,
and MQTT puts them in the topic: `vigila/alarms/<zone>/<device>` for `alarm`, and the same
with `/changed` after it for `alarm-changed`; `<zone>` is `no-zone` for a device in none.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from vigila.reads.models import ALARM_CHANGED_TOPIC, ALARM_TOPIC

RAISED = "alarm"
CHANGED = "alarm-changed"
EVENT_NAMES: dict[str, str] = {ALARM_TOPIC: RAISED, ALARM_CHANGED_TOPIC: CHANGED}

TOPIC_ROOT = "vigila/alarms"
NO_ZONE = "no-zone"
# Registry ids cannot hold these, but a topic level that did would subscribe others' alarms.
_NOT_IN_A_LEVEL = str.maketrans({"/": "_", "+": "_", "#": "_", "\x00": "_"})


def topic_for(name: str, data: Mapping[str, Any]) -> str:
    """The MQTT topic of an event: one level for the zone, one for the device."""
    zone = str(data.get("zone_id") or NO_ZONE).translate(_NOT_IN_A_LEVEL)
    device = str(data.get("device_id") or "unknown").translate(_NOT_IN_A_LEVEL)
    topic = f"{TOPIC_ROOT}/{zone}/{device}"
    return topic + "/changed" if name == CHANGED else topic


def body(data: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON, on one line (a server-sent event's data must not break lines)."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def alarm_id_of(data: Mapping[str, Any]) -> int | None:
    value = data.get("id")
    return value if isinstance(value, int) and not isinstance(value, bool) else None
