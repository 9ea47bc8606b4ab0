"""The api at scale: the API benchmark's latencies over N stored trades of ~1,600 symbols in the
partitioned layout, one size per run, and the sizes side by side.

    .venv/bin/python bench/api_at_scale.py --trades 20000000 --days 20 --json .local/scale-20m.json
    .venv/bin/python bench/api_at_scale.py --trades 60000000 --days 20 --json .local/scale-60m.json
    .venv/bin/python bench/api_at_scale.py --side-by-side .local/scale-20m.json .local/scale-60m.json

1. A fresh database in the partitioned layout; one maintenance pass (maintenance/partitions.py)
   creates the daily and monthly partitions of the whole span before any row arrives.
2. The trades, of ~1,600 symbols of the whole recorded exchangeInfo (TRADING ones first) with Zipf-like shares (the
   symbol of rank k gets 1/k of the top one's), each symbol's trades evenly spread over --days,
   ids growing with time. Batch by batch (a slice of market time, about 1 million trades), the
   batch is generated inside PostgreSQL into the consumer's own staging table (no row travels
   through Python), then moved by the consumer's own statement (consumer/sink.py's
   insert_new_trades): the same INSERT, the same 1 s and 1 m rollups and the same
   stored_id_ranges, in one transaction per batch, as the stream would store them.
3. The maintenance pass after the span (the closed partitions' indexes rebuilt, as in
   production), then VACUUM ANALYZE.
4. Checks the store: stored_id_ranges equals every symbol's id range in trades, the rollups count
   every trade once; and the api's answers against direct SQL over the trades for a few symbols.
5. Runs the api (`python -m api`, one uvicorn process, the read-only role) and drives the query mix
   of bench/api_load.py (its client and measurement) at each concurrency; the symbol of each
   request is drawn with the market's own shares (the busy symbols are asked about most).
6. Streams CSV exports (the top symbol, one hour and one day) and reports rows/s.
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

from bootstrap.__main__ import migrate  # noqa: E402
from consumer.sink import PREPARED_STATEMENTS  # noqa: E402
from fake_binance.exchange_info import load_exchange_info  # noqa: E402
from maintenance.partitions import run_pass  # noqa: E402
from schemas.partitions import PARTITIONED_TABLES, Period  # noqa: E402

DAY_US = 86_400_000_000
BATCH_TRADES = 1_000_000
FIRST_ID = 100_000_000
log = api_load.log


# --- the market -------------------------------------------------------------------------------------


def market_symbols(count: int) -> list[tuple[str, float]]:
    """(symbol, share) of `count` symbols of the whole recorded exchangeInfo (its 1,262 TRADING
    ones, then others), BTCUSDT and ETHUSDT first; shares Zipf-like by that rank, summing to 1."""
    entries = load_exchange_info(full=True).document(0)["symbols"]
    names = [e["symbol"] for e in entries if e["status"] == "TRADING"]
    names += [e["symbol"] for e in entries if e["status"] != "TRADING"]
    names = ["BTCUSDT", "ETHUSDT"] + [n for n in names if n not in ("BTCUSDT", "ETHUSDT")]
    names = names[:count]
    weights = [1 / (rank + 1) for rank in range(len(names))]
    total = sum(weights)
    return [(name, weight / total) for name, weight in zip(names, weights, strict=True)]


def span_of(args: argparse.Namespace) -> tuple[datetime, datetime]:
    """The market time the trades cover: --days whole UTC days ending at today's midnight."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=args.days), today


def dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def maintenance_pass(owner_url: str, now: datetime, days: int, compact: bool) -> Any:
    """The maintenance job's pass with `now`: the daily tables keep the span (and a day), the
    monthly ones a year; partitions one day ahead."""
    keep = {t.name: (days + 2 if t.period is Period.DAY else 365) for t in PARTITIONED_TABLES}
    with closing(psycopg2.connect(dsn(owner_url))) as connection:
        return run_pass(connection, now, keep, 1, 60_000, compact=compact)


# Each symbol's trade g of n lies at first + floor(g*span/n) µs (numeric: g*span passes 2**63);
# slice k of K holds the g with floor(g*K/n) = k, i.e. g from ceil(k*n/K) to ceil((k+1)*n/K) - 1.
# Prices move slowly (a wave over the symbol's history) and wiggle fast, rounded to a tick of
# about six significant digits; sizes and sides vary by id. Ordered by symbol: the sink's batch
# order does not matter to its statement, and PostgreSQL inserts each symbol's run together.
_GENERATE_BATCH = """
INSERT INTO trades_staging (symbol, trade_id, price, quantity, trade_time_us, buyer_is_maker, event_time_us)
SELECT s.symbol, s.first_id + g,
    round(s.base_price * (1 + 0.03 * sin(g / 250000.0) + 0.001 * sin(g / 97.0))::numeric, s.decimals),
    round((0.00001 + ((g * 7919) %% 100000) / 200000.0)::numeric, 5),
    %(first_us)s + div(g::numeric * %(span_us)s, s.n)::bigint,
    (g * 31) %% 7 < 3,
    %(first_us)s + div(g::numeric * %(span_us)s, s.n)::bigint + 3000
FROM bench_market s,
    generate_series(
        (%(k)s * s.n + %(slices)s - 1) / %(slices)s,
        ((%(k)s + 1) * s.n + %(slices)s - 1) / %(slices)s - 1
    ) g
ORDER BY s.symbol, g
"""


def create_market(cursor: Any, symbols: list[tuple[str, float]], trades: int) -> int:
    """The bench_market table (symbol, n, first_id, base_price, decimals); returns the trades it holds."""
    rng = random.Random(15)
    cursor.execute(
        "CREATE TABLE bench_market (symbol text PRIMARY KEY, n bigint NOT NULL, first_id bigint NOT NULL,"
        " base_price numeric NOT NULL, decimals int NOT NULL)"
    )
    rows = []
    for name, share in sorted(symbols):
        base = 10 ** rng.uniform(-4, 4.9)
        decimals = max(0, min(8, 5 - math.floor(math.log10(base))))
        rows.append((name, max(1, round(trades * share)), FIRST_ID, Decimal(f"{base:.8f}"), decimals))
    cursor.executemany("INSERT INTO bench_market VALUES (%s, %s, %s, %s, %s)", rows)
    return sum(row[1] for row in rows)


def load(owner_url: str, args: argparse.Namespace, symbols: list[tuple[str, float]]) -> dict[str, float]:
    """Generates and stores the trades through the consumer's statement; returns load timings."""
    first, last = span_of(args)
    first_us = int(first.timestamp()) * 1_000_000
    span_us = int((last - first).total_seconds()) * 1_000_000
    insert_new = PREPARED_STATEMENTS["insert_new_trades"]
    timings: dict[str, float] = {}
    with closing(psycopg2.connect(dsn(owner_url))) as connection:
        with connection, connection.cursor() as cursor:
            total = create_market(cursor, symbols, args.trades)
        slices = max(args.days, math.ceil(total / BATCH_TRADES))
        started = time.monotonic()
        stored = 0
        for k in range(slices):
            with connection, connection.cursor() as cursor:
                cursor.execute("SET LOCAL work_mem = '256MB'")
                cursor.execute(
                    "CREATE TEMPORARY TABLE IF NOT EXISTS trades_staging (symbol text, trade_id bigint,"
                    " price numeric, quantity numeric, trade_time_us bigint, buyer_is_maker boolean,"
                    " event_time_us bigint) ON COMMIT DELETE ROWS"
                )
                cursor.execute(_GENERATE_BATCH, {"first_us": first_us, "span_us": span_us, "k": k, "slices": slices})
                cursor.execute(insert_new)
                inserted, overlap = cursor.fetchone()
                assert not overlap, f"slice {k} overlaps stored ids: the generator is wrong"
                stored += inserted
            if k % 10 == 9 or k == slices - 1:
                rate = stored / (time.monotonic() - started)
                log(f"slice {k + 1}/{slices}: {stored:,} trades stored, {rate:,.0f} trades/s")
        timings["load_s"] = time.monotonic() - started
        assert stored == total, (stored, total)
    return timings


def finish(owner_url: str, args: argparse.Namespace) -> dict[str, float]:
    """The maintenance pass after the span (closed partitions' indexes rebuilt), then statistics."""
    timings = {}
    started = time.monotonic()
    report = maintenance_pass(owner_url, span_of(args)[1] + timedelta(hours=2), args.days, compact=True)
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


def check_store(owner_url: str) -> list[str]:
    """stored_id_ranges is every symbol's id range in trades; the rollups count each trade once."""
    with closing(psycopg2.connect(dsn(owner_url))) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM (SELECT symbol, min(trade_id) AS first_id, max(trade_id) AS last_id FROM trades"
            " GROUP BY symbol) t FULL JOIN (SELECT * FROM stored_id_ranges WHERE kind = 'trades') r USING (symbol)"
            " WHERE (t.first_id, t.last_id) IS DISTINCT FROM (r.first_id, r.last_id)"
        )
        (range_mismatches,) = cursor.fetchone()
        cursor.execute(
            "SELECT (SELECT count(*) FROM trades), (SELECT sum(trade_count) FROM trade_candles_1s),"
            " (SELECT sum(trade_count) FROM trade_candles_1m), (SELECT count(*) FROM stored_id_ranges)"
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


def check_answers(owner_url: str, port: int, args: argparse.Namespace, symbols: list[tuple[str, float]]) -> list[str]:
    """The api's answers for the top, a middle and the last symbol, against SQL over the trades."""
    first, last = span_of(args)
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

            moment = first + timedelta(seconds=rng.randrange(3600, int((last - first).total_seconds())))
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
                (symbol, moment - timedelta(days=1), moment),
            )
            minute, high, low, count = cursor.fetchone()
            minmax = get_json(port, f"/v1/prices/minmax?symbol={symbol}&minute={int(minute.timestamp() * 1000)}")
            got = (Decimal(minmax["high"]), Decimal(minmax["low"]), minmax["trade_count"])
            assert got == (Decimal(high), Decimal(low), count), (minmax, high, low, count)

            day = first + timedelta(days=rng.randrange(args.days))
            cursor.execute(
                "SELECT count(*), sum(quantity)::text FROM trades WHERE symbol = %s AND trade_time >= %s"
                " AND trade_time < %s",
                (symbol, day, day + timedelta(days=1)),
            )
            count, volume = cursor.fetchone()
            start_ms = int(day.timestamp() * 1000)
            minutes = get_json(
                port,
                f"/v1/candles?symbol={symbol}&interval=1m&limit=1440&start={start_ms}&end={start_ms + 86_400_000}",
            )["candles"]
            days = get_json(
                port, f"/v1/candles?symbol={symbol}&interval=1d&start={start_ms}&end={start_ms + 86_400_000}"
            )["candles"]
            assert sum(c["trade_count"] for c in minutes) == count == days[0]["trade_count"], (symbol, day)
            assert sum(Decimal(c["volume"]) for c in minutes) == Decimal(volume) == Decimal(days[0]["volume"])
            checked.append(
                f"{symbol}: latest, price at {moment:%Y-%m-%dT%H:%M:%S}Z, minute {minute:%Y-%m-%dT%H:%M}Z"
                f" ({count_text(minmax['trade_count'])}), the day {day:%Y-%m-%d} in 1m and 1d ({count:,} trades)"
            )
    return checked


def count_text(count: int) -> str:
    return f"{count:,} trades"


# --- the load generator (its own process) ---------------------------------------------------------------


def scenarios(
    args: argparse.Namespace, symbols: list[tuple[str, float]]
) -> list[tuple[str, Callable[[random.Random], str]]]:
    first, last = span_of(args)
    t0 = int(first.timestamp() * 1000)
    span = int((last - first).total_seconds() * 1000)
    names = [name for name, _ in symbols]
    shares = [share for _, share in symbols]

    def any_symbol(rng: random.Random) -> str:
        return rng.choices(names, shares)[0]

    def any_time(rng: random.Random) -> int:
        return t0 + rng.randrange(span)

    def day_start(rng: random.Random) -> int:
        return t0 + rng.randrange(args.days) * 86_400_000

    year_ago = int((last - timedelta(days=365)).timestamp() * 1000)
    return [
        ("latest price", lambda r: f"/v1/prices/latest?symbol={any_symbol(r)}"),
        ("price at a second", lambda r: f"/v1/prices/at?symbol={any_symbol(r)}&timestamp={any_time(r)}"),
        ("minute high/low", lambda r: f"/v1/prices/minmax?symbol={any_symbol(r)}&minute={any_time(r)}"),
        (
            "one day of 1m candles",
            lambda r: (
                f"/v1/candles?symbol={any_symbol(r)}&interval=1m&limit=1440&start={(d := day_start(r))}"
                f"&end={d + 86_400_000}"
            ),
        ),
        (
            "a year of 1d candles",
            lambda r: f"/v1/candles?symbol={any_symbol(r)}&interval=1d&limit=366&start={year_ago}",
        ),
    ]


def drive(
    port: int,
    api_pid: int,
    args: argparse.Namespace,
    symbols: list[tuple[str, float]],
    queue: multiprocessing.Queue[tuple[str, object]],
) -> None:
    """The load generator: each scenario at each concurrency, then the CSV exports."""
    chosen = scenarios(args, symbols)

    async def main() -> None:
        for _, make_path in chosen:  # connections in the pool, statements planned
            await api_load.run_scenario(port, api_pid, "warmup", make_path, 4, 1.0)
        for concurrency in [int(c) for c in args.concurrency.split(",")]:
            for name, make_path in chosen:
                result = await api_load.run_scenario(port, api_pid, name, make_path, concurrency, args.seconds)
                queue.put(("result", asdict(result)))
        first = int(span_of(args)[0].timestamp() * 1000) + 86_400_000
        for label, hours in (("one hour", 1), ("one day", 24)):
            path = f"/v1/trades?symbol={symbols[0][0]}&format=csv&start={first}&end={first + hours * 3_600_000}"
            for _ in range(3):
                export = await api_load.run_export(port, path)
                queue.put(("export", {"label": label, **asdict(export)}))

    asyncio.run(main())
    queue.put(("done", None))


def measure(
    api: Any, port: int, args: argparse.Namespace, symbols: list[tuple[str, float]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    context = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[tuple[str, Any]] = context.Queue()
    driver = context.Process(target=drive, args=(port, api.pid, args, symbols, queue))
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
    for label in ("one hour", "one day"):
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
        ("load s (trades/s)", lambda run: load_text(run)),
        ("maintenance pass / VACUUM ANALYZE s", lambda run: maintenance_text(run["timings"])),
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
    symbols = market_symbols(args.symbols)
    timings: dict[str, float] = {}
    api = None
    if args.database is None:
        api_load.admin_execute(admin_url, f'CREATE DATABASE "{name}"')  # a generated identifier
    try:
        log(f"database {name}: {args.trades:,} trades of {len(symbols)} symbols over {args.days} days")
        if args.database is None:
            migrate(owner_url, make_url(api_admin_url).username or "")
            # "Now" at the span's end: the retention reaches back over the whole span, so every
            # day's partition exists before its rows arrive (none wait in DEFAULT).
            report = maintenance_pass(owner_url, span_of(args)[1], args.days, compact=False)
            log(f"partitions created ahead: {sum(len(v) for v in report.created.values())}")
            load_symbols(owner_url, symbols)
            timings.update(load(owner_url, args, symbols))
            timings.update(finish(owner_url, args))
        stored = sizes(owner_url)
        checks = check_store(owner_url)
        for line in checks:
            log(line)
        port = api_load.free_port()
        api = api_load.start_api(api_url, port, 1, dict(item.split("=", 1) for item in args.api_env))
        api_load.wait_ready(port)
        answers = check_answers(owner_url, port, args, symbols)
        for line in answers:
            log(f"answers equal to SQL over the trades: {line}")
        before = load_average()
        results, exports = measure(api, port, args, symbols)
        figures = {
            "trades": args.trades,
            "symbols": len(symbols),
            "days": args.days,
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
    parser.add_argument("--days", type=int, default=20, help="whole days of market time, ending at today's midnight")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each query's run")
    parser.add_argument("--concurrency", default="1,8", help="concurrent connections, comma-separated")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the database (its name is printed)")
    parser.add_argument("--database", help="measure a database an earlier --keep run kept (same --trades/--days)")
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
