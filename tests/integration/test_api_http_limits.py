"""The api's limits on a request head, on a real `python -m api` process on a loopback port, from
raw sockets: a head over API_MAX_HEADER_BYTES is refused (431, or 414 for a long target) without
the process growing, a head slower than API_HEADER_TIMEOUT_S is cut off (408), an idle keep-alive
connection is closed after API_KEEP_ALIVE_TIMEOUT_S, and ordinary requests are answered as before.

None of this reaches the database: /health answers without it, so no stack is needed.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, free_port, stop_process, wait_until

pytestmark = pytest.mark.integration

MAX_HEADER_BYTES = 16 * 1024  # the default, which these tests rely on
HEADER_TIMEOUT_S = 1.0
KEEP_ALIVE_TIMEOUT_S = 1
# A timer fires on time, but a busy 2-core box may be slow to show it.
LATE_S = 3.0


@dataclass
class Api:
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def connect(self, timeout_s: float = 10.0) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout_s)

    def peak_rss_kib(self) -> int:
        """VmHWM: the most memory the process has ever held resident."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise AssertionError("no VmHWM in /proc/<pid>/status")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    port = free_port()
    log_path = tmp_path_factory.mktemp("api") / "api.log"
    env = {
        **os.environ,
        "API_HOST": "127.0.0.1",
        "API_PORT": str(port),
        # Never connected to: these requests don't reach the database.
        "API_DATABASE_URL": "postgresql+psycopg2://binance_api@127.0.0.1:9/none",
        "API_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
        "API_KEEP_ALIVE_TIMEOUT_S": str(KEEP_ALIVE_TIMEOUT_S),
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "api"], cwd=REPO, env=env, stdout=log, stderr=log)
    running = Api(port, process, log_path)
    try:
        wait_until(lambda: exchange(running, request()).startswith(b"HTTP/1.1 200"), 30, "the api to answer")
        yield running
    finally:
        stop_process(process, 10)


def request(path: str = "/health", headers: dict[str, str] | None = None, close: bool = True) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_until_closed(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a reset closes it too: what a
    server that closes with a request unread sends to data that keeps coming)."""
    received = b""
    try:
        while chunk := connection.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def exchange(api: Api, data: bytes) -> bytes:
    with api.connect() as connection:
        connection.sendall(data)
        return read_until_closed(connection)


def status_line(response: bytes) -> bytes:
    return response.split(b"\r\n", 1)[0]


# --- ordinary requests ----------------------------------------------------------------------------


def test_ordinary_requests_and_heads_just_under_the_limit_are_answered(api: Api) -> None:
    assert status_line(exchange(api, request())) == b"HTTP/1.1 200 OK"
    # Browsers' heads are 1-2 KB; cookies and tokens can make them much larger, up to the limit.
    near_limit = request(headers={"X-Large": "a" * (MAX_HEADER_BYTES - 200)})
    assert len(near_limit) < MAX_HEADER_BYTES
    assert status_line(exchange(api, near_limit)) == b"HTTP/1.1 200 OK"
    # Keep-alive: two requests on one connection, each with its own head limits.
    with api.connect() as connection:
        connection.sendall(request(close=False))
        first = connection.recv(65536)
        connection.sendall(request())
        second = read_until_closed(connection)
    assert status_line(first) == b"HTTP/1.1 200 OK"
    assert status_line(second) == b"HTTP/1.1 200 OK"


# --- size -----------------------------------------------------------------------------------------


def test_a_head_over_the_size_limit_is_refused_with_431_and_a_long_target_with_414(api: Api) -> None:
    cases = {
        "one large header": request(headers={"X-Large": "a" * MAX_HEADER_BYTES}),
        "many small headers": request(headers={f"X-Field-{n}": "b" * 100 for n in range(200)}),
    }
    for name, data in cases.items():
        response = exchange(api, data)  # returns once the server closed the connection
        assert status_line(response) == b"HTTP/1.1 431 Request Header Fields Too Large", name
        assert b"connection: close" in response.lower(), name
        assert b'"detail":"request line and headers longer than 16384 bytes"' in response, name
    long_target = exchange(api, request(path="/health?x=" + "c" * MAX_HEADER_BYTES))
    assert status_line(long_target) == b"HTTP/1.1 414 Request-URI Too Long"
    # A header arriving in pieces is refused once the unfinished head is over the limit.
    with api.connect() as connection:
        head = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Large: "
        connection.sendall(head)
        sent = len(head)
        while sent <= MAX_HEADER_BYTES:
            connection.sendall(b"d" * 2048)
            sent += 2048
            time.sleep(0.01)
        assert status_line(read_until_closed(connection)) == b"HTTP/1.1 431 Request Header Fields Too Large"
    assert "request head over the size limit" in api.log()
    assert status_line(exchange(api, request())) == b"HTTP/1.1 200 OK"


def test_a_10_mb_header_is_cut_off_without_the_process_growing(api: Api) -> None:
    peak_before = api.peak_rss_kib()
    sent = 0
    with api.connect() as connection:
        connection.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Huge: ")
        chunk = b"e" * 65536
        try:
            while sent < 10 * 1024 * 1024:
                connection.sendall(chunk)
                sent += len(chunk)
        except (ConnectionResetError, BrokenPipeError):
            pass  # the server closed with the rest unread: the kernel answers further data with a reset
        response = read_until_closed(connection)
    # Unbounded, httptools would have held all of it (as joined copies): 10 MB and more.
    grown_kib = api.peak_rss_kib() - peak_before
    assert grown_kib < 4 * 1024, f"the api's peak memory grew by {grown_kib} KiB"
    assert response == b"" or status_line(response) == b"HTTP/1.1 431 Request Header Fields Too Large"
    assert sent < 10 * 1024 * 1024 or response, "the server read the whole 10 MB head"
    assert status_line(exchange(api, request())) == b"HTTP/1.1 200 OK"


# --- time -----------------------------------------------------------------------------------------


def trickle(api: Api, head: bytes, byte_every_s: float) -> tuple[bytes, float]:
    """Sends `head`, then one more header byte every `byte_every_s` (never finishing the head), until
    the server closes; returns what it sent back and when it closed, in seconds after connecting."""
    with api.connect() as connection:
        opened = time.monotonic()
        connection.sendall(head)
        received = b""
        while time.monotonic() - opened < HEADER_TIMEOUT_S + LATE_S + 5:
            readable, _, _ = select.select([connection], [], [], byte_every_s)
            if readable:
                chunk = connection.recv(65536)
                if not chunk:
                    return received, time.monotonic() - opened
                received += chunk
                continue
            try:
                connection.sendall(b"f")
            except (ConnectionResetError, BrokenPipeError):
                return received, time.monotonic() - opened
    raise AssertionError("the slow client was never disconnected")


def test_a_head_slower_than_the_timeout_is_cut_off_with_408(api: Api) -> None:
    # Slowloris: a byte every 0.1 s keeps the connection busy, but the head never completes.
    response, closed_after = trickle(api, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ", 0.1)
    assert HEADER_TIMEOUT_S * 0.95 <= closed_after < HEADER_TIMEOUT_S + LATE_S, closed_after
    assert status_line(response) == b"HTTP/1.1 408 Request Timeout"
    assert b'"detail":"request head not received within 1 s"' in response
    assert "request head not complete in time" in api.log()
    assert status_line(exchange(api, request())) == b"HTTP/1.1 200 OK"


def test_idle_connections_are_closed(api: Api) -> None:
    # A connection that never sends a request: closed after the head timeout, without an answer.
    with api.connect() as connection:
        opened = time.monotonic()
        assert read_until_closed(connection) == b""
        closed_after = time.monotonic() - opened
    assert HEADER_TIMEOUT_S * 0.95 <= closed_after < HEADER_TIMEOUT_S + LATE_S, closed_after
    # A keep-alive connection after its answer: closed after API_KEEP_ALIVE_TIMEOUT_S.
    with api.connect() as connection:
        connection.sendall(request(close=False))
        answered = connection.recv(65536)
        idle_from = time.monotonic()
        assert status_line(answered) == b"HTTP/1.1 200 OK"
        assert read_until_closed(connection) == b""
        idle_for = time.monotonic() - idle_from
    assert KEEP_ALIVE_TIMEOUT_S * 0.95 <= idle_for < KEEP_ALIVE_TIMEOUT_S + LATE_S, idle_for
    # The next request's head has its own time limit, counted from its first byte.
    with api.connect() as connection:
        connection.sendall(request(close=False) + b"GET /health HTTP/1.1\r\n")
        opened = time.monotonic()
        response = read_until_closed(connection)
        closed_after = time.monotonic() - opened
    first, _, second = response.partition(b'{"status":"ok"}')
    assert status_line(first) == b"HTTP/1.1 200 OK"
    assert status_line(second) == b"HTTP/1.1 408 Request Timeout"
    assert HEADER_TIMEOUT_S * 0.95 <= closed_after < HEADER_TIMEOUT_S + LATE_S, closed_after
