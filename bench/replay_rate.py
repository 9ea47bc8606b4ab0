"""Replay benchmark: the rate of one speed=0 replay against a plain cursor over the same rows, in
the same run, and the api's latest-price latency with replays running beside it.

    .venv/bin/python bench/replay_rate.py                          # the test stack's PostgreSQL
    .venv/bin/python bench/replay_rate.py --trades 10000000 --replays 20

1. Creates its own database, migrates it and generates the trades and rollups inside PostgreSQL
   (bench/api_load.py's loader), then VACUUM ANALYZE.
2. Reads BTCUSDT's trades of the whole range with the replay's own statement through a plain
   asyncpg server-side cursor (the same fetch size): the rate the store gives.
3. Runs the replay service (`python -m replay`) and reads the same range as one
   /ws/btcusdt@trade?speed=0 replay from a second process: frames/s, and the replay's CPU.
4. Runs the api (`python -m api`) and asks GET /v1/prices/latest?symbol=BTCUSDT back to back for
   --seconds: p50/p99 alone, then with --replays speed=0 replays running beside it (each reading
   the whole range, restarted when done).
5. Stops both and drops the database.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "bench"))

import compose_local  # noqa: E402
from api_load import (  # noqa: E402
    T0,
    HttpConnection,
    admin_execute,
    cpu_seconds,
    free_port,
    load,
    log,
    wait_ready,
)

from bootstrap.__main__ import migrate  # noqa: E402
from replay import queries  # noqa: E402
from replay.streams import StreamKind  # noqa: E402

END = "2100-01-01"


async def cursor_rate(api_url: str, fetch_rows: int) -> tuple[int, float]:
    """Rows and seconds of BTCUSDT's whole range through a plain cursor, the replay's statement."""
    import asyncpg

    dsn = make_url(api_url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn, ssl="disable")
    statement = queries.HISTORY[StreamKind.TRADE]
    (first, last) = await connection.fetchrow(
        "SELECT min(trade_id), max(trade_id) FROM trades WHERE symbol = 'BTCUSDT'"
    )
    values = {
        "symbol": "BTCUSDT",
        "first_id": first,
        "last_id": last,
        "start": T0,
        "end": T0.replace(year=2100),
    }
    started = time.perf_counter()
    rows = 0
    async with connection.transaction(isolation="repeatable_read", readonly=True):
        cursor = await connection.cursor(statement.sql, *statement.arguments(values))
        while batch := await cursor.fetch(fetch_rows):
            rows += len(batch)
    seconds = time.perf_counter() - started
    await connection.close()
    return rows, seconds


def read_replay(url: str, result: multiprocessing.Queue[tuple[int, float, float]]) -> None:
    """In its own process: every frame of one replay; puts (frames, seconds). A minimal client
    (the upgrade by hand, then frame headers only: server frames are unmasked), so that what is
    measured is the server, not a client library's per-frame cost on the same two cores."""
    import base64
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port))
    key = base64.b64encode(os.urandom(16)).decode()
    target = f"{parts.path}?{parts.query}"
    sock.sendall(
        f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        buffer += sock.recv(65536)
    head, buffer = buffer.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 101"), head
    started = time.perf_counter()
    frames = 0
    position = 0
    while True:
        # Parse every whole frame in the buffer: opcode in byte 0, length in byte 1 (+2 or +8).
        while len(buffer) - position >= 2:
            opcode = buffer[position] & 0x0F
            length = buffer[position + 1] & 0x7F
            header = 2
            if length == 126:
                if len(buffer) - position < 4:
                    break
                length = int.from_bytes(buffer[position + 2 : position + 4], "big")
                header = 4
            elif length == 127:
                if len(buffer) - position < 10:
                    break
                length = int.from_bytes(buffer[position + 2 : position + 10], "big")
                header = 10
            if len(buffer) - position < header + length:
                break
            if opcode == 0x8:  # close
                result.put((frames, time.perf_counter() - started, time.process_time()))
                sock.close()
                return
            if opcode == 0x1:
                frames += 1
            position += header + length
        chunk = sock.recv(1 << 20)
        if not chunk:
            result.put((frames, time.perf_counter() - started, time.process_time()))
            return
        buffer = buffer[position:] + chunk
        position = 0


def keep_replaying(url: str, count: int, stop: multiprocessing.synchronize.Event) -> None:
    """In its own process: `count` replays at once, each restarted when it ends, until `stop`.
    Niced like the replay: these clients stand for clients elsewhere, not for load on the api's box."""
    os.nice(10)

    async def one() -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed

        while not stop.is_set():
            try:
                async with connect(url, max_size=None) as ws:
                    async for _frame in ws:
                        if stop.is_set():
                            return
            except (ConnectionClosed, OSError):
                await asyncio.sleep(0.1)

    async def run() -> None:
        await asyncio.gather(*(one() for _ in range(count)))

    asyncio.run(run())


async def latest_latencies(port: int, seconds: float) -> list[float]:
    connection = HttpConnection("127.0.0.1", port)
    await connection.open()
    latencies = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        status = await connection.get("/v1/prices/latest?symbol=BTCUSDT")
        latencies.append(time.perf_counter() - started)
        assert status == 200, status
        await asyncio.sleep(0.005)
    return sorted(latencies)


def wait_listening(port: int, timeout_s: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listens on port {port}")


def peak_rss_mb(pid: int) -> float:
    """The process's resident memory high-water mark (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile_ms(values: list[float], fraction: float) -> float:
    return values[min(len(values) - 1, int(len(values) * fraction))] * 1000


def start(module: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", module], cwd=REPO, env={**os.environ, **env})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--stack-env", default=os.environ.get("STACK_ENV_FILE", str(REPO / ".local/test-stack/stack.env"))
    )
    parser.add_argument("--trades", type=int, default=2_000_000, help="all symbols; BTCUSDT gets 55%%")
    parser.add_argument("--days", type=float, default=1.0)
    parser.add_argument("--replays", type=int, default=20, help="replays beside the api's latency run")
    parser.add_argument("--seconds", type=float, default=15.0, help="each latency run")
    parser.add_argument("--fetch-rows", type=int, default=2000)
    args = parser.parse_args()

    stack = compose_local.read_env_file(Path(args.stack_env))
    name = f"bench_replay_{uuid.uuid4().hex[:8]}"
    owner_url = make_url(stack["DATABASE_URL"]).set(database=name).render_as_string(hide_password=False)
    api_url = make_url(stack["API_DATABASE_URL"]).set(database=name).render_as_string(hide_password=False)
    admin_execute(stack["DATABASE_URL"], f'CREATE DATABASE "{name}"')  # a generated identifier
    processes: list[subprocess.Popen[bytes]] = []
    try:
        migrate(owner_url, "binance_api")
        load(owner_url, args.trades, args.days)
        rows, cursor_seconds = asyncio.run(cursor_rate(api_url, args.fetch_rows))
        log(f"plain cursor: {rows:,} rows in {cursor_seconds:.1f} s = {rows / cursor_seconds:,.0f} rows/s")

        replay_port = free_port()
        replay = start(
            "replay",
            {
                "REPLAY_DATABASE_URL": api_url,
                "REPLAY_PORT": str(replay_port),
                "REPLAY_METRICS_PORT": str(free_port()),
                "REPLAY_DB_SSL": "disable",
                "REPLAY_LOG_LEVEL": "WARNING",
                "REPLAY_FETCH_ROWS": str(args.fetch_rows),
                "REPLAY_MAX_REPLAYS": str(max(args.replays, 1)),
                "REPLAY_END_LINGER_S": "0",
            },
        )
        processes.append(replay)
        wait_listening(replay_port)
        url = f"ws://127.0.0.1:{replay_port}/ws/btcusdt@trade?start={T0:%Y-%m-%d}&end={END}&speed=0"
        results: multiprocessing.Queue[tuple[int, float, float]] = multiprocessing.Queue()
        cpu_before = cpu_seconds([replay.pid])
        reader = multiprocessing.Process(target=read_replay, args=(url, results))
        reader.start()
        frames, replay_seconds, client_cpu = results.get(timeout=3600)
        reader.join()
        replay_cores = (cpu_seconds([replay.pid]) - cpu_before) / replay_seconds
        replay_rss = peak_rss_mb(replay.pid)
        log(
            f"replay speed=0: {frames:,} frames in {replay_seconds:.1f} s = {frames / replay_seconds:,.0f} frames/s"
            f" ({frames / replay_seconds / (rows / cursor_seconds):.0%} of the cursor),"
            f" replay process {replay_cores:.2f} cores (peak RSS {replay_rss:.0f} MB),"
            f" client {client_cpu / replay_seconds:.2f} cores"
        )

        api_port = free_port()
        api = start(
            "api",
            {
                "API_DATABASE_URL": api_url,
                "API_PORT": str(api_port),
                "API_DB_SSL": "disable",
                "API_LOG_LEVEL": "WARNING",
                "API_WORKERS": "1",
            },
        )
        processes.append(api)
        wait_ready(api_port)
        alone = asyncio.run(latest_latencies(api_port, args.seconds))
        stop = multiprocessing.Event()
        crowd = multiprocessing.Process(target=keep_replaying, args=(url, args.replays, stop))
        crowd.start()
        time.sleep(2)
        beside = asyncio.run(latest_latencies(api_port, args.seconds))
        stop.set()
        crowd.join(timeout=30)
        if crowd.is_alive():
            crowd.terminate()
        for label, values in (("alone", alone), (f"{args.replays} replays beside", beside)):
            log(
                f"api latest {label}: {len(values)} requests, p50 {percentile_ms(values, 0.5):.2f} ms,"
                f" p99 {percentile_ms(values, 0.99):.2f} ms, mean {statistics.fmean(values) * 1000:.2f} ms"
            )
        print(
            "\n| measure | figure |\n|---|---|\n"
            f"| trades read (BTCUSDT, one range) | {rows:,} |\n"
            f"| plain cursor, rows/s | {rows / cursor_seconds:,.0f} |\n"
            f"| one replay at speed=0, frames/s | {frames / replay_seconds:,.0f} "
            f"({frames / replay_seconds / (rows / cursor_seconds):.0%} of the cursor) |\n"
            f"| replay process CPU during it | {replay_cores:.2f} cores |\n"
            f"| replay process peak RSS | {replay_rss:.0f} MB |\n"
            f"| api latest p50 / p99, alone | {percentile_ms(alone, 0.5):.2f} / {percentile_ms(alone, 0.99):.2f} ms |\n"
            f"| api latest p50 / p99, {args.replays} replays beside | {percentile_ms(beside, 0.5):.2f} /"
            f" {percentile_ms(beside, 0.99):.2f} ms |"
        )
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)
        admin_execute(stack["DATABASE_URL"], f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
