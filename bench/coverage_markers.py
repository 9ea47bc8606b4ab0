"""Coverage markers at whole-market scale: what applying them costs the consumer's writer.

    bash scripts/stack.sh up
    .venv/bin/python bench/coverage_markers.py [--streams 6500] [--ticks 20] [--per-batch 250]

Live capture publishes one held marker per stream per PRODUCER_COVERAGE_INTERVAL_S. This writes
--ticks rounds of one marker for each of --streams streams through the consumer's Sink (the same
statement and coverage_apply() the consumer runs), --per-batch markers per transaction, and
reports markers per second, the time per marker and the coverage table's size afterwards (one
row per stream: each new held period merges into the previous one). It runs in a database of its
own, dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import psycopg2

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "scripts"))

import compose_local  # noqa: E402
from consumer_throughput import create_database, drop_database, libpq  # noqa: E402

from consumer.parse import CoverageRow  # noqa: E402
from consumer.sink import RowsByTable, Sink  # noqa: E402

T0_MS = 1_763_800_000_000
INTERVAL_MS = 30_000


def markers(streams: int, tick: int) -> list[CoverageRow]:
    start, end = T0_MS + tick * INTERVAL_MS, T0_MS + (tick + 1) * INTERVAL_MS
    return [CoverageRow(f"S{index:05d}USDT", "trade", "held", start, end, "ws", "") for index in range(streams)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=6500)
    parser.add_argument("--ticks", type=int, default=20)
    parser.add_argument("--per-batch", type=int, default=250)
    parser.add_argument(
        "--stack-env", type=Path, default=Path(os.environ.get("STACK_ENV_FILE", REPO / ".local/stack/stack.env"))
    )
    args = parser.parse_args()
    admin_url = compose_local.read_env_file(args.stack_env)["DATABASE_URL"]
    url = create_database(admin_url)
    sink = Sink(url)
    try:
        started = time.perf_counter()
        for tick in range(args.ticks):
            rows = markers(args.streams, tick)
            for first in range(0, len(rows), args.per_batch):
                sink.write(RowsByTable(coverage=rows[first : first + args.per_batch]))
        took = time.perf_counter() - started
        sink.dispose()
        with psycopg2.connect(libpq(url)) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT count(*), pg_total_relation_size('coverage') FROM coverage")
            table_rows, table_bytes = cursor.fetchone()
        connection.close()
        total = args.streams * args.ticks
        print(
            f"{total} markers ({args.streams} streams x {args.ticks} ticks, {args.per_batch} a transaction) in"
            f" {took:.2f} s: {total / took:,.0f} markers/s, {took / total * 1e6:.0f} us a marker;"
            f" coverage table afterwards: {table_rows} rows, {table_bytes / 1024:.0f} KiB"
        )
    finally:
        sink.dispose()
        drop_database(admin_url, url)


if __name__ == "__main__":
    main()
