"""The consumer on real Kafka and real PostgreSQL: outages, scale-out, shutdown and replays.

Each test runs `python -m consumer` as compose would (scripts/compose_local.py), feeds its topic
directly with a Kafka producer, and checks the tables against what was sent.
"""

import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass

import psycopg2
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from bootstrap.__main__ import migrate
from consumer.dead_letters import DeadLetterRow
from consumer.loop import RawConsumer
from consumer.settings import ConsumerSettings
from consumer.sink import ConflictFinder, RowsByTable, Sink, Written
from fake_binance.server import FakeBinanceThread
from fake_binance.settings import FakeBinanceSettings
from schemas.coverage import CoverageKind, CoverageMarker, encode_marker
from tests.conftest import Services, create_database, drop_database, libpq_dsn, wait_until
from tests.support.postgres import PrivatePostgres

pytestmark = pytest.mark.integration

SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBBTC")
# Enough symbol keys that every one of the 3 partitions gets some (keys hash unevenly).
MANY_SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBBTC", "LTCUSDT", "XRPUSDT", "SOLUSDT")
T0_MS = 1_763_800_000_000


def trade_frame(symbol: str, trade_id: int) -> bytes:
    price = f"{100 + trade_id % 97}.{trade_id % 100:02d}000000"
    maker = "true" if trade_id % 2 else "false"
    payload = (
        f'{{"e":"trade","E":{T0_MS + trade_id * 7 + 1},"s":"{symbol}","t":{trade_id},"p":"{price}",'
        f'"q":"0.{trade_id % 9 + 1}0000000","T":{T0_MS + trade_id * 7},"m":{maker},"M":true}}'
    )
    return f'{{"stream":"{symbol.lower()}@trade","data":{payload}}}'.encode()


@dataclass
class Feed:
    bootstrap: str
    topic: str

    def send(self, trade_ids: range, symbols: tuple[str, ...] = SYMBOLS) -> set[int]:
        """Produces the trades keyed by symbol, as the producer does; returns the partitions used."""
        producer = Producer({"bootstrap.servers": self.bootstrap, "enable.idempotence": True, "linger.ms": 5})
        partitions: set[int] = set()
        for trade_id in trade_ids:
            for symbol in symbols:
                producer.produce(
                    self.topic,
                    trade_frame(symbol, trade_id),
                    key=symbol.encode(),
                    headers=[("stream", f"{symbol.lower()}@trade".encode()), ("source", b"ws")],
                    on_delivery=lambda error, message: partitions.add(message.partition() or 0),
                )
        assert producer.flush(30) == 0
        return partitions

    def committed(self, group_id: str) -> int:
        """Sum of the group's committed offsets over the topic's partitions."""
        reader = Consumer({"bootstrap.servers": self.bootstrap, "group.id": group_id})
        try:
            offsets = reader.committed([TopicPartition(self.topic, p) for p in range(3)], timeout=10)
        finally:
            reader.close()
        return sum(max(tp.offset, 0) for tp in offsets)


@pytest.fixture()
def feed(stack_env: dict[str, str]) -> Feed:
    topic = f"consumer-test.{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": stack_env["KAFKA_BOOTSTRAP_SERVERS"]})
    admin.create_topics([NewTopic(topic, 3, 1), NewTopic(f"{topic}.dlq", 1, 1)])[topic].result()
    return Feed(stack_env["KAFKA_BOOTSTRAP_SERVERS"], topic)


@pytest.fixture(scope="module")
def exchange_rest_url() -> Iterator[str]:
    """The fake exchange's REST side, for exchangeInfo (the consumer's list of known symbols)."""
    settings: dict[str, object] = {"ws_port": 0, "rest_port": 0, "symbols": ",".join(MANY_SYMBOLS)}
    fake = FakeBinanceThread(FakeBinanceSettings(**settings))  # type: ignore[arg-type]
    endpoints = fake.start()
    yield f"http://{endpoints.host}:{endpoints.rest_port}"
    fake.stop()


def table_state(database_url: str) -> dict[str, list[tuple[object, ...]]]:
    with closing(psycopg2.connect(libpq_dsn(database_url))) as connection, connection.cursor() as cursor:
        state = {}
        for table, order in (
            ("trades", "symbol, trade_id"),
            ("trade_candles_1s", "symbol, open_time"),
            ("trade_candles_1m", "symbol, open_time"),
        ):
            columns = "symbol, trade_id, price, quantity, trade_time, buyer_is_maker, event_time"
            if table != "trades":
                columns = (
                    "symbol, open_time, open, high, low, close, volume, quote_volume, trade_count,"
                    " taker_buy_base_volume, taker_buy_quote_volume, first_trade_id, last_trade_id, price_sum"
                )
            cursor.execute(f"SELECT {columns} FROM {table} ORDER BY {order}")  # constant names
            state[table] = list(cursor.fetchall())
        return state


def assert_rollups_sum_their_trades(database_url: str) -> None:
    """Each rollup row's trade count and price sum are those of its trades, however the batches
    that wrote it were cut and merged."""
    with closing(psycopg2.connect(libpq_dsn(database_url))) as connection, connection.cursor() as cursor:
        for table, unit in (("trade_candles_1s", "second"), ("trade_candles_1m", "minute")):
            # Constant table names and units of this loop.
            cursor.execute(f"SELECT symbol, open_time, trade_count, price_sum::text FROM {table} ORDER BY 1, 2")
            stored = cursor.fetchall()
            cursor.execute(
                f"SELECT symbol, date_trunc('{unit}', trade_time, 'UTC'), count(*), sum(price)::text FROM trades"
                " GROUP BY 1, 2 ORDER BY 1, 2"
            )
            assert stored == cursor.fetchall(), table


def count_trades(database_url: str) -> int:
    with closing(psycopg2.connect(libpq_dsn(database_url))) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM trades")
        result: int = cursor.fetchone()[0]
        return result


def start_consumer(
    services: Services, name: str, feed: Feed, database_url: str, group_id: str, rest_url: str
) -> subprocess.Popen[bytes]:
    overrides = {
        "CONSUMER_DATABASE_URL": database_url,
        "CONSUMER_RAW_TOPIC": feed.topic,
        "CONSUMER_DLQ_TOPIC": f"{feed.topic}.dlq",
        "CONSUMER_GROUP_ID": group_id,
        "CONSUMER_REST_BASE_URL": rest_url,
        "CONSUMER_BATCH_MAX_MESSAGES": "500",
        "CONSUMER_RETRY_MAX_S": "1",
    }
    return services.start("consumer", overrides, label=name)


@pytest.fixture()
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    server.start()
    migrate(server.url, api_role="")
    yield server
    server.remove()


def test_database_outage_stops_progress_and_loses_nothing(
    feed: Feed, private_postgres: PrivatePostgres, services: Services, exchange_rest_url: str
) -> None:
    group = f"outage-{uuid.uuid4().hex[:6]}"
    consumer = start_consumer(services, "consumer", feed, private_postgres.url, group, exchange_rest_url)
    feed.send(range(1, 501))
    wait_until(lambda: count_trades(private_postgres.url) == 1500, 60, "the first 1,500 trades")
    wait_until(lambda: feed.committed(group) == 1500, 30, "offsets of the first 1,500 trades")

    private_postgres.stop()
    feed.send(range(501, 1001))
    # While the database is away the consumer stays up, writes nothing and commits nothing more.
    wait_until(lambda: "database write failed" in services.log_tail("consumer", 200), 30, "the retry log")
    assert consumer.poll() is None, services.log_tail("consumer")
    assert feed.committed(group) == 1500

    private_postgres.start()
    wait_until(lambda: count_trades(private_postgres.url) == 3000, 60, "every trade after the outage")
    wait_until(lambda: feed.committed(group) == 3000, 30, "every offset committed")
    state = table_state(private_postgres.url)
    assert [(row[0], row[1]) for row in state["trades"]] == sorted((s, i) for s in SYMBOLS for i in range(1, 1001))
    assert sum(int(str(row[8])) for row in state["trade_candles_1m"]) == 3000  # trade_count: nothing twice
    assert_rollups_sum_their_trades(private_postgres.url)
    assert "database back, resumed" in services.log_tail("consumer", 500)


def assigned_partitions(services: Services, label: str) -> set[int]:
    """The partitions a consumer holds now, from its latest assignment log line."""
    held: set[int] = set()
    for line in services.log_tail(label, 500).splitlines():
        if '"partitions assigned"' in line:
            held = set(json.loads(line)["partitions"])
        elif '"partitions revoked"' in line:
            held -= set(json.loads(line)["partitions"])
    return held


def stopped_counts(services: Services, label: str) -> dict[str, int]:
    line = [line for line in services.log_tail(label, 50).splitlines() if '"stopped"' in line][-1]
    return {key: value for key, value in json.loads(line).items() if isinstance(value, int)}


def test_two_consumers_in_a_group_store_exactly_what_one_stores(
    feed: Feed, stack_env: dict[str, str], services: Services, exchange_rest_url: str
) -> None:
    alone, shared = create_database(stack_env), create_database(stack_env)
    try:
        for urls in (alone, shared):
            migrate(urls["owner"], api_role="")
        pair_group = f"pair-{uuid.uuid4().hex[:6]}"
        start_consumer(services, "pair-1", feed, shared["owner"], pair_group, exchange_rest_url)
        start_consumer(services, "pair-2", feed, shared["owner"], pair_group, exchange_rest_url)
        # Both members hold partitions before any data arrives, so they really share the work.
        wait_until(
            lambda: assigned_partitions(services, "pair-1") and assigned_partitions(services, "pair-2"),
            60,
            "both members to hold partitions",
        )
        assert assigned_partitions(services, "pair-1").isdisjoint(assigned_partitions(services, "pair-2"))
        assert feed.send(range(1, 1501), MANY_SYMBOLS) == {0, 1, 2}
        start_consumer(services, "alone", feed, alone["owner"], f"alone-{uuid.uuid4().hex[:6]}", exchange_rest_url)
        for urls in (alone, shared):
            wait_until(lambda urls=urls: count_trades(urls["owner"]) == 9000, 90, "all 9,000 trades")  # type: ignore[misc]
        wait_until(lambda: feed.committed(pair_group) == 9000, 30, "the pair's offsets")
        services.assert_running()
        services.stop_all()
        pair_counts = [stopped_counts(services, label).get("trades", 0) for label in ("pair-1", "pair-2")]
        assert all(count > 0 for count in pair_counts) and sum(pair_counts) == 9000, pair_counts
        assert table_state(alone["owner"]) == table_state(shared["owner"])
    finally:
        services.stop_all()
        drop_database(stack_env, alone)
        drop_database(stack_env, shared)


def test_sigterm_commits_what_was_written_and_a_replay_changes_nothing(
    feed: Feed, database: dict[str, str], services: Services, exchange_rest_url: str
) -> None:
    migrate(database["owner"], api_role="")
    feed.send(range(1, 5001))
    group = f"sigterm-{uuid.uuid4().hex[:6]}"
    consumer = start_consumer(services, "consumer", feed, database["owner"], group, exchange_rest_url)
    wait_until(lambda: count_trades(database["owner"]) > 0, 60, "the first rows")
    consumer.send_signal(signal.SIGTERM)
    assert consumer.wait(timeout=30) == 0, services.log_tail("consumer")
    services.processes.pop("consumer")
    # Offsets committed = rows written: nothing committed that isn't stored, nothing stored uncommitted.
    assert feed.committed(group) == count_trades(database["owner"])

    start_consumer(services, "consumer-again", feed, database["owner"], group, exchange_rest_url)
    wait_until(lambda: count_trades(database["owner"]) == 15000, 90, "the rest after the restart")
    wait_until(lambda: feed.committed(group) == 15000, 30, "every offset")
    before = table_state(database["owner"])

    # A new group reads the topic again from offset 0: every row already exists, nothing changes.
    replay_group = f"replay-{uuid.uuid4().hex[:6]}"
    start_consumer(services, "replay", feed, database["owner"], replay_group, exchange_rest_url)
    wait_until(lambda: feed.committed(replay_group) == 15000, 90, "the replay to finish")
    assert table_state(database["owner"]) == before
    assert_rollups_sum_their_trades(database["owner"])
    assert os.path.getsize(services.log_dir / "replay.log") > 0


def test_no_offset_is_committed_past_a_read_whose_write_was_given_up(feed: Feed, database: dict[str, str]) -> None:
    """Reads queued behind a failing write are not written ahead of it (they wait for its retry),
    and committing their offsets would skip the failed read's messages for good. Stopping while
    the database is away gives that read up: nothing after it in its partition may be committed."""
    migrate(database["owner"], api_role="")
    feed.send(range(1, 251), ("BTCUSDT",))  # one partition, read 100 at a time
    settings = ConsumerSettings(
        kafka_bootstrap_servers=feed.bootstrap,
        raw_topic=feed.topic,
        dlq_topic=f"{feed.topic}.dlq",
        group_id=f"given-up-{uuid.uuid4().hex[:6]}",
        database_url=database["owner"],
        batch_max_messages=100,
        writers=1,
        batches_in_flight=2,
        retry_min_s=0.2,
    )
    holder: list[RawConsumer] = []

    class FirstWriteFails(Sink):
        def __init__(self) -> None:
            super().__init__(database["owner"])
            self.writes = 0

        def write(
            self,
            rows: RowsByTable,
            dead_letters: Sequence[DeadLetterRow] = (),
            find_conflicts: ConflictFinder | None = None,
        ) -> Written:
            self.writes += 1
            if self.writes == 1:
                time.sleep(1.0)  # the next reads queue behind this one meanwhile
                holder[0].stopping.set()  # asked to stop while the database is away
                raise psycopg2.OperationalError("the database went away (planted)")
            return super().write(rows, dead_letters, find_conflicts)

    sink = FirstWriteFails()
    holder.append(RawConsumer(settings, [sink], registry=None))
    holder[0].run()
    assert sink.writes == 1, "a later read was written while the first was failing"
    assert count_trades(database["owner"]) == 0
    assert feed.committed(settings.group_id) == 0

    # Read again from the committed offsets: every trade arrives.
    again = RawConsumer(settings, [Sink(database["owner"])], registry=None)
    runner = threading.Thread(target=again.run)
    runner.start()
    try:
        wait_until(lambda: count_trades(database["owner"]) == 250, 30, "all 250 trades stored")
        wait_until(lambda: feed.committed(settings.group_id) == 250, 30, "offsets committed to the end")
    finally:
        again.stopping.set()
        runner.join(30)
    assert_rollups_sum_their_trades(database["owner"])


# The planted database fault: the first insert of one trade sleeps (so the reads after it queue
# behind its write), then fails the write's transaction. A sequence counts, as nextval() is not
# rolled back with it. Every stored coverage period notes how many trades the store held below
# its end at that moment, in the same transaction.
_FAULT_AND_WITNESS = """
CREATE SEQUENCE planted_fault;
CREATE FUNCTION planted_fault() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.trade_id = %(failing_id)s AND nextval('planted_fault') = 1 THEN
        PERFORM pg_sleep(1.5);
        RAISE EXCEPTION 'planted write failure';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER planted_fault AFTER INSERT ON trades FOR EACH ROW EXECUTE FUNCTION planted_fault();
CREATE TABLE coverage_witness (end_time timestamptz, trades_before bigint);
CREATE FUNCTION coverage_witness() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO coverage_witness SELECT NEW.end_time, count(*) FROM trades
        WHERE symbol = NEW.symbol AND trade_time < NEW.end_time;
    RETURN NULL;
END $$;
CREATE TRIGGER coverage_witness AFTER INSERT OR UPDATE ON coverage FOR EACH ROW
    WHEN (NEW.kind = 'held') EXECUTE FUNCTION coverage_witness();
"""


def send_trades_with_markers(feed: Feed, last_id: int, every: int) -> None:
    """BTCUSDT trades 1..last_id, each `every` followed by the held marker of the period so far."""
    producer = Producer({"bootstrap.servers": feed.bootstrap, "enable.idempotence": True, "linger.ms": 5})
    stream = [("stream", b"btcusdt@trade")]
    for trade_id in range(1, last_id + 1):
        producer.produce(feed.topic, trade_frame("BTCUSDT", trade_id), b"BTCUSDT", headers=[*stream, ("source", b"ws")])
        if trade_id % every == 0:
            marker = CoverageMarker(CoverageKind.HELD, T0_MS, T0_MS + trade_id * 7 + 1, "ws")
            producer.produce(feed.topic, encode_marker(marker), b"BTCUSDT", headers=[*stream, ("source", b"coverage")])
    assert producer.flush(30) == 0


def test_a_failed_write_is_retried_before_the_later_reads_so_no_marker_precedes_its_records(
    feed: Feed, database: dict[str, str]
) -> None:
    migrate(database["owner"], api_role="")
    with closing(psycopg2.connect(libpq_dsn(database["owner"]))) as connection, connection.cursor() as cursor:
        cursor.execute(_FAULT_AND_WITNESS, {"failing_id": 60})
        connection.commit()
    send_trades_with_markers(feed, 400, every=50)  # one partition, read 100 messages at a time
    settings = ConsumerSettings(
        kafka_bootstrap_servers=feed.bootstrap,
        raw_topic=feed.topic,
        dlq_topic=f"{feed.topic}.dlq",
        group_id=f"in-order-{uuid.uuid4().hex[:6]}",
        database_url=database["owner"],
        batch_max_messages=100,
        writers=1,
        batches_in_flight=3,
        retry_min_s=0.2,
    )
    consumer = RawConsumer(settings, [Sink(database["owner"])], registry=None)
    runner = threading.Thread(target=consumer.run)
    runner.start()
    try:
        wait_until(lambda: count_trades(database["owner"]) == 400, 60, "all 400 trades stored")
        wait_until(lambda: feed.committed(settings.group_id) == 408, 30, "offsets committed to the end")
    finally:
        consumer.stopping.set()
        runner.join(30)
    with closing(psycopg2.connect(libpq_dsn(database["owner"]))) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT nextval('planted_fault')")
        assert cursor.fetchone()[0] > 1, "the planted fault never fired"
        cursor.execute(
            "SELECT (extract(epoch FROM end_time) * 1000)::bigint, trades_before FROM coverage_witness ORDER BY 1"
        )
        witnessed = cursor.fetchall()
    # Each held period was stored only with every trade below its end already in.
    assert witnessed and all(trades_before == (end_ms - 1 - T0_MS) // 7 for end_ms, trades_before in witnessed)
