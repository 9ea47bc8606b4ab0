"""The consumer's metrics: counted per committed batch, lag from librdkafka's statistics, health."""

import json
import time

import psycopg2
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from consumer import trade_lines
from consumer.dead_letters import Rejected
from consumer.loop import Batch
from consumer.metrics import ConsumerMetrics, MeasuredSink, event_time_us, oldest_and_newest_us, partition_lags
from consumer.parse import Rejection, TradeRow
from consumer.settings import ConsumerSettings
from consumer.sink import RowsByTable, Written

T0_US = 1_763_800_000_000_000


def trade_line(trade_id: int, event_us: int | None) -> bytes:
    return trade_lines.from_row(TradeRow("BTCUSDT", trade_id, "1.0", "2.0", T0_US, True, event_us))


def sample(metrics: ConsumerMetrics, name: str) -> float:
    value = metrics.registry.get_sample_value(name)
    assert value is not None, f"{name} not exported"
    return value


def rejected(offset: int, reason: str) -> Rejected:
    return Rejected("binance.raw", 0, offset, b"{}", None, [], Rejection(reason, "detail"))


def fresh_metrics() -> ConsumerMetrics:
    return ConsumerMetrics(CollectorRegistry())


@given(st.lists(st.integers(min_value=0, max_value=10**15) | st.none(), min_size=1, max_size=30))
def test_a_batch_ends_are_its_oldest_and_newest_event_times(event_times: list[int | None]) -> None:
    rows = RowsByTable(trades=[trade_line(i, t) for i, t in enumerate(event_times)])
    ends = [t for t in (event_times[0], event_times[-1]) if t is not None]
    assert oldest_and_newest_us(rows) == ((min(ends), max(ends)) if ends else (None, None))


def test_event_time_of_a_rest_trade_is_unknown() -> None:
    assert event_time_us(trade_line(1, None)) is None
    assert event_time_us(trade_line(1, 123)) == 123


def test_a_committed_batch_counts_rows_dead_letters_and_freshness() -> None:
    metrics = fresh_metrics()
    now_us = time.time_ns() // 1000
    batch = Batch(rows=RowsByTable(trades=[trade_line(1, now_us - 2_000_000), trade_line(2, now_us - 1_000_000)]))
    batch.rejected = [rejected(1, "invalid_json"), rejected(2, "invalid_json")]
    batch.skipped.update({"server_shutdown": 1})
    # A conflict the sink found counts as a dead letter of its own reason.
    metrics.batch_committed(batch, Written(trades=1, conflicts=[rejected(3, "conflicting_duplicate")]))
    value = metrics.registry.get_sample_value
    assert value("consumer_rows_written_total", {"table": "trades"}) == 1
    assert value("consumer_rows_written_total", {"table": "klines"}) == 0
    assert value("consumer_dead_letters_total", {"reason": "invalid_json"}) == 2
    assert value("consumer_dead_letters_total", {"reason": "conflicting_duplicate"}) == 1
    assert value("consumer_messages_skipped_total", {"reason": "server_shutdown"}) == 1
    assert value("consumer_batch_size_messages_sum") == 5
    assert value("consumer_freshness_seconds_count") == 1
    # The oldest message's age: about 2 s, not the newest's 1 s.
    assert 1.9 < sample(metrics, "consumer_freshness_seconds_sum") < 10
    assert value("consumer_newest_committed_event_timestamp_seconds") == pytest.approx((now_us - 1_000_000) / 1e6)
    assert 0.9 < sample(metrics, "consumer_lag_seconds") < 10


def test_consumed_messages_are_the_distance_offsets_moved() -> None:
    metrics = fresh_metrics()
    metrics.offsets_committed({("raw", 0): 110, ("raw", 1): 5}, {("raw", 0): 100})
    metrics.offsets_committed({("raw", 0): 120}, {("raw", 0): 110, ("raw", 1): 5})
    value = metrics.registry.get_sample_value
    assert value("consumer_messages_consumed_total", {"topic": "raw", "partition": "0"}) == 20
    assert value("consumer_messages_consumed_total", {"topic": "raw", "partition": "1"}) == 5
    assert value("consumer_last_commit_timestamp_seconds") == pytest.approx(time.time(), abs=5)


def statistics(lags: dict[int, int]) -> str:
    partitions = {str(p): {"partition": p, "consumer_lag": lag} for p, lag in lags.items()}
    return json.dumps({"topics": {"raw": {"partitions": partitions}}})


def test_lag_per_partition_comes_from_librdkafka_statistics() -> None:
    assert partition_lags(json.loads(statistics({0: 5, 1: -1, -1: 7, 2: 0}))) == {("raw", 0): 5, ("raw", 2): 0}
    metrics = fresh_metrics()
    metrics.on_statistics(statistics({0: 5, 2: 3}))
    metrics.on_statistics(statistics({0: 8}))  # partition 2 revoked: its series goes
    value = metrics.registry.get_sample_value
    assert value("consumer_lag_messages", {"topic": "raw", "partition": "0"}) == 8
    assert value("consumer_lag_messages", {"topic": "raw", "partition": "2"}) is None


@pytest.mark.parametrize("junk", ["", "not json", "[]", '{"topics": 3}'], ids=["empty", "text", "list", "bad-topics"])
def test_unreadable_statistics_change_nothing(junk: str) -> None:
    metrics = fresh_metrics()
    metrics.on_statistics(statistics({0: 4}))
    metrics.on_statistics(junk)
    assert metrics.registry.get_sample_value("consumer_lag_messages", {"topic": "raw", "partition": "0"}) == 4


def test_unhealthy_when_messages_wait_and_nothing_is_committed() -> None:
    metrics = fresh_metrics()
    metrics.kafka_config(ConsumerSettings(health_max_commit_age_s=30))
    metrics.on_statistics(statistics({0: 0}))
    metrics.last_commit_at = metrics.statistics_at - 1000
    assert metrics.health(metrics.statistics_at).healthy  # nothing waiting: an idle consumer is fine
    metrics.on_statistics(statistics({0: 12}))
    now = metrics.statistics_at
    metrics.last_commit_at = now - 29
    assert metrics.health(now).healthy
    metrics.last_commit_at = now - 31
    problems = metrics.health(now).problems
    assert len(problems) == 1 and "12 messages waiting" in problems[0]


def test_unhealthy_when_statistics_stop() -> None:
    metrics = fresh_metrics()
    metrics.kafka_config(ConsumerSettings(health_max_commit_age_s=30, statistics_interval_ms=5000))
    metrics.on_statistics(statistics({}))
    assert metrics.health(metrics.statistics_at + 29).healthy
    assert "not polled" in metrics.health(metrics.statistics_at + 31).problems[0]


def test_a_failed_write_counts_and_the_next_success_ends_the_wait() -> None:
    metrics = fresh_metrics()
    sink = MeasuredSink("postgresql+psycopg2://nobody@127.0.0.1:1/none", metrics)
    with pytest.raises(psycopg2.OperationalError):
        sink.write(RowsByTable(trades=[trade_line(1, T0_US)]))
    value = metrics.registry.get_sample_value
    assert value("consumer_database_write_failures_total") == 1
    assert value("consumer_database_up") == 0
    sink.write(RowsByTable())  # an empty batch writes nothing and succeeds
    assert value("consumer_database_up") == 1
    assert sample(metrics, "consumer_database_wait_seconds_total") > 0
    assert value("consumer_batch_write_duration_seconds_count") == 1
