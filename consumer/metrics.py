"""The consumer's Prometheus metrics and health, on its own port (CONSUMER_METRICS_PORT).

The hot path parses ~100k messages a second, so nothing here runs per message: counts are taken
once per committed batch (its rows, rejects and offsets), write times once per database write, lag
from librdkafka's statistics every CONSUMER_STATISTICS_INTERVAL_MS. Labels are bounded: topic and
partition, table, reason; never symbol.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from consumer.dead_letters import DeadLetterRow
from consumer.sink import ConflictFinder, RowsByTable, Sink, Written
from schemas.metrics_http import Health, MetricsServer, start_metrics_server

if TYPE_CHECKING:
    from consumer.loop import Batch
    from consumer.settings import ConsumerSettings

log = logging.getLogger(__name__)

TABLES = ("trades", "agg_trades", "klines", "book_tickers", "coverage")
BATCH_SIZE_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
WRITE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Event time to commit: tens of ms when keeping up, minutes when catching up.
FRESHNESS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)


def event_time_us(line_or_row: bytes | Any) -> int | None:
    """The event time of a batch row: a trade's COPY line starts with it (consumer/trade_lines.py),
    the other rows carry it as a field. None for rows without one (REST records, book tickers)."""
    if isinstance(line_or_row, bytes):
        head = line_or_row[: line_or_row.find(b"\t")]
        return int(head) if head.isdigit() else None
    value = getattr(line_or_row, "event_time_us", None)
    return value if isinstance(value, int) else None


def oldest_and_newest_us(rows: RowsByTable) -> tuple[int | None, int | None]:
    """Event times of the first and last row of each table, the oldest and newest among them:
    a batch holds each partition's messages in log order, so its ends are its extremes."""
    times = [
        t
        for table in (rows.trades, rows.agg_trades, rows.klines)
        if table
        for t in (event_time_us(table[0]), event_time_us(table[-1]))
        if t is not None
    ]
    return (min(times), max(times)) if times else (None, None)


class ConsumerMetrics:
    """One per process (`METRICS`); tests make their own with their own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.consumed = Counter(
            "consumer_messages_consumed",
            "Messages read and committed (offsets moved past), by topic and partition",
            ["topic", "partition"],
            registry=r,
        )
        self.rows_written = Counter(
            "consumer_rows_written",
            "New rows stored, by table (replayed duplicates not counted)",
            ["table"],
            registry=r,
        )
        self.dead_letters = Counter(
            "consumer_dead_letters", "Messages dead-lettered, by reason", ["reason"], registry=r
        )
        self.dead_letters_lost = Counter(
            "consumer_dead_letters_lost",
            "Dead letters Kafka refused even without their original (the message stays in its source topic)",
            registry=r,
        )
        self.skipped = Counter(
            "consumer_messages_skipped", "Messages skipped on purpose, by reason", ["reason"], registry=r
        )
        self.batch_size = Histogram(
            "consumer_batch_size_messages", "Messages per committed batch part", buckets=BATCH_SIZE_BUCKETS, registry=r
        )
        self.write_duration = Histogram(
            "consumer_batch_write_duration_seconds",
            "Time to write one batch part to PostgreSQL, successful writes",
            buckets=WRITE_BUCKETS,
            registry=r,
        )
        self.freshness = Histogram(
            "consumer_freshness_seconds",
            "Event time to commit of the oldest message of each committed batch part (its worst)",
            buckets=FRESHNESS_BUCKETS,
            registry=r,
        )
        self.db_failures = Counter(
            "consumer_database_write_failures", "Batch writes that failed and were retried", registry=r
        )
        self.db_wait = Counter(
            "consumer_database_wait_seconds", "Time from a failed write to the next successful one", registry=r
        )
        self.db_up = Gauge("consumer_database_up", "0 from a failed write until a write succeeds", registry=r)
        self.lag_messages = Gauge(
            "consumer_lag_messages",
            "Messages between this member's committed offset and the log end, per partition (librdkafka statistics)",
            ["topic", "partition"],
            registry=r,
        )
        self.newest_event = Gauge(
            "consumer_newest_committed_event_timestamp_seconds",
            "Event time of the newest message committed (Unix time)",
            registry=r,
        )
        self.lag_seconds = Gauge(
            "consumer_lag_seconds", "Now minus the event time of the newest message committed", registry=r
        )
        self.last_commit = Gauge(
            "consumer_last_commit_timestamp_seconds", "When offsets were last committed (Unix time)", registry=r
        )
        self.healthy = Gauge("consumer_healthy", "1 while /health answers 200", registry=r)
        self.db_up.set(1)
        for table in TABLES:
            self.rows_written.labels(table)
        self._lock = threading.Lock()
        self._newest_event_us = 0
        self._failing_since: float | None = None
        self._lag_by_partition: dict[tuple[str, int], int] = {}
        self.started_at = self.last_commit_at = self.statistics_at = time.monotonic()
        self.lag_seconds.set_function(self._lag_seconds)
        self.healthy.set_function(lambda: 1.0 if self._health_problems_now() == [] else 0.0)
        self.settings: ConsumerSettings | None = None

    # --- called by the loop, once per batch part or commit ---------------------------------------

    def batch_committed(self, batch: Batch, written: Written) -> None:
        """A batch part's rows and offsets are committed: count them, and how fresh they were."""
        now_us = time.time_ns() // 1000
        rows = batch.rows
        for table in TABLES:
            count = getattr(written, table)
            if count:
                self.rows_written.labels(table).inc(count)
        for rejected in (*batch.rejected, *written.conflicts):
            self.dead_letters.labels(rejected.rejection.reason).inc()
        for reason, count in batch.skipped.items():
            self.skipped.labels(reason).inc(count)
        self.batch_size.observe(len(rows) + len(batch.rejected) + sum(batch.skipped.values()))
        oldest_us, newest_us = oldest_and_newest_us(rows)
        if oldest_us is not None and newest_us is not None:
            self.freshness.observe((now_us - oldest_us) / 1e6)
            with self._lock:
                if newest_us > self._newest_event_us:
                    self._newest_event_us = newest_us
                    self.newest_event.set(newest_us / 1e6)

    def offsets_committed(
        self, next_offsets: Mapping[tuple[str, int], int], previous: Mapping[tuple[str, int], int]
    ) -> None:
        """Offsets were committed: the messages consumed are the distance each one moved. A
        partition this member never committed nor found committed counts from offset 0."""
        for (topic, partition), offset in next_offsets.items():
            moved = offset - previous.get((topic, partition), 0)
            if moved > 0:
                self.consumed.labels(topic, str(partition)).inc(moved)
        self.last_commit_at = time.monotonic()
        self.last_commit.set(time.time())

    # --- librdkafka statistics ------------------------------------------------------------------

    def kafka_config(self, settings: ConsumerSettings) -> dict[str, Any]:
        """The consumer's statistics settings: librdkafka calls `on_statistics` from poll()/consume()
        on the loop's thread every interval, with the lag of every assigned partition."""
        self.settings = settings
        if settings.statistics_interval_ms <= 0:
            return {}
        return {"statistics.interval.ms": settings.statistics_interval_ms, "stats_cb": self.on_statistics}

    def on_statistics(self, statistics_json: str) -> None:
        try:
            lags = partition_lags(json.loads(statistics_json))
        except (ValueError, TypeError, AttributeError) as error:
            log.warning("unreadable librdkafka statistics", extra={"error": str(error)})
            return
        with self._lock:
            for gone in self._lag_by_partition.keys() - lags.keys():
                self.lag_messages.remove(gone[0], str(gone[1]))
            for (topic, partition), lag in lags.items():
                self.lag_messages.labels(topic, str(partition)).set(lag)
            self._lag_by_partition = lags
        self.statistics_at = time.monotonic()

    # --- database -------------------------------------------------------------------------------

    def write_failed(self) -> None:
        self.db_failures.inc()
        self.db_up.set(0)
        if self._failing_since is None:
            self._failing_since = time.monotonic()

    def write_done(self, seconds: float) -> None:
        self.write_duration.observe(seconds)
        if self._failing_since is not None:
            self.db_wait.inc(time.monotonic() - self._failing_since)
            self._failing_since = None
            self.db_up.set(1)

    # --- health ---------------------------------------------------------------------------------

    def _lag_seconds(self) -> float:
        newest_us = self._newest_event_us
        return max(0.0, time.time() - newest_us / 1e6) if newest_us else 0.0

    def _health_problems_now(self) -> list[str]:
        return self.health().problems

    def health(self, now: float | None = None) -> Health:
        """Unhealthy when messages wait (lag > 0) and nothing was committed for longer than
        CONSUMER_HEALTH_MAX_COMMIT_AGE_S, or librdkafka's statistics stopped (the loop no longer
        polls Kafka)."""
        now = time.monotonic() if now is None else now
        limit_s = self.settings.health_max_commit_age_s if self.settings is not None else 60.0
        with self._lock:
            lag = sum(self._lag_by_partition.values())
        problems = []
        since_commit_s = now - self.last_commit_at
        if lag > 0 and since_commit_s > limit_s:
            problems.append(f"{lag} messages waiting and no commit for {since_commit_s:.0f} s (limit {limit_s:g} s)")
        interval_ms = self.settings.statistics_interval_ms if self.settings is not None else 0
        silent_s = now - self.statistics_at
        if interval_ms > 0 and silent_s > max(limit_s, 3 * interval_ms / 1000):
            problems.append(f"Kafka not polled for {silent_s:.0f} s: no librdkafka statistics")
        return Health(problems, {"lag_messages": lag, "since_commit_s": round(since_commit_s, 1)})

    def serve(self, settings: ConsumerSettings) -> MetricsServer | None:
        self.settings = settings
        return start_metrics_server(settings.metrics_host, settings.metrics_port, self.registry, self.health)


def partition_lags(statistics: Mapping[str, Any]) -> dict[tuple[str, int], int]:
    """(topic, partition) -> consumer_lag from librdkafka's statistics JSON, for the partitions it
    knows a lag of (-1 means unknown: not assigned, or no offset yet; -1 is the internal UA partition)."""
    lags: dict[tuple[str, int], int] = {}
    for topic, topic_stats in (statistics.get("topics") or {}).items():
        for partition, partition_stats in (topic_stats.get("partitions") or {}).items():
            number = int(partition)
            lag = partition_stats.get("consumer_lag", -1)
            if number >= 0 and isinstance(lag, int) and lag >= 0:
                lags[(topic, number)] = lag
    return lags


class MeasuredSink(Sink):
    """A Sink whose writes are timed, and whose failures count as database trouble."""

    def __init__(self, database_url: str, metrics: ConsumerMetrics, book_ticker_sample_ms: int = 0) -> None:
        super().__init__(database_url, book_ticker_sample_ms)
        self.metrics = metrics

    def write(
        self,
        rows: RowsByTable,
        dead_letters: Sequence[DeadLetterRow] = (),
        find_conflicts: ConflictFinder | None = None,
    ) -> Written:
        started = time.perf_counter()
        try:
            written = super().write(rows, dead_letters, find_conflicts)
        except Exception:
            self.metrics.write_failed()
            raise
        self.metrics.write_done(time.perf_counter() - started)
        return written


METRICS = ConsumerMetrics()
