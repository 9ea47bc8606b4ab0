"""The producer's Prometheus metrics and health, on its own port (PRODUCER_METRICS_PORT).

Nothing here runs per frame except `ReceiptDelay.observe`: frames, connections, gaps and REST calls
are counted where they happen, as plain integers on the objects that own them, and the collector
reads those at scrape time. Labels are bounded: stream type (not stream, so not symbol), drop
cause, REST endpoint and status, and shard (one per 1024 streams: 5 for the whole market). No
metric has a symbol label, so PRODUCER_SYMBOLS=ALL adds no series per symbol.

The collector runs on the metrics server's thread while the event loop goes on counting: each
container is copied in one step (dict() and list() of a dict or set run in C, under the GIL)
before it is read.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from producer.frames import stream_type
from schemas.metrics_http import Health, start_metrics_server

if TYPE_CHECKING:
    from producer.app import Ingest
    from producer.backfill import Backfiller
    from producer.binance_ws import Shard
    from producer.market_follow import MarketFollower
    from producer.publisher import RawPublisher
    from producer.settings import ProducerSettings

# Exchange event time to receipt here: a few ms on a good day, seconds when Binance or the network lag.
RECEIPT_DELAY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
DROP_CAUSES = ("server_close", "connection_lost", "frame_too_big", "error")
_EVENT_TIME_FIELD = b'"E":'
_UNIT_NS = {"MILLISECOND": 1_000_000, "MICROSECOND": 1_000}


class ReceiptDelay:
    """Histogram of event time (a frame's `E`) to receipt, fed on the hot path: one byte search and
    a bisect per frame, no lock. The event loop is its only writer; a scrape reads a copy."""

    def __init__(self, time_unit: str = "MILLISECOND", buckets: Sequence[float] = RECEIPT_DELAY_BUCKETS) -> None:
        self.bounds = list(buckets)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum_s = 0.0
        self._unit_ns = _UNIT_NS[time_unit]

    def observe(self, frame: bytes, received_at_ns: int) -> None:
        start = frame.find(_EVENT_TIME_FIELD)
        if start < 0:
            return  # bookTicker frames and error replies carry no event time
        start += len(_EVENT_TIME_FIELD)
        try:
            event_time = int(frame[start : frame.find(b",", start)])
        except ValueError:
            return  # not a number: the consumer dead-letters such a frame
        delay_s = (received_at_ns - event_time * self._unit_ns) / 1e9
        # A negative delay is clock skew between Binance and this host: kept, it shows in the sum.
        self.counts[bisect_left(self.bounds, delay_s)] += 1
        self.sum_s += delay_s

    def family(self, name: str, documentation: str) -> HistogramMetricFamily:
        counts, total_s = list(self.counts), self.sum_s
        cumulative, buckets = 0, []
        for bound, count in zip([*map(repr, self.bounds), "+Inf"], counts, strict=True):
            cumulative += count
            buckets.append((bound, float(cumulative)))
        return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=total_s)


def _by_stream_type(counts: Iterable[tuple[str, int]]) -> Counter[str]:
    totals: Counter[str] = Counter()
    for stream, count in counts:
        totals[stream_type(stream) or "none"] += count
    return totals


class ProducerCollector(Collector):
    """Every producer metric, read from the objects that count at the moment of the scrape."""

    def __init__(
        self,
        settings: ProducerSettings,
        publisher: RawPublisher,
        ingest: Ingest,
        shards: Sequence[Shard],
        backfiller: Backfiller,
        follower: MarketFollower | None = None,
    ) -> None:
        self.settings = settings
        self.publisher = publisher
        self.ingest = ingest
        self.shards = shards
        self.backfiller = backfiller
        self.follower = follower
        # When the event loop last turned (serve_metrics marks it): a stuck loop is unhealthy.
        self.loop_turned_at = time.monotonic()

    def collect(self) -> Iterator[Metric]:
        yield from self._frames()
        yield from self._kafka()
        yield from self._connections(time.monotonic())
        yield from self._gaps_and_rest()
        yield _gauge("producer_healthy", "1 while /health answers 200", 1.0 if self.health().healthy else 0.0)

    def _frames(self) -> Iterator[Metric]:
        # Copied in one step each: the event loop goes on counting while a scrape reads.
        received = [(stream, list(counts)) for stream, counts in dict(self.ingest.received).items()]
        frames = CounterMetricFamily(
            "producer_frames_received", "WebSocket frames received, by stream type", labels=["stream_type"]
        )
        for kind, count in sorted(_by_stream_type((s, c[0]) for s, c in received).items()):
            frames.add_metric([kind], count)
        received_bytes = CounterMetricFamily(
            "producer_received_bytes", "WebSocket frame bytes received, by stream type", labels=["stream_type"]
        )
        for kind, count in sorted(_by_stream_type((s, c[1]) for s, c in received).items()):
            received_bytes.add_metric([kind], count)
        published = CounterMetricFamily(
            "producer_messages_published",
            "Messages handed to Kafka, by stream type and source (ws: live frames, rest: backfilled records)",
            labels=["stream_type", "source"],
        )
        for source, counts in (("ws", self.publisher.produced_ws), ("rest", self.publisher.produced_rest)):
            for kind, count in sorted(_by_stream_type(dict(counts).items()).items()):
                published.add_metric([kind, source], count)
        yield from (frames, received_bytes, published)
        yield self.ingest.receipt_delay.family(
            "producer_event_receipt_delay_seconds", "Exchange event time (E) to receipt by the producer"
        )

    def _kafka(self) -> Iterator[Metric]:
        publisher = self.publisher
        yield CounterMetricFamily(
            "producer_messages_delivered", "Messages Kafka confirmed", value=max(0, publisher.delivered)
        )
        yield CounterMetricFamily(
            "producer_kafka_delivery_failures", "Messages Kafka refused (each is backfilled)", value=publisher.failed
        )
        # _lose() counts both: a full buffer at produce() and a refused delivery.
        yield CounterMetricFamily(
            "producer_buffer_overflow_messages",
            "Messages lost because librdkafka's queue was full (trade/aggTrade ids are backfilled)",
            value=publisher.lost - publisher.failed,
        )
        yield _gauge(
            "producer_kafka_queue_messages", "Messages in librdkafka's queue, not yet confirmed", publisher.queued
        )
        yield _gauge(
            "producer_kafka_queue_limit_messages",
            "Size of librdkafka's queue (PRODUCER_BUFFER_MAX_MESSAGES)",
            publisher.buffer_max_messages,
        )
        yield _gauge("producer_kafka_up", "0 while every broker is unreachable", 0.0 if publisher.kafka_down else 1.0)

    def _connections(self, now: float) -> Iterator[Metric]:
        shards = self.shards
        yield _gauge(
            "producer_websocket_connections_open",
            "Open WebSocket connections (two per shard during a rollover)",
            sum(len(shard.connection_ages_s(now)) for shard in shards),
        )
        yield CounterMetricFamily(
            "producer_websocket_connections_opened",
            "WebSocket connections opened",
            value=sum(shard.connections_opened for shard in shards),
        )
        dropped = CounterMetricFamily(
            "producer_websocket_connections_dropped",
            "WebSocket connections that ended unasked, by cause",
            labels=["cause"],
        )
        causes: Counter[str] = Counter({cause: 0 for cause in DROP_CAUSES})
        for shard in shards:
            causes.update(dict(shard.drop_causes))  # a copy in one step: the event loop may add a cause meanwhile
        for cause, count in sorted(causes.items()):
            dropped.add_metric([cause], count)
        yield dropped
        yield CounterMetricFamily(
            "producer_websocket_rollovers",
            "Connections replaced before Binance's 24 h limit or on serverShutdown",
            value=sum(shard.rollovers for shard in shards),
        )
        age = GaugeMetricFamily(
            "producer_websocket_connection_age_seconds", "Age of the shard's oldest open connection", labels=["shard"]
        )
        down = GaugeMetricFamily(
            "producer_websocket_down_seconds",
            "How long the shard has had no open connection (0: it has one)",
            labels=["shard"],
        )
        for shard in shards:
            ages = shard.connection_ages_s(now)
            age.add_metric([str(shard.index)], max(ages, default=0.0))
            down.add_metric([str(shard.index)], 0.0 if shard.down_since is None else now - shard.down_since)
        yield from (age, down)
        shards = list(shards)
        yield _gauge(
            "producer_streams_subscribed",
            "Streams the shards are to carry (one label-free total, whatever the number of symbols)",
            sum(len(shard.streams) for shard in shards),
        )
        yield CounterMetricFamily(
            "producer_subscription_errors",
            "SUBSCRIBE/UNSUBSCRIBE requests Binance refused",
            value=sum(shard.control_errors for shard in shards),
        )
        if self.follower is not None:
            changes = CounterMetricFamily(
                "producer_symbol_changes",
                "PRODUCER_SYMBOLS=ALL: symbols that started (listed) or stopped (halted) TRADING while running",
                labels=["change"],
            )
            changes.add_metric(["listed"], self.follower.listed)
            changes.add_metric(["halted"], self.follower.halted)
            yield changes
            yield _gauge("producer_symbols", "Symbols streamed", len(self.follower.symbols))

    def _gaps_and_rest(self) -> Iterator[Metric]:
        tracker, backfiller = self.ingest.tracker, self.backfiller
        yield CounterMetricFamily("producer_gaps_detected", "Trade/aggTrade id gaps seen", value=tracker.gaps_detected)
        yield CounterMetricFamily("producer_ids_missed", "Trade/aggTrade ids found missing", value=tracker.ids_missed)
        yield CounterMetricFamily(
            "producer_backfilled_records", "Records fetched over REST and published", value=backfiller.records_published
        )
        yield CounterMetricFamily(
            "producer_backfill_ranges_failed", "Missing ranges whose backfill failed", value=backfiller.ranges_failed
        )
        yield CounterMetricFamily(
            "producer_ids_given_up", "Ids of failed backfill ranges: missing for good", value=backfiller.ids_given_up
        )
        markers = CounterMetricFamily(
            "producer_coverage_markers", "Coverage markers published, held or hole", labels=["kind"]
        )
        coverage = self.ingest.coverage
        published = dict(coverage.markers_published) if coverage is not None else {}
        for kind in ("held", "hole"):
            markers.add_metric([kind], published.get(kind, 0))
        yield markers
        requests = CounterMetricFamily(
            "producer_rest_requests",
            "REST responses by endpoint and HTTP status (error: no response)",
            labels=["endpoint", "status"],
        )
        for (endpoint, status), count in sorted(dict(backfiller.responses).items()):
            requests.add_metric([endpoint, status], count)
        yield requests
        yield _gauge("producer_rest_weight_used", "Binance's X-MBX-USED-WEIGHT-1M as last seen", backfiller.weight.used)
        yield _gauge(
            "producer_rest_weight_budget",
            "Request weight per minute backfills may use (Binance's limit x PRODUCER_REST_WEIGHT_SHARE)",
            backfiller.weight.allowed,
        )

    def health(self, now: float | None = None) -> Health:
        """Unhealthy when every shard has been without a connection for longer than
        PRODUCER_HEALTH_MAX_DOWN_S, or the event loop has not turned for that long."""
        now = time.monotonic() if now is None else now
        limit_s = self.settings.health_max_down_s
        problems = []
        down_s = [0.0 if shard.down_since is None else now - shard.down_since for shard in self.shards]
        all_down_s = min(down_s, default=0.0)
        if all_down_s > limit_s:
            problems.append(f"no WebSocket connection open for {all_down_s:.0f} s (limit {limit_s:g} s)")
        stuck_s = now - self.loop_turned_at
        if stuck_s > limit_s:
            problems.append(f"event loop has not turned for {stuck_s:.0f} s (limit {limit_s:g} s)")
        open_connections = sum(len(shard.connection_ages_s(now)) for shard in self.shards)
        return Health(problems, {"connections_open": open_connections, "all_down_s": round(all_down_s, 1)})


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


async def serve_metrics(settings: ProducerSettings, collector: ProducerCollector) -> None:
    """Serves /metrics and /health until cancelled; meanwhile notes that the event loop turns."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    server = start_metrics_server(settings.metrics_host, settings.metrics_port, registry, collector.health)
    try:
        while True:
            collector.loop_turned_at = time.monotonic()
            await asyncio.sleep(1.0)
    finally:
        if server is not None:
            with contextlib.suppress(Exception):
                server.stop()
