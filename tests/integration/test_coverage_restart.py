"""A producer stopped for a while and restarted, on real Kafka and PostgreSQL against the fake:
it refetches what it missed from where its last held marker says it stopped, and coverage shows
no hole; with the fake's REST refusing the refetch, coverage shows the hole and the api says so."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from bootstrap.__main__ import migrate
from tests.conftest import Services, wait_until
from tests.integration.api_helpers import asgi_client
from tests.integration.test_consumer import Feed, start_consumer
from tests.integration.test_producer_resilience import (  # noqa: F401
    SYMBOLS,
    Fake,
    Topic,
    ids_in_kafka,
    run_producer,
    start_fake,
    topic,
)

pytestmark = pytest.mark.integration

COVERAGE = {"PRODUCER_COVERAGE_INTERVAL_S": "0.5", "PRODUCER_STREAM_TYPES": "trade,aggTrade"}


def coverage(database: dict[str, str], symbol: str, stream: str) -> dict[str, Any]:
    with asgi_client(database) as client:
        answer = client.get("/v1/coverage", params={"symbol": symbol, "stream": stream})
    assert answer.status_code == 200, answer.text
    streams: list[dict[str, Any]] = answer.json()["streams"]
    return streams[0]


def stop_for_a_while(
    fake: Fake,
    raw: Topic,
    start_producer: Any,
    before_restart: Callable[[], object] = lambda: None,
    stream_types: str = "trade,aggTrade",
    **settings: str,
) -> tuple[Any, int]:
    """Runs the producer until it has published held markers, stops it, lets the market trade on,
    and starts it again. Returns the second producer and the last trade id made while it was down."""
    first = start_producer(fake, raw.name, **{**COVERAGE, "PRODUCER_STREAM_TYPES": stream_types})
    wait_until(lambda: sum(m.source == "coverage" for m in raw.read()) >= 8, 30, "the first held markers")
    assert first.stop() == 0, first.log()
    before = max(fake.traded_ids("BTCUSDT", "trade"))
    wait_until(lambda: max(fake.traded_ids("BTCUSDT", "trade")) >= before + 60, 30, "trades while it is down")
    missed = max(fake.traded_ids("BTCUSDT", "trade"))
    before_restart()
    return start_producer(fake, raw.name, **{**COVERAGE, "PRODUCER_STREAM_TYPES": stream_types, **settings}), missed


def consume_into(database: dict[str, str], services: Services, raw: Topic, fake: Fake) -> None:
    """The consumer, as compose runs it, storing the test's topic into the test's database."""
    migrate(database["owner"], "binance_api")
    start_consumer(services, "consumer", Feed(raw.bootstrap, raw.name), database["owner"], "g", fake.endpoints.rest_url)


def test_a_restarted_producer_fills_the_time_it_was_down_and_coverage_shows_no_hole(
    start_fake: Any,  # noqa: F811
    topic: Topic,  # noqa: F811
    run_producer: Any,  # noqa: F811
    database: dict[str, str],
    services: Services,
) -> None:
    fake = start_fake(trades_per_second=40, max_trades=0)
    consume_into(database, services, topic, fake)
    second, missed = stop_for_a_while(fake, topic, run_producer)

    def every_trade_in_kafka() -> bool:
        traded = {i for i in fake.traded_ids("BTCUSDT", "trade") if i <= missed}
        found = ids_in_kafka(topic.read(), "BTCUSDT", "trade")
        return traded <= found["ws"] | found["rest"]

    wait_until(every_trade_in_kafka, 30, "every trade of the time it was down, over REST")

    # The first run's held period and the second's meet: one period, no hole, past the stop.
    def one_period_past_the_stop() -> bool:
        state = coverage(database, "BTCUSDT", "trade")
        return len(state["held"]) == 1 and state["holes"] == [] and time.time() - _seconds(state["held"][0]["end"]) < 5

    wait_until(one_period_past_the_stop, 30, "one held period across the restart")
    resumed = [line for line in second.log_lines() if line.get("message") == "resuming from the last held marker"]
    assert {line["stream"] for line in resumed} == {f"{s.lower()}@{k}" for s in SYMBOLS for k in ("trade", "aggTrade")}
    assert second.stop() == 0


def test_with_rest_refusing_the_restart_records_the_hole_and_the_api_shows_it(
    start_fake: Any,  # noqa: F811
    topic: Topic,  # noqa: F811
    run_producer: Any,  # noqa: F811
    database: dict[str, str],
    services: Services,
) -> None:
    fake = start_fake(trades_per_second=40, max_trades=0)
    consume_into(database, services, topic, fake)
    history = ["/api/v3/historicalTrades", "/api/v3/aggTrades"]
    # exchangeInfo still answers (so the producer starts); every refetch is refused by a 418 ban.
    refused = {"status": 418, "count": 10_000, "retry_after_s": 600, "paths": history}

    second, _ = stop_for_a_while(
        fake,
        topic,
        run_producer,
        lambda: fake.control("rate-limit", **refused),
        PRODUCER_BACKFILL_GIVE_UP_S="2",
    )

    def a_hole_then_held() -> bool:
        state = coverage(database, "BTCUSDT", "trade")
        return len(state["holes"]) == 1 and len(state["held"]) == 2

    wait_until(a_hole_then_held, 40, "a hole between two held periods")
    state = coverage(database, "BTCUSDT", "trade")
    hole = state["holes"][0]
    assert state["held"][0]["end"] == hole["start"] and hole["end"] == state["held"][1]["start"]
    assert "418" in hole["detail"], hole
    # The api marks it: the price at a second inside the hole is not made up from before it.
    with asgi_client(database) as client:
        inside_ms = int(_seconds(hole["start"]) * 1000) + 1000  # the hole lasts the 2 s the producer was down
        inside = client.get("/v1/prices/at", params={"symbol": "BTCUSDT", "timestamp": inside_ms})
    assert inside.status_code == 404 and "lacks BTCUSDT trades" in inside.json()["detail"], inside.text
    assert second.process.poll() is None, second.log()


def _seconds(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_a_bookticker_drop_is_a_hole_and_its_trades_stay_held(
    start_fake: Any,  # noqa: F811
    topic: Topic,  # noqa: F811
    run_producer: Any,  # noqa: F811
    database: dict[str, str],
    services: Services,
) -> None:
    fake = start_fake(trades_per_second=40, max_trades=0)
    consume_into(database, services, topic, fake)
    producer = run_producer(fake, topic.name, **{**COVERAGE, "PRODUCER_STREAM_TYPES": "trade,bookTicker"})
    wait_until(lambda: coverage(database, "BTCUSDT", "bookTicker")["held"], 30, "bookTicker held")
    accepted = fake.state()["connections_accepted"]
    fake.control("drop-connections", mode="abrupt")
    wait_until(lambda: fake.state()["connections_accepted"] > accepted, 20, "the producer reconnected")

    def a_hole_between_held_periods() -> bool:
        state = coverage(database, "BTCUSDT", "bookTicker")
        return len(state["holes"]) == 1 and len(state["held"]) == 2

    wait_until(a_hole_between_held_periods, 30, "a bookTicker hole between two held periods")
    hole = coverage(database, "BTCUSDT", "bookTicker")["holes"][0]
    assert "no bookTicker history" in hole["detail"], hole
    # The trades of the same connection were refetched over REST: no hole there.
    wait_until(lambda: coverage(database, "BTCUSDT", "trade")["held"], 10, "trades held")
    trades = coverage(database, "BTCUSDT", "trade")
    assert trades["holes"] == [] and len(trades["held"]) == 1, trades
    assert producer.stop() == 0


def test_a_restarted_producer_refetches_the_klines_it_missed_and_holds_them(
    start_fake: Any,  # noqa: F811
    topic: Topic,  # noqa: F811
    run_producer: Any,  # noqa: F811
    database: dict[str, str],
    services: Services,
) -> None:
    fake = start_fake(trades_per_second=40, max_trades=0)
    consume_into(database, services, topic, fake)
    second, _ = stop_for_a_while(fake, topic, run_producer, stream_types="trade,kline_1s")

    def one_kline_period_past_the_stop() -> bool:
        state = coverage(database, "BTCUSDT", "kline_1s")
        return len(state["held"]) == 1 and state["holes"] == [] and time.time() - _seconds(state["held"][0]["end"]) < 5

    wait_until(one_kline_period_past_the_stop, 30, "one held kline period across the restart")
    wait_until(
        lambda: any(m.stream == "btcusdt@kline_1s" and m.source == "rest" for m in topic.read()),
        30,
        "the klines of the time it was down, over REST",
    )
    assert second.stop() == 0
