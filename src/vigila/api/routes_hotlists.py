"""Hotlists over HTTP: thin calls into vigila.hotlists."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import StringConstraints
from starlette.concurrency import run_in_threadpool

from vigila import hotlists
from vigila.access import Permission, Principal
from vigila.api.deps import Consultation, Installation, consultation, installation, principal
from vigila.core import FieldError, UnsupportedMediaType
from vigila.core.pagination import Page
from vigila.core.text import NoNul
from vigila.hotlists import (
    EntryIn,
    FileFormat,
    Hotlist,
    HotlistEntry,
    HotlistImportReport,
    HotlistIn,
    HotlistPatch,
    ImportMode,
)

router = APIRouter(prefix="/api/hotlists", tags=["hotlists"])
Limit = Annotated[int, Query(ge=1, le=1000)]
Id = Annotated[str, StringConstraints(max_length=64), NoNul]
PlateParam = Annotated[str, StringConstraints(min_length=1, max_length=64), NoNul]


@router.get("", response_model=list[Hotlist])
def list_hotlists(who: Principal = Depends(principal),
                  inst: Installation = Depends(installation)) -> list[Hotlist]:
    with inst.db.read() as conn:
        return hotlists.list_hotlists(conn, who)


@router.post("", response_model=Hotlist, status_code=201)
def create_hotlist(body: HotlistIn, who: Principal = Depends(principal),
                   inst: Installation = Depends(installation)) -> Hotlist:
    with inst.db.write() as conn:
        return hotlists.create_hotlist(conn, who, body)


@router.get("/{hotlist_id}", response_model=Hotlist)
def get_hotlist(hotlist_id: Id, who: Principal = Depends(principal),
                inst: Installation = Depends(installation)) -> Hotlist:
    with inst.db.read() as conn:
        return hotlists.get_hotlist(conn, who, hotlist_id)


@router.patch("/{hotlist_id}", response_model=Hotlist)
def update_hotlist(hotlist_id: Id, body: HotlistPatch, who: Principal = Depends(principal),
                   inst: Installation = Depends(installation)) -> Hotlist:
    with inst.db.write() as conn:
        return hotlists.update_hotlist(conn, who, hotlist_id, body)


@router.get("/{hotlist_id}/entries", response_model=Page[HotlistEntry],
            summary="A list's entries, in plate order (personal data: purpose, audited)")
def list_entries(hotlist_id: Id, cursor: str | None = None, limit: Limit = 100,
                 plate: PlateParam | None = Query(default=None, description="only this plate"),
                 c: Consultation = Depends(consultation(Permission.PERSONAL_READ)),
                 inst: Installation = Depends(installation)) -> Page[HotlistEntry]:
    with inst.db.write() as conn:
        return hotlists.list_entries(conn, c.who, c.why, hotlist_id, cursor, limit, plate)


@router.post("/{hotlist_id}/entries", response_model=HotlistEntry, status_code=201)
def add_entry(hotlist_id: Id, body: EntryIn, who: Principal = Depends(principal),
              inst: Installation = Depends(installation)) -> HotlistEntry:
    with inst.db.write() as conn:
        return hotlists.add_entry(conn, who, hotlist_id, body)


@router.delete("/{hotlist_id}/entries/{plate}", status_code=204, response_class=Response)
def remove_entry(hotlist_id: Id, plate: PlateParam, who: Principal = Depends(principal),
                 inst: Installation = Depends(installation)) -> Response:
    with inst.db.write() as conn:
        hotlists.remove_entry(conn, who, hotlist_id, plate)
    return Response(status_code=204)


_IMPORT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "text/plain": {"schema": {"type": "string"}},
        },
    }
}


@router.post("/{hotlist_id}/import", response_model=HotlistImportReport,
             openapi_extra=_IMPORT_BODY,
             responses={422: {"description": "rows with errors; nothing imported"}})
async def import_entries(
    hotlist_id: Id,
    request: Request,
    mode: ImportMode = Query(default=ImportMode.MERGE,
                             description="merge into the list, or replace it with the file"),
    good_rows: bool = Query(default=False, description="import the valid rows, report the rest"),
    who: Principal = Depends(principal),
    inst: Installation = Depends(installation),
) -> HotlistImportReport:
    """Import entries from CSV (text/csv, a header naming at least `plate`) or TXT
    (text/plain, one plate per line), UTF-8; all or nothing unless good_rows."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in ("text/csv", "application/csv"):
        fmt = FileFormat.CSV
    elif ctype == "text/plain":
        fmt = FileFormat.TXT
    else:
        why = f"{ctype or 'none'} is not accepted"
        raise UnsupportedMediaType("send text/csv or text/plain",
                                   [FieldError("content-type", why)])
    raw = await request.body()
    report = await run_in_threadpool(_import, inst, who, hotlist_id, raw, fmt, mode, good_rows)
    if not report.committed:
        raise hotlists.rejected(report)
    return report


def _import(inst: Installation, who: Principal, hotlist_id: str, raw: bytes, fmt: FileFormat,
            mode: ImportMode, good_rows: bool) -> HotlistImportReport:
    with inst.db.write() as conn:
        return hotlists.import_entries(conn, who, hotlist_id, raw, fmt=fmt, mode=mode,
                                       good_rows=good_rows, source=f"http:{fmt.value}")
