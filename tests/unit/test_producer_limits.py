"""Binance's connection rules as pure logic: sharding, connection-attempt budget, backoff, REST weight."""

import random

import pytest

from producer.limits import AttemptBudget, WeightBudget, backoff_delay, combined_stream_url, shard_streams
from producer.settings import MAX_STREAMS_PER_CONNECTION


def test_streams_are_sharded_within_the_per_connection_limit() -> None:
    names = [f"s{i:04d}usdt@trade" for i in range(2500)]
    shards = shard_streams(names, MAX_STREAMS_PER_CONNECTION)
    assert [len(shard) for shard in shards] == [1024, 1024, 452]
    assert [name for shard in shards for name in shard] == names


def test_sharding_drops_duplicates_and_keeps_order() -> None:
    assert shard_streams(["a@trade", "a@kline_1m", "a@trade", "b@trade"], 2) == [["a@trade", "a@kline_1m"], ["b@trade"]]
    with pytest.raises(ValueError):
        shard_streams(["a@trade"], 0)


def test_combined_stream_url() -> None:
    assert (
        combined_stream_url("wss://stream.binance.com:9443/", ["btcusdt@trade", "btcusdt@kline_1s"])
        == "wss://stream.binance.com:9443/stream?streams=btcusdt@trade/btcusdt@kline_1s"
    )
    assert combined_stream_url("ws://h:1", ["a@trade"], "MICROSECOND").endswith("?streams=a@trade&timeUnit=MICROSECOND")


def test_backoff_grows_exponentially_within_bounds_and_jitters() -> None:
    rng = random.Random(3)
    for attempt in range(40):
        delay = backoff_delay(attempt, 0.5, 30.0, rng)
        assert 0.5 <= delay <= min(30.0, 0.5 * 2**attempt)
    late = {round(backoff_delay(10, 0.5, 30.0, rng), 3) for _ in range(20)}
    assert len(late) > 10, "jittered, not lock step"
    assert backoff_delay(0, 0.5, 30.0, rng) == 0.5


def test_connection_attempts_are_budgeted_over_a_sliding_window() -> None:
    budget = AttemptBudget(limit=300, window_s=300.0)
    for n in range(300):
        assert budget.wait_s(now=n * 0.1) == 0.0
        budget.record(now=n * 0.1)
    assert budget.wait_s(now=30.0) == pytest.approx(270.0)
    assert budget.wait_s(now=300.0) == 0.0, "the oldest attempt left the window"


def test_rest_weight_budget_waits_for_the_next_minute() -> None:
    budget = WeightBudget(limit_per_minute=6000, share=0.5)
    assert budget.allowed == 3000
    budget.update("2999", now_s=120.0)
    assert budget.wait_s(now_s=121.0) == 0.0
    budget.update("3000", now_s=125.0)
    assert budget.wait_s(now_s=125.0) == pytest.approx(55.1)
    assert budget.wait_s(now_s=180.5) == 0.0, "a new minute, a new window"
    budget.update(None, now_s=181.0)
    assert budget.wait_s(now_s=181.0) == 0.0
