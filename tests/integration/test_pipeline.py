"""The whole chain on real parts: fake exchange -> producer -> Kafka -> consumer -> PostgreSQL -> api.

Each service runs as a process with the command and environment docker-compose.yml gives it
(scripts/compose_local.py), against the local stack's real Kafka and PostgreSQL.
"""

import json
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import psycopg2
import pytest
from confluent_kafka import Consumer, Producer

from schemas.topics import RAW_TOPIC, TOPICS, Header
from tests.conftest import Services, free_port, libpq_dsn, wait_until

pytestmark = pytest.mark.integration

SYMBOLS = ("BTCUSDT", "ETHUSDT")
TRADES_PER_SYMBOL = 60
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class Pipeline:
    services: Services
    stack_env: dict[str, str]
    database_url: str
    api_url: str
    raw_topic: str
    dlq_topic: str
    emitted_path: Path

    def emitted_trades(self) -> list[dict[str, object]]:
        """Ground truth: every trade payload the fake exchange sent, as it recorded them."""
        if not self.emitted_path.exists():
            return []
        trades = []
        for line in self.emitted_path.read_text().splitlines():
            payload = json.loads(line)
            payload = payload.get("data", payload)
            if payload.get("e") == "trade":
                trades.append(payload)
        return trades

    def query(self, sql: str) -> list[tuple[object, ...]]:
        with closing(psycopg2.connect(libpq_dsn(self.database_url))) as connection, connection.cursor() as cursor:
            cursor.execute(sql)
            return list(cursor.fetchall())

    def stored_trades(self) -> list[tuple[object, ...]]:
        with closing(psycopg2.connect(libpq_dsn(self.database_url))) as connection, connection.cursor() as cursor:
            cursor.execute(
                "SELECT symbol, trade_id, price::text, quantity::text, trade_time, buyer_is_maker, event_time"
                " FROM trades ORDER BY symbol, trade_id"
            )
            return list(cursor.fetchall())


@pytest.fixture()
def pipeline(
    stack_env: dict[str, str], database: dict[str, str], services: Services, tmp_path: Path
) -> Iterator[Pipeline]:
    # Topics of this test alone, so earlier runs' messages on the same broker can't leak in.
    suffix = uuid.uuid4().hex[:8]
    raw_topic, dlq_topic = f"binance.raw.{suffix}", f"binance.raw.dlq.{suffix}"
    ws_port, rest_port, api_port = free_port(), free_port(), free_port()
    services.extra_addresses = {
        "fake-binance:9443": f"127.0.0.1:{ws_port}",
        "fake-binance:8090": f"127.0.0.1:{rest_port}",
    }
    services.variables = {
        "BINANCE_WS_BASE_URL": "ws://fake-binance:9443",
        "BINANCE_REST_BASE_URL": "http://fake-binance:8090",
        "SYMBOLS": ",".join(SYMBOLS),
    }
    emitted_path = tmp_path / "emitted.jsonl"

    services.run_once(
        "init",
        {
            "BOOTSTRAP_DATABASE_URL": database["owner"],
            "BOOTSTRAP_RAW_TOPIC": raw_topic,
            "BOOTSTRAP_DLQ_TOPIC": dlq_topic,
        },
    )
    services.start(
        "fake-binance",
        {
            "FAKE_BINANCE_WS_PORT": str(ws_port),
            "FAKE_BINANCE_REST_PORT": str(rest_port),
            "FAKE_BINANCE_TRADES_PER_SECOND": "40",
            "FAKE_BINANCE_MAX_TRADES": str(TRADES_PER_SYMBOL),
            "FAKE_BINANCE_RECORD_PATH": str(emitted_path),
            "FAKE_BINANCE_SEED": "7",
        },
    )
    services.start(
        "consumer",
        {
            "CONSUMER_DATABASE_URL": database["owner"],
            "CONSUMER_RAW_TOPIC": raw_topic,
            "CONSUMER_DLQ_TOPIC": dlq_topic,
            "CONSUMER_GROUP_ID": f"test-{suffix}",
        },
    )
    services.start("api", {"API_DATABASE_URL": database["api"], "API_PORT": str(api_port)})
    wait_until(lambda: socket_answers(f"127.0.0.1:{ws_port}"), 30, "the fake exchange")
    services.start("producer", {"PRODUCER_RAW_TOPIC": raw_topic})
    yield Pipeline(
        services, stack_env, database["owner"], f"http://127.0.0.1:{api_port}", raw_topic, dlq_topic, emitted_path
    )


def socket_answers(address: str) -> bool:
    import socket

    host, port = address.rsplit(":", 1)
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, int(port))) == 0


def text(value: str | bytes | None) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")


def ms_time(milliseconds: object) -> datetime:
    assert isinstance(milliseconds, int)
    return EPOCH + timedelta(milliseconds=milliseconds)


def test_every_emitted_trade_reaches_postgresql_and_the_api_exactly(pipeline: Pipeline) -> None:
    expected_count = TRADES_PER_SYMBOL * len(SYMBOLS)
    wait_until(lambda: len(pipeline.emitted_trades()) >= expected_count, 60, "the fake exchange's trades")
    emitted = pipeline.emitted_trades()
    assert len(emitted) == expected_count
    wait_until(lambda: len(pipeline.stored_trades()) >= expected_count, 60, "every trade in PostgreSQL")
    pipeline.services.assert_running()

    expected = sorted((t["s"], t["t"], t["p"], t["q"], ms_time(t["T"]), t["m"], ms_time(t["E"])) for t in emitted)
    assert pipeline.stored_trades() == expected  # prices compared as text: exact, trailing zeros too

    with httpx.Client(base_url=pipeline.api_url, timeout=5) as client:
        wait_until(lambda: client.get("/health").status_code == 200, 30, "the api")
        for symbol in SYMBOLS:
            newest = max((t for t in emitted if t["s"] == symbol), key=lambda t: t["t"])  # type: ignore[arg-type,return-value]
            response = client.get("/v1/prices/latest", params={"symbol": symbol.lower()})
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["symbol"] == symbol
            assert body["trade_id"] == newest["t"]
            assert body["price"] == newest["p"]
            assert Decimal(body["quantity"]) == Decimal(str(newest["q"]))
            assert datetime.fromisoformat(body["trade_time"].replace("Z", "+00:00")) == ms_time(newest["T"])
        every = client.get("/v1/prices/latest").json()
        assert [price["symbol"] for price in every["prices"]] == sorted(SYMBOLS)
        missing = client.get("/v1/prices/latest", params={"symbol": "NOSUCHPAIR"})
        assert missing.status_code == 404
        assert "NOSUCHPAIR" in missing.json()["detail"]
        invalid = client.get("/v1/prices/latest", params={"symbol": "BTC-USDT"})
        assert invalid.status_code == 422
        assert "symbol" in json.dumps(invalid.json())


def test_invalid_messages_go_to_the_dead_letter_topic_and_replays_change_nothing(pipeline: Pipeline) -> None:
    expected_count = TRADES_PER_SYMBOL * len(SYMBOLS)
    wait_until(lambda: len(pipeline.stored_trades()) >= expected_count, 90, "every trade in PostgreSQL")
    before = pipeline.stored_trades()
    emitted = pipeline.emitted_trades()

    bad_frames = {
        "non_positive_price": json.dumps(
            {"stream": "btcusdt@trade", "data": {**emitted[0], "t": 10**9, "p": "0.00000000"}}
        ),
        "invalid_json": '{"stream":"btcusdt@trade","data":{"e":"trade","E":17',
        "missing_field": json.dumps({"stream": "btcusdt@bookTicker", "data": {"u": 1, "s": "BTCUSDT"}}),
        "unsupported_stream": json.dumps({"stream": "btcusdt@depth", "data": {"e": "depthUpdate"}}),
        "unknown_symbol": json.dumps({"stream": "nosuchcoin@trade", "data": {**emitted[0], "s": "NOSUCHCOIN"}}),
    }
    producer = Producer(
        {"bootstrap.servers": pipeline.stack_env["KAFKA_BOOTSTRAP_SERVERS"], "enable.idempotence": True}
    )
    for reason, frame in bad_frames.items():
        producer.produce(
            pipeline.raw_topic, value=frame.encode(), key=b"BTCUSDT", headers=[("test_case", reason.encode())]
        )
    # The same valid trades again, as a redelivery or a replay would bring them.
    for trade in emitted[:20]:
        frame = json.dumps({"stream": f"{str(trade['s']).lower()}@trade", "data": trade})
        producer.produce(pipeline.raw_topic, value=frame.encode(), key=str(trade["s"]).encode())
    assert producer.flush(10) == 0

    dead_letters: dict[str, dict[str, str]] = {}
    consumer = Consumer(
        {
            "bootstrap.servers": pipeline.stack_env["KAFKA_BOOTSTRAP_SERVERS"],
            "group.id": f"dlq-reader-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([pipeline.dlq_topic])

    def read_dead_letters() -> bool:
        for message in consumer.consume(num_messages=10, timeout=0.5):
            if message.error() is None:
                headers = {text(key): text(value) for key, value in list(message.headers() or [])}
                dead_letters[headers["test_case"]] = {**headers, "value": text(message.value())}
        return len(dead_letters) == len(bad_frames)

    try:
        wait_until(read_dead_letters, 60, "the dead-lettered messages", interval_s=0)
    finally:
        consumer.close()
    for reason, frame in bad_frames.items():
        letter = dead_letters[reason]
        assert letter[Header.DLQ_REASON] == reason
        assert letter[Header.DLQ_DETAIL]
        assert letter["value"] == frame, "the original bytes, unchanged"
        assert letter[Header.DLQ_SOURCE_TOPIC] == pipeline.raw_topic

    # The redelivered trades were written in the same batches as the rejects, which are now in the
    # DLQ: the table is exactly what it was.
    assert pipeline.stored_trades() == before

    # The index of dead letters the status page reads: one row per rejected message, by offset.
    indexed = pipeline.query("SELECT reason, source_topic FROM dead_letters ORDER BY source_offset")
    assert sorted(str(reason) for reason, _ in indexed) == sorted(bad_frames)
    assert {topic for _, topic in indexed} == {pipeline.raw_topic}
    # The consumer reports its lag; once everything is read it is zero on every partition (init
    # creates the topic with the contract's partitions).
    partitions = next(spec.partitions for spec in TOPICS if spec.name == RAW_TOPIC)
    wait_until(
        lambda: pipeline.query("SELECT count(*), coalesce(sum(lag), -1) FROM consumer_lag")[0] == (partitions, 0),
        30,
        "a lag report of 0 on each partition",
    )
    pipeline.services.assert_running()
