"""The producer's metrics: the receipt-delay histogram and what the collector reads from its objects."""

import time
from bisect import bisect_left

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from producer.app import Ingest
from producer.backfill import Backfiller, BinanceRest
from producer.binance_ws import Shard
from producer.gaps import GapTracker
from producer.limits import AttemptBudget, WeightBudget
from producer.live_coverage import LiveCoverage
from producer.metrics import RECEIPT_DELAY_BUCKETS, ProducerCollector, ReceiptDelay
from producer.publisher import RawPublisher
from producer.settings import ProducerSettings

EVENT_MS = 1_763_800_000_000


def trade_frame(symbol: str, trade_id: int, event_ms: int = EVENT_MS) -> bytes:
    return (
        f'{{"stream":"{symbol.lower()}@trade","data":{{"e":"trade","E":{event_ms},"s":"{symbol}","t":{trade_id},'
        f'"p":"1.00000000","q":"2.00000000","T":{event_ms},"m":true,"M":true}}}}'
    ).encode()


@given(st.lists(st.integers(min_value=-2_000, max_value=60_000), max_size=50))
def test_receipt_delay_buckets_count_each_delay_once(delays_ms: list[int]) -> None:
    histogram = ReceiptDelay()
    for delay_ms in delays_ms:
        histogram.observe(trade_frame("BTCUSDT", 1), (EVENT_MS + delay_ms) * 1_000_000)
    expected = [0] * (len(RECEIPT_DELAY_BUCKETS) + 1)
    for delay_ms in delays_ms:
        expected[bisect_left(RECEIPT_DELAY_BUCKETS, delay_ms / 1000)] += 1
    assert histogram.counts == expected
    assert abs(histogram.sum_s - sum(delays_ms) / 1000) < 1e-6


def test_receipt_delay_exposes_cumulative_buckets() -> None:
    histogram = ReceiptDelay()
    histogram.observe(trade_frame("BTCUSDT", 1), (EVENT_MS + 3) * 1_000_000)  # 3 ms
    histogram.observe(trade_frame("BTCUSDT", 2), (EVENT_MS + 700) * 1_000_000)  # 0.7 s
    samples = {(s.name, s.labels.get("le")): s.value for s in histogram.family("d", "d").samples}
    assert samples[("d_bucket", "0.005")] == 1
    assert samples[("d_bucket", "0.5")] == 1
    assert samples[("d_bucket", "1.0")] == 2
    assert samples[("d_bucket", "+Inf")] == 2
    assert samples[("d_count", None)] == 2


def test_receipt_delay_reads_microsecond_event_times() -> None:
    histogram = ReceiptDelay("MICROSECOND")
    histogram.observe(trade_frame("BTCUSDT", 1, event_ms=EVENT_MS * 1000), (EVENT_MS + 20) * 1_000_000)
    assert abs(histogram.sum_s - 0.020) < 1e-9


def test_frames_without_an_event_time_are_not_observed() -> None:
    histogram = ReceiptDelay()
    for frame in (b'{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT"}}', b'{"code":-1,"msg":"x"}', b""):
        histogram.observe(frame, EVENT_MS * 1_000_000)
    assert sum(histogram.counts) == 0


def pipeline_objects(settings: ProducerSettings) -> tuple[RawPublisher, Ingest, list[Shard], Backfiller]:
    # Nothing here connects: librdkafka connects on first produce; the shard is never run.
    publisher = RawPublisher("127.0.0.1:1", "binance.raw", 1000)
    tracker = GapTracker(2.0)
    rest = BinanceRest("http://127.0.0.1:1", 1.0)
    backfiller = Backfiller(rest, publisher, tracker, WeightBudget(6000, 0.5))
    ingest = Ingest(publisher, tracker, {"btcusdt@trade"})
    shard = Shard(0, ["btcusdt@trade"], settings, ingest.on_frame, AttemptBudget(300), ingest.on_dropped)
    return publisher, ingest, [shard], backfiller


def scrape(collector: ProducerCollector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def test_collector_counts_frames_by_stream_type_and_gaps() -> None:
    settings = ProducerSettings(symbols=["BTCUSDT"])
    publisher, ingest, shards, backfiller = pipeline_objects(settings)
    for trade_id in (1, 2, 5):  # 3 and 4 missing: one gap of two ids
        ingest.on_frame(trade_frame("BTCUSDT", trade_id), "btcusdt@trade", time.time_ns(), b"c1")
    registry = scrape(ProducerCollector(settings, publisher, ingest, shards, backfiller))
    value = registry.get_sample_value
    assert value("producer_frames_received_total", {"stream_type": "trade"}) == 3
    assert value("producer_received_bytes_total", {"stream_type": "trade"}) == sum(
        len(trade_frame("BTCUSDT", i)) for i in (1, 2, 5)
    )
    assert value("producer_messages_published_total", {"stream_type": "trade", "source": "ws"}) == 3
    assert value("producer_gaps_detected_total") == 1
    assert value("producer_ids_missed_total") == 2
    assert (value("producer_kafka_queue_messages") or 0) >= 3  # librdkafka counts its own requests too
    assert value("producer_event_receipt_delay_seconds_count") == 3


def test_collector_reports_drops_by_cause_and_rest_responses() -> None:
    settings = ProducerSettings(symbols=["BTCUSDT"])
    publisher, ingest, shards, backfiller = pipeline_objects(settings)
    shards[0].drop_causes.update({"connection_lost": 2, "server_close": 1})
    backfiller.responses.update({("historicalTrades", "200"): 4, ("historicalTrades", "429"): 1})
    registry = scrape(ProducerCollector(settings, publisher, ingest, shards, backfiller))
    value = registry.get_sample_value
    assert value("producer_websocket_connections_dropped_total", {"cause": "connection_lost"}) == 2
    assert value("producer_websocket_connections_dropped_total", {"cause": "frame_too_big"}) == 0
    assert value("producer_rest_requests_total", {"endpoint": "historicalTrades", "status": "429"}) == 1
    assert value("producer_rest_weight_budget") == 3000
    assert value("producer_websocket_connections_open") == 0


def test_health_fails_once_every_shard_is_down_longer_than_the_limit() -> None:
    settings = ProducerSettings(symbols=["BTCUSDT"], health_max_down_s=30)
    publisher, ingest, shards, backfiller = pipeline_objects(settings)
    collector = ProducerCollector(settings, publisher, ingest, shards, backfiller)
    started = shards[0].down_since
    assert started is not None
    collector.loop_turned_at = started + 100
    assert collector.health(now=started + 29).healthy
    unhealthy = collector.health(now=started + 31)
    assert not unhealthy.healthy
    assert "no WebSocket connection open" in unhealthy.problems[0]


def test_health_fails_when_the_event_loop_stops_turning() -> None:
    settings = ProducerSettings(symbols=["BTCUSDT"], health_max_down_s=30)
    publisher, ingest, shards, backfiller = pipeline_objects(settings)
    collector = ProducerCollector(settings, publisher, ingest, shards, backfiller)
    shards[0].down_since = None  # connected
    assert collector.health(now=collector.loop_turned_at + 10).healthy
    assert "event loop" in collector.health(now=collector.loop_turned_at + 31).problems[0]


def test_collector_counts_coverage_markers_by_kind() -> None:
    settings = ProducerSettings(symbols=["BTCUSDT"])
    publisher, _, shards, backfiller = pipeline_objects(settings)
    tracker = backfiller.tracker
    coverage = LiveCoverage(publisher, tracker, backfiller, ["btcusdt@trade"], micros=False)
    ingest = Ingest(publisher, tracker, {"btcusdt@trade"}, coverage=coverage)
    for trade_id in (1, 2, 3):
        if trade_id == 3:
            coverage.given_up("btcusdt@trade", "REST answered 429")
        frame = trade_frame("BTCUSDT", trade_id, EVENT_MS + trade_id * 1000)
        ingest.on_frame(frame, "btcusdt@trade", time.time_ns(), b"c1")
        coverage.tick()  # the first tick sets where the period starts, the next ones publish it
    value = scrape(ProducerCollector(settings, publisher, ingest, shards, backfiller)).get_sample_value
    assert value("producer_coverage_markers_total", {"kind": "held"}) == 1
    assert value("producer_coverage_markers_total", {"kind": "hole"}) == 1
