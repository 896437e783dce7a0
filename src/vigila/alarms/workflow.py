"""The alarm workflow: list and read (personal data: a purpose, audited), acknowledge,
close with an outcome; and the webhooks where alarms are posted.

An alarm goes new -> acknowledged -> closed, each step once, by whom and when, audited.
Every read and change is kept inside the zones the user is granted: an alarm of another
zone answers as a missing one. Changes are announced on the bus by the caller after the
commit (`announce`), so that no channel tells of a change that was rolled back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from vigila.access import audit
from vigila.access.principal import Principal, Purpose
from vigila.access.roles import Permission
from vigila.alarms.models import AlarmClose, Webhook, WebhookIn, WebhookTarget
from vigila.core.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound
from vigila.core.events import Event, EventBus
from vigila.core.pagination import Page, check_limit, decode_cursor, encode_cursor
from vigila.core.timeutil import utcnow
from vigila.hotlists.tables import hotlists
from vigila.reads.models import ALARM_CHANGED_TOPIC, Alarm, AlarmEvent, AlarmState
from vigila.reads.tables import alarms, transits, webhooks
from vigila.registry.tables import devices, zones

REPLAY_MAX = 500  # a console that missed more re-lists


def _events() -> sa.Select[Any]:
    """Alarms with what the console shows beside them: the device, the list, the read."""
    return sa.select(
        alarms, devices.c.name.label("device_name"), devices.c.lat, devices.c.lon,
        transits.c.direction, transits.c.confidence, transits.c.received_at,
        hotlists.c.name.label("hotlist_name"),
    ).select_from(
        alarms.join(devices, devices.c.id == alarms.c.device_id)
        .join(transits, transits.c.id == alarms.c.transit_id)
        .join(hotlists, hotlists.c.id == alarms.c.hotlist_id))


def _event(row: Any) -> AlarmEvent:
    return AlarmEvent.model_validate(dict(row))


def _visible(conn: Connection, actor: Principal, alarm_id: int) -> AlarmEvent:
    row = conn.execute(_events().where(alarms.c.id == alarm_id,
                                       actor.zone_clause(alarms.c.zone_id))).mappings().first()
    if row is None:
        raise NotFound(f"no alarm {alarm_id}")
    return _event(row)


# --- reading -------------------------------------------------------------------------------

def list_alarms(conn: Connection, actor: Principal, purpose: Purpose, *,
                state: AlarmState | None = None, since: datetime | None = None,
                cursor: str | None = None, limit: int = 100) -> Page[AlarmEvent]:
    """Newest first, in the user's zones; the read is audited with its purpose."""
    actor.require(Permission.PERSONAL_READ)
    check_limit(limit)
    before = decode_cursor(cursor)
    if before is not None and not isinstance(before, int):
        raise InvalidInput.on("cursor", "not a cursor of the alarms")
    q = _events().where(actor.zone_clause(alarms.c.zone_id))
    if state is not None:
        q = q.where(alarms.c.state == state.value)
    if since is not None:
        q = q.where(alarms.c.created_at >= since)
    if before is not None:
        q = q.where(alarms.c.id < before)
    rows = list(conn.execute(q.order_by(alarms.c.id.desc()).limit(limit + 1)).mappings())
    items = [_event(r) for r in rows[:limit]]
    audit.record(conn, actor, "alarm.list", "alarms", purpose=purpose, detail={
        "state": state.value if state else None, "since": since.isoformat() if since else None,
        "cursor": cursor, "returned": len(items)})
    more = len(rows) > limit
    return Page(items=items, next_cursor=encode_cursor(items[-1].id) if more else None)


def get_alarm(conn: Connection, actor: Principal, purpose: Purpose, alarm_id: int) -> AlarmEvent:
    actor.require(Permission.PERSONAL_READ)
    alarm = _visible(conn, actor, alarm_id)
    audit.record(conn, actor, "alarm.read", f"alarm/{alarm_id}", purpose=purpose)
    return alarm


def raised_after(conn: Connection, actor: Principal, after_id: int,
                 limit: int = REPLAY_MAX) -> list[AlarmEvent]:
    """What a console missed since the last alarm it saw, oldest first, in its zones.

    Not audited here: it is part of a stream whose opening was audited with its purpose.
    """
    actor.require(Permission.PERSONAL_READ)
    q = _events().where(alarms.c.id > after_id, actor.zone_clause(alarms.c.zone_id))
    return [_event(r) for r in conn.execute(q.order_by(alarms.c.id).limit(limit)).mappings()]


# --- the workflow --------------------------------------------------------------------------

def acknowledge(conn: Connection, actor: Principal, alarm_id: int) -> AlarmEvent:
    """Someone in the control room has taken the alarm in hand."""
    actor.require(Permission.ALARMS_HANDLE)
    before = _visible(conn, actor, alarm_id)
    now = utcnow()
    # Conditional on the state, so that of two operators at once one wins and one is told.
    done = conn.execute(alarms.update().where(
        alarms.c.id == alarm_id, alarms.c.state == AlarmState.NEW.value,
    ).values(state=AlarmState.ACKNOWLEDGED.value, acknowledged_by=actor.user_id,
             acknowledged_at=now)).rowcount
    if done != 1:
        raise _wrong_state(before, "acknowledged", "it is not new")
    audit.record(conn, actor, "alarm.acknowledge", f"alarm/{alarm_id}",
                 detail={"from": before.state.value, "to": AlarmState.ACKNOWLEDGED.value})
    return _visible(conn, actor, alarm_id)


def close(conn: Connection, actor: Principal, alarm_id: int, data: AlarmClose) -> AlarmEvent:
    """How it ended; only an acknowledged alarm is closed, so both steps have a name."""
    actor.require(Permission.ALARMS_HANDLE)
    before = _visible(conn, actor, alarm_id)
    done = conn.execute(alarms.update().where(
        alarms.c.id == alarm_id, alarms.c.state == AlarmState.ACKNOWLEDGED.value,
    ).values(state=AlarmState.CLOSED.value, outcome=data.outcome.value, note=data.note or None,
             closed_by=actor.user_id, closed_at=utcnow())).rowcount
    if done != 1:
        raise _wrong_state(before, "closed", "acknowledge it first")
    audit.record(conn, actor, "alarm.close", f"alarm/{alarm_id}",
                 detail={"from": before.state.value, "to": AlarmState.CLOSED.value,
                         "outcome": data.outcome.value, "note": bool(data.note)})
    return _visible(conn, actor, alarm_id)


def _wrong_state(alarm: AlarmEvent, to: str, hint: str) -> Conflict:
    if alarm.state is AlarmState.CLOSED:
        hint = "it is closed"
    elif alarm.state is AlarmState.ACKNOWLEDGED and to == "acknowledged":
        hint = "it was acknowledged already"
    return Conflict(f"alarm {alarm.id} is {alarm.state.value}: it cannot be {to} ({hint})",
                    [FieldError("state", f"is {alarm.state.value}")])


def announce(bus: EventBus, alarm: Alarm) -> None:
    """Tell the channels of a change; call it after the commit."""
    payload = Alarm.model_validate(alarm.model_dump()).model_dump(mode="json")
    bus.publish(Event(ALARM_CHANGED_TOPIC, payload))


# --- webhooks ------------------------------------------------------------------------------

def _webhook(row: Any) -> Webhook:
    return Webhook.model_validate({**dict(row), "has_secret": bool(row.secret)})


def list_webhooks(conn: Connection, actor: Principal) -> list[Webhook]:
    """An administrator of some zones sees the webhooks of those zones only."""
    actor.require(Permission.ALARMS_MANAGE)
    rows = conn.execute(sa.select(webhooks).where(actor.zone_clause(webhooks.c.zone_id))
                        .order_by(webhooks.c.id)).mappings()
    return [_webhook(r) for r in rows]


def create_webhook(conn: Connection, actor: Principal, data: WebhookIn) -> Webhook:
    actor.require(Permission.ALARMS_MANAGE)
    if data.zone_id is None:
        if not actor.all_zones:
            raise Forbidden("a webhook for every zone needs a grant of every zone: name a zone")
    elif not actor.sees_zone(data.zone_id) or conn.execute(
            sa.select(zones.c.id).where(zones.c.id == data.zone_id)).first() is None:
        raise InvalidInput.on("zone_id", f"no zone {data.zone_id!r}")
    values = {**data.model_dump(), "created_at": utcnow()}
    key = conn.execute(webhooks.insert().values(**values)).inserted_primary_key
    assert key is not None
    webhook_id = key[0]
    audit.record(conn, actor, "webhook.create", f"webhook/{webhook_id}", detail={
        "url": data.url, "zone_id": data.zone_id, "min_priority": data.min_priority,
        "active": data.active, "secret": data.secret is not None})
    row = conn.execute(sa.select(webhooks).where(webhooks.c.id == webhook_id)).mappings().one()
    return _webhook(row)


def delete_webhook(conn: Connection, actor: Principal, webhook_id: int) -> None:
    actor.require(Permission.ALARMS_MANAGE)
    row = conn.execute(sa.select(webhooks).where(
        webhooks.c.id == webhook_id, actor.zone_clause(webhooks.c.zone_id))).mappings().first()
    if row is None:
        raise NotFound(f"no webhook {webhook_id}")
    conn.execute(webhooks.delete().where(webhooks.c.id == webhook_id))
    audit.record(conn, actor, "webhook.delete", f"webhook/{webhook_id}",
                 detail={"url": row.url, "zone_id": row.zone_id})


def matching_webhooks(conn: Connection, zone_id: str | None,
                      priority: int) -> list[WebhookTarget]:
    """The active webhooks an alarm of this zone and priority goes to (secrets included)."""
    zone: sa.ColumnElement[bool] = webhooks.c.zone_id.is_(None)
    if zone_id is not None:
        zone = sa.or_(zone, webhooks.c.zone_id == zone_id)
    rows = conn.execute(sa.select(webhooks.c.id, webhooks.c.url, webhooks.c.secret).where(
        webhooks.c.active.is_(True), webhooks.c.min_priority <= priority, zone,
    ).order_by(webhooks.c.id)).mappings()
    return [WebhookTarget.model_validate(dict(r)) for r in rows]
