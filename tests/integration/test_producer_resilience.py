"""The producer (`python -m producer`, a real process) against the fake exchange misbehaving, on real Kafka.

Each test starts its own fake in a thread of this process (trade ids from 1, ports chosen by the
OS), a topic of its own, and the producer as a subprocess with the settings compose would give it
plus short timings. Ground truth is the fake's history: every trade id and aggregate id it
traded must be in Kafka, via the WebSocket (source ws) or a REST backfill (source rest).
Every wait is a poll with a deadline.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from confluent_kafka import Consumer, Message, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from fake_binance.server import Endpoints, FakeBinanceThread
from fake_binance.settings import FakeBinanceSettings
from schemas.shards import shard_of
from schemas.topics import Header
from tests.conftest import REPO, wait_until
from tests.support.kafka import PrivateKafka

pytestmark = pytest.mark.integration

SYMBOLS = ("BTCUSDT", "ETHUSDT")
# Short timings so each test runs in seconds.
FAST_PRODUCER = {
    "PRODUCER_RECONNECT_MIN_S": "0.05",
    "PRODUCER_RECONNECT_MAX_S": "0.3",
    "PRODUCER_GAP_GRACE_S": "0.3",
    "PRODUCER_PING_INTERVAL_S": "0.5",
    "PRODUCER_PING_TIMEOUT_S": "1",
    "PRODUCER_STATS_INTERVAL_S": "1",
    "PRODUCER_FLUSH_TIMEOUT_S": "10",
}


@dataclass
class RawMessage:
    value: bytes
    headers: dict[str, str]

    @property
    def stream(self) -> str:
        return self.headers.get(Header.STREAM, "")

    @property
    def source(self) -> str:
        return self.headers.get(Header.SOURCE, "")


@dataclass
class Topic:
    """One test's topic, read from the beginning as messages arrive."""

    bootstrap: str
    name: str
    messages: list[RawMessage] = field(default_factory=list)
    _consumer: Consumer | None = None

    def read(self) -> list[RawMessage]:
        if self._consumer is None:
            self._consumer = Consumer(
                {
                    "bootstrap.servers": self.bootstrap,
                    "group.id": f"t-{uuid.uuid4().hex[:8]}",
                    "enable.auto.commit": False,
                }
            )
            self._consumer.assign([TopicPartition(self.name, p, 0) for p in range(3)])
        # Bounded: with a market that never stops, there is always one more message.
        deadline = time.monotonic() + 1.0
        while batch := self._consumer.consume(num_messages=10_000, timeout=0.2):
            for message in batch:
                if message.error() is None:
                    self.messages.append(RawMessage(message.value() or b"", header_texts(message)))
            if time.monotonic() > deadline:
                break
        return self.messages

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()


def header_texts(message: Message) -> dict[str, str]:
    raw = message.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    return {key: value.decode() if isinstance(value, bytes) else (value or "") for key, value in pairs}


def ids_in_kafka(messages: list[RawMessage], symbol: str, kind: str) -> dict[str, set[int]]:
    """Ids of one symbol's trades (kind 'trade') or aggTrades ('aggTrade'), by source."""
    stream = f"{symbol.lower()}@{kind}"
    found: dict[str, set[int]] = {"ws": set(), "rest": set()}
    for message in messages:
        if message.stream != stream:
            continue
        try:
            body = orjson.loads(message.value)
        except orjson.JSONDecodeError:
            continue  # a corrupted frame, published as received
        if message.source == "ws":
            found["ws"].add(body["data"]["t" if kind == "trade" else "a"])
        elif message.source == "rest":  # not a coverage marker
            found["rest"].add(body["id" if kind == "trade" else "a"])
    return found


class Fake:
    def __init__(self, thread: FakeBinanceThread, endpoints: Endpoints) -> None:
        self.thread = thread
        self.endpoints = endpoints
        self.http = httpx.Client(base_url=endpoints.rest_url, timeout=5)

    def state(self) -> dict[str, Any]:
        body: dict[str, Any] = self.http.get("/fake/state").json()
        return body

    def control(self, action: str, **body: Any) -> dict[str, Any]:
        response = self.http.post(f"/fake/{action}", json=body)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def traded_ids(self, symbol: str, kind: str) -> set[int]:
        exchange = self.thread.exchange
        assert exchange is not None
        history = exchange.histories[symbol]
        ids = self.thread.call(lambda: list(history.trade_ids if kind == "trade" else history.agg_ids))
        assert isinstance(ids, list)
        return set(ids)


@pytest.fixture
def start_fake(tmp_path: Path) -> Iterator[Any]:
    started: list[Fake] = []

    def start(**overrides: Any) -> Fake:
        values: dict[str, Any] = {
            "host": "127.0.0.1",
            "ws_port": 0,
            "rest_port": 0,
            "symbols": ",".join(SYMBOLS),
            "trades_per_second": 60,
            "max_trades": 300,
            "seed": 3,
            "log_level": "WARNING",
        }
        values.update(overrides)
        thread = FakeBinanceThread(FakeBinanceSettings(**values))
        fake = Fake(thread, thread.start())
        started.append(fake)
        return fake

    yield start
    for fake in started:
        fake.http.close()
        fake.thread.stop()


@pytest.fixture
def topic(stack_env: dict[str, str]) -> Iterator[Topic]:
    bootstrap = stack_env["KAFKA_BOOTSTRAP_SERVERS"]
    name = f"binance.raw.producer.{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)]).values():
        future.result(timeout=30)
    created = Topic(bootstrap, name)
    yield created
    created.close()
    admin.delete_topics([name])


class ProducerProcess:
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "producer"],
            env={**os.environ, **env},
            cwd=REPO,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.log().splitlines():
            if line.startswith("{"):
                try:
                    lines.append(orjson.loads(line))
                except orjson.JSONDecodeError:
                    continue
        return lines

    def stop(self, timeout_s: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


@pytest.fixture
def run_producer(stack_env: dict[str, str], tmp_path: Path) -> Iterator[Any]:
    running: list[ProducerProcess] = []

    def run(fake: Fake, topic_name: str, **settings: str) -> ProducerProcess:
        env = {
            "PRODUCER_KAFKA_BOOTSTRAP_SERVERS": stack_env["KAFKA_BOOTSTRAP_SERVERS"],
            "PRODUCER_RAW_TOPIC": topic_name,
            "PRODUCER_WS_BASE_URL": fake.endpoints.ws_url,
            "PRODUCER_REST_BASE_URL": fake.endpoints.rest_url,
            "PRODUCER_SYMBOLS": ",".join(SYMBOLS),
            "PRODUCER_STREAM_TYPES": "trade,aggTrade",
            **FAST_PRODUCER,
            **settings,
        }
        process = ProducerProcess(env, tmp_path / f"producer-{len(running)}.log")
        running.append(process)
        return process

    yield run
    for process in running:
        process.stop()


def assert_complete(fake: Fake, topic: Topic, kinds: tuple[str, ...] = ("trade", "aggTrade")) -> dict[str, int]:
    """Every id the fake traded is in Kafka; returns how many came over each source."""
    sources = {"ws": 0, "rest": 0}
    for symbol in SYMBOLS:
        for kind in kinds:
            traded = fake.traded_ids(symbol, kind)
            assert traded, f"the fake traded no {kind} for {symbol}"

            def complete(symbol: str = symbol, kind: str = kind, traded: set[int] = traded) -> bool:
                found = ids_in_kafka(topic.read(), symbol, kind)
                return traded <= found["ws"] | found["rest"]

            wait_until(complete, 30, f"every {symbol} {kind} id in Kafka", interval_s=0.1)
            found = ids_in_kafka(topic.messages, symbol, kind)
            sources["ws"] += len(traded & found["ws"])
            sources["rest"] += len(traded & (found["rest"] - found["ws"]))
    return sources


def exited(process: ProducerProcess) -> bool:
    return process.process.poll() is not None


def reconnected(fake: Fake, after: int) -> bool:
    state = fake.state()
    return bool(state["connections_accepted"] > after and state["connections_open"] >= 1)


# --- the tests ------------------------------------------------------------------------------------


def test_drops_freezes_gaps_and_bad_frames_lose_no_trade(start_fake: Any, topic: Topic, run_producer: Any) -> None:
    fake = start_fake(trades_per_second=80, max_trades=700, ping_interval_s=0.3, pong_timeout_s=5)
    producer = run_producer(fake, topic.name, PRODUCER_STREAM_TYPES="trade,aggTrade,kline_1m")
    wait_until(lambda: fake.state()["connections_open"] == 1, 20, "the producer's connection")

    faults: list[tuple[str, dict[str, Any]]] = [
        ("drop-connections", {"mode": "abrupt"}),  # TCP cut, no close frame
        ("gap", {"trades": 4, "agg_trades": 2}),  # ids missing from the stream, kept in REST
        ("malformed", {"count": 3, "mode": "truncate"}),
        ("drop-connections", {"mode": "close"}),
        ("error-reply", {"code": 2, "msg": "Invalid request: test"}),
        ("freeze-connections", {}),  # silent peer: only our keepalive finds out
        ("malformed", {"count": 2, "mode": "garbage"}),
        ("drop-connections", {"mode": "shutdown"}),  # serverShutdown, then close
    ]
    for action, body in faults:
        accepted = fake.state()["connections_accepted"]
        fake.control(action, **body)
        if action in ("drop-connections", "freeze-connections"):
            wait_until(partial(reconnected, fake, accepted), 20, f"a reconnect after {action}")
        else:
            time.sleep(0.3)  # let some trades flow between faults (not an assertion)
    wait_until(lambda: fake.state()["market_done"], 30, "the fake's last trade")

    sources = assert_complete(fake, topic)
    assert sources["rest"] > 0, "the gaps were filled over REST"
    assert producer.process.poll() is None, producer.log()
    messages = topic.read()
    # Every raw message is published, even those nobody can parse.
    assert any(m.value == b'{"code":2,"msg":"Invalid request: test"}' for m in messages)
    assert any(m.stream == "!serverShutdown" for m in messages)
    assert sum(1 for m in messages if m.source == "ws" and not m.value.endswith(b"}}")) >= 3
    # Klines have no ids to find gaps by: after each drop the klines since then are fetched again.
    assert any(m.stream == "btcusdt@kline_1m" and m.source == "rest" for m in messages)
    assert producer.stop() == 0


def test_rollover_opens_the_successor_first_so_nothing_is_missed(
    start_fake: Any, topic: Topic, run_producer: Any
) -> None:
    # The fake closes connections after 2.5 s (Binance: 24 h); the producer replaces them at 1 s.
    fake = start_fake(trades_per_second=60, max_trades=360, connection_lifetime_s=2.5)
    producer = run_producer(
        fake, topic.name, PRODUCER_CONNECTION_MAX_AGE_S="1", PRODUCER_ROLLOVER_OVERLAP_S="0.3", PRODUCER_GAP_GRACE_S="5"
    )
    wait_until(lambda: fake.state()["market_done"], 30, "the fake's last trade")
    sources = assert_complete(fake, topic)
    assert sources["rest"] == 0, "no gap, so nothing needed REST"
    connections = {m.headers[Header.CONNECTION_ID] for m in topic.messages if m.source == "ws"}
    assert len(connections) >= 4, "one connection per rollover"
    assert producer.stop() == 0
    assert not any(line.get("message") == "connection lost, reconnecting" for line in producer.log_lines())
    assert sum(line.get("message") == "rollover done" for line in producer.log_lines()) >= 3


def test_rest_429_is_waited_out_and_418_stops_backfilling(start_fake: Any, topic: Topic, run_producer: Any) -> None:
    fake = start_fake(trades_per_second=40, max_trades=0)
    producer = run_producer(fake, topic.name, PRODUCER_STREAM_TYPES="trade")
    wait_until(lambda: fake.state()["connections_open"] == 1, 20, "the producer's connection")
    wait_until(lambda: topic.read(), 20, "the first messages")

    fake.control("rate-limit", status=429, count=2, retry_after_s=1)
    fake.control("gap", trades=3, agg_trades=0)

    def backfilled() -> list[dict[str, Any]]:
        return [r for r in fake.state()["rest_requests"] if r["path"] == "/api/v3/historicalTrades"]

    # The 3 skipped trades may span both symbols: one or two ranges, the first refused twice.
    wait_until(lambda: [r["status"] for r in backfilled()][:3] == [429, 429, 200], 20, "429, 429, then an answer")
    first, second, third = backfilled()[:3]
    assert second["at"] - first["at"] >= 1.0, "Retry-After honoured"
    assert third["at"] - second["at"] >= 1.0, "Retry-After honoured"
    assert any(line.get("message", "").startswith("REST 429") for line in producer.log_lines())

    # A 418 is an IP ban: backfilling stops for its Retry-After, loudly.
    fake.control("rate-limit", status=418, count=1, retry_after_s=120)
    fake.control("gap", trades=3, agg_trades=0)
    wait_until(
        lambda: any(
            line.get("levelname") == "CRITICAL" and "BANNED" in line["message"] for line in producer.log_lines()
        ),
        20,
        "the ban reported",
    )
    fake.control("gap", trades=3, agg_trades=0)
    banned_at = next(r["at"] for r in backfilled() if r["status"] == 418)
    wait_until(lambda: fake.state()["trades_skipped"] >= 9 and len(topic.read()) > 0, 10, "another gap during the ban")
    time.sleep(1.0)  # room for a (wrong) request to show up; the assertion below does not depend on timing
    assert [r for r in backfilled() if r["at"] > banned_at] == [], "no REST request during the ban"
    assert producer.process.poll() is None, producer.log()


def exchange_info_requests(fake: Fake) -> list[dict[str, Any]]:
    return [r for r in fake.state()["rest_requests"] if r["path"] == "/api/v3/exchangeInfo"]


@pytest.mark.parametrize(("status", "refusals", "retry_after_s"), [(429, 2, 1), (418, 1, 2)])
def test_a_refused_first_exchange_info_is_waited_out_then_asked_again(
    start_fake: Any, topic: Topic, run_producer: Any, status: int, refusals: int, retry_after_s: int
) -> None:
    # The very first request, the symbol check, is refused: a 429 (weight used up), a 418 (IP ban).
    fake = start_fake(trades_per_second=40, max_trades=120)
    fake.control("rate-limit", status=status, count=refusals, retry_after_s=retry_after_s)
    producer = run_producer(fake, topic.name, PRODUCER_STREAM_TYPES="trade")
    wait_until(lambda: fake.state()["connections_open"] == 1, 30, "the producer's connection after the refusals")
    asked = exchange_info_requests(fake)
    assert [r["status"] for r in asked] == [status] * refusals + [200]
    for before, after in itertools.pairwise(asked):
        assert after["at"] - before["at"] >= retry_after_s, "Retry-After honoured"
    logged = [line for line in producer.log_lines() if line.get("message", "").startswith(f"REST {status} on")]
    assert len(logged) == refusals, producer.log()
    assert {line["levelname"] for line in logged} == {"WARNING" if status == 429 else "CRITICAL"}
    assert {line["retry_after_s"] for line in logged} == {retry_after_s}
    wait_until(lambda: fake.state()["market_done"], 30, "the fake's last trade")
    assert_complete(fake, topic, kinds=("trade",))
    assert producer.stop() == 0


def test_unknown_symbols_still_stop_the_producer_after_a_429(start_fake: Any, run_producer: Any) -> None:
    fake = start_fake()
    fake.control("rate-limit", status=429, count=1, retry_after_s=1)
    producer = run_producer(fake, "unused", PRODUCER_SYMBOLS="BTCUSDT,NOSUCHPAIR")
    wait_until(partial(exited, producer), 30, "the producer to exit")
    assert producer.process.returncode == 2
    assert [r["status"] for r in exchange_info_requests(fake)] == [429, 200]
    errors = [line for line in producer.log_lines() if line.get("levelname") == "ERROR"]
    assert errors and "NOSUCHPAIR" in errors[0]["reason"], producer.log()


def test_an_oversized_frame_closes_the_connection_and_its_trades_come_over_rest(
    start_fake: Any, topic: Topic, run_producer: Any, tmp_path: Path
) -> None:
    record_path = tmp_path / "trades.jsonl"
    fake = start_fake(trades_per_second=60, max_trades=300, record_path=record_path)
    producer = run_producer(fake, topic.name, PRODUCER_STREAM_TYPES="trade")
    wait_until(lambda: len(topic.read()) >= 20, 20, "trades flowing")
    accepted = fake.state()["connections_accepted"]
    # One trade frame padded to 2 MiB: over the producer's limit (PRODUCER_WS_MAX_FRAME_BYTES, 512 KiB).
    fake.control("oversize", count=1, bytes=2 * 1024 * 1024)
    wait_until(partial(reconnected, fake, accepted), 20, "a reconnect after the oversized frame")
    assert fake.state()["frames_oversized"] == 1
    wait_until(lambda: fake.state()["market_done"], 30, "the fake's last trade")

    # Ground truth: every trade the fake emitted, from its record file.
    emitted = [orjson.loads(line) for line in record_path.read_text().splitlines()]
    assert len(emitted) == 2 * 300
    for symbol in SYMBOLS:
        truth = {p["t"]: p for p in emitted if p["s"] == symbol}

        def complete(symbol: str = symbol, truth: dict[int, Any] = truth) -> bool:
            found = ids_in_kafka(topic.read(), symbol, "trade")
            return set(truth) <= found["ws"] | found["rest"]

        wait_until(complete, 30, f"every {symbol} trade in Kafka", interval_s=0.1)
    # The oversized frame's trade, and whatever was sent while the connection was down, came over
    # REST, with the values the fake traded.
    truth = {(p["s"], p["t"]): p for p in emitted}
    over_rest = {}
    for message in topic.read():
        if message.source == "rest" and message.stream.endswith("@trade"):
            record = orjson.loads(message.value)
            over_rest[(message.stream.partition("@")[0].upper(), record["id"])] = record
    via_ws = {(s, t) for s in SYMBOLS for t in ids_in_kafka(topic.messages, s, "trade")["ws"]}
    missed = set(truth) - via_ws
    assert missed and missed <= set(over_rest), "the trades the stream missed were backfilled"
    for key in missed:
        record, payload = over_rest[key], truth[key]
        assert (record["price"], record["qty"], record["time"], record["isBuyerMaker"]) == (
            payload["p"],
            payload["q"],
            payload["T"],
            payload["m"],
        ), key
    assert max(len(m.value) for m in topic.messages) < 2**19, "the oversized frame was never published"

    lines = producer.log_lines()
    refused = [line for line in lines if line.get("message", "").startswith("frame over PRODUCER_WS_MAX_FRAME_BYTES")]
    assert len(refused) == 1 and refused[0]["levelname"] == "ERROR", producer.log()
    assert refused[0]["max_frame_bytes"] == 2**19
    lost = [line for line in lines if line.get("message") == "connection lost, reconnecting"]
    assert len(lost) == 1 and lost[0]["reason"].startswith("frame over 524288 bytes"), lost
    assert producer.stop() == 0


def test_unknown_or_halted_symbols_stop_the_producer_with_their_names(start_fake: Any, run_producer: Any) -> None:
    fake = start_fake(halted_symbols="ETHBTC")
    unknown = run_producer(fake, "unused", PRODUCER_SYMBOLS="BTCUSDT,NOSUCHPAIR")
    halted = run_producer(fake, "unused", PRODUCER_SYMBOLS="ETHBTC,BTCUSDT")
    for process, name in ((unknown, "NOSUCHPAIR"), (halted, "ETHBTC (BREAK)")):
        wait_until(partial(exited, process), 30, "the producer to exit")
        assert process.process.returncode == 2
        errors = [line for line in process.log_lines() if line.get("levelname") == "ERROR"]
        assert errors and name in errors[0]["reason"], process.log()
        assert "BTCUSDT" not in errors[0]["reason"]
    assert fake.state()["connections_accepted"] == 0, "no stream opened for a bad configuration"


def test_sigterm_flushes_everything_and_exits_zero(start_fake: Any, topic: Topic, run_producer: Any) -> None:
    fake = start_fake(trades_per_second=200, max_trades=0)
    producer = run_producer(fake, topic.name, PRODUCER_STREAM_TYPES="trade,aggTrade,bookTicker,kline_1s")
    wait_until(lambda: len(topic.read()) >= 300, 20, "messages flowing")
    assert producer.stop() == 0
    flushed = [line for line in producer.log_lines() if line.get("message") == "flushed"]
    assert flushed and flushed[0]["undelivered"] == 0 and flushed[0]["lost"] == 0, producer.log()
    wait_until(lambda: len(topic.read()) >= flushed[0]["produced"], 20, "every produced message in Kafka")
    assert len(topic.messages) == flushed[0]["produced"]


def test_lookback_backfill_fetches_history_before_the_stream(start_fake: Any, topic: Topic, run_producer: Any) -> None:
    # The market trades before anyone subscribes; the producer starts with --backfill 1h.
    fake = start_fake(trades_per_second=200, max_trades=400, wait_for_subscriber=False, rest_page_cap=150)
    wait_until(lambda: fake.state()["market_done"], 20, "the fake's trades")
    producer = run_producer(fake, topic.name, PRODUCER_STREAM_TYPES="trade,aggTrade,kline_1m", PRODUCER_BACKFILL="1h")
    sources = assert_complete(fake, topic)
    assert sources["ws"] == 0 and sources["rest"] > 0
    klines = [m for m in topic.read() if m.stream == "btcusdt@kline_1m" and m.source == "rest"]
    assert klines and all(isinstance(orjson.loads(k.value), list) for k in klines)
    assert producer.stop() == 0
    assert_lookback_held(topic.read())


def assert_lookback_held(messages: list[RawMessage]) -> None:
    """Each stream of the lookback has one held marker (origin rest) after its records, up to
    the newest trade's time, or the start of the kline still open."""
    # The time field of each stream's REST records; the newest kline is the one open now.
    time_fields: dict[str, str | int] = {"btcusdt@trade": "time", "btcusdt@aggTrade": "T", "btcusdt@kline_1m": 0}
    for stream, time_field in time_fields.items():
        positions = [i for i, m in enumerate(messages) if m.stream == stream and m.source == "rest"]
        held = [
            (i, orjson.loads(m.value))
            for i, m in enumerate(messages)
            if m.stream == stream and m.source == "coverage" and orjson.loads(m.value)["origin"] == "rest"
        ]
        assert len(held) == 1, (stream, held)
        [(position, marker)] = held
        assert position > max(positions), stream
        assert marker["kind"] == "held"
        assert marker["end_ms"] == max(orjson.loads(messages[i].value)[time_field] for i in positions), stream


def test_kafka_outage_is_buffered_and_what_overflowed_comes_back_over_rest(
    stack_env: dict[str, str], start_fake: Any, run_producer: Any, tmp_path: Path
) -> None:
    broker = PrivateKafka(stack_env["KAFKA_LIBS"], tmp_path / "kafka")
    broker.start()
    try:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        for future in admin.create_topics([NewTopic("binance.raw", 3, 1)]).values():
            future.result(timeout=30)
        topic = Topic(broker.bootstrap, "binance.raw")
        fake = start_fake(trades_per_second=60, max_trades=300)
        # A 100-message buffer: the outage overflows it within a second or two.
        producer = run_producer(
            fake, topic.name, PRODUCER_KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap, PRODUCER_BUFFER_MAX_MESSAGES="100"
        )
        wait_until(lambda: len(topic.read()) >= 50, 20, "messages flowing")
        topic.close()
        broker.stop()  # Kafka goes away; what it acknowledged is on disk, the rest waits in the buffer
        wait_until(
            lambda: any("messages lost" in line.get("message", "") for line in producer.log_lines()),
            30,
            "the loss reported",
        )
        assert any(line.get("message", "").startswith("kafka unavailable") for line in producer.log_lines())
        broker.start()
        wait_until(lambda: fake.state()["market_done"], 30, "the fake's last trade")
        topic = Topic(broker.bootstrap, "binance.raw")
        sources = assert_complete(fake, topic)
        assert sources["rest"] > 0, "what overflowed the buffer came back over REST"
        assert producer.stop() == 0
        topic.close()
    finally:
        broker.stop()


# Four of each shard's (shard_of(symbol, 2)), checked below rather than trusted.
SHARDED_SYMBOLS = ("ETHBTC", "BTCUSDT", "ADABTC", "BLZETH", "LTCBTC", "BNBBTC", "ETHUSDT", "LTCUSDT")
SHARDED_KINDS = ("trade", "aggTrade", "bookTicker", "kline_1m")


def traded_all(fake: Fake, symbol: str, count: int) -> bool:
    return len(fake.traded_ids(symbol, "trade")) == count


def test_two_shards_together_publish_every_stream_exactly_once(
    start_fake: Any, topic: Topic, run_producer: Any
) -> None:
    fake = start_fake(symbols=",".join(SHARDED_SYMBOLS), trades_per_second=30, max_trades=150)
    shards = {
        index: run_producer(
            fake,
            topic.name,
            PRODUCER_SYMBOLS=",".join(SHARDED_SYMBOLS),
            PRODUCER_STREAM_TYPES=",".join(SHARDED_KINDS),
            PRODUCER_SHARD=f"{index}/2",
            PRODUCER_METRICS_PORT="0",
        )
        for index in (0, 1)
    }
    owner = {symbol: shard_of(symbol, 2) for symbol in SHARDED_SYMBOLS}
    assert sorted(owner.values()) == [0] * 4 + [1] * 4
    wait_until(lambda: fake.state()["connections_open"] == 2, 20, "one connection per shard")
    for symbol in SHARDED_SYMBOLS:
        wait_until(partial(traded_all, fake, symbol, 150), 60, f"{symbol}'s trades")
    wait_until(lambda: fake.state()["market_done"], 30, "the market to go quiet")
    time.sleep(2.5)  # one more kline push (every 2 s) after the last trade
    for process in shards.values():
        assert process.stop() == 0, process.log()

    process_of_connection = {
        line["connection_id"]: index
        for index, process in shards.items()
        for line in process.log_lines()
        if line.get("message") == "connected"
    }
    for index, process in shards.items():
        started = next(line for line in process.log_lines() if line.get("message") == "started")
        assert (started["shard"], started["streams"]) == (f"{index}/2", 4 * len(SHARDED_KINDS))

    topic.read()
    live = [message for message in topic.messages if message.source == "ws"]
    publishers: dict[str, set[int]] = {}
    for message in live:
        publishers.setdefault(message.stream, set()).add(process_of_connection[message.headers[Header.CONNECTION_ID]])
    # Every stream came, each from exactly the process its symbol hashes to.
    assert publishers == {
        f"{symbol.lower()}@{kind}": {owner[symbol]} for symbol in SHARDED_SYMBOLS for kind in SHARDED_KINDS
    }
    # And every trade and aggregate trade exactly once from the shard's first frame on (the market
    # opened at the first subscription, so the later shard's symbols traded a little before it).
    for symbol in SHARDED_SYMBOLS:
        for kind, field_name in (("trade", "t"), ("aggTrade", "a")):
            stream = f"{symbol.lower()}@{kind}"
            ids = [orjson.loads(m.value)["data"][field_name] for m in live if m.stream == stream]
            assert ids and len(ids) == len(set(ids)), stream
            assert sorted(ids) == sorted(i for i in fake.traded_ids(symbol, kind) if i >= min(ids)), stream


def test_a_shard_that_owns_no_symbol_stops_with_a_clear_error(start_fake: Any, run_producer: Any) -> None:
    fake = start_fake()
    # BTCUSDT hashes to shard 1 of 2: shard 0 would stream nothing at all.
    assert shard_of("BTCUSDT", 2) == 1
    process = run_producer(fake, "unused", PRODUCER_SYMBOLS="BTCUSDT", PRODUCER_SHARD="0/2")
    wait_until(partial(exited, process), 30, "the producer to exit")
    assert process.process.returncode == 2
    errors = [line for line in process.log_lines() if line.get("levelname") == "ERROR"]
    assert errors and "PRODUCER_SHARD" in errors[0]["message"] and errors[0]["shard"] == "0/2", process.log()
    assert fake.state()["connections_accepted"] == 0
