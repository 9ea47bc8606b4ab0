"""Runs docker-compose.yml's Python services as local processes, with the same commands and
environment, for machines without a Docker engine (and for the end-to-end tests).

Compose host names become loopback addresses of the local stack (scripts/stack.sh), and servers
that would listen on 0.0.0.0 in a container listen on 127.0.0.1 here.

    python scripts/compose_local.py run init producer consumer api [--demo]
    python scripts/compose_local.py prometheus-config > .local/prometheus.yml
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml

REPO = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO / "docker-compose.yml"
PROMETHEUS_CONFIG = REPO / "observability" / "prometheus" / "prometheus.yml"

_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


@dataclass(frozen=True)
class LocalService:
    name: str
    argv: list[str]
    env: dict[str, str]


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR-default} and ${VAR:?error} substitution."""

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        current = variables.get(name)
        if op in (":-", ":?") and not current:
            current = None
        if current is not None:
            return current
        if op in (":?", "?"):
            raise ValueError(f"{name} is required: {arg}")
        return arg or ""

    return _VARIABLE.sub(substitute, value)


def load_compose(path: Path = COMPOSE_FILE) -> dict[str, dict[str, object]]:
    services: dict[str, dict[str, object]] = yaml.safe_load(path.read_text())["services"]
    return services


def stack_addresses(stack_env: dict[str, str], extra: dict[str, str] | None = None) -> dict[str, str]:
    """Compose `host:port` -> local `127.0.0.1:port`."""
    addresses = {
        "kafka:29092": stack_env["KAFKA_BOOTSTRAP_SERVERS"],
        "postgres:5432": f"127.0.0.1:{stack_env['PG_PORT']}",
    }
    addresses.update(extra or {})
    return addresses


def localize(text: str, addresses: dict[str, str]) -> str:
    """Compose `host:port` names in `text` (an environment value, a scrape config) -> local addresses."""
    for compose_address, local_address in addresses.items():
        text = text.replace(compose_address, local_address)
    return text


def local_service(
    name: str,
    addresses: dict[str, str],
    variables: dict[str, str],
    overrides: dict[str, str] | None = None,
    services: dict[str, dict[str, object]] | None = None,
) -> LocalService:
    """The command and environment compose would give `name`, rewritten for this machine."""
    spec = (services or load_compose())[name]
    command = spec["command"]
    if not isinstance(command, list) or command[0] != "python":
        raise ValueError(f"service {name}: expected a ['python', ...] command, got {command!r}")
    env: dict[str, str] = {}
    raw_env = spec.get("environment") or {}
    assert isinstance(raw_env, dict)
    for key, raw in raw_env.items():
        value = localize(interpolate(str(raw), variables), addresses)
        if value == "0.0.0.0":
            value = "127.0.0.1"  # servers here listen on loopback only
        env[key] = value
    env.update(overrides or {})
    return LocalService(name, [sys.executable, *[str(part) for part in command[1:]]], env)


def prometheus_config(addresses: dict[str, str] | None = None, path: Path = PROMETHEUS_CONFIG) -> dict[str, Any]:
    """The compose profile's Prometheus configuration for this machine: each scrape target
    `service:port` becomes `addresses[target]`, or 127.0.0.1:port (the port the local service
    listens on, as compose's environment gives it); rule files by absolute path."""
    config: dict[str, Any] = yaml.safe_load(path.read_text())
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            static["targets"] = [
                (addresses or {}).get(target, f"127.0.0.1:{target.rsplit(':', 1)[1]}") for target in static["targets"]
            ]
    config["rule_files"] = [str(path.parent / pattern) for pattern in config.get("rule_files", [])]
    return config


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def start(service: LocalService, stdout: IO[bytes] | int | None) -> subprocess.Popen[bytes]:
    env = {**os.environ, **service.env}
    return subprocess.Popen(service.argv, env=env, cwd=REPO, stdout=stdout, stderr=subprocess.STDOUT)


def _pump(name: str, process: subprocess.Popen[bytes]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        sys.stdout.write(f"{name:>12} | {line.decode(errors='replace')}")
        sys.stdout.flush()


def run(names: list[str], stack_env_file: Path, demo: bool) -> int:
    stack_env = read_env_file(stack_env_file)
    variables = dict(os.environ)
    extra: dict[str, str] = {}
    if demo:
        # The producer reaches the fake exchange on loopback instead of Binance.
        variables.setdefault("BINANCE_WS_BASE_URL", "ws://fake-binance:9443")
        variables.setdefault("BINANCE_REST_BASE_URL", "http://fake-binance:8090")
        extra = {"fake-binance:9443": "127.0.0.1:9443", "fake-binance:8090": "127.0.0.1:8090"}
        names = ["fake-binance", *names]
    addresses = stack_addresses(stack_env, extra)
    services = load_compose()
    if "init" in names:
        init = local_service("init", addresses, variables, services=services)
        print("init | creating topics and migrating the database", flush=True)
        if start(init, None).wait() != 0:
            return 1
        names = [name for name in names if name != "init"]
    processes: dict[str, subprocess.Popen[bytes]] = {}
    for name in names:
        service = local_service(name, addresses, variables, services=services)
        processes[name] = start(service, subprocess.PIPE)
        threading.Thread(target=_pump, args=(name, processes[name]), daemon=True).start()
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    exit_code = 0
    while not stopping.is_set():
        for name, process in processes.items():
            if process.poll() is not None:
                print(f"{name} exited with {process.returncode}; stopping the others", flush=True)
                exit_code = 1
                stopping.set()
        time.sleep(0.5)
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes.values():
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
    return exit_code


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="verb", required=True)
    run_parser = sub.add_parser("run", help="run services until Ctrl-C")
    run_parser.add_argument("services", nargs="+")
    run_parser.add_argument("--demo", action="store_true", help="also run the fake exchange and use it")
    run_parser.add_argument("--stack-env", type=Path, default=REPO / ".local/stack/stack.env")
    sub.add_parser("prometheus-config", help="print observability/prometheus/prometheus.yml for the local services")
    args = parser.parse_args(argv)
    if args.verb == "prometheus-config":
        print(yaml.safe_dump(prometheus_config(), sort_keys=False), end="")
        return 0
    return run(args.services, args.stack_env, args.demo)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
