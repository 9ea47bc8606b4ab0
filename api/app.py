"""The FastAPI application factory."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from api.errors import Problem, install_error_handlers
from api.export_slots import ExportSlots
from api.head_requests import HeadAsGet
from api.live import PriceFeed, engine_poll
from api.metrics import ApiMetrics, MetricsAndLimits, forget_dead_workers, shared_metrics_dir, worker_stopped
from api.routes import (
    binance_compat,
    candles,
    coverage,
    export,
    health,
    live,
    prices,
    reconcile,
    stats,
    status,
    symbols,
    web,
)
from api.settings import ApiSettings

log = logging.getLogger(__name__)

DESCRIPTION = """Prices from Binance spot trades, as ingested through Kafka into PostgreSQL.

* Times: ISO 8601 (no zone means UTC) or epoch milliseconds; answers are UTC. Ranges are
  `[start, end)`.
* Prices and quantities are exact decimals, as JSON strings.
* Symbols are case-insensitive.
* Errors under /v1 are `{"detail": "...", "errors": [{"parameter", "location", "reason"}]}`;
  under /api/v3 they are Binance's `{"code": -1121, "msg": "Invalid symbol."}`.
"""


def async_database_url(url: str) -> str:
    """The api talks to PostgreSQL through asyncpg (async routes, no worker-thread hops, prepared
    statements); the URL may name any PostgreSQL driver, as the other services' URLs do."""
    return make_url(url).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def create_app(settings: ApiSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if metrics_dir is not None:
            forget_dead_workers(metrics_dir)
        yield
        if metrics_dir is not None:
            worker_stopped(metrics_dir)
        await engine.dispose()

    app = FastAPI(
        title="Binance prices",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        # Answers every route can give, whatever its parameters (api/metrics.py, api/errors.py).
        responses={
            413: {"model": Problem, "description": "a request body was sent: this API takes none"},
            414: {"model": Problem, "description": "the query string is over the size limit"},
            503: {"description": "the database is unavailable or the question took too long; retry"},
        },
    )
    engine = create_async_engine(
        async_database_url(settings.database_url),
        # One statement per question, each its own snapshot: no BEGIN/ROLLBACK round trips.
        isolation_level="AUTOCOMMIT",
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_s,
        # No pre-ping: it would cost a round trip per request. A connection the server dropped
        # fails one request with a 503, and SQLAlchemy then discards the whole stale pool.
        pool_pre_ping=False,
        connect_args={
            "ssl": settings.db_ssl,
            "server_settings": {
                "application_name": "binance-api",
                # The time limit of every statement; read-only as a second fence behind the
                # role's grants; UTC so that times come back as UTC.
                "statement_timeout": str(settings.statement_timeout_ms),
                "default_transaction_read_only": "on",
                "timezone": "UTC",
                # Every question here is short and index-driven; a JIT compile (50-150 ms, taken
                # when a plan's estimated cost is high, e.g. a generic plan) would dwarf it.
                "jit": "off",
                # A prepared statement over partitioned tables: under PostgreSQL's default (auto)
                # it is planned anew for every execution, each time over every partition (a custom
                # plan prunes at plan time and so looks cheaper than the generic plan), and the
                # planning costs more than the run. The generic plan, planned once per connection,
                # prunes the partitions when it runs (its parameters known at executor start, the
                # LATERAL ones per row): the same index probes (docs/benchmarks.md, "API at scale").
                "plan_cache_mode": settings.db_plan_cache_mode,
            },
        },
    )
    app.state.engine = engine
    app.state.settings = settings
    app.state.export_slots = ExportSlots(settings.export_max_concurrent)
    app.state.registry = CollectorRegistry()
    metrics_dir = shared_metrics_dir()
    metrics = ApiMetrics(app.state.registry, lambda: float(engine.sync_engine.pool.checkedout()))  # type: ignore[attr-defined]
    app.add_middleware(
        MetricsAndLimits,
        metrics=metrics,
        max_query_bytes=settings.max_query_string_bytes,
        max_in_flight=settings.limit_concurrency,
    )
    app.add_middleware(HeadAsGet)

    for module in (
        health,
        prices,
        symbols,
        candles,
        coverage,
        stats,
        export,
        reconcile,
        binance_compat,
        status,
        live,
        web,
    ):
        app.include_router(module.router)
    # The web page (/ and /static) and its live prices: one poller for all clients (api/live.py).
    app.mount("/static", web.static_files(), name="static")
    app.state.price_feed = PriceFeed(engine_poll(engine))
    install_error_handlers(app)
    fastapi_openapi = app.openapi
    app.openapi = lambda: _with_setting_maxima(fastapi_openapi(), settings)  # type: ignore[method-assign]
    return app


# Query parameters whose maximum is a setting: the OpenAPI document states this deployment's.
_SETTING_MAXIMA = {
    ("/v1/candles", "limit"): "candles_max_limit",
    ("/v1/indicators/sma", "limit"): "candles_max_limit",
    ("/v1/trades", "limit"): "export_json_max_limit",
}


def _with_setting_maxima(schema: dict[str, Any], settings: ApiSettings) -> dict[str, Any]:
    """FastAPI's document (built once and cached), with this deployment's maxima filled in."""
    for (path, name), setting in _SETTING_MAXIMA.items():
        for parameter in schema["paths"][path]["get"].get("parameters", []):
            if parameter["name"] == name:
                parameter["schema"]["maximum"] = getattr(settings, setting)
    return schema
