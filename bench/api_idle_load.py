"""Idle and slow-header connections against real requests: /v1/prices/latest latency and error
rate while N idle sockets and M sockets that never finish their request head are held open (and
reopened whenever the api closes one, as a hostile client would).

    .venv/bin/python bench/api_idle_load.py                          # the test stack's PostgreSQL
    .venv/bin/python bench/api_idle_load.py --crowds 0:0,300:100,2000:500 --seconds 10
    .venv/bin/python bench/api_idle_load.py --repo /path/to/other/checkout   # its api, same load

1. Creates a database on the stack's PostgreSQL, migrates it and stores a few trades.
2. Runs the api (`python -m api`, one process, default limits) on a loopback port.
3. For each crowd N:M, opens the crowd, then one keep-alive client asks /v1/prices/latest
   back to back for --seconds (and a second client opens a new connection per request, as a
   newcomer behind the crowd would): p50/p99 and the share of answers that are not 200 or that
   failed to arrive.
4. Stops the api and drops the database. Prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import time
import uuid
from pathlib import Path

from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "scripts"))

import api_load  # noqa: E402
import compose_local  # noqa: E402

from bootstrap.__main__ import migrate  # noqa: E402

PATH = "/v1/prices/latest?symbol=BTCUSDT"
SLOW_HEAD = b"GET /v1/prices/latest HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


async def hostile(port: int, slow: bool, stop: asyncio.Event, opened: list[int]) -> None:
    """One hostile socket: idle (or a head begun and never finished), reopened when closed."""
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        opened[0] += 1
        if slow:
            writer.write(SLOW_HEAD)
        read = asyncio.ensure_future(reader.read(65536))
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait({read, stopped}, return_when=asyncio.FIRST_COMPLETED)
        read.cancel()
        stopped.cancel()
        writer.close()


async def client(port: int, seconds: float, new_connection_each: bool) -> tuple[list[float], int, int]:
    latencies: list[float] = []
    failures = 0
    connection = api_load.HttpConnection("127.0.0.1", port)
    opened = False
    deadline = time.monotonic() + seconds
    requests = 0
    while time.monotonic() < deadline:
        requests += 1
        started = time.perf_counter()
        try:
            if new_connection_each or not opened:
                if opened:
                    connection.writer.close()
                await asyncio.wait_for(connection.open(), 10)
                opened = True
            status = await asyncio.wait_for(connection.get(PATH), 10)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            failures += 1
            opened = False
            await asyncio.sleep(0.01)
            continue
        if status != 200:
            failures += 1
        else:
            latencies.append((time.perf_counter() - started) * 1000)
    return latencies, failures, requests


async def run_crowd(port: int, idle: int, slow: int, seconds: float) -> dict[str, object]:
    stop = asyncio.Event()
    opened = [0]
    crowd = [asyncio.create_task(hostile(port, index >= idle, stop, opened)) for index in range(idle + slow)]
    await asyncio.sleep(2 + (idle + slow) / 500)  # let the crowd connect
    (kept, kept_failures, kept_requests), (fresh, fresh_failures, fresh_requests) = await asyncio.gather(
        client(port, seconds, new_connection_each=False), client(port, seconds, new_connection_each=True)
    )
    stop.set()
    await asyncio.gather(*crowd, return_exceptions=True)
    row: dict[str, object] = {"idle": idle, "slow": slow, "crowd_connections_opened": opened[0]}
    for label, latencies, failures, requests in (
        ("keep-alive", kept, kept_failures, kept_requests),
        ("new connection each", fresh, fresh_failures, fresh_requests),
    ):
        ordered = sorted(latencies)
        row[label] = {
            "requests": requests,
            "errors": failures,
            "p50_ms": api_load.percentile(ordered, 0.5) if ordered else None,
            "p99_ms": api_load.percentile(ordered, 0.99) if ordered else None,
        }
    return row


def table(rows: list[dict[str, object]]) -> str:
    lines = [
        "| idle | slow-header | client | requests | errors | error rate | p50 ms | p99 ms |",
        "|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        for label in ("keep-alive", "new connection each"):
            figures = row[label]
            assert isinstance(figures, dict)
            rate = figures["errors"] / max(figures["requests"], 1)
            p50, p99 = figures["p50_ms"], figures["p99_ms"]
            lines.append(
                f"| {row['idle']} | {row['slow']} | {label} | {figures['requests']} | {figures['errors']} "
                f"| {rate:.1%} | {'-' if p50 is None else f'{p50:.2f}'} | {'-' if p99 is None else f'{p99:.2f}'} |"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--stack-env", default=os.environ.get("STACK_ENV_FILE", str(REPO / ".local/test-stack/stack.env"))
    )
    parser.add_argument("--crowds", default="0:0,300:100,1000:300", help="idle:slow pairs, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repo", type=Path, default=REPO, help="run the api of this checkout")
    parser.add_argument("--api-env", action="append", default=[], help="extra API_*=value for the api, repeatable")
    args = parser.parse_args()
    crowds = [tuple(int(n) for n in pair.split(":")) for pair in args.crowds.split(",")]
    # Each hostile socket is a file descriptor here too.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 65536)), hard))

    stack = compose_local.read_env_file(Path(args.stack_env))
    admin_url, api_admin_url = stack["DATABASE_URL"], stack["API_DATABASE_URL"]
    name = f"bench_idle_{uuid.uuid4().hex[:8]}"
    owner_url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    api_url = make_url(api_admin_url).set(database=name).render_as_string(hide_password=False)
    api_load.admin_execute(admin_url, f'CREATE DATABASE "{name}"')  # a generated identifier
    api = None
    try:
        migrate(owner_url, "binance_api")
        api_load.load(owner_url, 10_000, 0.01)
        port = api_load.free_port()
        api_load.REPO = args.repo
        api = api_load.start_api(api_url, port, 1, dict(item.split("=", 1) for item in args.api_env))
        api_load.wait_ready(port)
        rows = []
        for idle, slow in crowds:
            row = asyncio.run(run_crowd(port, idle, slow, args.seconds))
            api_load.log(str(row))
            rows.append(row)
        print("\n" + table(rows) + "\n")
    finally:
        if api is not None:
            api_load.stop_api(api)
        api_load.admin_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
