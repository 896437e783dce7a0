"""Alarms over HTTP: the list, the live stream for the console, the workflow, webhooks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from vigila import alarms
from vigila.access import Permission, Principal, audit
from vigila.alarms import AlarmClose, DeliveryStatus, Webhook, WebhookIn
from vigila.alarms.models import MAX_ID
from vigila.alarms.sse import Frame, frame
from vigila.api.deps import (
    Consultation,
    Installation,
    bearer_token,
    client_of,
    consultation,
    installation,
    principal,
)
from vigila.core import Unauthenticated
from vigila.core.pagination import Page
from vigila.core.timeutil import utc_instant
from vigila.reads.models import AlarmEvent, AlarmState

router = APIRouter(tags=["alarms"])
AlarmId = Annotated[int, Path(ge=1, le=MAX_ID)]
WebhookId = Annotated[int, Path(ge=1, le=MAX_ID)]
Limit = Annotated[int, Query(ge=1, le=1000)]
Reading = consultation(Permission.PERSONAL_READ)

_STREAM_DOC: dict[int | str, dict[str, Any]] = {200: {
    "description": "text/event-stream: events `alarm` (an AlarmEvent, its id the alarm's) "
                   "and `alarm-changed` (an Alarm)",
    "content": {"text/event-stream": {"schema": {"type": "string"}}}}}


@router.get("/api/alarms", response_model=Page[AlarmEvent],
            summary="Alarms in your zones, newest first (purpose; audited)")
def list_alarms(state: AlarmState | None = None,
                since: Annotated[datetime | None, Query(
                    description="raised at or after this instant")] = None,
                cursor: Annotated[str | None, Query(max_length=512)] = None,
                limit: Limit = 100, c: Consultation = Depends(Reading),
                inst: Installation = Depends(installation)) -> Page[AlarmEvent]:
    since = since and utc_instant(since, "since", naive_is_utc=True)
    with inst.db.write() as conn:
        return alarms.list_alarms(conn, c.who, c.why, state=state, since=since,
                                  cursor=cursor, limit=limit)


# Out of the OpenAPI document: the sweeps that call every documented GET (tests/api) read
# each answer to its end, and this one has none. docs/API.md documents it.
@router.get("/api/alarms/stream", response_class=StreamingResponse, responses=_STREAM_DOC,
            include_in_schema=False,
            summary="Alarms as they are raised and handled, in your zones (purpose; audited)")
def stream_alarms(
    request: Request,
    last_event_id: Annotated[int | None, Header(
        ge=0, le=MAX_ID, description="the last alarm id received: those raised since are "
                                     "sent first (up to 500)")] = None,
    c: Consultation = Depends(Reading), token: str = Depends(bearer_token),
    inst: Installation = Depends(installation),
) -> StreamingResponse:
    """Server-sent events; a comment every 15 s keeps the connection open. The stream
    follows your session: it ends when the session does, and follows your zones."""
    with inst.db.write() as conn:
        audit.record(conn, c.who, "alarm.stream", "alarms/stream", purpose=c.why,
                     detail={"last_event_id": last_event_id})
    client = client_of(request)

    async def replay() -> Sequence[Frame]:
        return await run_in_threadpool(_missed, inst, c.who, last_event_id or 0)

    async def refresh() -> Principal | None:
        try:
            return await run_in_threadpool(inst.auth.resolve, token, client)
        except Unauthenticated:
            return None

    body = inst.alarms.hub.stream(c.who, replay=replay if last_event_id is not None else None,
                                  refresh=refresh)
    return StreamingResponse(body, media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def _missed(inst: Installation, who: Principal, after: int) -> list[Frame]:
    with inst.db.read() as conn:
        missed = alarms.raised_after(conn, who, after)
    return [frame(alarms.RAISED, a.model_dump(mode="json")) for a in missed]


@router.get("/api/alarms/delivery", response_model=DeliveryStatus,
            summary="How alarms are getting out: MQTT, webhooks, consoles")
def delivery_status(who: Principal = Depends(principal),
                    inst: Installation = Depends(installation)) -> DeliveryStatus:
    who.require(Permission.ALARMS_MANAGE)
    return inst.alarms.status()


@router.get("/api/alarms/{alarm_id}", response_model=AlarmEvent,
            summary="One alarm (purpose; audited); outside your zones it is not found")
def get_alarm(alarm_id: AlarmId, c: Consultation = Depends(Reading),
              inst: Installation = Depends(installation)) -> AlarmEvent:
    with inst.db.write() as conn:
        return alarms.get_alarm(conn, c.who, c.why, alarm_id)


@router.post("/api/alarms/{alarm_id}/acknowledge", response_model=AlarmEvent,
             summary="Take a new alarm in hand")
def acknowledge(alarm_id: AlarmId, who: Principal = Depends(principal),
                inst: Installation = Depends(installation)) -> AlarmEvent:
    with inst.db.write() as conn:
        alarm = alarms.acknowledge(conn, who, alarm_id)
    alarms.announce(inst.bus, alarm)
    return alarm


@router.post("/api/alarms/{alarm_id}/close", response_model=AlarmEvent,
             summary="Close an acknowledged alarm with its outcome")
def close(alarm_id: AlarmId, body: AlarmClose, who: Principal = Depends(principal),
          inst: Installation = Depends(installation)) -> AlarmEvent:
    with inst.db.write() as conn:
        alarm = alarms.close(conn, who, alarm_id, body)
    alarms.announce(inst.bus, alarm)
    return alarm


@router.get("/api/webhooks", response_model=list[Webhook], tags=["webhooks"])
def list_webhooks(who: Principal = Depends(principal),
                  inst: Installation = Depends(installation)) -> list[Webhook]:
    with inst.db.read() as conn:
        return alarms.list_webhooks(conn, who)


@router.post("/api/webhooks", response_model=Webhook, status_code=201, tags=["webhooks"])
def create_webhook(body: WebhookIn, who: Principal = Depends(principal),
                   inst: Installation = Depends(installation)) -> Webhook:
    """Alarms (`Vigila-Event: alarm`) and their changes (`alarm-changed`) are POSTed as JSON."""
    with inst.db.write() as conn:
        return alarms.create_webhook(conn, who, body)


@router.delete("/api/webhooks/{webhook_id}", status_code=204, response_class=Response,
               tags=["webhooks"])
def delete_webhook(webhook_id: WebhookId, who: Principal = Depends(principal),
                   inst: Installation = Depends(installation)) -> Response:
    with inst.db.write() as conn:
        alarms.delete_webhook(conn, who, webhook_id)
    return Response(status_code=204)
