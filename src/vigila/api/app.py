"""The HTTP application: settings and database in, thin routers over the capabilities."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import swagger_ui
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from vigila import __version__
from vigila.access import Authenticator, hasher
from vigila.alarms import AlarmDispatcher
from vigila.api import problems
from vigila.api.deps import Installation
from vigila.api.middleware import BodyLimit, Metrics
from vigila.api.routes_alarms import router as alarms_router
from vigila.api.routes_anpr import router as anpr_router
from vigila.api.routes_audit import router as audit_router
from vigila.api.routes_auth import router as auth_router
from vigila.api.routes_evidence import router as evidence_router
from vigila.api.routes_forwarding import router as forwarding_router
from vigila.api.routes_hotlists import router as hotlists_router
from vigila.api.routes_planning import router as planning_router
from vigila.api.routes_playback import router as playback_router
from vigila.api.routes_reads import router as reads_router
from vigila.api.routes_recording import router as recording_router
from vigila.api.routes_registry import router as registry_router
from vigila.api.routes_system import device_counts
from vigila.api.routes_system import router as system_router
from vigila.api.routes_transits import router as transits_router
from vigila.api.routes_users import router as users_router
from vigila.core import EventBus, Settings
from vigila.reads import Ingest, forwarding
from vigila.reads.service import ReadsService
from vigila.recording import RecordingService
from vigila.store import Database, upgrade

log = logging.getLogger(__name__)


class _DeviceGauge(Collector):
    def __init__(self, inst: Installation) -> None:
        self.inst = inst

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily("vigila_devices", "registered devices",
                                   labels=["kind", "status"])
        for (kind, status), n in device_counts(self.inst).items():
            family.add_metric([kind, status], n)
        yield family


def _docs(app: FastAPI) -> None:
    """Swagger UI from the swagger-ui-py package, so the docs work with no internet."""
    static = Path(swagger_ui.__file__).parent / "static"
    app.mount("/api/docs/static", StaticFiles(directory=static), name="docs-static")

    @app.get("/api/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/api/openapi.json", title="Vigila — API",
            swagger_js_url="/api/docs/static/swagger-ui-bundle.js",
            swagger_css_url="/api/docs/static/swagger-ui.css",
            swagger_favicon_url="/api/docs/static/favicon-32x32.png")


def settle_heap() -> None:
    """Tune the cyclic garbage collector for a server process, once it is set up.

    It walked the ~200,000 objects of the loaded modules and the app again and again under
    ingest (a batch of 1,000 reads makes tens of thousands of short-lived objects): 20-25 %
    of a read's CPU. What exists at start lives as long as the process, so it is set aside
    (gc.freeze), and young objects are collected less often. Not for the tests' processes,
    which build an app per test: each freeze would keep that test's objects for good.
    Threads also hand the GIL over sooner.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 10)
    # A thread that gave up the GIL around a database call waits for it to be handed back,
    # by default up to 5 ms while another thread computes: on SQLite the thread that holds
    # the one writer lock waits so after every statement. 1 ms: batched ingest 9,020 and
    # 9,989 -> 10,566 and 10,380 reads/s, alternated (docs/BENCHMARKS.md).
    sys.setswitchinterval(0.001)


def create_app(settings: Settings, db: Database | None = None, *, migrate: bool = True,
               record: bool = False) -> FastAPI:
    """The API; with `record`, this process also runs the recording service."""
    db = db or Database(settings.database_url)
    if migrate:
        upgrade(db)
    registry = CollectorRegistry()
    bus = EventBus()
    inst = Installation(settings=settings, db=db, auth=Authenticator(db, settings),
                        hasher=hasher(settings), bus=bus, metrics=registry,
                        alarms=AlarmDispatcher(settings, db, bus, metrics=registry),
                        ingest=Ingest(db, settings, bus, enqueue=forwarding.enqueue))
    registry.register(_DeviceGauge(inst))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        service = RecordingService(db, settings, inst.bus).start() if record else None
        app.state.recording = service
        inst.alarms.start()
        # The hotlists before the first read: an alarm must not wait seconds for their
        # load. If the database is not there yet, the first read loads them instead.
        try:
            await asyncio.to_thread(inst.ingest.load)
        except Exception:
            log.exception("hotlists not loaded at start: the first read will load them")
        # Minimisation is the law, not an option: every API process runs it (it is
        # idempotent), and forwards upstream when VIGILA_FORWARD_URL is set.
        reads = app.state.reads = ReadsService(db, settings).start()
        try:
            yield
        finally:
            reads.stop()
            inst.alarms.stop()
            if service is not None:
                service.stop()
            db.dispose()

    app = FastAPI(
        title="Vigila",
        version=__version__,
        description="Videosorveglianza urbana e lettura targhe — API. "
                    "Every endpoint but /api/health and /api/auth/login needs a session; "
                    "this document and /api/docs are public. "
                    "Reading personal data needs the headers Vigila-Purpose and Vigila-Reference.",
        openapi_url="/api/openapi.json",
        docs_url=None,  # served below from local files
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.vigila = inst
    _docs(app)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = problems.document(get_openapi(
                title=app.title, version=app.version, description=app.description,
                routes=app.routes))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    problems.install(app)
    for router in (system_router, auth_router, registry_router, users_router, audit_router,
                   planning_router, recording_router, evidence_router, playback_router,
                   hotlists_router, reads_router, alarms_router, transits_router,
                   forwarding_router, anpr_router):
        app.include_router(router)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(Metrics, registry=registry)
    return app
