"""The api at scale: the API benchmark's latencies over N stored trades of ~1,600 symbols in the
partitioned layout, one size per run, and the sizes side by side.

    .venv/bin/python bench/api_at_scale.py --trades 20000000 --rate 20000 --keep --json .local/scale-20m.json
    .venv/bin/python bench/api_at_scale.py --trades 200000000 --rate 20000 --keep --json .local/scale-200m.json
    .venv/bin/python bench/api_at_scale.py --side-by-side .local/scale-20m.json .local/scale-200m.json

1. A fresh database in the partitioned layout; one maintenance pass (maintenance/partitions.py)
   creates the partitions of the span (and the year before it) before any row arrives.
2. The market of bench/scale_load.py: --trades at --rate trades/s of ~1,600 symbols at the fake
   whole market's rates, generated inside PostgreSQL straight into new daily partitions, with
   the 1 s and 1 m rollups and stored_id_ranges the consumer would build (its proof:
   tests/integration/test_scale_load.py), and a year of 1 m rows for the --year-symbols top
   symbols. The load stops cleanly when free disk falls below 12 GB.
3. The maintenance pass after the span, then VACUUM ANALYZE.
4. Checks the store: stored_id_ranges equals every symbol's id range in trades, the rollups count
   every trade once; and the api's answers against direct SQL for a few symbols.
5. Runs the api (`python -m api`, one uvicorn process, the read-only role, on --api-port) and
   drives the query mix of bench/api_load.py (its client and measurement) at each concurrency;
   the symbol of each request is drawn with the market's own shares.
6. Streams CSV exports (the top symbol, the span's first hour and the whole span), reports rows/s.
7. Drops the database (unless --keep).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import random
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from contextlib import closing
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg2
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "bench"))

import api_load  # noqa: E402
import compose_local  # noqa: E402
import scale_load  # noqa: E402

from bootstrap.__main__ import migrate  # noqa: E402
from fake_binance.exchange_info import load_exchange_info  # noqa: E402
from maintenance.partitions import run_pass  # noqa: E402
from schemas.partitions import PARTITIONED_TABLES, Period, period_start  # noqa: E402

DISK_FLOOR_BYTES = 12 * 10**9  # free disk the load keeps (the machine is shared)
log = api_load.log


# --- the market -------------------------------------------------------------------------------------


def market_names(count: int) -> list[str]:
    """`count` symbols of the whole recorded exchangeInfo: its 1,262 TRADING ones, then others."""
    entries = load_exchange_info(full=True).document(0)["symbols"]
    names = [e["symbol"] for e in entries if e["status"] == "TRADING"]
    names += [e["symbol"] for e in entries if e["status"] != "TRADING"]
    return names[:count]


def plan(args: argparse.Namespace) -> scale_load.Market:
    """The market loaded (and asked about): --trades at --rate trades/s, ending at today's midnight."""
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if args.end:
        end = datetime.fromisoformat(args.end).replace(tzinfo=UTC)
    return scale_load.plan_market(market_names(args.symbols), args.trades, args.rate, end, 15, args.year_symbols)


def shares(market: scale_load.Market) -> list[tuple[str, float]]:
    """(symbol, share of the trades), busiest first: requests ask about symbols as often as they trade."""
    return [(name, n / market.trades) for name, n in market.symbols]


def dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def maintenance_pass(owner_url: str, now: datetime, days: int, compact: bool) -> Any:
    """The maintenance job's pass with `now`: the daily tables keep the span (and a day), the
    monthly ones the year of 1 m rows before it; partitions one day ahead."""
    keep = {t.name: (days + 2 if t.period is Period.DAY else 400) for t in PARTITIONED_TABLES}
    with closing(psycopg2.connect(dsn(owner_url))) as connection:
        return run_pass(connection, now, keep, 1, 60_000, compact=compact)


def load(owner_url: str, market: scale_load.Market, disk_path: str) -> dict[str, float]:
    """Generates the trades and rollups inside PostgreSQL (bench/scale_load.py); returns timings."""
    started = time.monotonic()
    with (
        closing(psycopg2.connect(dsn(owner_url))) as connection,
        scale_load.disk_watch(connection, disk_path, DISK_FLOOR_BYTES) as check_disk,
    ):
        scale_load.load_market(connection, market, check_disk, log)
    return {"load_s": time.monotonic() - started}


def finish(owner_url: str, market: scale_load.Market) -> dict[str, float]:
    """The maintenance pass after the span (partitions whose indexes the load built are marked
    compacted, so it rebuilds none of them), then VACUUM ANALYZE."""
    timings = {}
    started = time.monotonic()
    report = maintenance_pass(owner_url, market.end + timedelta(hours=2), span_days(market), compact=True)
    timings["maintenance_s"] = time.monotonic() - started
    log(f"maintenance: {len(report.compacted)} partitions compacted in {timings['maintenance_s']:.0f} s")
    started = time.monotonic()
    with closing(psycopg2.connect(dsn(owner_url))) as connection:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("VACUUM (ANALYZE)")
    timings["vacuum_analyze_s"] = time.monotonic() - started
    log(f"vacuum analyze in {timings['vacuum_analyze_s']:.0f} s")
    return timings


def span_days(market: scale_load.Market) -> int:
    return math.ceil(market.seconds / 86_400) + 1


def load_symbols(owner_url: str, symbols: list[tuple[str, float]]) -> None:
    names = {name for name, _ in symbols}
    entries = [e for e in load_exchange_info(full=True).document(0)["symbols"] if e["symbol"] in names]
    with closing(psycopg2.connect(dsn(owner_url))) as connection, connection, connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO symbols (symbol, status, base_asset, quote_asset, info) VALUES (%s, %s, %s, %s, %s)",
            [(e["symbol"], e["status"], e["baseAsset"], e["quoteAsset"], json.dumps(e)) for e in entries],
        )


def sizes(owner_url: str) -> dict[str, Any]:
    """Rows and bytes (heap and indexes, over the partitions) of the time-series tables."""
    result: dict[str, Any] = {}
    with closing(psycopg2.connect(dsn(owner_url))) as connection, connection.cursor() as cursor:
        for table in ("trades", "trade_candles_1s", "trade_candles_1m", "stored_id_ranges"):
            # Rows and partitions of the leaves only: ANALYZE gives the parent the sum of them.
            cursor.execute(
                "SELECT coalesce(sum(pg_table_size(c.oid)), 0), coalesce(sum(pg_indexes_size(c.oid)), 0),"
                " coalesce(sum(c.reltuples) FILTER (WHERE c.relkind = 'r'), 0),"
                " count(*) FILTER (WHERE c.relispartition AND c.relname NOT LIKE '%%default')"
                " FROM pg_class c WHERE c.oid = to_regclass(%s)"
                " OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = to_regclass(%s))",
                (table, table),
            )
            heap, index, rows, relations = cursor.fetchone()
            result[table] = {"heap": int(heap), "index": int(index), "rows": int(rows), "relations": int(relations)}
        cursor.execute("SELECT pg_database_size(current_database())")
        result["database"] = int(cursor.fetchone()[0])
    return result


# --- checks -----------------------------------------------------------------------------------------


def check_store(owner_url: str, market: scale_load.Market) -> list[str]:
    """stored_id_ranges is every symbol's id range in trades; the rollups count each trade once
    (the 1 m rollup over the span: before it lie the year rows of the top symbols)."""
    with closing(psycopg2.connect(dsn(owner_url))) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM (SELECT symbol, min(trade_id) AS first_id, max(trade_id) AS last_id FROM trades"
            " GROUP BY symbol) t FULL JOIN (SELECT * FROM stored_id_ranges WHERE kind = 'trades') r USING (symbol)"
            " WHERE (t.first_id, t.last_id) IS DISTINCT FROM (r.first_id, r.last_id)"
        )
        (range_mismatches,) = cursor.fetchone()
        cursor.execute(
            "SELECT (SELECT count(*) FROM trades), (SELECT sum(trade_count) FROM trade_candles_1s),"
            " (SELECT sum(trade_count) FROM trade_candles_1m WHERE open_time >= %s),"
            " (SELECT count(*) FROM stored_id_ranges)",
            (market.start,),
        )
        stored, in_seconds, in_minutes, ranges = cursor.fetchone()
    assert range_mismatches == 0, f"{range_mismatches} symbols' stored_id_ranges differ from their trades"
    assert stored == in_seconds == in_minutes, (stored, in_seconds, in_minutes)
    return [
        f"stored_id_ranges: {ranges:,} symbols, each equal to its trades' id range",
        f"rollups: the 1 s and 1 m rollups count {in_seconds:,} trades, the trades stored",
    ]


def get_json(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=60) as response:
        return json.loads(response.read())


def check_answers(owner_url: str, port: int, market: scale_load.Market) -> list[str]:
    """The api's answers for the top, a middle and the last symbol, against SQL over the trades
    (and, for a day's 1d candle, over the 1 m rollup, which holds the top symbols' year rows too)."""
    symbols = market.symbols
    first, last = market.start, market.end
    rng = random.Random(7)
    checked = []
    with closing(psycopg2.connect(dsn(owner_url))) as connection, connection.cursor() as cursor:
        for symbol in (symbols[0][0], symbols[len(symbols) // 2][0], symbols[-1][0]):
            cursor.execute(
                "SELECT price::text, trade_id FROM trades WHERE symbol = %s ORDER BY trade_time DESC, trade_id DESC"
                " LIMIT 1",
                (symbol,),
            )
            price, trade_id = cursor.fetchone()
            latest = get_json(port, f"/v1/prices/latest?symbol={symbol}")
            assert (Decimal(latest["price"]), latest["trade_id"]) == (Decimal(price), trade_id), (latest, price)

            moment = first + timedelta(seconds=rng.randrange(market.seconds))
            cursor.execute(
                "SELECT price::text, trade_id FROM trades WHERE symbol = %s AND trade_time < %s"
                " ORDER BY trade_time DESC, trade_id DESC LIMIT 1",
                (symbol, moment + timedelta(seconds=1)),
            )
            price, trade_id = cursor.fetchone()
            at = get_json(port, f"/v1/prices/at?symbol={symbol}&timestamp={int(moment.timestamp() * 1000)}")
            assert (Decimal(at["price"]), at["trade_id"]) == (Decimal(price), trade_id), (at, price)

            # The busiest minute of that hour, so that a tail symbol's check is not of an empty one.
            cursor.execute(
                "SELECT date_trunc('minute', trade_time, 'UTC') AS m, max(price)::text, min(price)::text, count(*)"
                " FROM trades WHERE symbol = %s AND trade_time >= %s AND trade_time < %s"
                " GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1",
                (symbol, first, last),
            )
            minute, high, low, count = cursor.fetchone()
            minmax = get_json(port, f"/v1/prices/minmax?symbol={symbol}&minute={int(minute.timestamp() * 1000)}")
            got = (Decimal(minmax["high"]), Decimal(minmax["low"]), minmax["trade_count"])
            assert got == (Decimal(high), Decimal(low), count), (minmax, high, low, count)

            cursor.execute("SELECT count(*), sum(quantity)::text FROM trades WHERE symbol = %s", (symbol,))
            count, volume = cursor.fetchone()
            start_ms, end_ms = int(first.timestamp() * 1000), int(last.timestamp() * 1000)
            minutes = get_json(
                port, f"/v1/candles?symbol={symbol}&interval=1m&limit=1000&start={start_ms}&end={end_ms}"
            )["candles"]
            if market.seconds <= 60_000:  # the span in one page of 1m candles
                assert sum(c["trade_count"] for c in minutes) == count, (symbol, "1m")
                assert sum(Decimal(c["volume"]) for c in minutes) == Decimal(volume), (symbol, "1m")
            day = period_start(last - timedelta(microseconds=1), Period.DAY)
            cursor.execute(
                "SELECT sum(trade_count), sum(volume)::text FROM trade_candles_1m WHERE symbol = %s"
                " AND open_time >= %s AND open_time < %s",
                (symbol, day, day + timedelta(days=1)),
            )
            day_count, day_volume = cursor.fetchone()
            day_ms = int(day.timestamp() * 1000)
            days = get_json(port, f"/v1/candles?symbol={symbol}&interval=1d&start={day_ms}&end={day_ms + 86_400_000}")[
                "candles"
            ]
            assert (days[0]["trade_count"], Decimal(days[0]["volume"])) == (day_count, Decimal(day_volume)), symbol
            checked.append(
                f"{symbol}: latest, price at {moment:%Y-%m-%dT%H:%M:%S}Z, minute {minute:%Y-%m-%dT%H:%M}Z"
                f" ({count_text(minmax['trade_count'])}), the span in 1m ({count:,} trades),"
                f" the day {day:%Y-%m-%d} in 1d"
            )
    return checked


def count_text(count: int) -> str:
    return f"{count:,} trades"


# --- the load generator (its own process) ---------------------------------------------------------------


def scenarios(market: scale_load.Market) -> list[tuple[str, Callable[[random.Random], str]]]:
    t0 = int(market.start.timestamp() * 1000)
    span = market.seconds * 1000
    names = [name for name, _ in shares(market)]
    weights = [share for _, share in shares(market)]
    top = names[: market.year_symbols]
    # The span's last UTC day: at a busy market's rate the span is hours, within that day.
    day = int(period_start(market.end - timedelta(microseconds=1), Period.DAY).timestamp() * 1000)

    def any_symbol(rng: random.Random) -> str:
        return rng.choices(names, weights)[0]

    def any_time(rng: random.Random) -> int:
        return t0 + rng.randrange(span)

    year_ago = int(market.year_start.timestamp() * 1000)
    return [
        ("latest price", lambda r: f"/v1/prices/latest?symbol={any_symbol(r)}"),
        ("price at a second", lambda r: f"/v1/prices/at?symbol={any_symbol(r)}&timestamp={any_time(r)}"),
        ("minute high/low", lambda r: f"/v1/prices/minmax?symbol={any_symbol(r)}&minute={any_time(r)}"),
        (
            "one day of 1m candles",
            lambda r: f"/v1/candles?symbol={any_symbol(r)}&interval=1m&limit=1440&start={day}&end={day + 86_400_000}",
        ),
        (
            f"a year of 1d candles (top {len(top)} symbols)",
            lambda r: f"/v1/candles?symbol={r.choice(top)}&interval=1d&limit=366&start={year_ago}",
        ),
    ]


def drive(
    port: int,
    api_pid: int,
    args: argparse.Namespace,
    market: scale_load.Market,
    queue: multiprocessing.Queue[tuple[str, object]],
) -> None:
    """The load generator: each scenario at each concurrency, then the CSV exports."""
    chosen = scenarios(market)

    async def main() -> None:
        for _, make_path in chosen:  # connections in the pool, statements planned
            await api_load.run_scenario(port, api_pid, "warmup", make_path, 4, 1.0)
        for concurrency in [int(c) for c in args.concurrency.split(",")]:
            for name, make_path in chosen:
                result = await api_load.run_scenario(port, api_pid, name, make_path, concurrency, args.seconds)
                queue.put(("result", asdict(result)))
        # The span's first hour, and the whole span (hours at a busy market's rate).
        first, end = int(market.start.timestamp() * 1000), int(market.end.timestamp() * 1000)
        for label, until in (("one hour", min(end, first + 3_600_000)), ("the span", end)):
            path = f"/v1/trades?symbol={market.symbols[0][0]}&format=csv&start={first}&end={until}"
            for _ in range(3):
                export = await api_load.run_export(port, path)
                queue.put(("export", {"label": label, **asdict(export)}))

    asyncio.run(main())
    queue.put(("done", None))


def measure(
    api: Any, port: int, args: argparse.Namespace, market: scale_load.Market
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    context = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[tuple[str, Any]] = context.Queue()
    driver = context.Process(target=drive, args=(port, api.pid, args, market, queue))
    driver.start()
    results: list[dict[str, Any]] = []
    exports: list[dict[str, Any]] = []
    while True:
        kind, payload = queue.get()
        if kind == "done":
            break
        (results if kind == "result" else exports).append(payload)
        log(json.dumps(payload))
    driver.join()
    return results, exports


# --- the report ----------------------------------------------------------------------------------------


AIMS = {"latest price": 5.0, "price at a second": 10.0, "minute high/low": 10.0, "one day of 1m candles": 100.0}


def side_by_side(runs: list[dict[str, Any]]) -> str:
    """p50/p99 of every scenario and concurrency, one column pair per size; then exports and sizes."""
    heads = [f"{run['trades'] / 1e6:g} M trades" + "".join(f", {e}" for e in run.get("api_env", [])) for run in runs]
    lines = [
        "| query | connections | aim p99 | " + " | ".join(f"{h} p50 / p99 ms (req/s)" for h in heads) + " |",
        "|---|---:|---:|" + "---:|" * len(runs),
    ]
    keys = [(r["name"], r["concurrency"]) for r in runs[0]["results"]]
    for name, concurrency in keys:
        cells = []
        for run in runs:
            found = [r for r in run["results"] if (r["name"], r["concurrency"]) == (name, concurrency)]
            r = found[0] if found else None
            cells.append(
                "-"
                if r is None
                else f"{r['p50_ms']:.2f} / {r['p99_ms']:.2f} ({r['requests'] / r['seconds']:,.0f})"
                + (f", {r['errors']} non-200" if r["errors"] else "")
            )
        aim = f"< {AIMS[name]:g} ms" if name in AIMS and concurrency == 1 else ""
        lines.append(f"| {name} | {concurrency} | {aim} | " + " | ".join(cells) + " |")
    lines += ["", "| CSV export (top symbol) | " + " | ".join(f"{h} rows/s" for h in heads) + " |"]
    lines.append("|---|" + "---:|" * len(runs))
    for label in ("one hour", "the span"):
        cells = []
        for run in runs:
            rates = [e["rows"] / e["seconds"] for e in run["exports"] if e["label"] == label]
            rows = [e["rows"] for e in run["exports"] if e["label"] == label]
            cells.append(f"{statistics_median(rates):,.0f} ({rows[0]:,} rows)" if rates else "-")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "| store | " + " | ".join(heads) + " |", "|---|" + "---:|" * len(runs)]
    for label, value in (
        ("trades partitions (without DEFAULT)", lambda run: f"{run['sizes']['trades']['relations']}"),
        ("trades heap + indexes GB", lambda run: f"{gb(run['sizes']['trades'])}"),
        ("1 s rollup rows / GB", lambda run: rows_and_gb(run["sizes"]["trade_candles_1s"])),
        ("1 m rollup rows / GB", lambda run: rows_and_gb(run["sizes"]["trade_candles_1m"])),
        ("database GB", lambda run: f"{run['sizes']['database'] / 1e9:.2f}"),
        ("bytes per trade (database)", lambda run: f"{run['sizes']['database'] / run['trades']:.0f}"),
        ("market rate (trades/s), span", lambda run: f"{run['rate']:,.0f}, {run['span']}"),
        ("load s (trades/s)", lambda run: load_text(run)),
        ("maintenance pass / VACUUM ANALYZE s", lambda run: maintenance_text(run["timings"])),
        ("load average during the load", lambda run: str(run.get("load_load_average") or "-")),
        ("load average during the measurement", lambda run: run["load_average"]),
    ):
        lines.append(f"| {label} | " + " | ".join(value(run) for run in runs) + " |")
    return "\n".join(lines)


def statistics_median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def gb(size: dict[str, int]) -> str:
    return f"{size['heap'] / 1e9:.2f} + {size['index'] / 1e9:.2f}"


def rows_and_gb(size: dict[str, int]) -> str:
    return f"{size['rows']:,} / {(size['heap'] + size['index']) / 1e9:.2f}"


def load_text(run: dict[str, Any]) -> str:
    if "load_s" not in run["timings"]:
        return "- (an earlier run's database)"
    seconds = run["timings"]["load_s"]
    return f"{seconds:.0f} ({run['trades'] / seconds:,.0f})"


def maintenance_text(timings: dict[str, float]) -> str:
    if "maintenance_s" not in timings:
        return "-"
    return f"{timings['maintenance_s']:.0f} / {timings['vacuum_analyze_s']:.0f}"


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# --- main ---------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    stack = compose_local.read_env_file(Path(args.stack_env))
    admin_url, api_admin_url = stack["DATABASE_URL"], stack["API_DATABASE_URL"]
    name = args.database or f"bench_scale_{uuid.uuid4().hex[:8]}"
    owner_url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    api_url = make_url(api_admin_url).set(database=name).render_as_string(hide_password=False)
    market = plan(args)
    symbols = shares(market)
    timings: dict[str, float] = {}
    load_averages = {}
    api = None
    if args.database is None:
        api_load.admin_execute(admin_url, f'CREATE DATABASE "{name}"')  # a generated identifier
    try:
        log(
            f"database {name}: {market.trades:,} trades of {len(symbols)} symbols at {args.rate:,.0f} trades/s,"
            f" {market.start:%Y-%m-%d %H:%M} to {market.end:%Y-%m-%d %H:%M} UTC"
        )
        if args.database is None:
            migrate(owner_url, make_url(api_admin_url).username or "")
            # "Now" at the span's end: the retention reaches back over the whole span, so every
            # day's partition exists before its rows arrive (none wait in DEFAULT).
            report = maintenance_pass(owner_url, market.end, span_days(market), compact=False)
            log(f"partitions created ahead: {sum(len(v) for v in report.created.values())}")
            load_symbols(owner_url, symbols)
            load_averages["load"] = load_average()
            timings.update(load(owner_url, market, args.disk_path))
            timings.update(finish(owner_url, market))
            load_averages["load"] += f" -> {load_average()}"
        stored = sizes(owner_url)
        checks = check_store(owner_url, market)
        for line in checks:
            log(line)
        port = args.api_port
        api = api_load.start_api(api_url, port, 1, dict(item.split("=", 1) for item in args.api_env))
        api_load.wait_ready(port)
        answers = check_answers(owner_url, port, market)
        for line in answers:
            log(f"answers equal to SQL over the trades: {line}")
        before = load_average()
        results, exports = measure(api, port, args, market)
        figures = {
            "trades": market.trades,
            "symbols": len(symbols),
            "rate": args.rate,
            "span": f"{market.start:%Y-%m-%d %H:%M} to {market.end:%Y-%m-%d %H:%M} UTC",
            "load_load_average": load_averages.get("load", ""),
            "seconds": args.seconds,
            "results": results,
            "exports": exports,
            "sizes": stored,
            "timings": timings,
            "checks": checks + answers,
            "load_average": f"{before} -> {load_average()}",
            "database": name,
            "api_env": args.api_env,
        }
        return figures
    finally:
        if api is not None:
            api_load.stop_api(api)
        if args.keep or args.database is not None:
            log(f"kept database {name}")
        else:
            api_load.admin_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            log(f"dropped database {name}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--stack-env", default=os.environ.get("STACK_ENV_FILE", str(REPO / ".local/test-stack/stack.env"))
    )
    parser.add_argument("--trades", type=int, default=20_000_000)
    parser.add_argument("--symbols", type=int, default=1600)
    parser.add_argument(
        "--rate", type=float, default=20_000.0, help="the market's trades/s in all: the span is --trades at this rate"
    )
    parser.add_argument("--end", help="the span's end, UTC (ISO, e.g. 2026-12-02) [today's midnight]")
    parser.add_argument(
        "--year-symbols", type=int, default=5, help="top symbols with a year of 1 m rows before the span"
    )
    parser.add_argument("--api-port", type=int, default=41432, help="the api's port (127.0.0.1)")
    parser.add_argument(
        "--disk-path", default="/var/lib/postgresql", help="the load stops when free disk here falls below 12 GB"
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each query's run")
    parser.add_argument("--concurrency", default="1,8", help="concurrent connections, comma-separated")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the database (its name is printed)")
    parser.add_argument("--database", help="measure a database an earlier --keep run kept (same --trades/--rate/--end)")
    parser.add_argument("--api-env", action="append", default=[], help="extra API_*=value for the api, repeatable")
    parser.add_argument("--side-by-side", nargs="+", type=Path, help="only print the report of these --json files")
    args = parser.parse_args()
    if args.side_by_side:
        print(side_by_side([json.loads(path.read_text()) for path in args.side_by_side]))
        return 0
    figures = run(args)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    print("\n" + side_by_side([figures]) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
