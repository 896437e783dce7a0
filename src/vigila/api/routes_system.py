"""Health (open to all) and Prometheus metrics."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from vigila import __version__
from vigila.access import Permission, Principal
from vigila.api.deps import Installation, installation, principal
from vigila.registry.tables import devices

router = APIRouter(prefix="/api", tags=["system"])


@router.get("/health", responses={503: {"description": "the database does not answer"}})
def health(inst: Installation = Depends(installation)) -> JSONResponse:
    db_ok = inst.db.ping()
    body: dict[str, Any] = {"status": "ok" if db_ok else "degraded", "version": __version__,
                            "database": inst.db.dialect if db_ok else "unreachable"}
    return JSONResponse(body, status_code=200 if db_ok else 503)


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}}})
def metrics(who: Principal = Depends(principal),
            inst: Installation = Depends(installation)) -> Response:
    who.require(Permission.METRICS_READ)
    return Response(generate_latest(inst.metrics), media_type=CONTENT_TYPE_LATEST)


def device_counts(inst: Installation) -> dict[tuple[str, str], int]:
    with inst.db.read() as conn:
        rows = conn.execute(sa.select(devices.c.kind, devices.c.status, sa.func.count())
                            .group_by(devices.c.kind, devices.c.status))
        return {(k, s): n for k, s, n in rows}
