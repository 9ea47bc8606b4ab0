"""The contract between a service without an HTTP api and what watches it: one port per service,
`GET /metrics` in Prometheus's text format for Prometheus, `GET /health` for the container health
check (200 healthy, 503 not, a JSON body saying why either way).

Served from a thread of its own, so a scrape never waits for the service's loop, and the loop
never waits for a scrape: the health function reads what the loop last recorded.
"""

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Health:
    """Healthy, or not with every reason why (each a short sentence naming the measure and its limit)."""

    problems: list[str] = field(default_factory=list)
    details: dict[str, float] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return not self.problems


class MetricsServer:
    """`/metrics` and `/health` on host:port until `stop()`."""

    def __init__(self, host: str, port: int, registry: CollectorRegistry, health: Callable[[], Health]) -> None:
        handler = _handler(registry, health)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics-http", daemon=True)

    def start(self) -> "MetricsServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def start_metrics_server(
    host: str, port: int, registry: CollectorRegistry, health: Callable[[], Health]
) -> MetricsServer | None:
    """Starts the server; None (and an error line) if the port cannot be bound: the service goes
    on without metrics rather than stop reading market data, and its health check, which asks this
    port, reports it unhealthy, which is the truth."""
    try:
        server = MetricsServer(host, port, registry, health).start()
    except OSError as error:
        log.error(
            "metrics port unavailable: no /metrics or /health", extra={"host": host, "port": port, "error": str(error)}
        )
        return None
    log.info("metrics and health served", extra={"host": host, "port": server.port})
    return server


def _handler(registry: CollectorRegistry, health: Callable[[], Health]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(registry))
            elif path == "/health":
                state = health()
                body = {"status": "ok" if state.healthy else "unhealthy", "problems": state.problems, **state.details}
                self._send(200 if state.healthy else 503, "application/json", json.dumps(body).encode())
            else:
                self._send(404, "text/plain; charset=utf-8", b"not found: try /metrics or /health\n")

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # a line per scrape would drown the service's own log

    return Handler
