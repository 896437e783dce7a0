"""Errors as application/problem+json (RFC 9457), naming the field at fault."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException

from vigila.core.errors import TooManyAttempts, Unauthenticated, VigilaError

log = logging.getLogger(__name__)
MEDIA = "application/problem+json"


PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details; `field` names the first input at fault",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "field": {"type": ["string", "null"]},
        "errors": {"type": "array", "items": {
            "type": "object", "required": ["field", "message"],
            "properties": {"field": {"type": "string"}, "message": {"type": "string"},
                           "row": {"type": ["integer", "null"]}}}},
    },
}


def document(spec: dict[str, Any]) -> dict[str, Any]:
    """Say in the OpenAPI document what every error really is: problem+json, any 4xx/5xx.

    FastAPI documents only its own 422 as application/json; a client generated from that
    would misread every error.
    """
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    ref = {"$ref": "#/components/schemas/Problem"}
    for ops in spec.get("paths", {}).values():
        for op in ops.values():
            responses = op.setdefault("responses", {})
            for code in [c for c in responses if c.startswith(("4", "5"))]:
                responses[code]["content"] = {MEDIA: {"schema": ref}}
            for code, text in (("4XX", "refused: the problem names the field at fault"),
                               ("5XX", "server or database failure")):
                responses[code] = {"description": text, "content": {MEDIA: {"schema": ref}}}
    return spec


def problem(status: int, title: str, detail: str, slug: str,
            errors: list[dict[str, Any]] | None = None,
            headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": f"https://vigila.example/problems/{slug}", "title": title,
                            "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
        body["field"] = errors[0].get("field")
    return JSONResponse(body, status_code=status, media_type=MEDIA, headers=headers)


def _loc(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(p) for p in loc)


def install(app: FastAPI) -> None:
    @app.exception_handler(VigilaError)
    async def _domain(_: Request, exc: VigilaError) -> JSONResponse:
        headers = None
        if isinstance(exc, TooManyAttempts):
            headers = {"Retry-After": str(exc.retry_after_s)}
        elif isinstance(exc, Unauthenticated):
            headers = {"WWW-Authenticate": "Bearer"}
        return problem(exc.status, exc.title, exc.detail, exc.slug,
                       [e.as_dict() for e in exc.errors], headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": _loc(e["loc"]), "message": e["msg"]} for e in exc.errors()]
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            return problem(400, "Malformed JSON", "the request body is not valid JSON",
                           "malformed-json", errors)
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problem(422, "Invalid input", detail, "invalid-input", errors)

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail), str(exc.detail),
                       "http-" + str(exc.status_code),
                       headers=dict(exc.headers) if exc.headers else None)

    @app.exception_handler(IntegrityError)
    async def _integrity(_: Request, exc: IntegrityError) -> JSONResponse:
        # The services check references first; this is the net under a race.
        log.warning("integrity error: %s", exc.orig)
        return problem(409, "Conflict", "the change conflicts with stored data", "conflict")

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return problem(500, "Internal error", "an unexpected error; it has been logged",
                       "internal")
