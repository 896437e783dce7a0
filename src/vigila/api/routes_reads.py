"""Plate reads in: the generic JSON ingest and the vendor adapters' endpoints.

The body of POST /api/reads is parsed here read by read, not by FastAPI as one model: in
a batch a bad read is reported at its index and the good ones beside it are stored.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from vigila.access import Permission, Principal
from vigila.api.deps import Installation, installation, principal
from vigila.core import FieldError, InvalidInput, UnsupportedMediaType
from vigila.reads import (
    Ingest,
    IngestReport,
    RawImage,
    RawRead,
    ReadBatch,
    ReadIn,
    ReadResult,
)
from vigila.reads.adapters import parse_hikvision, parse_tattile
from vigila.registry.models import DeviceId

router = APIRouter(prefix="/api/reads", tags=["reads"])


def ingest_of(inst: Installation = Depends(installation)) -> Ingest:
    return inst.ingest


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic schema with its $defs substituted: the OpenAPI document has no room here."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(defs[ref.removeprefix("#/$defs/")])
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    out: dict[str, Any] = walk(schema)
    return out


_READ = _inline(ReadIn.model_json_schema())
_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"oneOf": [
                _READ, _inline(ReadBatch.model_json_schema())]}},
            "multipart/form-data": {"schema": {
                "type": "object", "required": ["read"],
                "properties": {
                    "read": {"type": "string",
                             "description": "one read as JSON, its images as the parts below"},
                    "plate_image": {"type": "string", "format": "binary"},
                    "context_image": {"type": "string", "format": "binary"}}}},
        },
    }
}


@router.post("", openapi_extra=_BODY, status_code=200,
             responses={200: {"model": IngestReport,
                              "description": "a batch: what became of each read; "
                                             "a single read already stored: its duplicate"},
                        201: {"model": ReadResult, "description": "a single read, stored"},
                        422: {"description": "a single read refused, the fields at fault"}})
async def post_reads(request: Request, who: Principal = Depends(principal),
                     ingest: Ingest = Depends(ingest_of)) -> Response:
    """Reads from a generic reader: one read (JSON or multipart with its images), or
    `{"reads": [...]}` of up to 10,000. Idempotent per device and `event_id`."""
    who.require(Permission.READS_INGEST)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        reads: list[RawRead | InvalidInput] = [await _multipart(request)]
        single = True
    elif ctype in ("application/json", ""):
        reads, single = _json_reads(await request.body())
    else:
        raise UnsupportedMediaType("send application/json or multipart/form-data",
                                   [FieldError("content-type", f"{ctype} is not accepted")])
    report = await run_in_threadpool(ingest.ingest, reads)
    if not single:
        for r in report.results:  # name each fault by its place in the batch
            if not r.errors:
                continue
            prefix = f"reads[{r.index}]"
            r.errors = [e if e["field"].startswith(prefix)
                        else {**e, "field": f"{prefix}.{e['field']}"} for e in r.errors]
        # pydantic's own JSON: a thousand results through model_dump and json.dumps cost
        # as much as validating them.
        return Response(report.model_dump_json(), media_type="application/json")
    result = report.results[0]
    if result.status == "rejected":
        errors = [FieldError(e["field"], e["message"]) for e in result.errors]
        if isinstance(reads[0], InvalidInput):
            raise reads[0]
        raise InvalidInput("; ".join(f"{e.field}: {e.message}" for e in errors), errors)
    return JSONResponse(result.model_dump(mode="json"),
                        status_code=201 if result.status == "stored" else 200)


@router.post("/hikvision/{device_id}", response_model=IngestReport,
             openapi_extra={"requestBody": {"required": True, "content": {
                 "multipart/form-data": {"schema": {"type": "string", "format": "binary"}},
                 "application/xml": {"schema": {"type": "string"}}}}})
async def post_hikvision(device_id: DeviceId, request: Request,
                         who: Principal = Depends(principal),
                         ingest: Ingest = Depends(ingest_of)) -> IngestReport:
    """A Hikvision ISAPI ANPR push (EventNotificationAlert, with its pictures), for the
    registry's reader `device_id`; heartbeats and other events store nothing."""
    who.require(Permission.READS_INGEST)
    body = await request.body()
    reads = parse_hikvision(body, request.headers.get("content-type", ""))
    return await run_in_threadpool(_vendor, ingest, reads, device_id)


@router.post("/tattile/{device_id}", response_model=IngestReport,
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/xml": {"schema": {"type": "string"}}}}})
async def post_tattile(device_id: DeviceId, request: Request,
                       who: Principal = Depends(principal),
                       ingest: Ingest = Depends(ingest_of)) -> IngestReport:
    """A Tattile transit message (XML, images inline as base64), for the registry's
    reader `device_id`."""
    who.require(Permission.READS_INGEST)
    reads = parse_tattile(await request.body())
    return await run_in_threadpool(_vendor, ingest, reads, device_id)


def _vendor(ingest: Ingest, reads: Sequence[RawRead | InvalidInput], device_id: str
            ) -> IngestReport:
    report = ingest.ingest(list(reads), device_id=device_id)
    if reads and report.rejected == len(reads):  # nothing stored: say why, as an error
        errors = [FieldError(e["field"], e["message"])
                  for r in report.results for e in r.errors]
        raise InvalidInput("; ".join(f"{e.field}: {e.message}" for e in errors[:5]), errors)
    return report


def _json_reads(raw: bytes) -> tuple[list[RawRead | InvalidInput], bool]:
    # The usual body, all of it valid, parsed and validated in one pass by pydantic-core
    # (about a third of the per-read cost of json.loads plus a validation per read); any
    # fault sends the body the long way, which says which read is wrong and keeps the rest.
    try:
        if raw.lstrip()[:1] == b"{" and b'"reads"' in raw:
            batch = ReadBatch.model_validate_json(raw)
            return [_raw(r, _images(r)) for r in batch.reads], False
        return [_raw(one := ReadIn.model_validate_json(raw), _images(one))], True
    except (ValidationError, InvalidInput):
        pass
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):  # also integers past Python's digit limit
        raise InvalidInput.on("body", "not valid JSON") from None
    if isinstance(body, dict) and "reads" in body:
        items = body["reads"]
        if set(body) != {"reads"}:
            raise InvalidInput.on("body", "a batch is {\"reads\": [...]} and nothing else")
        if not isinstance(items, list) or not 1 <= len(items) <= 10_000:
            raise InvalidInput.on("reads", "a list of 1 to 10,000 reads")
        return [_read(item, f"reads[{i}]") for i, item in enumerate(items)], False
    if isinstance(body, dict):
        return [_read(body, "")], True
    raise InvalidInput.on("body", "one read (an object) or {\"reads\": [...]}")


def _read(item: Any, where: str) -> RawRead | InvalidInput:
    try:
        read = ReadIn.model_validate(item)
        images = _images(read)
    except ValidationError as exc:
        errors = [FieldError(_field(where, e["loc"]), e["msg"]) for e in exc.errors()]
        return InvalidInput("; ".join(f"{e.field}: {e.message}" for e in errors[:5]), errors)
    except InvalidInput as exc:
        return InvalidInput(exc.detail, [FieldError(_field(where, (e.field,)), e.message)
                                         for e in exc.errors])
    return _raw(read, images)


def _images(read: ReadIn) -> list[RawImage]:
    return [RawImage(i.kind, _b64(i.data, f"images[{n}].data"), i.content_type)
            for n, i in enumerate(read.images)]


def _raw(read: ReadIn, images: list[RawImage]) -> RawRead:
    return RawRead(plate=read.plate, device=read.device, time=read.time,
                   event_id=read.event_id, confidence=read.confidence,
                   direction=read.direction.value if read.direction else None,
                   lane=read.lane, country=read.country.upper() if read.country else None,
                   images=images)


def _field(where: str, loc: tuple[Any, ...]) -> str:
    path = ".".join(str(p) for p in loc)
    return f"{where}.{path}" if where and path else where or path or "read"


def _b64(data: str, field: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput.on(field, "not valid base64") from None


async def _multipart(request: Request) -> RawRead | InvalidInput:
    try:
        form = await request.form(max_files=2, max_fields=4)
    except Exception as exc:  # python-multipart's errors have no common base worth naming
        raise InvalidInput.on("body", f"malformed multipart body: {exc}") from None
    text = form.get("read")
    if not isinstance(text, str):
        return InvalidInput.on("read", "a form field with the read as JSON is required")
    try:
        item = json.loads(text)
    except (ValueError, RecursionError):
        return InvalidInput.on("read", "not valid JSON")
    parsed = _read(item, "read")
    if isinstance(parsed, InvalidInput):
        return parsed
    images = list(parsed.images)
    for kind in ("plate", "context"):
        part = form.get(f"{kind}_image")
        if isinstance(part, UploadFile):
            images.append(RawImage(kind, await part.read(), part.content_type))
    return RawRead(parsed.plate, parsed.device, parsed.time, parsed.event_id,
                   parsed.confidence, parsed.direction, parsed.lane, parsed.country, images)
