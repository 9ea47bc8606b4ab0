"""bench/scale_load.py's fast loader against the consumer's real path: the same trades, loaded once
by the generator (rollups and id ranges by GROUP BY) and once through consumer/sink.py's Sink in
batches cut at random, must leave the same trades, 1 s and 1 m rollups and stored_id_ranges, value
for value and in the same text (NUMERIC scales included). The span crosses a day's and a month's
partition boundary, and the batches cut seconds and minutes, so the sink's merges are exercised."""

import random
import sys
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import psycopg2

from bootstrap.__main__ import migrate
from consumer import trade_lines
from consumer.parse import TradeRow
from consumer.sink import RowsByTable, Sink
from fake_binance.exchange_info import load_exchange_info
from tests.conftest import create_database, drop_database, libpq_dsn

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import scale_load

_CANDLES = (
    "symbol, open_time, open::text, high::text, low::text, close::text, volume::text, quote_volume::text,"
    " trade_count, taker_buy_base_volume::text, taker_buy_quote_volume::text, first_trade_id, last_trade_id,"
    " price_sum::text"
)
TABLES = {
    "trades": "symbol, trade_id, price::text, quantity::text, trade_time, buyer_is_maker, event_time",
    "trade_candles_1s": _CANDLES,
    "trade_candles_1m": _CANDLES,
    "stored_id_ranges": "kind, symbol, first_id, last_id",
}


def state(url: str) -> dict[str, list[tuple[object, ...]]]:
    with closing(psycopg2.connect(libpq_dsn(url))) as connection, connection.cursor() as cursor:
        result = {}
        for table, columns in TABLES.items():
            cursor.execute(f"SELECT {columns} FROM {table} ORDER BY 1, 2")  # this module's constants
            result[table] = list(cursor.fetchall())
        return result


def stored_trades(url: str) -> list[TradeRow]:
    """The generated trades as the stream would bring them: in time order, times in µs, decimals as text."""
    with closing(psycopg2.connect(libpq_dsn(url))) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT symbol, trade_id, price::text, quantity::text,"
            " (extract(epoch FROM trade_time) * 1000000)::bigint, buyer_is_maker,"
            " (extract(epoch FROM event_time) * 1000000)::bigint"
            " FROM trades ORDER BY trade_time, symbol, trade_id"
        )
        return [TradeRow(*row) for row in cursor.fetchall()]


def test_fast_load_equals_the_consumers_path(stack_env: dict[str, str]) -> None:
    names = [e["symbol"] for e in load_exchange_info(full=True).document(0)["symbols"] if e["status"] == "TRADING"]
    # 40 symbols at 150 trades/s for 3 minutes, ending a minute into December: two days, two months.
    market = scale_load.plan_market(names[:40], 27_000, 150.0, datetime(2026, 12, 1, 0, 1, tzinfo=UTC), 15, 0)
    fast, consumer = create_database(stack_env), create_database(stack_env)
    try:
        for urls in (fast, consumer):
            migrate(urls["owner"], api_role="")
        with closing(psycopg2.connect(libpq_dsn(fast["owner"]))) as connection:
            scale_load.load_market(connection, market)
        trades = stored_trades(fast["owner"])
        assert len(trades) == market.trades > 20_000
        assert len({t.symbol for t in trades}) == 40

        sink = Sink(consumer["owner"])
        rng = random.Random(15)
        at = 0
        while at < len(trades):
            size = rng.randrange(1, 3_000)
            written = sink.write(RowsByTable(trades=[trade_lines.from_row(t) for t in trades[at : at + size]]))
            assert written.trades == len(trades[at : at + size])
            at += size
        sink.dispose()

        loaded, streamed = state(fast["owner"]), state(consumer["owner"])
        for table in TABLES:
            assert loaded[table] == streamed[table], table
        assert len(loaded["trade_candles_1s"]) > 3 * 60 * 10  # many symbol-seconds, not a handful
        assert {row[1].month for row in loaded["trade_candles_1m"] if isinstance(row[1], datetime)} == {11, 12}
        assert len(loaded["stored_id_ranges"]) == 40
    finally:
        for urls in (fast, consumer):
            drop_database(stack_env, urls)
