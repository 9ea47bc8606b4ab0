"""API benchmark: p50/p99 latency and requests/s per endpoint, over >= 20 million stored trades.

    .venv/bin/python bench/api_load.py                      # the test stack's PostgreSQL (25432)
    .venv/bin/python bench/api_load.py --trades 2000000 --seconds 5   # a quick look
    .venv/bin/python bench/api_load.py --trades 2000000 --keep        # load once, then iterate:
    .venv/bin/python bench/api_load.py --database bench_api_... --endpoints "candles 1m" --workers ""

1. Creates its own database on the stack's PostgreSQL, migrates it, and generates the trades in
   PostgreSQL (INSERT ... SELECT generate_series: no rows travel through Python), then the 1s and
   1m rollups from them with plain SQL (the consumer's rules, written independently), then
   VACUUM ANALYZE.
2. Runs the api (`python -m api`, one process, the read-only role) on a loopback port.
3. From a second process, drives each endpoint with a fixed number of concurrent keep-alive
   connections for a fixed time (a minimal HTTP/1.1 client, so the load generator spends as
   little of the shared CPU as possible), recording every request's latency.
4. Streams CSV exports and reports rows/s.
5. Restarts the api with each API_WORKERS of --workers (1,2) and drives a few endpoints with
   --workers-concurrency connections: requests/s by number of api processes, in the same run.
6. Stops the api and drops the database.

Prints Markdown tables (for docs/benchmarks.md) and, with --json, writes the raw figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extras
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

import compose_local  # noqa: E402

from bootstrap.__main__ import migrate  # noqa: E402
from fake_binance.exchange_info import load_exchange_info  # noqa: E402

T0 = datetime(2025, 10, 1, tzinfo=UTC)
# The share of the trades each symbol gets, and its price level.
SYMBOLS = {"BTCUSDT": (0.55, 84000), "ETHUSDT": (0.25, 3000), "BNBUSDT": (0.1, 600), "SOLUSDT": (0.1, 140)}
INSERT_CHUNK = 2_000_000


# --- database -----------------------------------------------------------------------------------


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def admin_execute(admin_url: str, statement: str) -> None:
    connection = psycopg2.connect(libpq(admin_url))
    connection.autocommit = True
    connection.cursor().execute(statement)
    connection.close()


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


def load(owner_url: str, trades: int, days: float) -> None:
    """Trades generated inside PostgreSQL, then the rollups from them, then statistics."""
    span_ms = int(days * 86_400_000)
    connection = psycopg2.connect(libpq(owner_url))
    connection.autocommit = True
    cursor = connection.cursor()
    for symbol, (share, base_price) in SYMBOLS.items():
        count = int(trades * share)
        first_id = 1_000_000_000
        started = time.monotonic()
        for offset in range(0, count, INSERT_CHUNK):
            # Trade i of n falls at T0 + i*span/n ms (several per ms when dense); the price is a
            # slow wave plus a fast wiggle, rounded to the cent; sizes and sides vary by id.
            cursor.execute(
                """
                INSERT INTO trades (symbol, trade_id, price, quantity, trade_time, buyer_is_maker, event_time)
                SELECT %(symbol)s, %(first_id)s + g,
                    round((%(base)s * (1 + 0.03 * sin(g / 250000.0) + 0.001 * sin(g / 97.0)))::numeric, 2),
                    round((0.00001 + ((g * 7919) %% 100000) / 200000.0)::numeric, 5),
                    %(t0)s::timestamptz + (g::bigint * %(span)s / %(n)s) * interval '1 millisecond',
                    (g * 31) %% 7 < 3,
                    %(t0)s::timestamptz + (g::bigint * %(span)s / %(n)s + 1) * interval '1 millisecond'
                FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS g
                """,
                {
                    "symbol": symbol,
                    "first_id": first_id,
                    "base": base_price,
                    "t0": T0,
                    "span": span_ms,
                    "n": count,
                    "lo": offset,
                    "hi": min(count, offset + INSERT_CHUNK) - 1,
                },
            )
        log(f"{symbol}: {count:,} trades in {time.monotonic() - started:.0f} s")
    started = time.monotonic()
    # Room to group a symbol's trades in memory rather than in temporary files.
    cursor.execute("SET work_mem = '256MB'")
    for symbol in SYMBOLS:
        # One pass over the symbol's trades (trades has no time index to window them by). The
        # first and last trade of a second are its smallest and largest [trade id, price] pair.
        cursor.execute(
            """
            INSERT INTO trade_candles_1s (symbol, open_time, open, high, low, close, volume, quote_volume,
                trade_count, taker_buy_base_volume, taker_buy_quote_volume, first_trade_id, last_trade_id, price_sum)
            SELECT symbol, date_trunc('second', trade_time, 'UTC'),
                (min(ARRAY[trade_id::numeric, price]))[2], max(price), min(price),
                (max(ARRAY[trade_id::numeric, price]))[2], sum(quantity), sum(price * quantity), count(*),
                coalesce(sum(quantity) FILTER (WHERE NOT buyer_is_maker), 0),
                coalesce(sum(price * quantity) FILTER (WHERE NOT buyer_is_maker), 0),
                min(trade_id), max(trade_id), sum(price)
            FROM trades
            WHERE symbol = %(symbol)s
            GROUP BY 1, 2
            """,
            {"symbol": symbol},
        )
        cursor.execute(
            """
            INSERT INTO trade_candles_1m (symbol, open_time, open, high, low, close, volume, quote_volume,
                trade_count, taker_buy_base_volume, taker_buy_quote_volume, first_trade_id, last_trade_id, price_sum)
            SELECT symbol, date_trunc('minute', open_time, 'UTC'),
                (array_agg(open ORDER BY open_time))[1], max(high), min(low),
                (array_agg(close ORDER BY open_time DESC))[1], sum(volume), sum(quote_volume), sum(trade_count),
                sum(taker_buy_base_volume), sum(taker_buy_quote_volume), min(first_trade_id), max(last_trade_id),
                sum(price_sum)
            FROM trade_candles_1s WHERE symbol = %(symbol)s
            GROUP BY 1, 2
            """,
            {"symbol": symbol},
        )
    log(f"rollups in {time.monotonic() - started:.0f} s")
    entries = [e for e in load_exchange_info().document(0)["symbols"] if e["symbol"] in SYMBOLS]
    psycopg2.extras.execute_values(
        cursor,
        "INSERT INTO symbols (symbol, status, base_asset, quote_asset, info) VALUES %s",
        [(e["symbol"], e["status"], e["baseAsset"], e["quoteAsset"], psycopg2.extras.Json(e)) for e in entries],
    )
    started = time.monotonic()
    # Fresh statistics, and a visibility map so that index-only scans skip the heap.
    cursor.execute("VACUUM (ANALYZE) trades, trade_candles_1s, trade_candles_1m, symbols")
    log(f"vacuum analyze in {time.monotonic() - started:.0f} s")
    cursor.execute("SELECT count(*) FROM trades")
    (stored,) = cursor.fetchone()
    log(f"{stored:,} trades stored")
    connection.close()


# --- the load generator (runs in its own process) ----------------------------------------------


class HttpConnection:
    """One keep-alive HTTP/1.1 connection: just enough client for this benchmark."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader
        self.writer: asyncio.StreamWriter

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def get(self, path: str, on_body: Callable[[bytes], None] | None = None) -> int:
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        headers = head.lower()
        length_at = headers.find(b"content-length:")
        if length_at >= 0:
            length = int(headers[length_at + 15 : headers.index(b"\r\n", length_at)])
            body = await self.reader.readexactly(length)
            if on_body:
                on_body(body)
        else:  # chunked
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                if size == 0:
                    await self.reader.readuntil(b"\r\n")
                    break
                chunk = await self.reader.readexactly(size + 2)
                if on_body:
                    on_body(chunk[:-2])
        return status


@dataclass
class Result:
    name: str
    concurrency: int
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    # CPU time of the api's processes over the run, in cores (1.0: one core all along), and how
    # busy the machine's cores were (1.0: all of them): whether the api was starved or the limit.
    api_cores: float
    machine_busy: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def process_tree(root: int) -> list[int]:
    """`root` and its children (the api's supervisor and its workers), from /proc."""
    pids = [root]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == root:
            pids.append(int(stat.parent.name))
    return pids


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def machine_ticks() -> tuple[int, int]:
    """(busy, all) clock ticks of every core since boot, from /proc/stat."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return sum(fields) - idle, sum(fields)


def percentile(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


async def run_scenario(
    port: int, api_pid: int, name: str, make_path: Callable[[random.Random], str], concurrency: int, seconds: float
) -> Result:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker(index: int) -> None:
        nonlocal errors
        rng = random.Random(f"{name}-{index}")
        connection = HttpConnection("127.0.0.1", port)
        await connection.open()
        while time.perf_counter() < deadline:
            path = make_path(rng)
            started = time.perf_counter()
            status = await connection.get(path)
            latencies.append((time.perf_counter() - started) * 1000)
            if status != 200:
                errors += 1
        connection.writer.close()

    api_pids = process_tree(api_pid)
    cpu_before, (busy_before, all_before) = cpu_seconds(api_pids), machine_ticks()
    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    cpu_after, (busy_after, all_after) = cpu_seconds(api_pids), machine_ticks()
    latencies.sort()
    return Result(
        name,
        concurrency,
        len(latencies),
        errors,
        elapsed,
        statistics.median(latencies),
        percentile(latencies, 0.90),
        percentile(latencies, 0.99),
        latencies[-1],
        (cpu_after - cpu_before) / elapsed,
        (busy_after - busy_before) / max(1, all_after - all_before),
    )


def scenarios(days: float) -> list[tuple[str, Callable[[random.Random], str]]]:
    t0 = int(T0.timestamp() * 1000)
    span = int(days * 86_400_000)
    whole_days = max(1, int(days) - 1)

    def any_time(rng: random.Random) -> int:
        return t0 + rng.randrange(span)

    def any_symbol(rng: random.Random) -> str:
        return rng.choice(list(SYMBOLS))

    def day_start(rng: random.Random) -> int:
        return t0 + rng.randrange(whole_days) * 86_400_000

    return [
        ("GET /v1/prices/latest?symbol=", lambda r: f"/v1/prices/latest?symbol={any_symbol(r)}"),
        ("GET /v1/prices/latest (all symbols)", lambda r: "/v1/prices/latest"),
        ("GET /v1/prices/at", lambda r: f"/v1/prices/at?symbol={any_symbol(r)}&timestamp={any_time(r)}"),
        ("GET /v1/prices/minmax", lambda r: f"/v1/prices/minmax?symbol={any_symbol(r)}&minute={any_time(r)}"),
        (
            "GET /v1/candles 1m, one day (1,440)",
            lambda r: (
                f"/v1/candles?symbol={any_symbol(r)}&interval=1m&limit=1440&start={(d := day_start(r))}"
                f"&end={d + 86_400_000}"
            ),
        ),
        (
            "GET /v1/candles 1h, one week (168)",
            lambda r: f"/v1/candles?symbol={any_symbol(r)}&interval=1h&limit=168&start={t0}",
        ),
        (
            "GET /api/v3/klines 1m limit=1000",
            lambda r: f"/api/v3/klines?symbol={any_symbol(r)}&interval=1m&limit=1000&startTime={any_time(r)}",
        ),
        (
            "GET /v1/stats, one hour",
            lambda r: f"/v1/stats?symbol={any_symbol(r)}&start={(s := any_time(r))}&end={s + 3_600_000}",
        ),
        (
            "GET /v1/trades json, 1,000 trades",
            lambda r: (
                f"/v1/trades?symbol={any_symbol(r)}&format=json&limit=1000&start={(s := any_time(r))}"
                f"&end={s + 3_600_000}"
            ),
        ),
        ("GET /v1/symbols", lambda r: "/v1/symbols"),
    ]


# The --workers runs: small questions, where one process is CPU-bound, and the 1m candles.
WORKER_SCENARIOS = "latest?symbol=,prices/at,minmax,candles 1m"


@dataclass
class ExportResult:
    rows: int
    megabytes: float
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds


async def run_export(port: int, path: str) -> ExportResult:
    counted = {"lines": 0, "bytes": 0}

    def count(body: bytes) -> None:
        counted["lines"] += body.count(b"\n")
        counted["bytes"] += len(body)

    connection = HttpConnection("127.0.0.1", port)
    await connection.open()
    started = time.perf_counter()
    status = await connection.get(path, count)
    elapsed = time.perf_counter() - started
    connection.writer.close()
    assert status == 200, status
    return ExportResult(counted["lines"] - 1, counted["bytes"] / 1e6, elapsed)


def drive(
    port: int,
    api_pid: int,
    days: float,
    seconds: float,
    concurrencies: list[int],
    names: list[str],
    exports: bool,
    queue: multiprocessing.Queue[tuple[str, object]],
) -> None:
    """The load generator's process: the named scenarios at every concurrency, then the exports."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    chosen = [(name, make_path) for name, make_path in scenarios(days) if name in names]

    async def main() -> None:
        # Warm up: connections in the pool, statements compiled and planned (in every worker:
        # which worker accepts a connection is up to the kernel, hence several connections).
        for _, make_path in chosen:
            await run_scenario(port, api_pid, "warmup", make_path, 4, 0.5)
        for concurrency in concurrencies:
            for name, make_path in chosen:
                result = await run_scenario(port, api_pid, name, make_path, concurrency, seconds)
                queue.put(("result", asdict(result)))
        if not exports:
            return
        t0 = int(T0.timestamp() * 1000)
        for label, hours in (("one hour", 1), ("one day", 24)):
            start = t0 + 86_400_000
            path = f"/v1/trades?symbol=BTCUSDT&format=csv&start={start}&end={start + hours * 3_600_000}"
            for _ in range(3):
                export = await run_export(port, path)
                queue.put(("export", {"label": label, **asdict(export)}))

    asyncio.run(main())
    queue.put(("done", None))


def measure(
    api: subprocess.Popen[bytes],
    port: int,
    args: argparse.Namespace,
    concurrencies: list[int],
    names: list[str],
    exports: bool,
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """Drives the api on `port` from a second process; returns the results and the exports."""
    context = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[tuple[str, Any]] = context.Queue()
    driver = context.Process(
        target=drive, args=(port, api.pid, args.days, args.seconds, concurrencies, names, exports, queue)
    )
    driver.start()
    results: list[dict[str, object]] = []
    export_results: list[dict[str, object]] = []
    while True:
        kind, payload = queue.get()
        if kind == "done":
            break
        (results if kind == "result" else export_results).append(payload)
        log(json.dumps(payload))
    driver.join()
    return results, export_results


# --- the api process ------------------------------------------------------------------------------


def start_api(api_url: str, port: int, workers: int, extra_env: dict[str, str]) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "API_DATABASE_URL": api_url,
        "API_HOST": "127.0.0.1",
        "API_PORT": str(port),
        "API_LOG_LEVEL": "WARNING",
        "API_WORKERS": str(workers),
        # PostgreSQL is on loopback: TLS would only cost CPU (see API_DB_SSL in README).
        "API_DB_SSL": "disable",
        **extra_env,
    }
    return subprocess.Popen([sys.executable, "-m", "api"], cwd=REPO, env=env)


def stop_api(api: subprocess.Popen[bytes]) -> None:
    api.terminate()  # with several workers, the supervisor stops them before it exits
    api.wait(timeout=30)


def wait_ready(port: int, timeout_s: float = 30) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the api did not become ready")


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# --- main ------------------------------------------------------------------------------------------


def latency_table(results: list[dict[str, object]], first_column: str) -> list[str]:
    lines = [
        f"| endpoint | {first_column} | requests/s | p50 ms | p90 ms | p99 ms | max ms | non-200 "
        "| api CPU (cores) | machine busy |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['name']} | {r['label']} | {rate(r):,.0f} | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} "
            f"| {r['p99_ms']:.2f} | {r['max_ms']:.1f} | {r['errors']} | {r['api_cores']:.2f} "
            f"| {r['machine_busy']:.0%} |"
        )
    return lines


def rate(result: dict[str, object]) -> float:
    return float(result["requests"]) / float(result["seconds"])  # type: ignore[arg-type]


def report(
    results: list[dict[str, object]],
    exports: list[dict[str, object]],
    by_workers: list[dict[str, object]],
    args: argparse.Namespace,
) -> str:
    lines = [
        f"{args.trades:,} trades over {args.days:g} days, 4 symbols; {args.seconds:g} s per endpoint and concurrency.",
    ]
    if results:
        lines += ["", *latency_table([{**r, "label": r["concurrency"]} for r in results], "concurrent connections")]
    if exports:
        lines += ["", "| CSV export (BTCUSDT) | rows | MB | seconds | rows/s |", "|---|---:|---:|---:|---:|"]
        for e in exports:
            per_second = float(e["rows"]) / float(e["seconds"])  # type: ignore[arg-type]
            lines.append(
                f"| {e['label']} | {e['rows']:,} | {e['megabytes']:.1f} | {e['seconds']:.2f} | {per_second:,.0f} |"
            )
    if by_workers:
        lines += ["", f"{args.workers_concurrency} concurrent connections, by API_WORKERS (run by run):", ""]
        lines += latency_table(sorted(by_workers, key=lambda r: str(r["name"])), "api processes")
        # Over every round: all requests of a setting over all its seconds.
        totals: dict[tuple[str, object], list[float]] = {}
        for r in by_workers:
            total = totals.setdefault((str(r["name"]), r["label"]), [0.0, 0.0])
            total[0] += float(r["requests"])  # type: ignore[arg-type]
            total[1] += float(r["seconds"])  # type: ignore[arg-type]
        ratios = [
            f"- {name}: {workers} processes {requests / seconds:,.0f}/s, one process {one[0] / one[1]:,.0f}/s: "
            f"{requests / seconds / (one[0] / one[1]):.2f}x"
            for (name, workers), (requests, seconds) in totals.items()
            if workers != 1 and (one := totals.get((name, 1)))
        ]
        if ratios:
            lines += ["", "Requests/s over all rounds:", "", *ratios]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--stack-env", default=os.environ.get("STACK_ENV_FILE", str(REPO / ".local/test-stack/stack.env"))
    )
    parser.add_argument("--trades", type=int, default=20_000_000)
    parser.add_argument("--days", type=float, default=7.0, help="time span of the generated trades")
    parser.add_argument("--seconds", type=float, default=15.0, help="duration of each endpoint's run")
    parser.add_argument("--concurrency", default="1,8", help="concurrent connections, comma-separated")
    parser.add_argument(
        "--endpoints",
        default="",
        help="only the endpoints whose name contains one of these, comma-separated (e.g. 'candles 1m'); "
        "the CSV exports run only without this filter",
    )
    parser.add_argument(
        "--workers",
        default="1,2",
        help="then requests/s by number of api processes (API_WORKERS), comma-separated; '' skips it",
    )
    parser.add_argument("--workers-concurrency", type=int, default=8, help="connections of the --workers runs")
    parser.add_argument(
        "--workers-endpoints", default=WORKER_SCENARIOS, help="endpoints of the --workers runs, as --endpoints"
    )
    parser.add_argument(
        "--workers-rounds",
        type=int,
        default=2,
        help="runs of each API_WORKERS, alternating (1, 2, 1, 2): other load on the machine then "
        "weighs on every setting alike",
    )
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--keep", action="store_true", help="keep the database (its name is printed)")
    parser.add_argument("--database", help="reuse a database an earlier --keep run kept: no loading, kept again")
    parser.add_argument("--api-env", action="append", default=[], help="extra API_*=value for the api, repeatable")
    args = parser.parse_args()

    every_name = [name for name, _ in scenarios(args.days)]

    def matching(filter_text: str) -> list[str]:
        parts = [part.strip() for part in filter_text.split(",") if part.strip()]
        return [name for name in every_name if not parts or any(part in name for part in parts)]

    names = matching(args.endpoints)
    worker_names = matching(args.workers_endpoints)
    worker_counts = [int(count) for count in args.workers.split(",") if count.strip()]
    extra_env = dict(item.split("=", 1) for item in args.api_env)

    stack = compose_local.read_env_file(Path(args.stack_env))
    admin_url, api_admin_url = stack["DATABASE_URL"], stack["API_DATABASE_URL"]
    name = args.database or f"bench_api_{uuid.uuid4().hex[:8]}"
    owner_url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    api_url = make_url(api_admin_url).set(database=name).render_as_string(hide_password=False)
    if args.database is None:
        admin_execute(admin_url, f'CREATE DATABASE "{name}"')  # a generated identifier
    api: subprocess.Popen[bytes] | None = None
    try:
        log(f"database {name}")
        if args.database is None:
            migrate(owner_url, "binance_api")
            started = time.monotonic()
            load(owner_url, args.trades, args.days)
            log(f"loaded in {time.monotonic() - started:.0f} s")
        port = free_port()
        results: list[dict[str, object]] = []
        exports: list[dict[str, object]] = []
        if names:
            api = start_api(api_url, port, 1, extra_env)
            wait_ready(port)
            concurrencies = [int(c) for c in args.concurrency.split(",")]
            results, exports = measure(api, port, args, concurrencies, names, exports=not args.endpoints)
            stop_api(api)
            api = None
        by_workers: list[dict[str, object]] = []
        for round_number in range(args.workers_rounds if worker_counts else 0):
            for workers in worker_counts:
                log(f"API_WORKERS={workers}, {args.workers_concurrency} connections, round {round_number + 1}")
                api = start_api(api_url, port, workers, extra_env)
                wait_ready(port)
                runs, _ = measure(api, port, args, [args.workers_concurrency], worker_names, exports=False)
                by_workers += [{**run, "label": workers, "round": round_number + 1} for run in runs]
                stop_api(api)
                api = None
        table = report(results, exports, by_workers, args)
        print("\n" + table + "\n")
        print(f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.platform()}")
        if args.json:
            figures = {"results": results, "exports": exports, "by_workers": by_workers}
            args.json.write_text(json.dumps(figures, indent=1))
    finally:
        if api is not None:
            stop_api(api)
        if args.keep or args.database is not None:
            log(f"kept database {name}")
        else:
            admin_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            log(f"dropped database {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
