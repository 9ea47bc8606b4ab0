"""The whole market on real parts: the fake in whole-market mode -> producer (PRODUCER_SYMBOLS=ALL)
-> Kafka -> consumer -> PostgreSQL, with rates scaled down so a run stays short.

The fake trades every TRADING symbol of the recorded exchangeInfo (1,262 of 1,695) evenly and a few
trades each; the producer streams trade, aggTrade, kline_1m and bookTicker of every one of them
(5,048 streams on 5 connections) and follows symbols listed and halted while it runs.
"""

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg2
import pytest

from fake_binance.exchange_info import load_exchange_info
from tests.conftest import Services, free_port, libpq_dsn, wait_until

pytestmark = pytest.mark.integration

# BTCUSDT starts halted (BREAK), to be resumed and halted again by a test.
RESUMED = "BTCUSDT"
TRADING = [symbol for symbol in load_exchange_info(full=True).trading() if symbol != RESUMED]
TRADES_PER_SYMBOL = 3
STREAM_TYPES = "trade,aggTrade,kline_1m,bookTicker"


@dataclass
class Market:
    services: Services
    database_url: str
    fake_url: str
    producer_metrics_url: str
    emitted_path: Path

    def query(self, sql: str, *args: object) -> list[tuple[object, ...]]:
        with closing(psycopg2.connect(libpq_dsn(self.database_url))) as connection, connection.cursor() as cursor:
            cursor.execute(sql, args)
            return list(cursor.fetchall())

    def count(self, sql: str, *args: object) -> int:
        return int(str(self.query(sql, *args)[0][0]))

    def emitted(self) -> list[tuple[str, int]]:
        """Ground truth: (symbol, trade id) of every trade the fake sent, as it recorded them."""
        if not self.emitted_path.exists():
            return []
        return [(p["s"], p["t"]) for p in map(json.loads, self.emitted_path.read_text().splitlines())]

    def stored(self) -> list[tuple[str, int]]:
        return [(str(s), int(str(t))) for s, t in self.query("SELECT symbol, trade_id FROM trades")]

    def fake(self, path: str, body: dict[str, object] | None = None) -> dict[str, object]:
        if body is None:
            response = httpx.get(self.fake_url + path, timeout=5)
        else:
            response = httpx.post(self.fake_url + path, json=body, timeout=5)
        assert response.status_code == 200, response.text
        answer: dict[str, object] = response.json()
        return answer

    def producer_metric(self, name: str) -> float:
        text = httpx.get(self.producer_metrics_url, timeout=5).text
        values = [line.split()[-1] for line in text.splitlines() if line.startswith(name + " ")]
        return float(values[0]) if values else -1.0


@pytest.fixture()
def market(stack_env: dict[str, str], database: dict[str, str], services: Services, tmp_path: Path) -> Iterator[Market]:
    suffix = uuid.uuid4().hex[:8]
    raw_topic, dlq_topic = f"binance.raw.{suffix}", f"binance.raw.dlq.{suffix}"
    ws_port, rest_port, producer_port, consumer_port = free_port(), free_port(), free_port(), free_port()
    services.extra_addresses = {
        "fake-binance:9443": f"127.0.0.1:{ws_port}",
        "fake-binance:8090": f"127.0.0.1:{rest_port}",
    }
    services.variables = {
        "BINANCE_WS_BASE_URL": "ws://fake-binance:9443",
        "BINANCE_REST_BASE_URL": "http://fake-binance:8090",
        "SYMBOLS": "ALL",
        "STREAM_TYPES": STREAM_TYPES,
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
            "FAKE_BINANCE_IDS_FROM_CLOCK": "false",
            # Every symbol at the same rate (a top rate at the even share), a few trades each, no bursts.
            "FAKE_BINANCE_MARKET_TRADES_PER_SECOND": str(len(TRADING)),
            "FAKE_BINANCE_MARKET_TOP_TRADES_PER_SECOND": "1",
            "FAKE_BINANCE_MARKET_BOOK_TICKERS_PER_SECOND": "200",
            "FAKE_BINANCE_MARKET_BURST_S": "0",
            "FAKE_BINANCE_MAX_TRADES": str(TRADES_PER_SYMBOL),
            "FAKE_BINANCE_RECORD_PATH": str(emitted_path),
            "FAKE_BINANCE_SEED": "5",
            "FAKE_BINANCE_HALTED_SYMBOLS": RESUMED,
        },
    )
    services.start(
        "consumer",
        {
            "CONSUMER_DATABASE_URL": database["owner"],
            "CONSUMER_RAW_TOPIC": raw_topic,
            "CONSUMER_DLQ_TOPIC": dlq_topic,
            "CONSUMER_GROUP_ID": f"test-{suffix}",
            "CONSUMER_METRICS_PORT": str(consumer_port),
            # A symbol listed since the consumer's last look at exchangeInfo is dead-lettered as
            # unknown_symbol until its next one: short here, so a listing is stored within seconds.
            "CONSUMER_SYMBOL_REFRESH_S": "1",
        },
    )
    fake_url = f"http://127.0.0.1:{rest_port}"
    wait_until(lambda: httpx.get(fake_url + "/api/v3/ping", timeout=1).status_code == 200, 30, "the fake exchange")
    services.start(
        "producer",
        {
            "PRODUCER_RAW_TOPIC": raw_topic,
            "PRODUCER_METRICS_PORT": str(producer_port),
            "PRODUCER_EXCHANGE_INFO_REFRESH_S": "1",
        },
    )
    yield Market(services, database["owner"], fake_url, f"http://127.0.0.1:{producer_port}/metrics", emitted_path)


def test_every_trading_symbol_s_trades_arrive(market: Market) -> None:
    expected = len(TRADING) * TRADES_PER_SYMBOL
    wait_until(lambda: len(market.emitted()) >= expected, 90, "the fake's trades of every symbol")
    wait_until(lambda: len(market.stored()) >= expected, 120, "every trade in PostgreSQL")
    market.services.assert_running()
    assert sorted(market.stored()) == sorted(market.emitted())
    per_symbol = Counter(symbol for symbol, _ in market.stored())
    assert set(per_symbol) == set(TRADING) and set(per_symbol.values()) == {TRADES_PER_SYMBOL}
    # The other three kinds came too, for symbols all over the market.
    assert market.count("SELECT count(DISTINCT symbol) FROM agg_trades") == len(TRADING)
    wait_until(lambda: market.count("SELECT count(DISTINCT symbol) FROM klines") == len(TRADING), 60, "klines")
    assert market.count("SELECT count(*) FROM book_tickers") > 0


def test_the_producer_stays_within_binance_s_connection_limits(market: Market) -> None:
    wait_until(lambda: market.fake("/fake/state")["streams_subscribed"] == 4 * len(TRADING), 60, "every stream")
    state = market.fake("/fake/state")
    # 5,048 streams on 5 connections: the fake refuses a connection of more than 1024, and
    # handshakes over 300 in 5 minutes; it refused none.
    assert state["connections_open"] == 5 and state["connections_accepted"] == 5
    assert state["connections_refused"] == 0
    assert market.producer_metric("producer_streams_subscribed") == 4 * len(TRADING)


def test_a_listed_symbol_is_followed(market: Market) -> None:
    wait_until(lambda: market.fake("/fake/state")["streams_subscribed"] == 4 * len(TRADING), 60, "every stream")
    market.fake("/fake/symbol", {"symbol": "NEWCOINUSDT", "like": "NKNUSDT", "trades_per_second": 20})
    exchange_info = market.fake("/api/v3/exchangeInfo?symbol=NEWCOINUSDT")
    assert exchange_info["symbols"][0]["status"] == "TRADING"  # type: ignore[index]
    wait_until(
        lambda: market.count("SELECT count(*) FROM trades WHERE symbol = 'NEWCOINUSDT'") >= TRADES_PER_SYMBOL,
        60,
        "the listed symbol's trades in PostgreSQL",
    )
    # On a connection that had room, by SUBSCRIBE: no new connection was opened for it.
    state = market.fake("/fake/state")
    assert state["streams_subscribed"] == 4 * (len(TRADING) + 1) and state["connections_accepted"] == 5
    wait_until(lambda: market.producer_metric('producer_symbol_changes_total{change="listed"}') == 1, 10, "the count")


def test_a_resumed_symbol_is_followed_and_a_halted_one_unsubscribed(market: Market) -> None:
    wait_until(lambda: market.fake("/fake/state")["streams_subscribed"] == 4 * len(TRADING), 60, "every stream")
    assert market.count("SELECT count(*) FROM trades WHERE symbol = %s", RESUMED) == 0
    market.fake("/fake/symbol", {"symbol": RESUMED, "status": "TRADING", "trades_per_second": 10})
    wait_until(
        lambda: market.count("SELECT count(*) FROM trades WHERE symbol = %s", RESUMED) == TRADES_PER_SYMBOL,
        60,
        "the resumed symbol's trades in PostgreSQL",
    )
    assert market.fake("/fake/state")["streams_subscribed"] == 4 * (len(TRADING) + 1)
    market.fake("/fake/symbol", {"symbol": RESUMED, "status": "HALT"})
    wait_until(lambda: market.fake("/fake/state")["streams_subscribed"] == 4 * len(TRADING), 30, "its unsubscription")
    wait_until(lambda: market.producer_metric('producer_symbol_changes_total{change="halted"}') == 1, 10, "the count")
    assert market.fake("/fake/state")["connections_accepted"] == 5  # all of it on the live connections
    market.services.assert_running()
