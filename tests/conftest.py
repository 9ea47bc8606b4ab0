"""Fixtures that start or reuse the local stack (real Kafka, real PostgreSQL) and run services.

The stack is the one scripts/stack.sh runs, on test ports so a developer's own stack (or anything
else on 9092/5432) is left alone. scripts/test.sh starts it before pytest; when pytest is run
alone, the first integration test starts it.
"""

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

import compose_local  # noqa: E402

from schemas.partitions import PARTITIONED_TABLES  # noqa: E402

TEST_STACK = {
    "STACK_DIR": str(REPO / ".local/test-stack"),
    "KAFKA_PORT": "29092",
    "KAFKA_CONTROLLER_PORT": "29093",
    "PG_PORT": "25432",
    "PG_FSYNC": "off",
}
ARTIFACTS = REPO / "artifacts"
# Test data is dated where each test needs it (often 2025): services started by the tests keep
# every partition, or the consumer's maintenance pass would drop their rows as past retention.
# tests/integration/test_partitions.py and bench/retention_run.py exercise retention itself.
KEEP_EVERYTHING = {f"MAINTENANCE_RETENTION_{table.name.upper()}_DAYS": "0" for table in PARTITIONED_TABLES}


def wait_until(condition: Callable[[], object], timeout_s: float, what: str, interval_s: float = 0.2) -> object:
    """Polls until `condition` returns something truthy; fails naming `what` after the deadline."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = condition()
            if result:
                return result
        except Exception as error:  # the thing waited for may not answer yet
            last_error = error
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what} (last error: {last_error!r})")


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 20) -> int:
    """SIGTERM, then SIGKILL if it hasn't exited within `timeout_s`; returns its exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def libpq_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def stack_env() -> dict[str, str]:
    env_file = Path(os.environ.get("STACK_ENV_FILE", f"{TEST_STACK['STACK_DIR']}/stack.env"))
    # scripts/test.sh exports the stack it started (its TEST_* ports and directory, and the env file):
    # check and start that one. Run by hand, pytest uses the default test stack.
    stack_vars = dict(os.environ) if "STACK_ENV_FILE" in os.environ else {**os.environ, **TEST_STACK}
    if (
        not env_file.exists()
        or subprocess.run(
            ["bash", str(REPO / "scripts/stack.sh"), "status"], env=stack_vars, capture_output=True
        ).returncode
        != 0
    ):
        subprocess.run(["bash", str(REPO / "scripts/stack.sh"), "up"], env=stack_vars, check=True)
    return compose_local.read_env_file(env_file)


def create_database(stack_env: dict[str, str]) -> dict[str, str]:
    """A fresh, empty database on the stack's server. Returns its owner and api URLs."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(libpq_dsn(stack_env["DATABASE_URL"]))
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')  # a generated identifier, not input
    admin.close()
    return {
        "owner": make_url(stack_env["DATABASE_URL"]).set(database=name).render_as_string(hide_password=False),
        "api": make_url(stack_env["API_DATABASE_URL"]).set(database=name).render_as_string(hide_password=False),
    }


def drop_database(stack_env: dict[str, str], urls: dict[str, str]) -> None:
    admin = psycopg2.connect(libpq_dsn(stack_env["DATABASE_URL"]))
    admin.autocommit = True
    statement = f'DROP DATABASE IF EXISTS "{make_url(urls["owner"]).database}" WITH (FORCE)'

    def dropped() -> bool:
        # FORCE may only end sessions of our own role: an autovacuum worker (a superuser
        # process) busy on the freshly filled database refuses it until it finishes, moments later.
        try:
            with admin.cursor() as cursor:
                cursor.execute(statement)
        except psycopg2.errors.InsufficientPrivilege:
            return False
        return True

    try:
        wait_until(dropped, 30, "the test database to be dropped", interval_s=0.5)
    finally:
        admin.close()


@pytest.fixture()
def database(stack_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """A fresh, empty database for one test, dropped afterwards. Returns owner and api URLs."""
    urls = create_database(stack_env)
    yield urls
    drop_database(stack_env, urls)


class Services:
    """Starts compose services as local processes, logs to artifacts/logs, stops them all."""

    def __init__(self, stack_env: dict[str, str], log_dir: Path) -> None:
        self.stack_env = stack_env
        self.log_dir = log_dir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.extra_addresses: dict[str, str] = {}
        self.variables: dict[str, str] = {}
        log_dir.mkdir(parents=True, exist_ok=True)
        for old_log in log_dir.glob("*.log"):  # a rerun's logs start empty
            old_log.unlink()

    def service(self, name: str, overrides: dict[str, str]) -> compose_local.LocalService:
        addresses = compose_local.stack_addresses(self.stack_env, self.extra_addresses)
        return compose_local.local_service(name, addresses, self.variables, {**KEEP_EVERYTHING, **overrides})

    def run_once(self, name: str, overrides: dict[str, str], timeout_s: float = 120) -> None:
        with open(self.log_dir / f"{name}.log", "ab") as log:
            process = compose_local.start(self.service(name, overrides), log)
            assert process.wait(timeout=timeout_s) == 0, f"{name} failed: {self.log_tail(name)}"

    def start(self, name: str, overrides: dict[str, str], label: str | None = None) -> subprocess.Popen[bytes]:
        """Starts compose service `name`; `label` names this instance (for several of one service)."""
        label = label or name
        with open(self.log_dir / f"{label}.log", "ab") as log:
            process = compose_local.start(self.service(name, overrides), log)
        self.processes[label] = process
        return process

    def stop(self, name: str, timeout_s: float = 20) -> int:
        return stop_process(self.processes.pop(name), timeout_s)

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.log_dir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def assert_running(self) -> None:
        for name, process in self.processes.items():
            assert process.poll() is None, f"{name} exited with {process.returncode}:\n{self.log_tail(name)}"


@pytest.fixture()
def services(stack_env: dict[str, str], request: pytest.FixtureRequest) -> Iterator[Services]:
    running = Services(stack_env, ARTIFACTS / "logs" / request.node.name)
    yield running
    running.stop_all()
