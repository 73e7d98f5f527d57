"""The ASGI application: `app.main:app` for servers, `create_app(settings)` for tests."""

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import anyio.to_thread
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from app.api.body_limit import BodySizeLimit
from app.api.docs import serve_docs
from app.api.errors import register_error_handlers
from app.api.main import api_routes
from app.api.observability import RequestObservability
from app.core.config import Settings, get_settings, mask_password
from app.core.logging import configure_logging
from app.core.metrics import Metrics
from app.core.security import TokenSigner
from app.db.capacity import warn_if_pools_exceed_database_limit
from app.db.database import Database, writer_queue_for
from app.db.migrations import head_revision
from app.db.session import create_db_engine

logger = logging.getLogger(__name__)


VERSION = "1.0.0"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    metrics = Metrics(VERSION, head_revision()) if settings.METRICS_ENABLED else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Built here, not at import: each gunicorn worker gets its own pool after the fork.
        engine = create_db_engine(settings)
        app.state.engine = engine
        app.state.database = Database(
            engine,
            threads=settings.DB_POOL_SIZE,
            wait_timeout=settings.DB_POOL_TIMEOUT,
            writers=writer_queue_for(engine),
        )
        flushing = None
        if metrics is not None:
            metrics.watch_pool(engine)
            flushing = asyncio.create_task(metrics.flush_while_serving())
        logger.info("database: %s", mask_password(engine.url))
        try:
            await anyio.to_thread.run_sync(warn_if_pools_exceed_database_limit, engine, settings)
            # What exists by now (modules, the app, its routes and schemas) lives as long as the
            # worker. Out of the cyclic collector's reach, it no longer makes each full collection
            # a long pause under load: the p99 latency drops (docs/performance.md).
            gc.freeze()
            yield
        finally:
            gc.unfreeze()
            if flushing is not None:
                flushing.cancel()
                # Its last flush: what the worker counted since the one before.
                await asyncio.gather(flushing, return_exceptions=True)
            app.state.database.close()
            engine.dispose()

    docs = settings.DOCS_ENABLED
    app = FastAPI(
        title="Recipe API",
        version=VERSION,
        lifespan=lifespan,
        routes=api_routes(with_metrics=metrics is not None),
        # FastAPI's own doc pages load their assets from third-party hosts; `serve_docs` below
        # serves the same pages from files shipped with the app.
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
        # FastAPI's native OpenTelemetry looks for configured providers on every request, at a
        # measurable cost (docs/performance.md); the app ships no OpenTelemetry SDK.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.tokens = TokenSigner(
        settings.signing_key, timedelta(minutes=settings.ACCESS_TOKEN_EXPIRE_MINUTES)
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.MAX_BODY_SIZE)
    if settings.CORS_ORIGINS:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.CORS_ORIGINS,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    if docs:
        serve_docs(app, docs_url="/docs", redoc_url="/redoc")
    register_error_handlers(app)
    # Added last, so outermost: the request id is set before anything else runs, and the log
    # line and metrics see every answer, the 413s and CORS preflights included.
    app.add_middleware(RequestObservability, metrics=metrics)
    return app


def _create_default_app() -> FastAPI:
    settings = get_settings()
    configure_logging(settings.LOG_LEVEL, settings.LOG_FORMAT)
    # /health/ready reads the revision through Alembic, which logs its context and plugins.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return create_app(settings)


app = _create_default_app()
