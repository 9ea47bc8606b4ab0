"""Idle and slow-header connections cannot shut real requests out: against a real `python -m api`
on a loopback port, hundreds of idle sockets and sockets that never finish their request head
are held open while a client asks /v1/prices/latest, and every one of its requests is answered
200. Past API_MAX_CONNECTIONS, the longest-idle connection gives way to the new one; past
API_LIMIT_CONCURRENCY requests in flight, the answer is a JSON 503 with Retry-After."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from tests.conftest import REPO, free_port, stop_process, wait_until
from tests.integration.api_helpers import TradeRow, migrated, to_ms

pytestmark = pytest.mark.integration

IDLE = 300
SLOW = 100


@contextmanager
def running_api(database: dict[str, str], **settings: str) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "API_HOST": "127.0.0.1", "API_PORT": str(port), "API_DATABASE_URL": database["api"]}
    env |= {f"API_{name.upper()}": value for name, value in settings.items()}
    process = subprocess.Popen([sys.executable, "-m", "api"], cwd=REPO, env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(url), 30, "the api to answer")
        yield url
    finally:
        stop_process(process, 10)


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def hold_connections(stack: ExitStack, port: int, idle: int, slow: int) -> list[socket.socket]:
    sockets = []
    for index in range(idle + slow):
        connection = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=10))
        if index >= idle:  # a request head begun, never finished
            connection.sendall(b"GET /v1/prices/latest HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        sockets.append(connection)
    return sockets


def statuses(url: str, requests: int) -> list[int]:
    answered = []
    for _ in range(requests):
        # A new connection each time, as a client behind the idle crowd would open.
        with httpx.Client(timeout=10) as client:
            answered.append(client.get(f"{url}/v1/prices/latest", params={"symbol": "BTCUSDT"}).status_code)
    return answered


@pytest.mark.parametrize(
    "max_connections",
    [pytest.param(None, id="default-limits"), pytest.param("128", id="fewer-connections-than-idle-sockets")],
)
def test_idle_and_slow_header_connections_do_not_starve_requests(
    database: dict[str, str], max_connections: str | None
) -> None:
    trade_ms = to_ms(datetime(2025, 7, 3, tzinfo=UTC))
    migrated(database).trades([TradeRow("BTCUSDT", 1, Decimal("61928.31"), Decimal("0.01"), trade_ms, False)])
    limits = {"header_timeout_s": "60", "keep_alive_timeout_s": "60"}
    if max_connections is not None:
        limits["max_connections"] = max_connections
    with running_api(database, **limits) as url, ExitStack() as stack:
        hold_connections(stack, int(url.rsplit(":", 1)[1]), IDLE, SLOW)
        assert statuses(url, 40) == [200] * 40


def test_requests_over_the_in_flight_limit_get_a_json_503_with_retry_after(database: dict[str, str]) -> None:
    migrated(database)
    # One request in flight at most: a live price stream holds it while another request arrives.
    with (
        running_api(database, limit_concurrency="1") as url,
        httpx.Client(timeout=10) as client,
        client.stream("GET", f"{url}/v1/stream/prices") as stream,
    ):
        assert stream.status_code == 200
        for path, layout in (("/v1/prices/latest", "detail"), ("/api/v3/ticker/price", "code")):
            refused = client.get(f"{url}{path}")
            assert (refused.status_code, refused.headers.get("retry-after")) == (503, "1")
            assert layout in refused.json()
