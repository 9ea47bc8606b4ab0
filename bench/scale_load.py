"""A synthetic whole market generated inside PostgreSQL, straight into the partitions, with the
rollups the consumer would have built: the fast loader of bench/api_at_scale.py.

The consumer's own statement stores about 12,000 trades/s on this box (docs/benchmarks.md), so 200
million trades through it would take five hours. Here each day's partition of `trades` is a new
table filled by one INSERT ... SELECT from generate_series per chunk of market time, in the same
transaction that creates it (with wal_level=minimal PostgreSQL then writes no WAL for it), its 1 s
rollup aggregated in the same statement from the rows it inserted (RETURNING, as the consumer's
statement does), and its primary key built once after the load, when the table is ATTACHed. The
1 m rollup is aggregated from the 1 s one and stored_id_ranges from the 1 s one's trade ids, with
the consumer's rules (consumer/sink.py); tests/integration/test_scale_load.py holds the three to
exactly what the consumer's path stores for the same trades.

The market: ~1,600 symbols at the rates the fake exchange's whole-market mode gives them
(fake_binance/whole_market.py's trade_rates: Zipf-like, its top symbol at the fake's default share
of the total), each symbol's trades evenly spread over the span, ids growing with time. Prices and
quantities are exact NUMERIC, rounded to the symbol's decimals. Everything is a function of the
seed and the arguments: the same call loads the same rows.
"""

from __future__ import annotations

import math
import random
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from psycopg2 import sql

from fake_binance.settings import FakeBinanceSettings
from fake_binance.whole_market import trade_rates
from maintenance.partitions import _COMPACTED
from schemas.partitions import BY_NAME, next_period, partition_name, periods

# The busiest symbol's share of all trades in the fake's whole-market mode at its defaults (50 of
# 1,000 trades/s): kept at any total, so a busier market has the same shape.
_FAKE = FakeBinanceSettings.model_fields
TOP_SHARE = _FAKE["market_top_trades_per_second"].default / _FAKE["market_trades_per_second"].default

FIRST_ID = 100_000_000_000  # the span's first trade id of every symbol
YEAR_FIRST_ID = 10_000_000_000  # the year of 1 m rows before the span: ids below FIRST_ID
CHUNK_SECONDS = 120  # market time per INSERT: its RETURNING rows and 1 s groups stay in memory

_TRADE_COLUMNS = "symbol, trade_id, price, quantity, trade_time, buyer_is_maker, event_time"
_CANDLE_COLUMNS = (
    "symbol, open_time, open, high, low, close, volume, quote_volume, trade_count,"
    " taker_buy_base_volume, taker_buy_quote_volume, first_trade_id, last_trade_id, price_sum"
)


class DiskLow(RuntimeError):
    """Free disk fell below the floor: the load stopped (its open transaction rolled back)."""


@dataclass(frozen=True)
class Market:
    """(symbol, trades in the span) of every symbol, busiest first; the span [start, end)."""

    symbols: list[tuple[str, int]]
    start: datetime
    end: datetime
    seed: int
    year_symbols: int  # the top symbols that also get a year of 1 m rows before the span

    @property
    def seconds(self) -> int:
        return int((self.end - self.start).total_seconds())

    @property
    def trades(self) -> int:
        return sum(n for _, n in self.symbols)

    @property
    def year_start(self) -> datetime:
        return self.end - timedelta(days=365)


def plan_market(names: Sequence[str], trades: int, rate: float, end: datetime, seed: int, year_symbols: int) -> Market:
    """`trades` at `rate` trades/s in all, shared as the fake's whole market shares them; the span
    ends at `end` and lasts the whole minutes that hold them."""
    rates = trade_rates(names, seed, rate, rate * TOP_SHARE)
    seconds = math.ceil(trades / rate / 60) * 60
    counts = [(name, max(1, round(r * seconds))) for name, r in sorted(rates.items(), key=lambda i: -i[1])]
    # Trade g of n is at start + g * span // n µs, in bigint: g * span must stay below 2**63.
    assert max(n for _, n in counts) * seconds * 1_000_000 < 2**63
    return Market(counts, end - timedelta(seconds=seconds), end, seed, year_symbols)


def create_market_table(cursor: Any, market: Market) -> None:
    """bench_market: each symbol's count, base price, decimals and (top symbols) year-row trades per minute."""
    rng = random.Random(market.seed)
    cursor.execute(
        "CREATE TABLE bench_market (symbol text PRIMARY KEY, n bigint NOT NULL, base_ticks float8 NOT NULL,"
        " tick numeric NOT NULL, per_minute bigint NOT NULL)"
    )
    rows = []
    for rank, (name, n) in enumerate(market.symbols):
        base = 10 ** rng.uniform(-4, 4.9)
        decimals = max(0, min(8, 5 - math.floor(math.log10(base))))
        per_minute = max(1, round(n * 60 / market.seconds)) if rank < market.year_symbols else 0
        assert YEAR_FIRST_ID + 366 * 1440 * per_minute < FIRST_ID
        # Prices are whole ticks (10^-decimals, about six significant digits), NUMERIC of that scale.
        rows.append((name, n, base * 10**decimals, Decimal(1).scaleb(-decimals), per_minute))
    cursor.executemany(
        "INSERT INTO bench_market (symbol, n, base_ticks, tick, per_minute) VALUES (%s, %s, %s, %s, %s)",
        rows,
    )


# Market seconds k0 to k1 - 1 (counted from the span's start, S seconds long): symbol m's trade g
# lies at start + g * S * 10^6 // n µs, so second k holds g from ceil(k n / S) to ceil((k+1) n / S) - 1.
# Generated second by second (the LATERAL keeps k outermost), so the heap is in time order, each
# second's rows grouped by symbol, as the consumer's batches leave it. Prices drift over hours and
# wiggle trade by trade; quantities and sides vary by id. The 1 s rollup is aggregated from the
# rows inserted, with the consumer's aggregates (consumer/sink.py's `seconds`).
_GENERATE_CHUNK = """
INSERT INTO bench_chunk ({trade_columns})
SELECT m.symbol, %(first_id)s + g,
        round(m.base_ticks * (1 + 0.03 * sin(k::float8 / 5000) + 0.001 * sin(g::float8 / 97)))::bigint * m.tick,
        (1 + (g * 7919) %% 50000) * 0.00001,
        %(start)s + ((g * %(span_us)s) / m.n) * interval '1 microsecond',
        (g * 31) %% 7 < 3,
        %(start)s + ((g * %(span_us)s) / m.n + 3000) * interval '1 microsecond'
    FROM generate_series(%(k0)s::bigint, %(k1)s::bigint - 1) k,
        LATERAL (
            SELECT symbol, n, base_ticks, tick, (k * n + %(seconds)s - 1) / %(seconds)s AS first_g,
                ((k + 1) * n + %(seconds)s - 1) / %(seconds)s - 1 AS last_g
            FROM bench_market OFFSET 0
        ) m,
        generate_series(m.first_g, m.last_g) g
"""
_STORE_CHUNK = "INSERT INTO {trades} ({trade_columns}) SELECT {trade_columns} FROM bench_chunk"
_CHUNK_SECONDS = """
INSERT INTO {seconds} ({candle_columns})
SELECT symbol, date_trunc('second', trade_time),
    (min(ARRAY[trade_id::numeric, price]))[2], max(price), min(price),
    (max(ARRAY[trade_id::numeric, price]))[2], sum(quantity), sum(price * quantity), count(*),
    coalesce(sum(quantity) FILTER (WHERE NOT buyer_is_maker), 0),
    coalesce(sum(price * quantity) FILTER (WHERE NOT buyer_is_maker), 0),
    min(trade_id), max(trade_id), sum(price)
FROM bench_chunk
GROUP BY 1, 2
"""

# The consumer's minutes from its seconds (consumer/sink.py's _MINUTES_FROM_SECONDS).
_MINUTES = """
INSERT INTO {minutes} ({candle_columns})
SELECT symbol, date_trunc('minute', open_time),
    (min(ARRAY[first_trade_id::numeric, open]))[2], max(high), min(low),
    (max(ARRAY[last_trade_id::numeric, close]))[2], sum(volume), sum(quote_volume), sum(trade_count),
    sum(taker_buy_base_volume), sum(taker_buy_quote_volume), min(first_trade_id), max(last_trade_id),
    sum(price_sum)
FROM trade_candles_1s
WHERE open_time >= %(low)s AND open_time < %(high)s
GROUP BY 1, 2
"""

# A year of 1 m rollup rows before the span for the top symbols (no trades, no 1 s rows: only
# what the api's long candles read), minute i of the year at its own drifting price.
_YEAR_MINUTES = """
INSERT INTO {minutes} ({candle_columns})
SELECT symbol, %(year_start)s + i * interval '1 minute', p0, greatest(p0, p1) + tick, least(p0, p1) - tick, p1,
    volume, volume * p0, per_minute, round(volume / 2, 5), round(volume / 2, 5) * p0,
    %(year_first_id)s + i * per_minute, %(year_first_id)s + (i + 1) * per_minute - 1, p0 * per_minute
FROM (
    SELECT symbol, tick, per_minute, i, per_minute * 0.25000 AS volume,
        round(base_ticks * (1 + 0.1 * sin(i::float8 / 20000)))::bigint * tick AS p0,
        round(base_ticks * (1 + 0.1 * sin((i + 1)::float8 / 20000)))::bigint * tick AS p1
    FROM bench_market, generate_series(%(i0)s::bigint, %(i1)s::bigint - 1) i
    WHERE per_minute > 0
) y
"""

_ID_RANGES = """
INSERT INTO stored_id_ranges (kind, symbol, first_id, last_id)
SELECT 'trades', symbol, min(first_trade_id), max(last_trade_id) FROM trade_candles_1s GROUP BY symbol
"""


@contextmanager
def disk_watch(connection: Any, path: str, floor_bytes: int) -> Iterator[Callable[[], None]]:
    """Cancels `connection`'s statement when free disk under `path` falls below the floor; yields
    a check that raises DiskLow (at the start of a step, or after a cancel)."""
    low = threading.Event()
    done = threading.Event()

    def watch() -> None:
        while not done.wait(2.0):
            if shutil.disk_usage(path).free < floor_bytes:
                low.set()
                connection.cancel()
                return

    def check() -> None:
        if low.is_set() or shutil.disk_usage(path).free < floor_bytes:
            low.set()
            raise DiskLow(f"free disk under {path} below {floor_bytes / 1e9:.0f} GB: load stopped")

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield check
    finally:
        done.set()
        thread.join()


def _replace_partition(cursor: Any, table: str, start: datetime) -> tuple[sql.Identifier, tuple[datetime, datetime]]:
    """Drops the (empty) partition of the period from `start` and creates a plain table in its
    place, in the caller's transaction: rows written to it there need no WAL (wal_level=minimal)."""
    name = partition_name(BY_NAME[table], start)
    cursor.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))
    cursor.execute(
        sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)").format(
            sql.Identifier(name), sql.Identifier(table)
        )
    )
    return sql.Identifier(name), (start, next_period(start, BY_NAME[table].period))


def _attach(cursor: Any, table: str, name: sql.Identifier, bounds: tuple[datetime, datetime]) -> None:
    """ATTACH builds the partition's primary key from its rows: what the maintenance job's REINDEX
    of a finished period builds too, so the partition is marked as compacted, as that job marks it."""
    cursor.execute(
        sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM (%s) TO (%s)").format(sql.Identifier(table), name),
        bounds,
    )
    cursor.execute(sql.SQL("COMMENT ON TABLE {} IS %s").format(name), (_COMPACTED,))


def load_market(
    connection: Any,
    market: Market,
    check_disk: Callable[[], None] = lambda: None,
    log: Callable[[str], None] = lambda _: None,
) -> None:
    """Loads the market into an empty migrated database whose partitions exist (the maintenance
    pass ahead): trades and 1 s rollups day by day, then the 1 m rollup month by month (with the
    year rows), then stored_id_ranges. One transaction per partition."""
    with connection, connection.cursor() as cursor:
        # A chunk is generated once into a session-local table (no WAL, in local buffers), then
        # copied into the partition and aggregated from there: an INSERT ... RETURNING feeding the
        # aggregate in one statement took twice as long.
        cursor.execute("SET temp_buffers = '1GB'")
        cursor.execute(
            "CREATE TEMPORARY TABLE bench_chunk (symbol text, trade_id bigint, price numeric, quantity numeric,"
            " trade_time timestamptz, buyer_is_maker boolean, event_time timestamptz)"
        )
        create_market_table(cursor, market)
    span_us = market.seconds * 1_000_000
    done = 0
    for day in periods(market.start, market.end - timedelta(microseconds=1), BY_NAME["trades"].period):
        check_disk()
        with connection, connection.cursor() as cursor:
            cursor.execute("SET LOCAL work_mem = '1GB'")
            trades, bounds = _replace_partition(cursor, "trades", day)
            seconds, _ = _replace_partition(cursor, "trade_candles_1s", day)
            columns = {"trade_columns": sql.SQL(_TRADE_COLUMNS), "candle_columns": sql.SQL(_CANDLE_COLUMNS)}
            statements = (
                sql.SQL(_GENERATE_CHUNK).format(**columns),
                sql.SQL(_STORE_CHUNK).format(trades=trades, **columns),
                sql.SQL(_CHUNK_SECONDS).format(seconds=seconds, **columns),
                sql.SQL("TRUNCATE bench_chunk"),
            )
            k_first = max(0, int((day - market.start).total_seconds()))
            k_last = min(market.seconds, int((bounds[1] - market.start).total_seconds()))
            s = market.seconds
            for k0 in range(k_first, k_last, CHUNK_SECONDS):
                check_disk()
                k1 = min(k0 + CHUNK_SECONDS, k_last)
                parameters = {
                    "first_id": FIRST_ID,
                    "start": market.start,
                    "span_us": span_us,
                    "seconds": market.seconds,
                    "k0": k0,
                    "k1": k1,
                }
                for statement in statements:
                    cursor.execute(statement, parameters)
                done += sum(_ceil_div(k1 * n, s) - _ceil_div(k0 * n, s) for _, n in market.symbols)
                if (k1 - k_first) % (CHUNK_SECONDS * 10) == 0 or k1 == k_last:
                    reached = market.start + timedelta(seconds=k1)
                    log(f"{day:%Y-%m-%d}: market time to {reached:%H:%M:%S}, {done:,} trades")
            check_disk()
            log(f"{day:%Y-%m-%d}: building the primary keys")
            _attach(cursor, "trades", trades, bounds)
            _attach(cursor, "trade_candles_1s", seconds, bounds)
    minutes_table = BY_NAME["trade_candles_1m"]
    for month in periods(market.year_start, market.end - timedelta(microseconds=1), minutes_table.period):
        check_disk()
        with connection, connection.cursor() as cursor:
            cursor.execute("SET LOCAL work_mem = '1GB'")
            minutes, bounds = _replace_partition(cursor, "trade_candles_1m", month)
            low, high = max(bounds[0], market.year_start), min(bounds[1], market.start)
            if low < high and market.year_symbols:
                cursor.execute(
                    sql.SQL(_YEAR_MINUTES).format(minutes=minutes, candle_columns=sql.SQL(_CANDLE_COLUMNS)),
                    {
                        "year_start": market.year_start,
                        "year_first_id": YEAR_FIRST_ID,
                        "i0": _minutes_between(market.year_start, low),
                        "i1": _minutes_between(market.year_start, high),
                    },
                )
            cursor.execute(
                sql.SQL(_MINUTES).format(minutes=minutes, candle_columns=sql.SQL(_CANDLE_COLUMNS)),
                {"low": bounds[0], "high": bounds[1]},
            )
            _attach(cursor, "trade_candles_1m", minutes, bounds)
    with connection, connection.cursor() as cursor:
        cursor.execute(_ID_RANGES)
    log(f"loaded {done:,} trades")
    assert done == market.trades, (done, market.trades)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _minutes_between(first: datetime, moment: datetime) -> int:
    """Whole minutes from `first` to `moment`, rounded up (both are whole minutes here)."""
    return math.ceil((moment - first).total_seconds() / 60)
