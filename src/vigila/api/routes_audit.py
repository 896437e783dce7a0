"""The audit trail over HTTP: read, export, verify. Nothing here can change it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from vigila.access import Permission, Principal, audit
from vigila.api.deps import Consultation, Installation, consultation, installation, principal
from vigila.core.errors import InvalidInput
from vigila.core.pagination import Page, decode_cursor, encode_cursor
from vigila.core.text import NoNul
from vigila.core.timeutil import utc_instant

router = APIRouter(prefix="/api/audit", tags=["audit"])
Text = Annotated[str, Query(max_length=128), NoNul]


def audit_query(actor: Text | None = None,
                action: Annotated[str | None, Query(max_length=64,
                                  description="exact, or a prefix ending in '.'"), NoNul] = None,
                since: datetime | None = None, until: datetime | None = None,
                cursor: str | None = None) -> audit.AuditQuery:
    after = decode_cursor(cursor) or 0
    if not isinstance(after, int):
        raise InvalidInput.on("cursor", "not a cursor of the audit log")
    return audit.AuditQuery(actor, action,
                            since and utc_instant(since, "since", naive_is_utc=True),
                            until and utc_instant(until, "until", naive_is_utc=True), after)


@router.get("", response_model=Page[dict[str, Any]])
def read_audit(q: audit.AuditQuery = Depends(audit_query),
               limit: Annotated[int, Query(ge=1, le=1000)] = 100,
               c: Consultation = Depends(consultation(Permission.AUDIT_READ)),
               inst: Installation = Depends(installation)) -> Page[dict[str, Any]]:
    """The log holds personal data of users and citizens: reading it is itself logged."""
    who, why = c.who, c.why
    with inst.db.write() as conn:
        items = audit.entries(conn, q, limit + 1)
        audit.record(conn, who, "audit.read", "audit", purpose=why, detail=_detail(q))
    more = len(items) > limit
    items = items[:limit]
    return Page(items=items, next_cursor=encode_cursor(items[-1]["seq"]) if more else None)


def _detail(q: audit.AuditQuery) -> dict[str, Any]:
    return {"actor": q.actor, "action": q.action,
            "since": q.since.isoformat() if q.since else None,
            "until": q.until.isoformat() if q.until else None}


@router.get("/export", response_class=StreamingResponse,
            responses={200: {"content": {"application/x-ndjson": {}}}})
def export_audit(q: audit.AuditQuery = Depends(audit_query),
                 recipient: Annotated[str | None, Query(max_length=256), NoNul] = None,
                 c: Consultation = Depends(consultation(Permission.AUDIT_READ)),
                 inst: Installation = Depends(installation)) -> StreamingResponse:
    """JSON Lines with hashes, for the data-protection officer; `vigila audit verify --file`."""
    who, why = c.who, c.why
    with inst.db.write() as conn:
        audit.record(conn, who, "audit.export", "audit", purpose=why, recipient=recipient,
                     detail=_detail(q))

    def lines() -> Iterator[str]:
        with inst.db.read() as conn:
            yield from audit.export_jsonl(conn, q)

    return StreamingResponse(lines(), media_type="application/x-ndjson",
                             headers={"Content-Disposition": 'attachment; filename="audit.jsonl"'})


class VerdictOut(BaseModel):
    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    broken_seq: int | None
    reason: str | None


@router.get("/verify", response_model=VerdictOut)
def verify_audit(who: Principal = Depends(principal),
                 inst: Installation = Depends(installation)) -> VerdictOut:
    who.require(Permission.AUDIT_VERIFY)
    with inst.db.write() as conn:
        verdict = audit.verify(conn)
        audit.record(conn, who, "audit.verify", "audit",
                     outcome="ok" if verdict.ok else "broken",
                     detail={"entries": verdict.entries, "broken_seq": verdict.broken_seq})
    return VerdictOut(**verdict.__dict__)
