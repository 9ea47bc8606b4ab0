"""Several api processes (API_WORKERS=2) on a real `python -m api`: a supervisor and its workers,
each listening on the port with its own socket. Connections are spread over the workers, metrics
count every worker's requests whichever worker answers the scrape, a worker that dies is replaced
without its last live values lingering, SIGTERM stops everything and cleans up, and a supervisor
killed outright takes its workers with it.

Which worker a connection went to is read from /proc: the worker whose file descriptors include
the server side of that TCP connection. None of this reaches the database: these routes answer
without it, so no stack is needed.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, free_port, stop_process, wait_until

pytestmark = pytest.mark.integration

WORKERS = 2
UNMATCHED_404 = 'api_requests_total{method="GET",route="unmatched",status="404"}'
IN_FLIGHT = "api_requests_in_flight"


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def running(pid: int) -> bool:
    """Alive and not a zombie (a dead orphan may wait a while to be reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def server_side_inode(server_port: int, client_port: int) -> str | None:
    """The inode of the accepted socket of a loopback connection (0 until it is accepted)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].split(":")[1], 16)
        remote_port = int(fields[2].split(":")[1], 16)
        if local_port == server_port and remote_port == client_port and fields[9] != "0":
            return fields[9]
    return None


class Connection:
    """A keep-alive HTTP/1.1 connection, and the worker that accepted it."""

    def __init__(self, api: Supervisor) -> None:
        self.sock = socket.create_connection(("127.0.0.1", api.port), timeout=10)
        client_port = self.sock.getsockname()[1]

        def worker() -> int | None:
            inode = server_side_inode(api.port, client_port)
            holders = [pid for pid in api.workers() if inode is not None and inode in socket_inodes(pid)]
            return holders[0] if holders else None

        self.worker: int = wait_until(worker, 10, "the connection to be accepted")  # type: ignore[assignment]
        self.buffer = b""

    def get(self, path: str) -> tuple[int, bytes]:
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
        head = self._read_until(b"\r\n\r\n")
        length = re.search(rb"content-length: *(\d+)", head, re.IGNORECASE)
        assert length, head
        return int(head[9:12]), self._read_exactly(int(length.group(1)))

    def get_head(self, path: str) -> int:
        """Sends a request and reads only the head of the answer (a stream's body never ends)."""
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
        return int(self._read_until(b"\r\n\r\n")[9:12])

    def close(self) -> None:
        self.sock.close()

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            self._receive()
        head, self.buffer = self.buffer.split(marker, 1)
        return head

    def _read_exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._receive()
        body, self.buffer = self.buffer[:size], self.buffer[size:]
        return body

    def _receive(self) -> None:
        data = self.sock.recv(65536)
        assert data, "connection closed"
        self.buffer += data


@dataclass
class Supervisor:
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def workers(self) -> list[int]:
        """The serving processes (the supervisor's other child is multiprocessing's resource tracker)."""
        pids = []
        for pid in children(self.process.pid):
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in command and running(pid):
                pids.append(pid)
        return sorted(pids)

    def connect_to(self, worker: int) -> Connection:
        """A connection that `worker` accepted (the kernel picks by address hash: try again)."""
        for _ in range(100):
            connection = Connection(self)
            if connection.worker == worker:
                return connection
            connection.close()
        raise AssertionError(f"no connection reached worker {worker}")

    def metrics(self, worker: int) -> str:
        connection = self.connect_to(worker)
        try:
            status, body = connection.get("/metrics")
        finally:
            connection.close()
        assert status == 200
        return body.decode()

    def metrics_dir(self) -> Path:
        """Where the workers write their metrics (from a worker's environment)."""
        environment = Path(f"/proc/{self.workers()[0]}/environ").read_bytes().split(b"\0")
        (directory,) = [item.split(b"=", 1)[1] for item in environment if item.startswith(b"PROMETHEUS_")]
        return Path(directory.decode())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def sample(metrics: str, line_start: str) -> float:
    match = re.search(rf"^{re.escape(line_start)} (\S+)$", metrics, re.MULTILINE)
    assert match, f"no {line_start} in:\n{metrics}"
    return float(match.group(1))


@pytest.fixture()
def api(tmp_path: Path) -> Iterator[Supervisor]:
    with start_api(tmp_path / "api.log") as supervisor:
        yield supervisor


@contextmanager
def start_api(log_path: Path) -> Iterator[Supervisor]:
    port = free_port()
    env = {
        **os.environ,
        "API_HOST": "127.0.0.1",
        "API_PORT": str(port),
        "API_WORKERS": str(WORKERS),
        # Never connected to by these tests' requests (the live price poller only fails to).
        "API_DATABASE_URL": "postgresql+psycopg2://binance_api@127.0.0.1:9/none",
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "api"], cwd=REPO, env=env, stdout=log, stderr=log)
    supervisor = Supervisor(port, process, log_path)
    try:
        wait_until(lambda: len(supervisor.workers()) == WORKERS, 30, "the workers to start")
        for worker in supervisor.workers():
            wait_until(lambda: supervisor.metrics(worker), 30, f"worker {worker} to answer")  # noqa: B023
        yield supervisor
    finally:
        stop_process(process, 30)


def test_connections_are_spread_and_metrics_count_every_workers_requests(api: Supervisor) -> None:
    connections = [Connection(api) for _ in range(24)]
    for connection in connections:
        assert connection.get("/nowhere")[0] == 404
    # By address hash: all 24 on one worker would be a 1 in 8 million chance.
    assert {connection.worker for connection in connections} == set(api.workers())
    for connection in connections:
        connection.close()
    for worker in api.workers():
        metrics = api.metrics(worker)
        assert sample(metrics, UNMATCHED_404) == 24
        # The scrape itself, and nothing left over from the requests before it.
        assert sample(metrics, IN_FLIGHT) == 1
        assert "api_db_connections_in_use" in metrics


def test_a_worker_that_dies_is_replaced_and_its_requests_still_count(api: Supervisor) -> None:
    doomed, survivor = api.workers()
    on_doomed = api.connect_to(doomed)
    assert on_doomed.get("/nowhere")[0] == 404
    # A live price stream: a request in flight on the doomed worker when it dies.
    assert on_doomed.get_head("/v1/stream/prices") == 200
    assert sample(api.metrics(survivor), IN_FLIGHT) == 2
    os.kill(doomed, signal.SIGKILL)
    on_doomed.close()
    wait_until(lambda: len(api.workers()) == WORKERS and doomed not in api.workers(), 30, "a replacement worker")
    (replacement,) = set(api.workers()) - {survivor}
    wait_until(lambda: api.metrics(replacement), 30, "the replacement to answer")
    for worker in (survivor, replacement):
        metrics = api.metrics(worker)
        assert sample(metrics, UNMATCHED_404) == 1
        # The dead worker's stream no longer counts as in flight.
        assert sample(metrics, IN_FLIGHT) == 1


def test_sigterm_stops_every_worker_and_removes_the_metrics_files(api: Supervisor) -> None:
    workers = api.workers()
    metrics_dir = api.metrics_dir()
    assert metrics_dir.is_dir()
    api.process.terminate()
    assert api.process.wait(timeout=30) == 0, api.log()
    assert not any(running(pid) for pid in workers)
    assert not metrics_dir.exists()
    assert api.log().count("Application shutdown complete") == WORKERS


def test_workers_die_with_a_supervisor_killed_outright(api: Supervisor, tmp_path: Path) -> None:
    workers = api.workers()
    metrics_dir = api.metrics_dir()
    api.process.kill()
    api.process.wait(timeout=10)
    wait_until(lambda: not any(running(pid) for pid in workers), 10, "the workers to die")
    # The kernel may close a dead process's sockets a moment after it is gone.
    wait_until(lambda: refused(api.port), 10, "the port to be closed")
    # Its metrics directory is left behind, and removed by the next supervisor.
    assert metrics_dir.is_dir()
    with start_api(tmp_path / "next.log") as successor:
        wait_until(lambda: len(successor.workers()) == WORKERS, 30, "the next workers to start")
        assert not metrics_dir.exists()


def test_a_port_in_use_stops_the_supervisor(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = {
            **os.environ,
            "API_HOST": "127.0.0.1",
            "API_PORT": str(taken.getsockname()[1]),
            "API_WORKERS": str(WORKERS),
            "API_DATABASE_URL": "postgresql+psycopg2://binance_api@127.0.0.1:9/none",
        }
        result = subprocess.run([sys.executable, "-m", "api"], cwd=REPO, env=env, capture_output=True, timeout=60)
    assert result.returncode != 0
    assert b"cannot listen" in result.stderr
