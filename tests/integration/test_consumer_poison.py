"""No message can stop the consumer: whatever its value, key and headers, it is stored or
dead-lettered with a reason, its offset is committed, and the trades after it are stored.

Real Kafka, real PostgreSQL, the real consumer (`python -m consumer` as compose runs it, or its
RawConsumer in this process for the property-based test). Records whose header names are not
valid UTF-8 are written over Kafka's protocol directly (tests/support/raw_records.py): no client
library can send them, but the broker stores them.
"""

import json
import threading
import uuid
from contextlib import closing
from dataclasses import dataclass

import psycopg2
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bootstrap.__main__ import migrate
from consumer.loop import RawConsumer
from consumer.parse import Rejection, parse_message
from consumer.settings import ConsumerSettings
from consumer.sink import Sink
from tests.conftest import Services, libpq_dsn, wait_until
from tests.integration.test_consumer import Feed, exchange_rest_url, start_consumer, trade_frame
from tests.support.raw_records import produce_raw
from tests.unit.test_parse import TRADE

pytestmark = pytest.mark.integration

__all__ = ["exchange_rest_url"]  # a fixture, used by name

# What the topics accept (the broker's default max.message.bytes is 1,048,588 per record batch).
TOPIC_MAX_BYTES = 1_048_576
NEAR_LIMIT = 1_000_000


@dataclass
class OnePartition(Feed):
    """A raw topic of one partition, so poison and the trades after it are in one order."""

    def send_trade(self, symbol: str, trade_id: int) -> None:
        headers = [(b"stream", f"{symbol.lower()}@trade".encode()), (b"source", b"ws")]
        produce_raw(self.bootstrap, self.topic, 0, trade_frame(symbol, trade_id), symbol.encode(), headers)

    def send_raw(self, value: bytes | None, key: bytes | None, headers: list[tuple[bytes, bytes | None]]) -> None:
        produce_raw(self.bootstrap, self.topic, 0, value, key, headers)

    def end_offset(self) -> int:
        reader = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "end-offset"})
        try:
            return int(reader.get_watermark_offsets(TopicPartition(self.topic, 0), timeout=10)[1])
        finally:
            reader.close()

    def committed_offset(self, group_id: str) -> int:
        reader = Consumer({"bootstrap.servers": self.bootstrap, "group.id": group_id})
        try:
            return int(reader.committed([TopicPartition(self.topic, 0)], timeout=10)[0].offset)
        finally:
            reader.close()


@pytest.fixture()
def raw_topic(stack_env: dict[str, str]) -> OnePartition:
    topic = f"poison-test.{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": stack_env["KAFKA_BOOTSTRAP_SERVERS"]})
    futures = admin.create_topics([NewTopic(topic, 1, 1), NewTopic(f"{topic}.dlq", 1, 1)])
    for future in futures.values():
        future.result()
    return OnePartition(stack_env["KAFKA_BOOTSTRAP_SERVERS"], topic)


def trade_ids(database_url: str, symbol: str = "BTCUSDT") -> list[int]:
    with closing(psycopg2.connect(libpq_dsn(database_url))) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT trade_id FROM trades WHERE symbol = %s ORDER BY trade_id", (symbol,))
        return [row[0] for row in cursor.fetchall()]


def dead_letters(database_url: str) -> dict[int, tuple[str, str, str | None]]:
    """offset -> (reason, detail, stream) of every dead letter recorded."""
    with closing(psycopg2.connect(libpq_dsn(database_url))) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT source_offset, reason, detail, stream FROM dead_letters")
        return {row[0]: (row[1], row[2], row[3]) for row in cursor.fetchall()}


def dlq_messages(feed: Feed, count: int) -> dict[int, dict[str, bytes]]:
    """source offset -> headers of the first `count` dead letters in the DLQ topic."""
    group = f"dlq-{uuid.uuid4().hex[:6]}"
    reader = Consumer({"bootstrap.servers": feed.bootstrap, "group.id": group, "auto.offset.reset": "earliest"})
    reader.subscribe([f"{feed.topic}.dlq"])
    found: dict[int, dict[str, bytes]] = {}
    try:
        wait_until(lambda: _read_into(reader, found) >= count, 30, f"{count} dead letters in the DLQ topic")
    finally:
        reader.close()
    return found


def _read_into(reader: Consumer, found: dict[int, dict[str, bytes]]) -> int:
    message = reader.poll(0.5)
    if message is not None and message.error() is None:
        pairs: list[tuple[str, bytes]] = message.headers() or []  # type: ignore[assignment]
        headers = dict(pairs)
        found[int(headers["dlq_source_offset"])] = headers
    return len(found)


@pytest.fixture()
def consumer_db(database: dict[str, str]) -> str:
    migrate(database["owner"], api_role="")
    return database["owner"]


def run_consumer(services: Services, raw_topic: OnePartition, database_url: str, rest_url: str) -> str:
    group = f"poison-{uuid.uuid4().hex[:6]}"
    start_consumer(services, "consumer", raw_topic, database_url, group, rest_url)
    return group


def assert_goes_on_past(
    services: Services, raw_topic: OnePartition, database_url: str, group: str, poison_offset: int
) -> tuple[str, str, str | None]:
    """The trade after the poison is stored, every offset committed, and the poison dead-lettered."""
    raw_topic.send_trade("BTCUSDT", 7)
    wait_until(lambda: trade_ids(database_url) == [7], 45, "the trade after the poison")
    wait_until(lambda: raw_topic.committed_offset(group) == raw_topic.end_offset(), 30, "every offset committed")
    services.assert_running()
    return dead_letters(database_url)[poison_offset]


def test_a_nul_in_the_stream_header_of_a_rejected_message_is_recorded_escaped(
    raw_topic: OnePartition, consumer_db: str, services: Services, exchange_rest_url: str
) -> None:
    group = run_consumer(services, raw_topic, consumer_db, exchange_rest_url)
    raw_topic.send_raw(b'{"e":"nonsense"}', b"BTCUSDT", [(b"stream", b"btc\x00usdt@trade"), (b"source", b"ws")])
    _, detail, stream = assert_goes_on_past(services, raw_topic, consumer_db, group, 0)
    assert stream is not None and "\x00" not in stream and "btc" in stream and "usdt@trade" in stream
    assert "escaped" in detail
    assert dlq_messages(raw_topic, 1)[0]["stream"] == b"btc\x00usdt@trade"  # the original bytes, in Kafka


def test_a_rejected_message_whose_headers_fill_kafkas_limit_is_dead_lettered_cut_short(
    raw_topic: OnePartition, consumer_db: str, services: Services, exchange_rest_url: str
) -> None:
    group = run_consumer(services, raw_topic, consumer_db, exchange_rest_url)
    producer = Producer({"bootstrap.servers": raw_topic.bootstrap, "message.max.bytes": TOPIC_MAX_BYTES})
    producer.produce(raw_topic.topic, b"not json", b"BTCUSDT", headers=[("padding", b"x" * NEAR_LIMIT)], partition=0)
    assert producer.flush(30) == 0
    reason, _, _ = assert_goes_on_past(services, raw_topic, consumer_db, group, 0)
    headers = dlq_messages(raw_topic, 1)[0]
    assert headers["dlq_reason"] == reason.encode()
    assert "padding" not in headers and headers["dlq_headers_cut"]  # said so; the original stays in the raw topic


def test_a_header_name_that_is_not_utf8_is_dead_lettered(
    raw_topic: OnePartition, consumer_db: str, services: Services, exchange_rest_url: str
) -> None:
    group = run_consumer(services, raw_topic, consumer_db, exchange_rest_url)
    raw_topic.send_raw(trade_frame("BTCUSDT", 6), b"BTCUSDT", [(b"\xff\xfename", b"x"), (b"source", b"ws")])
    reason, detail, _ = assert_goes_on_past(services, raw_topic, consumer_db, group, 0)
    assert reason == "invalid_header"
    assert "UTF-8" in detail
    assert dlq_messages(raw_topic, 1)[0]["dlq_reason"] == b"invalid_header"


# Header names the consumer reads, beside arbitrary bytes; values it understands, beside NUL, bytes
# that are not UTF-8 and arbitrary ones.
HEADER_NAMES = st.sampled_from([b"stream", b"source", b"time_unit", b"received_at_ns", b"dlq_reason"]) | st.binary(
    max_size=12
)
HEADER_VALUES = (
    st.none()
    | st.sampled_from([b"bnbbtc@trade", b"bnbbtc@aggTrade", b"rest", b"ws", b"MICROSECOND", b"bnb\x00btc@trade"])
    | st.binary(max_size=40)
)
# Payloads near valid ones (a bare trade, a broken combined frame, duplicate keys), beside bytes.
VALUES = (
    st.none()
    | st.binary(max_size=80)
    | st.sampled_from(
        [
            json.dumps(TRADE).encode(),
            json.dumps({"stream": "bnbbtc@trade", "data": {**TRADE, "p": "-1"}}).encode(),
            b'{"stream":"bnbbtc@trade","data":{"e":"trade","s":"BNBBTC","s":"ETHBTC"}}',
            b'{"stream":"bnb\\u0000btc@trade","data":{}}',
            b'{"e":"\xff\xfe"}',
        ]
    )
)
# Sizes at Kafka's limit: a huge value, one huge header, thousands of headers, a huge key.
HUGE = st.sampled_from(["value", "header", "many_headers", "key", None, None, None, None, None, None])


RawMessage = tuple[bytes | None, bytes | None, list[tuple[bytes, bytes | None]]]  # value, key, headers


@st.composite
def poison_messages(draw: st.DrawFn) -> RawMessage:
    value, key = draw(VALUES), draw(st.none() | st.binary(max_size=16))
    headers = draw(st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=6))
    huge = draw(HUGE)
    if huge == "value":
        value = (value or b"") + b"v" * NEAR_LIMIT
    elif huge == "header":
        headers.append((b"padding", b"h" * NEAR_LIMIT))
    elif huge == "many_headers":
        headers += [(b"h", b"")] * 30_000
    elif huge == "key":
        key = b"k" * NEAR_LIMIT
    return value, key, headers


def expected_rejected(value: bytes | None, headers: list[tuple[bytes, bytes | None]]) -> bool:
    """Whether the consumer must dead-letter the message, by the pure parser's rules."""
    try:
        named = {name.decode(): data for name, data in headers if data is not None}
    except UnicodeDecodeError:
        return True
    return isinstance(parse_message(value, named), Rejection)


class ConsumerThread:
    """The real RawConsumer, on this test's topic and database, running in a thread."""

    def __init__(self, raw_topic: OnePartition, database_url: str) -> None:
        self.settings = ConsumerSettings(
            kafka_bootstrap_servers=raw_topic.bootstrap,
            raw_topic=raw_topic.topic,
            dlq_topic=f"{raw_topic.topic}.dlq",
            group_id=f"poison-{uuid.uuid4().hex[:6]}",
            database_url=database_url,
            batch_max_messages=100,
            retry_min_s=0.2,
            retry_max_s=1.0,
        )
        self.raw_topic = raw_topic
        self.consumer = RawConsumer(self.settings, [Sink(database_url), Sink(database_url)], registry=None)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.consumer.run()
        except BaseException as error:
            self.error = error
            raise

    def __enter__(self) -> "ConsumerThread":
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.consumer.stopping.set()
        self.thread.join(60)

    def committed(self) -> int:
        return self.raw_topic.committed_offset(self.settings.group_id)

    def assert_alive(self) -> None:
        assert self.thread.is_alive(), f"the consumer stopped: {self.error!r}"


def test_no_message_stops_the_consumer(raw_topic: OnePartition, consumer_db: str) -> None:
    """Poison of every kind, then a valid trade: the trade is stored, every message is stored or
    dead-lettered with a reason, and every offset is committed."""
    sent: list[tuple[int, bool]] = []  # (offset, must be dead-lettered)
    with ConsumerThread(raw_topic, consumer_db) as running:

        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        @given(poison=st.lists(poison_messages(), min_size=1, max_size=3))
        def poison_then_a_trade(
            poison: list[tuple[bytes | None, bytes | None, list[tuple[bytes, bytes | None]]]],
        ) -> None:
            for value, key, headers in poison:
                sent.append((raw_topic.end_offset(), expected_rejected(value, headers)))
                raw_topic.send_raw(value, key, headers)
            trade_id = len(sent) + 1_000_000
            raw_topic.send_trade("BTCUSDT", trade_id)
            wait_until(lambda: trade_id in trade_ids(consumer_db), 45, f"trade {trade_id} after {len(poison)} poison")
            running.assert_alive()

        poison_then_a_trade()
        end = raw_topic.end_offset()
        wait_until(lambda: raw_topic.committed_offset(running.settings.group_id) == end, 30, "every offset committed")
        running.assert_alive()
    recorded = dead_letters(consumer_db)
    assert {offset for offset, rejected in sent if rejected} == {offset for offset, _ in sent} & set(recorded)
    assert all(reason and detail for reason, detail, _ in recorded.values())
