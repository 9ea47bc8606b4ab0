"""Storage benchmark: the bytes each stored trade costs on disk, all in.

    bash scripts/stack.sh up        # the dev stack (or any stack.env: --stack-env)
    .venv/bin/python bench/storage_cost.py [--trades 1000000] [--symbols 1600] [--rate 1000]

Writes --trades trades of realistic shape (Binance's 8-decimal price and quantity strings, ids
growing per symbol, times at --rate trades/s over the symbols, Zipf-like shares) through the
consumer's sink (COPY + the plain insert, rollups in the same transaction) into a fresh database
in the partitioned layout, then VACUUMs and reports, per stored trade: the trades heap, its primary
key, and the 1-second and 1-minute rollups' share (heap and key), with PostgreSQL's own sizes
(pg_relation_size, pg_indexes_size: main fork, free space map and visibility map included).
Also the disk per day at --rate (the rollups' share per trade depends on how many symbols trade
in each second and minute: run it with the symbols and rate of the market in question).
Runs in its own database, dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import uuid
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import psycopg2
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

import compose_local  # noqa: E402

from bootstrap.__main__ import migrate  # noqa: E402
from consumer import trade_lines  # noqa: E402
from consumer.parse import TradeRow  # noqa: E402
from consumer.sink import RowsByTable, Sink  # noqa: E402
from maintenance.partitions import run_pass  # noqa: E402
from schemas.partitions import PARTITIONED_TABLES  # noqa: E402

KEEP = {table.name: 0 for table in PARTITIONED_TABLES}


def dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def trades(count: int, symbols: int, rate: float, start_us: int, seed: int = 1) -> list[TradeRow]:
    """Zipf-like shares (symbol k gets 1/k of the top one's), times at `rate` in all."""
    rng = random.Random(seed)
    names = [f"SYM{k:04d}USDT" for k in range(symbols)]
    weights = [1 / (k + 1) for k in range(symbols)]
    next_id = dict.fromkeys(names, 1_000_000_000)
    base_price = {name: rng.uniform(0.001, 90_000) for name in names}
    rows = []
    step_us = 1_000_000 / rate
    for n, name in enumerate(rng.choices(names, weights, k=count)):
        price = base_price[name] * (1 + rng.uniform(-0.001, 0.001))
        time_us = start_us + int(n * step_us)
        trade_id = next_id[name]
        next_id[name] += 1
        quantity = f"{rng.choice((0.0001, 0.0012, 0.05, 1, 12.5)) * rng.randint(1, 9):.8f}"
        rows.append(TradeRow(name, trade_id, f"{price:.8f}", quantity, time_us, rng.random() < 0.5, time_us + 3_000))
    return rows


def sizes(cursor: object) -> dict[str, tuple[int, int]]:
    """Heap (with its maps and TOAST) and index bytes per partitioned table, over its partitions."""
    result = {}
    for table in ("trades", "trade_candles_1s", "trade_candles_1m", "stored_id_ranges"):
        cursor.execute(  # type: ignore[attr-defined]
            "SELECT coalesce(sum(pg_table_size(c.oid)), 0), coalesce(sum(pg_indexes_size(c.oid)), 0)"
            " FROM pg_class c WHERE c.oid = to_regclass(%s)"
            " OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = to_regclass(%s))",
            (table, table),
        )
        heap, index = cursor.fetchone()  # type: ignore[attr-defined]
        result[table] = (int(heap), int(index))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trades", type=int, default=1_000_000)
    parser.add_argument("--symbols", type=int, default=1600)
    parser.add_argument("--rate", type=float, default=1000.0, help="trades/s of market time, all symbols")
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument(
        "--stack-env", type=Path, default=Path(os.environ.get("STACK_ENV_FILE", REPO / ".local/stack/stack.env"))
    )
    args = parser.parse_args()
    stack = compose_local.read_env_file(args.stack_env)
    admin_url = stack["DATABASE_URL"]
    name = f"bench_storage_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(dsn(admin_url))
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')  # a generated name
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        migrate(url, api_role="")
        start_us = int(datetime(2026, 11, 30, tzinfo=UTC).timestamp()) * 1_000_000
        with closing(psycopg2.connect(dsn(url))) as connection:
            run_pass(connection, datetime(2026, 11, 30, tzinfo=UTC), KEEP, 3, 5000)
        rows = trades(args.trades, args.symbols, args.rate, start_us)
        sink = Sink(url)
        started = time.perf_counter()
        for first in range(0, len(rows), args.batch):
            sink.write(RowsByTable(trades=[trade_lines.from_row(t) for t in rows[first : first + args.batch]]))
        elapsed = time.perf_counter() - started
        sink.dispose()
        with closing(psycopg2.connect(dsn(url))) as connection:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE")
                as_written = sizes(cursor)
            # The maintenance pass once the day is over: the partitions' indexes rebuilt.
            connection.autocommit = False
            run_pass(connection, datetime(2026, 12, 2, 2, tzinfo=UTC), KEEP, 3, 5000)
            connection.autocommit = True
            with connection.cursor() as cursor:
                measured = sizes(cursor)
                cursor.execute("SELECT count(*) FROM trades")
                stored = cursor.fetchone()[0]
                cursor.execute(
                    "SELECT (SELECT count(*) FROM trade_candles_1s), (SELECT count(*) FROM trade_candles_1m),"
                    " avg(pg_column_size(t.*)) FROM trades t"
                )
                seconds, minutes, row_bytes = cursor.fetchone()
        assert stored == args.trades, (stored, args.trades)
        total = sum(heap + index for heap, index in measured.values())
        written_total = sum(heap + index for heap, index in as_written.values())
        print(f"trades {stored:,} over {args.symbols} symbols at {args.rate:g}/s of market time")
        print(f"written in {elapsed:.1f} s ({stored / elapsed:,.0f} trades/s through the sink)")
        print(f"rollup rows: {seconds:,} seconds, {minutes:,} minutes; mean trades row {float(row_bytes):.1f} B")
        print("as written (after VACUUM):")
        for table, (heap, index) in as_written.items():
            print(f"  {table:<18} heap {heap / stored:>6.1f}  index {index / stored:>6.1f}")
        print(f"  all in {written_total / stored:.1f} B/trade")
        print("after the maintenance pass that follows the day (indexes rebuilt):")
        print(f"{'table':<20} {'heap B/trade':>13} {'index B/trade':>14} {'all B/trade':>12}")
        for table, (heap, index) in measured.items():
            print(f"{table:<20} {heap / stored:>13.1f} {index / stored:>14.1f} {(heap + index) / stored:>12.1f}")
        per_trade = total / stored
        print(f"{'all in':<20} {'':>13} {'':>14} {per_trade:>12.1f}")
        for table, (heap, index) in measured.items():
            per_day = (heap + index) / stored * args.rate * 86_400
            print(f"disk per day at {args.rate:g} trades/s, {table}: {per_day / 1e9:.3f} GB")
        print(f"disk per day at {args.rate:g} trades/s, all in: {per_trade * args.rate * 86_400 / 1e9:.2f} GB")
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
