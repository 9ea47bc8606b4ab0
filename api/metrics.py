"""Prometheus metrics and request limits, as one plain ASGI middleware (no per-request task or
body buffering, unlike Starlette's BaseHTTPMiddleware: it sits in front of every request).

With several worker processes (API_WORKERS) the metrics are shared: prometheus_client's
multiprocess mode, switched on by METRICS_DIR_VARIABLE in the environment before the worker
starts. Each worker writes its values to files there, and /metrics, whichever worker answers it,
adds up every worker's: counters and histograms over all workers that ever ran, the gauges over
the live ones.
"""

import glob
import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from urllib.parse import parse_qsl

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.queries.prices import latest_trades

log = logging.getLogger(__name__)

METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

# Latency buckets around the aims (5 ms, 10 ms, 100 ms) and up to the statement timeout.
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def shared_metrics_dir() -> str | None:
    """Where the workers' metrics files are, when the metrics are shared."""
    return os.environ.get(METRICS_DIR_VARIABLE)


def exposition_registry(registry: CollectorRegistry) -> CollectorRegistry:
    """What /metrics prints: this app's metrics, or every worker's when they are shared."""
    directory = shared_metrics_dir()
    if directory is None:
        return registry
    every_worker = CollectorRegistry()
    MultiProcessCollector(every_worker, directory)  # type: ignore[no-untyped-call]
    return every_worker


def forget_dead_workers(directory: str) -> None:
    """Drops the live gauges (requests in flight, pool use) of workers that died without saying
    so, so that a replaced worker's last values do not count forever."""
    for path in glob.glob(os.path.join(directory, "gauge_live*_*.db")):
        match = re.search(r"_(\d+)\.db$", path)
        if match is None:
            continue
        pid = int(match.group(1))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
        except PermissionError:
            pass  # alive, someone else's


def worker_stopped(directory: str) -> None:
    mark_process_dead(os.getpid(), directory)  # type: ignore[no-untyped-call]


class ApiMetrics:
    def __init__(self, registry: CollectorRegistry, pool_in_use: Callable[[], float]) -> None:
        self.requests = Counter(
            "api_requests", "HTTP requests answered", ["method", "route", "status"], registry=registry
        )
        self.duration = Histogram(
            "api_request_duration_seconds",
            "Time from request to the end of the response body",
            ["route"],
            buckets=_BUCKETS,
            registry=registry,
        )
        # Shared, the gauges add up the live workers' values.
        self.in_flight = Gauge(
            "api_requests_in_flight", "Requests being answered", registry=registry, multiprocess_mode="livesum"
        )
        self.pool = Gauge(
            "api_db_connections_in_use",
            "Database connections checked out of the pool",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.shared = shared_metrics_dir() is not None
        self._pool_in_use = pool_in_use
        if not self.shared:
            self.pool.set_function(pool_in_use)

    def note_pool(self) -> None:
        # Shared, another worker may answer the scrape and cannot ask this one's pool: the value
        # as of this worker's latest request is written down instead.
        if self.shared:
            self.pool.set(self._pool_in_use())


class MetricsAndLimits:
    """Counts and times every request by route template (bounded label values), and refuses
    requests over the size limits before any routing: a GET carries no body, and its query
    string at most `max_query_bytes`."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics, max_query_bytes: int, max_in_flight: int = 200) -> None:
        self.app = app
        self.metrics = metrics
        self.max_query_bytes = max_query_bytes
        # Requests being answered (not connections: an idle socket costs no work).
        self.max_in_flight = max_in_flight
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        refusal = self._refusal(scope)
        if refusal is None and self.in_flight >= self.max_in_flight:
            refusal = 503, "too many requests in flight, retry later", None

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_flight.inc()
        self.in_flight += 1
        try:
            if refusal is not None:
                status, detail, parameter = refusal
                binance = status == 503 and scope["path"].startswith("/api/")
                await _send_problem(send_and_note, status, detail, parameter, binance=binance)
            else:
                await self.app(scope, receive, send_and_note)
        finally:
            self.in_flight -= 1
            self.metrics.in_flight.dec()
            route = scope.get("route")
            template = getattr(route, "path", None) or ("refused" if refusal else "unmatched")
            self.metrics.requests.labels(scope["method"], template, str(status)).inc()
            self.metrics.duration.labels(template).observe(time.perf_counter() - started)
            self.metrics.note_pool()

    def _refusal(self, scope: Scope) -> tuple[int, str, str | None] | None:
        query = scope.get("query_string", b"")
        if len(query) > self.max_query_bytes:
            return 414, f"query string longer than {self.max_query_bytes} bytes", None
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.strip() not in (b"", b"0"):
                return 413, "this API takes no request body", None
            if name == b"transfer-encoding":
                return 413, "this API takes no request body", None
        if scope["path"].startswith("/v1/") and (repeated := _repeated_parameter(query)) is not None:
            # FastAPI would silently keep the last one.
            return 422, f"{repeated}: given more than once; give it once", repeated
        return None


def _repeated_parameter(query: bytes) -> str | None:
    seen: set[str] = set()
    for name, _value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if name in seen:
            return name
        seen.add(name)
    return None


async def _send_problem(
    send: Send, status: int, detail: str, parameter: str | None = None, binance: bool = False
) -> None:
    reason = detail.removeprefix(f"{parameter}: ")
    errors = [] if parameter is None else [{"parameter": parameter, "location": "query", "reason": reason}]
    # Binance's layout under /api/v3; -1008 is its "server is currently overloaded".
    body = orjson.dumps({"code": -1008, "msg": detail} if binance else {"detail": detail, "errors": errors})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 503:
        headers.append((b"retry-after", b"1"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        yield from self.families


async def store_exposition(engine: AsyncEngine) -> bytes:
    """What /metrics reads from the store itself at scrape time, the same whichever worker answers:
    whether PostgreSQL answers, and how old each symbol's newest stored trade is, so that a stall
    shows even when the producer and consumer look fine. One series per symbol with stored trades:
    bounded by the exchange's listing, and only on this gauge, never on a per-request series."""
    up = GaugeMetricFamily("api_store_up", "1 when PostgreSQL answered this scrape's question")
    age = GaugeMetricFamily(
        "api_newest_trade_age_seconds", "Now minus the trade time of the newest stored trade", labels=["symbol"]
    )
    try:
        async with engine.connect() as connection:
            newest = await latest_trades(connection)
    except Exception as error:  # the database away or slow: a metric says so, the scrape still answers
        log.warning(
            "store metrics unavailable", extra={"error": str(error).splitlines()[0] if str(error) else repr(error)}
        )
        up.add_metric([], 0.0)
    else:
        up.add_metric([], 1.0)
        now = datetime.now(UTC)
        for row in newest:
            age.add_metric([row["symbol"]], (now - row["trade_time"]).total_seconds())
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families([up, age]))
    return generate_latest(registry)
