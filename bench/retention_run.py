"""Retention in action: several days of market time with a short retention, in a few minutes.

    bash scripts/stack.sh up        # the dev stack (or any stack.env: --stack-env)
    .venv/bin/python bench/retention_run.py [--days 8] [--rate 20] [--symbols 20] [--retention-days 2]

Market time runs ahead of the clock: each simulated hour's trades go through the consumer's sink
(the same COPY + insert + rollups as the stream), and after each simulated hour the maintenance
pass runs with that hour as "now". At the end of each simulated day it prints the partitions that
exist (created ahead, the old ones dropped), the disk the time-series tables use, and checks the
answers inside retention against what was sent: /v1/stats over the kept window counts every trade
sent in it exactly, its rollups sum their trades, and a question before the window is a 422.
Runs in its own database, dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg2
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

import compose_local  # noqa: E402

from api.app import create_app  # noqa: E402
from api.settings import ApiSettings  # noqa: E402
from bootstrap.__main__ import migrate  # noqa: E402
from consumer import trade_lines  # noqa: E402
from consumer.parse import TradeRow  # noqa: E402
from consumer.sink import RowsByTable, Sink  # noqa: E402
from maintenance.partitions import run_pass  # noqa: E402
from schemas.partitions import PARTITIONED_TABLES, Period, retention_horizon  # noqa: E402

START = datetime(2026, 11, 1, tzinfo=UTC)


def dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def hour_of_trades(
    rng: random.Random, hour: datetime, rate: float, symbols: list[str], next_id: dict[str, int]
) -> list[TradeRow]:
    count = int(rate * 3600)
    start_us = int(hour.timestamp()) * 1_000_000
    rows = []
    for n in range(count):
        symbol = rng.choice(symbols)
        trade_id = next_id[symbol]
        next_id[symbol] += 1
        time_us = start_us + n * 3_600_000_000 // count
        rows.append(TradeRow(symbol, trade_id, f"{rng.uniform(1, 100):.8f}", "0.50000000", time_us, n % 2 == 0, None))
    return rows


def disk_bytes(cursor: Any) -> int:
    names = [table.name for table in PARTITIONED_TABLES]
    cursor.execute(
        "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
        " WHERE c.relkind = 'r' AND (c.relname = ANY(%s) OR c.relispartition)",
        (names,),
    )
    return int(cursor.fetchone()[0])


def partitions_of(cursor: Any, table: str) -> list[str]:
    cursor.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = to_regclass(%s) ORDER BY 1",
        (table,),
    )
    return [row[0].removeprefix(f"{table}_") for row in cursor.fetchall()]


def rollups_sum_their_trades(cursor: Any, since: datetime) -> bool:
    cursor.execute(
        "SELECT symbol, open_time, trade_count FROM trade_candles_1s WHERE open_time >= %s"
        " EXCEPT SELECT symbol, date_trunc('second', trade_time, 'UTC'), count(*) FROM trades"
        " WHERE trade_time >= %s GROUP BY 1, 2",
        (since, since),
    )
    return not cursor.fetchall()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=8)
    parser.add_argument("--rate", type=float, default=20.0, help="trades/s of market time, all symbols")
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--retention-days", type=int, default=2, help="trades and the 1-second rollup")
    parser.add_argument(
        "--stack-env", type=Path, default=Path(os.environ.get("STACK_ENV_FILE", REPO / ".local/stack/stack.env"))
    )
    args = parser.parse_args()
    stack = compose_local.read_env_file(args.stack_env)
    admin = psycopg2.connect(dsn(stack["DATABASE_URL"]))
    admin.autocommit = True
    name = f"bench_retention_{uuid.uuid4().hex[:8]}"
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')  # a generated name
    url = make_url(stack["DATABASE_URL"]).set(database=name).render_as_string(hide_password=False)
    retention = {table.name: 0 for table in PARTITIONED_TABLES} | {
        "trades": args.retention_days,
        "trade_candles_1s": args.retention_days,
        "trade_candles_1m": 30,
    }
    rng = random.Random(1)
    symbols = [f"SYM{k:03d}USDT" for k in range(args.symbols)]
    next_id = dict.fromkeys(symbols, 1)
    sent_by_hour: dict[datetime, int] = {}
    failures = 0
    try:
        migrate(url, api_role="")
        sink = Sink(url)
        connection = psycopg2.connect(dsn(url))
        print(f"{args.days} days at {args.rate:g} trades/s over {args.symbols} symbols; trades and 1 s rollup kept")
        print(f"{args.retention_days} days, 1 m rollup 30; a maintenance pass every simulated hour\n")
        print(f"{'day':<11} {'trades partitions (p = period)':<58} {'disk MB':>8} {'kept trades':>12} check")
        with TestClient(create_app(ApiSettings(database_url=url))) as client:
            for hour_index in range(args.days * 24):
                hour = START + timedelta(hours=hour_index)
                run_pass(connection, hour, retention, 2, 5000)
                rows = hour_of_trades(rng, hour, args.rate, symbols, next_id)
                for first in range(0, len(rows), 5000):
                    sink.write(RowsByTable(trades=[trade_lines.from_row(t) for t in rows[first : first + 5000]]))
                sent_by_hour[hour] = len(rows)
                if hour.hour != 23:
                    continue
                now = hour + timedelta(hours=1)
                run_pass(connection, now, retention, 2, 5000)
                horizon = retention_horizon(now, args.retention_days, Period.DAY)
                expected = sum(n for h, n in sent_by_hour.items() if h >= horizon)
                with connection, connection.cursor() as cursor:
                    cursor.execute("SELECT count(*) FROM trades")
                    stored = cursor.fetchone()[0]
                    disk = disk_bytes(cursor)
                    parts = partitions_of(cursor, "trades")
                    rollups_ok = rollups_sum_their_trades(cursor, horizon)
                kept = 0
                for symbol in symbols:
                    answer = client.get(
                        "/v1/stats", params={"symbol": symbol, "start": horizon.isoformat(), "end": now.isoformat()}
                    )
                    kept += answer.json()["trade_count"] if answer.status_code == 200 else -(10**9)
                before = client.get(
                    "/v1/stats",
                    params={
                        "symbol": symbols[0],
                        "start": (horizon - timedelta(hours=1)).isoformat(),
                        "end": now.isoformat(),
                    },
                )
                ok = kept == expected == stored and rollups_ok and before.status_code == 422
                failures += not ok
                print(
                    f"{hour:%Y-%m-%d} {' '.join(parts):<58} {disk / 1e6:>8.1f} {kept:>12,} {'exact' if ok else 'WRONG'}"
                )
        sink.dispose()
        connection.close()
        print(f"\nlast 422 before the kept window: {before.json()['detail']}")
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
