"""The upstream forwarding queue, its dead letters, hourly transit counts, reads' retention.

Thin calls into vigila.reads.forwarding and vigila.reads.minimise. The queue is the
administrators' (forwarding.manage); dead letters hold plates, so reading them also needs a
purpose and is audited. Counts hold no plate: registry.read, scoped to the user's zones.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from vigila.access import Permission, Principal
from vigila.api.deps import Consultation, Installation, consultation, installation, principal
from vigila.core import InvalidInput
from vigila.core.pagination import Page
from vigila.core.text import NoNul
from vigila.core.timeutil import utc_instant, utcnow
from vigila.reads import forwarding, minimise
from vigila.reads.forwarding import DeadLetter, ForwardStatus, RequeueReport
from vigila.reads.minimise import RetentionRule, TransitCount

router = APIRouter(prefix="/api", tags=["forwarding"])
Limit = Annotated[int, Query(ge=1, le=1000)]
QueueId = Annotated[int, Field(ge=1, le=2**62)]
DeviceId = Annotated[str, StringConstraints(min_length=1, max_length=64), NoNul]


class ForwardingOverview(ForwardStatus):
    enabled: bool = Field(description="VIGILA_FORWARD_URL is set")
    format: str = Field(description="json | xml")


class RequeueIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: Annotated[list[QueueId], Field(min_length=1, max_length=1000)]


@router.get("/forwarding/status", response_model=ForwardingOverview,
            summary="The upstream queue: rows per state, the oldest pending (no plates)")
def forwarding_status(who: Principal = Depends(principal),
                      inst: Installation = Depends(installation)) -> ForwardingOverview:
    who.require(Permission.FORWARDING_MANAGE)
    with inst.db.read() as conn:
        state = forwarding.status(conn)
    return ForwardingOverview(**state.model_dump(), enabled=bool(inst.settings.forward_url),
                              format=inst.settings.forward_format)


@router.get("/forwarding/dead-letters", response_model=Page[DeadLetter],
            summary="Transits the national system refused or never got (plates: purpose, "
                    "audited)")
def list_dead_letters(cursor: Annotated[str | None, Query(max_length=200)] = None,
                      limit: Limit = 100,
                      c: Consultation = Depends(consultation(Permission.FORWARDING_MANAGE)),
                      inst: Installation = Depends(installation)) -> Page[DeadLetter]:
    with inst.db.write() as conn:
        return forwarding.dead_letters(conn, c.who, c.why, limit=limit, cursor=cursor)


@router.post("/forwarding/dead-letters/requeue", response_model=RequeueReport,
             summary="Send dead letters again (audited); ids not dead are left alone")
def requeue_dead_letters(body: RequeueIn, who: Principal = Depends(principal),
                         inst: Installation = Depends(installation)) -> RequeueReport:
    with inst.db.write() as conn:
        return RequeueReport(requeued=forwarding.requeue(conn, who, body.ids))


@router.get("/transit-counts", response_model=list[TransitCount],
            summary="Transits per reader and UTC hour (no plates), in your zones")
def transit_counts(
    device: Annotated[list[DeviceId] | None, Query(
        description="only these readers (repeat the parameter)")] = None,
    since: Annotated[datetime | None, Query(
        description="from this hour (default: 24 hours before until)")] = None,
    until: Annotated[datetime | None, Query(description="before this (default: now)")] = None,
    who: Principal = Depends(principal),
    inst: Installation = Depends(installation),
) -> list[TransitCount]:
    end = utc_instant(until, "until", naive_is_utc=True) if until is not None else utcnow()
    if since is not None:
        start = utc_instant(since, "since", naive_is_utc=True)
    else:
        try:
            start = end - timedelta(days=1)
        except OverflowError as exc:
            raise InvalidInput.on("until", "too early: give since as well") from exc
    with inst.db.read() as conn:
        return minimise.hourly_counts(conn, who, device, start, end)


@router.get("/retention/reads", response_model=list[RetentionRule],
            summary="How long plate reads are kept, per purpose, with the legal basis")
def reads_retention(_: Principal = Depends(principal),
                    inst: Installation = Depends(installation)) -> list[RetentionRule]:
    return minimise.retention_table(inst.settings)
