"""The application factory: middleware, error handlers, routers, and the in-process worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi_offline import FastAPIOffline

from highseas import __version__, metrics
from highseas.agents.endpoints import router as agents_router
from highseas.api_errors import install_error_handlers
from highseas.background import job_registry as app_job_registry
from highseas.batches.endpoints import downloads as downloads_router
from highseas.batches.endpoints import router as batches_router
from highseas.call_tasks.endpoints import router as call_tasks_router
from highseas.callbacks.endpoints import router as callbacks_router
from highseas.clock import set_service_zone
from highseas.components.endpoints import router as components_router
from highseas.config import Settings
from highseas.crypto.endpoints import router as encryption_router
from highseas.customers.endpoints import router as customers_router
from highseas.db import Database
from highseas.envelope import Envelope, ok
from highseas.errors import ServiceUnavailable
from highseas.imports.endpoints import router as imports_router
from highseas.jobs import Queue, Registry, Worker, notify
from highseas.jobs.queue import count_by_queue_and_state
from highseas.middleware import RequestContextMiddleware
from highseas.models import JobState
from highseas.users.endpoints import router as users_router

logger = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    *,
    database: Database | None = None,
    job_registry: Registry | None = None,
    run_worker: bool = False,
) -> FastAPI:
    """Build the app. ``database`` is owned by the caller when given (tests), else by the app.
    With ``run_worker`` the app runs a job worker in its own event loop (``highseas serve``)."""
    set_service_zone(settings.zone)
    db = database or Database(settings.database_url)
    registry = job_registry or app_job_registry(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            # Up until the in-process worker has drained: its last commits are announced too.
            async with notify.announcing(db):
                worker: Worker | None = None
                if run_worker:
                    worker = Worker.from_settings(db, settings, registry=registry)
                    worker_task = asyncio.create_task(worker.run(), name="highseas-worker")
                try:
                    yield
                finally:
                    if worker is not None:
                        worker.stop()
                        with contextlib.suppress(asyncio.CancelledError):
                            await worker_task
        finally:
            if database is None:
                await db.dispose()

    # The docs pages' scripts come from the package, not a CDN (pyproject.toml). Every body
    # is read as JSON whatever its Content-Type (request_input.JsonInputRoute).
    app = FastAPIOffline(
        title="highseas",
        version=__version__,
        summary="客户公海 API (Yunfu agent API compatible)",
        lifespan=lifespan,
    )
    app.state.db = db
    app.state.job_registry = registry
    app.state.settings = settings

    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
    # Routes are matched in order: the hot path (an accept) first.
    app.include_router(imports_router)
    app.include_router(agents_router)
    app.include_router(users_router)
    app.include_router(callbacks_router)
    app.include_router(encryption_router)
    app.include_router(components_router)
    app.include_router(customers_router)
    app.include_router(call_tasks_router)
    app.include_router(batches_router)
    app.include_router(downloads_router)
    _add_probes(app)
    if settings.metrics_enabled:
        _add_metrics(app)
    return app


def _add_probes(app: FastAPI) -> None:
    @app.get("/healthz", tags=["operations"], response_model=Envelope[dict[str, str]])
    async def healthz() -> Envelope[dict[str, str]]:
        """The process is up."""
        return ok({"process": "ok"}, "运行中")

    @app.get("/readyz", tags=["operations"], response_model=Envelope[dict[str, str]])
    async def readyz(request: Request) -> Envelope[dict[str, str]]:
        """The database is reachable."""
        database: Database = request.app.state.db
        try:
            await database.ping()
        except Exception as exc:
            logger.warning("readiness: database unreachable", exc_info=True)
            raise ServiceUnavailable("数据库不可用", reason="database_unavailable") from exc
        return ok({"database": "ok"}, "就绪")


def _add_metrics(app: FastAPI) -> None:
    # Outside the API schema and without a token, as scrapers expect: keep the port private
    # (docs/observability.md).
    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics(request: Request) -> Response:
        database: Database = request.app.state.db
        counts = dict.fromkeys(((q.value, s.value) for q in Queue for s in JobState), 0)
        try:
            async with database.transaction() as session:
                counts |= await count_by_queue_and_state(session)
        except Exception:
            # The process's own metrics still say what the outage looks like from here.
            logger.warning("metrics: cannot count jobs", exc_info=True)
            counts = {}
        body, content_type = metrics.exposition(counts, request.headers.get("accept", ""))
        return Response(body, media_type=content_type)
