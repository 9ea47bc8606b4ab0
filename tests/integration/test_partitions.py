"""Time-partitioned storage on a real PostgreSQL: exactly once across partitions, the DEFAULT
partition drained, retention by dropping partitions, and book tickers sampled."""

import uuid
from collections.abc import Iterator, Sequence
from contextlib import closing
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg2
import pytest
from confluent_kafka import Producer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bootstrap.__main__ import migrate
from consumer import trade_lines
from consumer.dead_letters import DeadLetterRow, Rejected
from consumer.parse import BookTickerRow, TradeRow
from consumer.sink import Conflict, RowsByTable, Sink
from maintenance.partitions import PassReport, run_pass
from schemas.partitions import PARTITIONED_TABLES
from tests.conftest import Services, libpq_dsn, wait_until
from tests.integration.test_consumer import (
    SYMBOLS,
    Feed,
    assert_rollups_sum_their_trades,
    count_trades,
    exchange_rest_url,
    feed,
    start_consumer,
    table_state,
)

pytestmark = pytest.mark.integration
__all__ = ["exchange_rest_url", "feed"]  # fixtures of test_consumer, used here

MIDNIGHT = datetime(2026, 11, 30, tzinfo=UTC)
MIDNIGHT_US = int(MIDNIGHT.timestamp()) * 1_000_000
KEEP = {table.name: 0 for table in PARTITIONED_TABLES}  # keep forever unless a test says otherwise


@pytest.fixture()
def owner_url(database: dict[str, str]) -> Iterator[str]:
    migrate(database["owner"], api_role="")
    yield database["owner"]


def maintain(url: str, now: datetime, retention: dict[str, int] | None = None, ahead_days: int = 2) -> PassReport:
    with closing(psycopg2.connect(libpq_dsn(url))) as connection:
        return run_pass(connection, now, retention or KEEP, ahead_days, lock_timeout_ms=5000)


def query(url: str, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    with closing(psycopg2.connect(libpq_dsn(url))) as connection, connection.cursor() as cursor:
        cursor.execute(sql, parameters)
        return list(cursor.fetchall())


def trade(trade_id: int, time_us: int, price: str = "100.5") -> TradeRow:
    return TradeRow("BTCUSDT", trade_id, price, "0.25", time_us, bool(trade_id % 2), time_us + 1000)


def trades_batch(trades: Sequence[TradeRow]) -> RowsByTable:
    return RowsByTable(trades=[trade_lines.from_row(t) for t in trades])


def stored_trades(url: str) -> list[tuple[Any, ...]]:
    """(trade id, partition, price) of every stored trade."""
    return query(url, "SELECT trade_id, tableoid::regclass::text, price::text FROM trades ORDER BY 1, 2")


class Conflicts:
    """A conflict finder that keeps what the sink found (a test has no messages to dead-letter)."""

    def __init__(self) -> None:
        self.found: list[Conflict] = []

    def __call__(self, conflicts: Sequence[Conflict]) -> list[Rejected]:
        self.found += conflicts
        return []


def test_a_trade_delivered_twice_across_a_partition_boundary_is_one_row_counted_once(owner_url: str) -> None:
    maintain(owner_url, MIDNIGHT - timedelta(hours=1))
    # Trades either side of midnight: two daily partitions.
    batch = [trade(1, MIDNIGHT_US - 2_000), trade(2, MIDNIGHT_US - 1), trade(3, MIDNIGHT_US), trade(4, MIDNIGHT_US + 5)]
    sink = Sink(owner_url)
    try:
        assert sink.write(trades_batch(batch)).trades == 4
        assert sink.merged_batches["trades"] == 0  # new ids: the plain insert
        first = stored_trades(owner_url)
        assert {partition for _, partition, _ in first} == {"trades_p20261129", "trades_p20261130"}
        # Delivered again, alone and within a batch of new trades: nothing more stored or counted.
        assert sink.write(trades_batch(batch)).trades == 0
        assert sink.write(trades_batch([*batch[2:], trade(5, MIDNIGHT_US + 9)])).trades == 1
        assert sink.merged_batches["trades"] == 2
    finally:
        sink.dispose()
    assert [row[0] for row in stored_trades(owner_url)] == [1, 2, 3, 4, 5]
    assert_rollups_sum_their_trades(owner_url)
    assert query(owner_url, "SELECT sum(trade_count) FROM trade_candles_1m") == [(5,)]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    shift_us=st.integers(min_value=-40 * 86_400_000_000, max_value=40 * 86_400_000_000).filter(lambda s: s != 0),
    same_batch=st.booleans(),
)
def test_the_same_trade_id_with_another_time_is_a_conflict_not_a_second_row(
    owner_url: str, shift_us: int, same_batch: bool
) -> None:
    """The primary key holds the time, so a different time would not collide in PostgreSQL: the
    sink must still keep one row per id, wherever the other time falls (this or another partition,
    the DEFAULT one), and report the conflicting duplicate."""
    # The database is shared by the examples: each starts empty.
    with closing(psycopg2.connect(libpq_dsn(owner_url))) as connection, connection, connection.cursor() as cursor:
        cursor.execute("TRUNCATE trades, trade_candles_1s, trade_candles_1m, stored_id_ranges")
    maintain(owner_url, MIDNIGHT - timedelta(hours=1))
    original = trade(7, MIDNIGHT_US - 500)
    resent = original._replace(trade_time_us=original.trade_time_us + shift_us, price="101")
    conflicts = Conflicts()
    sink = Sink(owner_url)
    try:
        if same_batch:
            sink.write(trades_batch([original, resent]), find_conflicts=conflicts)
        else:
            sink.write(trades_batch([original]), find_conflicts=conflicts)
            assert sink.write(trades_batch([resent]), find_conflicts=conflicts).trades == 0
    finally:
        sink.dispose()
    assert stored_trades(owner_url) == [(7, "trades_p20261129", "100.5")]
    assert [(c.row_id, c.sent[0]) for c in conflicts.found] == [(7, "101")]
    assert_rollups_sum_their_trades(owner_url)


def test_rows_of_a_period_without_a_partition_wait_in_default_and_move_to_their_own(owner_url: str) -> None:
    maintain(owner_url, MIDNIGHT)
    years_ago = MIDNIGHT_US - 3 * 365 * 86_400_000_000  # an old backfill
    far_ahead = MIDNIGHT_US + 200 * 86_400_000_000  # a clock far off
    sink = Sink(owner_url)
    try:
        assert sink.write(trades_batch([trade(1, years_ago), trade(2, MIDNIGHT_US), trade(3, far_ahead)])).trades == 3
    finally:
        sink.dispose()
    assert {p for _, p, _ in stored_trades(owner_url)} == {"trades_default", "trades_p20261130"}
    # The rows in DEFAULT would make creating their partitions fail: the pass moves them first.
    report = maintain(owner_url, MIDNIGHT)
    assert report.moved_rows["trades"] == 2
    assert [p for _, p, _ in stored_trades(owner_url)] == ["trades_p20231201", "trades_p20261130", "trades_p20270618"]
    assert query(owner_url, "SELECT count(*) FROM trades_default") == [(0,)]
    assert_rollups_sum_their_trades(owner_url)
    # A second pass has nothing to do.
    again = maintain(owner_url, MIDNIGHT)
    assert not again.created and not again.dropped and not again.moved_rows


def test_retention_drops_whole_partitions_and_records_what_is_kept(owner_url: str) -> None:
    days = [MIDNIGHT_US + day * 86_400_000_000 + 3_600_000_000 for day in range(6)]
    for day, time_us in enumerate(days):
        now = MIDNIGHT + timedelta(days=day, hours=1)
        maintain(owner_url, now, {**KEEP, "trades": 2, "trade_candles_1s": 2})
        sink = Sink(owner_url)
        try:
            sink.write(trades_batch([trade(100 + day, time_us)]))
        finally:
            sink.dispose()
    report = maintain(owner_url, MIDNIGHT + timedelta(days=5, hours=1), {**KEEP, "trades": 2, "trade_candles_1s": 2})
    partitions = query(
        owner_url,
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'trades'::regclass ORDER BY 1",
    )
    # Kept: the day two days back on, and two days ahead; the older ones were dropped, not emptied.
    assert [name for (name,) in partitions] == [
        "trades_default",
        "trades_p20261203",
        "trades_p20261204",
        "trades_p20261205",
        "trades_p20261206",
        "trades_p20261207",
    ]
    assert not report.dropped  # the earlier passes dropped them as each day passed
    assert [row[0] for row in stored_trades(owner_url)] == [103, 104, 105]
    assert query(owner_url, "SELECT sum(trade_count) FROM trade_candles_1m") == [(6,)]  # kept forever here
    assert query(owner_url, "SELECT kept_since FROM storage_horizons WHERE table_name = 'trades'") == [
        (datetime(2026, 12, 3, tzinfo=UTC),)
    ]
    assert query(owner_url, "SELECT kept_since FROM storage_horizons WHERE table_name = 'klines'") == [(None,)]


def test_a_dead_letter_replayed_later_is_recorded_once(owner_url: str) -> None:
    letter = DeadLetterRow("binance.raw", 2, 41, "invalid_json", "not JSON", None)
    sink = Sink(owner_url)
    try:
        sink.write(RowsByTable(), [letter])
        # A replay writes it again in another transaction, with another recorded_at.
        sink.write(RowsByTable(), [letter, letter._replace(source_offset=42)])
    finally:
        sink.dispose()
    assert query(owner_url, "SELECT source_offset FROM dead_letters ORDER BY 1") == [(41,), (42,)]


def book_ticker(update_id: int, received_at_us: int) -> BookTickerRow:
    return BookTickerRow("BTCUSDT", update_id, "100.1", "2", "100.2", "3", received_at_us)


def test_book_tickers_keep_the_first_update_of_each_symbol_each_second(owner_url: str) -> None:
    second = MIDNIGHT_US
    updates = [book_ticker(i, second + i * 150_000) for i in range(1, 14)]  # 13 updates over 2 seconds
    sink = Sink(owner_url, book_ticker_sample_ms=1000)
    try:
        assert sink.write(RowsByTable(book_tickers=updates[:3])).book_tickers == 1
        assert sink.write(RowsByTable(book_tickers=updates[3:])).book_tickers == 1
        # A replay, cut into other batches: the same samples, stored once.
        assert sink.write(RowsByTable(book_tickers=updates)).book_tickers == 0
    finally:
        sink.dispose()
    assert query(owner_url, "SELECT update_id FROM book_tickers ORDER BY 1") == [(1,), (7,)]
    every = Sink(owner_url)
    try:
        assert every.write(RowsByTable(book_tickers=updates)).book_tickers == 11
    finally:
        every.dispose()


def boundary_frame(symbol: str, trade_id: int, time_ms: int) -> bytes:
    payload = (
        f'{{"e":"trade","E":{time_ms + 1},"s":"{symbol}","t":{trade_id},"p":"{100 + trade_id % 7}.25000000",'
        f'"q":"0.{trade_id % 9 + 1}0000000","T":{time_ms},"m":{"true" if trade_id % 2 else "false"},"M":true}}'
    )
    return f'{{"stream":"{symbol.lower()}@trade","data":{payload}}}'.encode()


def test_a_replay_from_offset_0_across_partitions_and_default_changes_nothing(
    feed: Feed, database: dict[str, str], services: Services, exchange_rest_url: str
) -> None:
    url = database["owner"]
    migrate(url, api_role="")
    maintain(url, MIDNIGHT - timedelta(hours=1))
    midnight_ms = MIDNIGHT_US // 1000
    producer = Producer({"bootstrap.servers": feed.bootstrap, "enable.idempotence": True, "linger.ms": 5})
    sent = 0
    for symbol in SYMBOLS:
        for trade_id in range(1, 1001):
            # Either side of midnight, and one in fifty far in the past: those wait in DEFAULT.
            time_ms = midnight_ms + (trade_id - 500) * 3 - (400 * 86_400_000 if trade_id % 50 == 0 else 0)
            producer.produce(
                feed.topic,
                boundary_frame(symbol, trade_id, time_ms),
                key=symbol.encode(),
                headers=[("stream", f"{symbol.lower()}@trade".encode()), ("source", b"ws")],
            )
            sent += 1
    assert producer.flush(30) == 0
    first_group = f"first-{uuid.uuid4().hex[:6]}"
    start_consumer(services, "consumer", feed, url, first_group, exchange_rest_url)
    wait_until(lambda: feed.committed(first_group) == sent, 90, "every trade stored")
    services.stop("consumer")
    assert count_trades(url) == sent
    # The far-past rows waited in DEFAULT; a pass (the consumer's own, or this one) moves them out.
    maintain(url, MIDNIGHT - timedelta(hours=1))
    before = table_state(url)

    replay_group = f"replay-{uuid.uuid4().hex[:6]}"
    start_consumer(services, "replay", feed, url, replay_group, exchange_rest_url)
    wait_until(lambda: feed.committed(replay_group) == sent, 90, "the replay to finish")
    assert table_state(url) == before
    assert_rollups_sum_their_trades(url)
    assert query(url, "SELECT count(*) FROM trades_default") == [(0,)]
    assert {p for (p,) in query(url, "SELECT DISTINCT tableoid::regclass::text FROM trades")} == {
        "trades_p20251025",
        "trades_p20251026",
        "trades_p20261129",
        "trades_p20261130",
    }


def test_a_partition_whose_day_is_over_has_its_indexes_rebuilt_once_and_keeps_its_rows(owner_url: str) -> None:
    maintain(owner_url, MIDNIGHT)
    # Many symbols at once: every symbol's end of the primary key takes inserts, pages split half full.
    batch = [
        TradeRow(f"S{n % 300:03d}USDT", 1000 + n // 300, "1.5", "2", MIDNIGHT_US + n * 1000, False, None)
        for n in range(30_000)
    ]
    sink = Sink(owner_url)
    try:
        for first in range(0, len(batch), 1000):
            sink.write(trades_batch(batch[first : first + 1000]))
    finally:
        sink.dispose()

    def index_bytes() -> int:
        size: int = query(owner_url, "SELECT pg_indexes_size('trades_p20261130')")[0][0]
        return size

    def index_options(partition: str) -> list[tuple[str, list[str] | None]]:
        return query(
            owner_url,
            "SELECT c.relname, c.reloptions FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid"
            f" WHERE x.indrelid = '{partition}'::regclass ORDER BY 1",  # the test's own names
        )

    grown = index_bytes()
    assert maintain(owner_url, MIDNIGHT + timedelta(hours=23)).compacted == []  # the day is not over
    assert index_options("trades_p20261130") == [("trades_p20261130_pkey", None)]
    report = maintain(owner_url, MIDNIGHT + timedelta(days=1, hours=2))
    assert "trades_p20261130" in report.compacted
    # Packed full (fillfactor 100, not the default 90): the closed day takes few inserts more.
    assert index_options("trades_p20261130") == [("trades_p20261130_pkey", ["fillfactor=100"])]
    assert index_options("trades_p20261201") == [("trades_p20261201_pkey", None)]  # the live day keeps room
    assert index_options("agg_trades_p20261130") == [
        ("agg_trades_p20261130_pkey", ["fillfactor=100"]),
        ("agg_trades_p20261130_symbol_trade_time_idx", ["fillfactor=100"]),
    ]
    assert index_bytes() < grown * 0.8
    assert "trades_p20261130" not in maintain(owner_url, MIDNIGHT + timedelta(days=1, hours=3)).compacted
    sink = Sink(owner_url)
    try:
        assert sink.write(trades_batch(batch[:1000])).trades == 0
    finally:
        sink.dispose()
    assert query(owner_url, "SELECT count(*) FROM trades") == [(30_000,)]
