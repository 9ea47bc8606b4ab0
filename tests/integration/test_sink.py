"""The sink's two ways in, against a real PostgreSQL: a batch of new rows is inserted plainly, and
a batch holding any stored or repeated row merges with ON CONFLICT instead. Either way the tables,
the rollups and the counts of new rows must be exactly those of writing each row once."""

from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta

import psycopg2
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bootstrap.__main__ import migrate
from consumer import trade_lines
from consumer.parse import AggTradeRow, BookTickerRow, TradeRow
from consumer.sink import RowsByTable, Sink
from schemas.messages import MAX_TIME_MS
from tests.conftest import create_database, drop_database, libpq_dsn
from tests.integration.test_consumer import assert_rollups_sum_their_trades, table_state

T0_US = 1_763_800_000_000_000  # 2025-11-22


def trade(symbol: str, trade_id: int) -> TradeRow:
    # A trade every 7 ms, so a few thousand span many seconds and a minute boundary.
    price = f"{100 + trade_id % 17}.{trade_id:04d}"
    return TradeRow(symbol, trade_id, price, "0.5", T0_US + trade_id * 7_000, bool(trade_id % 2), None)


def agg_trade(trade: TradeRow) -> AggTradeRow:
    first = trade.trade_id * 3
    return AggTradeRow(
        trade.symbol, trade.trade_id, trade.price, "1.25", first, first + 2, trade.trade_time_us, True, None
    )


def book_ticker(trade: TradeRow) -> BookTickerRow:
    return BookTickerRow(trade.symbol, trade.trade_id, trade.price, "2", "100.2", "3", trade.trade_time_us)


def rows_of(trades: list[TradeRow]) -> RowsByTable:
    """A batch as the stream brings it: each trade with an aggregate trade and a book ticker."""
    return RowsByTable(
        trades=[trade_lines.from_row(t) for t in trades],
        agg_trades=[agg_trade(t) for t in trades],
        book_tickers=[book_ticker(t) for t in trades],
    )


@pytest.fixture()
def owner_url(database: dict[str, str]) -> Iterator[str]:
    migrate(database["owner"], api_role="")
    yield database["owner"]


def values(url: str, table: str, columns: str) -> list[tuple[object, ...]]:
    with closing(psycopg2.connect(libpq_dsn(url))) as connection, connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM {table} ORDER BY 1, 2")  # this module's constant names
        return list(cursor.fetchall())


def test_new_rows_take_the_plain_insert_and_stored_or_repeated_rows_merge(owner_url: str) -> None:
    sink = Sink(owner_url)
    try:
        first = [trade("BTCUSDT", i) for i in range(1, 5001)] + [trade("ETHUSDT", i) for i in range(1, 3001)]
        assert sink.write(rows_of(first)).trades == 8000
        assert not sink.merged_batches

        # Half of it stored already, and one new trade twice in the same batch.
        overlap = [trade("BTCUSDT", i) for i in range(4001, 7001)] + [trade("BTCUSDT", 6500)]
        written = sink.write(rows_of(overlap))
        assert (written.trades, written.agg_trades, written.book_tickers) == (2000, 2000, 2000)
        assert sink.merged_batches == {"trades": 1, "agg_trades": 1, "book_tickers": 1}

        # A replay inserts nothing, and the next batch of new rows goes the plain way again.
        assert sink.write(rows_of(first)).trades == 0
        assert sink.write(rows_of([trade("ETHUSDT", i) for i in range(3001, 4001)])).trades == 1000
        assert sink.merged_batches == {"trades": 2, "agg_trades": 2, "book_tickers": 2}
    finally:
        sink.dispose()

    expected_keys = [("BTCUSDT", i) for i in range(1, 7001)] + [("ETHUSDT", i) for i in range(1, 4001)]
    for table, key in (("trades", "trade_id"), ("agg_trades", "agg_trade_id"), ("book_tickers", "update_id")):
        assert values(owner_url, table, f"symbol, {key}") == expected_keys, table
    assert_rollups_sum_their_trades(owner_url)


def test_either_way_in_stores_what_writing_each_row_once_stores(owner_url: str, stack_env: dict[str, str]) -> None:
    trades = [trade("BTCUSDT", i) for i in range(1, 3001)]
    messy = Sink(owner_url)
    try:
        # Out of order, overlapping and repeated, as redeliveries and backfills arrive.
        for part in (trades[1000:2000], trades[0:1500], trades[2500:3000], trades[1400:2600] + trades[1400:1401]):
            messy.write(rows_of(part))
        assert messy.merged_batches == {"trades": 2, "agg_trades": 2, "book_tickers": 2}
    finally:
        messy.dispose()

    once_urls = create_database(stack_env)
    try:
        migrate(once_urls["owner"], api_role="")
        once = Sink(once_urls["owner"])
        try:
            once.write(rows_of(trades))
            assert not once.merged_batches
        finally:
            once.dispose()
        # Trades with their 1 s and 1 m rollups, and the other two tables in the columns named here.
        assert table_state(owner_url) == table_state(once_urls["owner"])
        for table, columns in (
            ("agg_trades", "symbol, agg_trade_id, price, quantity, first_trade_id, last_trade_id, trade_time"),
            ("book_tickers", "*"),
        ):
            assert values(owner_url, table, columns) == values(once_urls["owner"], table, columns), table
    finally:
        drop_database(stack_env, once_urls)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LAST_US = MAX_TIME_MS * 1000 + 999  # 9999-12-31T23:59:59.999999Z, the latest time a message may carry


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(times_us=[LAST_US, 2**53 + 1, 2**53 - 1, 0, 1])
@given(times_us=st.lists(st.integers(0, LAST_US), min_size=1, max_size=20, unique=True))
def test_every_accepted_time_is_stored_to_the_microsecond(owner_url: str, times_us: list[int]) -> None:
    # Far-future times went through float8 (bigint * interval) and rounded: 9999-12-31 23:59:59.999999
    # became year 10000, and every time past 2**53 µs (year 2255) lost microseconds.
    with closing(psycopg2.connect(libpq_dsn(owner_url))) as connection, connection.cursor() as cursor:
        cursor.execute("TRUNCATE trades, agg_trades, book_tickers, trade_candles_1s, trade_candles_1m")
        connection.commit()
    trades = [TradeRow("BTCUSDT", i, "1.5", "2", us, True, us) for i, us in enumerate(times_us, start=1)]
    sink = Sink(owner_url)
    try:
        assert sink.write(rows_of(trades)).trades == len(trades)
    finally:
        sink.dispose()
    expected = [(t.trade_id, EPOCH + timedelta(microseconds=t.trade_time_us)) for t in trades]
    assert values(owner_url, "trades", "trade_id, trade_time") == expected
    assert values(owner_url, "trades", "trade_id, event_time") == expected
    assert values(owner_url, "agg_trades", "agg_trade_id, trade_time") == expected
    assert values(owner_url, "book_tickers", "update_id, received_at") == expected
