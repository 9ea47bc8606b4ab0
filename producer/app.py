"""Wiring: validate symbols, then run the shards, the backfill worker and the stats line until stopped."""

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from producer.backfill import (
    Backfiller,
    BinanceRest,
    SymbolError,
    check_symbols,
    request_weight_limit,
    startup_exchange_info,
)
from producer.binance_ws import Shard
from producer.frames import TRACKED_ID_FIELDS, stream_type, tracked_id
from producer.gaps import GapTracker
from producer.limits import AttemptBudget, WeightBudget, shard_streams
from producer.live_coverage import LiveCoverage
from producer.market_follow import MarketFollower, trading_symbols
from producer.metrics import ProducerCollector, ReceiptDelay, serve_metrics
from producer.publisher import RawPublisher
from producer.resume import last_held_markers
from producer.settings import ProducerSettings
from schemas.heartbeat import Heartbeat
from schemas.topics import Source

log = logging.getLogger("producer")

EXIT_OK = 0
EXIT_UNDELIVERED = 1
EXIT_BAD_SETTINGS = 2


class Ingest:
    """What happens to each frame: published first, then its id (trade/aggTrade) checked for gaps."""

    def __init__(
        self,
        publisher: RawPublisher,
        tracker: GapTracker,
        tracked_streams: set[str],
        on_kline_dropped: Callable[[str], None] | None = None,
        receipt_delay: ReceiptDelay | None = None,
        coverage: LiveCoverage | None = None,
    ) -> None:
        self.publisher = publisher
        self.tracker = tracker
        self.on_kline_dropped = on_kline_dropped
        # stream -> the id field to read; only for the streams this process subscribed to.
        self._id_fields = {stream: TRACKED_ID_FIELDS[stream_type(stream)] for stream in tracked_streams}
        self.frames = 0
        self.frames_without_stream = 0
        # stream -> [frames, bytes] received; read by the metrics (producer/metrics.py) at scrape time.
        self.received: dict[str, list[int]] = {}
        self.receipt_delay = receipt_delay or ReceiptDelay()
        self.coverage = coverage
        # stream -> (newest frame, receipt ns): what live coverage vouches up to (one dict store a frame).
        self.newest: dict[str, tuple[bytes, int]] = coverage.newest if coverage is not None else {}

    def track(self, streams: list[str]) -> None:
        """Check the ids of streams subscribed after the start (PRODUCER_SYMBOLS=ALL) for gaps too."""
        for stream in streams:
            field = TRACKED_ID_FIELDS.get(stream_type(stream))
            if field is not None:
                self._id_fields[stream] = field
        if self.coverage is not None:
            self.coverage.follow(streams)

    def on_frame(self, frame: bytes, stream: str, received_at_ns: int, connection_id: bytes) -> None:
        # The id is noted before publishing, so that a frame the full buffer loses is recorded as
        # missing after it was seen, not the other way round.
        field = self._id_fields.get(stream)
        if field is not None:
            id_ = tracked_id(frame, field)
            if id_ is not None:
                self.tracker.observe(stream, id_, time.monotonic())
        elif not stream:
            self._unexpected(frame)
        self.publisher.publish_ws(frame, stream, received_at_ns, connection_id)
        self.newest[stream] = (frame, received_at_ns)
        self.frames += 1
        counts = self.received.get(stream)
        if counts is None:
            counts = self.received[stream] = [0, 0]
        counts[0] += 1
        counts[1] += len(frame)
        self.receipt_delay.observe(frame, received_at_ns)

    def _unexpected(self, frame: bytes) -> None:
        # Error replies ({"code":..,"msg":..}), truncated frames: published all the same, and shown.
        self.frames_without_stream += 1
        if self.frames_without_stream <= 10 or self.frames_without_stream % 1000 == 0:
            log.warning(
                "frame without a stream name",
                extra={"frame": frame[:200].decode(errors="replace"), "count": self.frames_without_stream},
            )

    def on_dropped(self, streams: list[str]) -> None:
        if self.coverage is not None:
            self.coverage.dropped(streams)
        now = time.monotonic()
        for stream in streams:
            if stream in self._id_fields:
                self.tracker.dropped(stream, now)
            elif self.on_kline_dropped is not None and stream_type(stream).startswith("kline_"):
                self.on_kline_dropped(stream)

    def on_lost(self, value: bytes, stream: str, source: str) -> None:
        """A message that will never reach Kafka: if it carried an id, fetch that id again over REST
        (a kline: the klines since; a bookTicker: a hole, nothing can refill it)."""
        if stream not in self._id_fields:
            kind = stream_type(stream)
            if kind.startswith("kline_") and self.on_kline_dropped is not None:
                self.on_kline_dropped(stream)
            elif kind == "bookTicker" and self.coverage is not None and source == Source.WS:
                self.coverage.given_up(stream, "bookTicker frames lost to a full Kafka buffer")
            return
        id_: int | None
        if source == Source.REST:
            with contextlib.suppress(orjson.JSONDecodeError):
                record = orjson.loads(value)
                key = "id" if stream_type(stream) == "trade" else "a"
                id_ = record.get(key) if isinstance(record, dict) else None
                if isinstance(id_, int):
                    self.tracker.lost(stream, id_, time.monotonic())
            return
        id_ = tracked_id(value, self._id_fields[stream])
        if id_ is not None:
            self.tracker.lost(stream, id_, time.monotonic())


async def _report_stats(
    settings: ProducerSettings, publisher: RawPublisher, ingest: Ingest, shards: list[Shard], backfiller: Backfiller
) -> None:
    while True:
        await asyncio.sleep(settings.stats_interval_s)
        level = logging.WARNING if publisher.kafka_down or publisher.lost else logging.INFO
        log.log(
            level,
            "stats",
            extra={
                "frames": ingest.frames,
                "produced": publisher.produced,
                "delivered": publisher.delivered,
                "queued": publisher.queued,
                "kafka_down": publisher.kafka_down,
                "failed": publisher.failed,
                "lost": publisher.lost,
                "connections_opened": sum(shard.connections_opened for shard in shards),
                "drops": sum(shard.drops for shard in shards),
                "rollovers": sum(shard.rollovers for shard in shards),
                "gaps_detected": ingest.tracker.gaps_detected,
                "ids_missed": ingest.tracker.ids_missed,
                "gaps_pending": ingest.tracker.pending() + len(backfiller.queue),
                "rest_records": backfiller.records_published,
                "rest_requests": backfiller.requests,
                "rest_429": backfiller.rate_limited,
                "backfills_failed": backfiller.ranges_failed,
            },
        )


async def _poll_kafka(publisher: RawPublisher, heartbeat: Heartbeat) -> None:
    # Delivery errors and Kafka errors are served here when frames are too few to trigger a poll.
    # The heartbeat says the event loop is turning (the container health check reads it).
    while True:
        publisher.poll()
        heartbeat.beat()
        await asyncio.sleep(0.1)


async def _publish_coverage(settings: ProducerSettings, coverage: LiveCoverage) -> None:
    while True:
        await asyncio.sleep(settings.coverage_interval_s)
        coverage.tick()


async def _resume(settings: ProducerSettings, coverage: LiveCoverage) -> None:
    """Reads where the previous run stopped before any frame arrives (see producer/resume.py)."""
    if settings.resume_scan_max_messages == 0:
        return
    started = time.monotonic()
    try:
        markers = await asyncio.to_thread(
            last_held_markers,
            settings.kafka_bootstrap_servers,
            settings.raw_topic,
            coverage.streams,
            settings.resume_scan_max_messages,
        )
    except Exception as error:  # no resume is a fresh start, not a reason to stop
        log.error("cannot read the last coverage markers; starting fresh", extra={"error": repr(error)})
        return
    coverage.resume(markers, settings.resume_max_age_s)
    log.info(
        "resume scan done",
        extra={
            "streams_resumed": len(markers),
            "streams_fresh": len(coverage.streams) - len(markers),
            "took_s": round(time.monotonic() - started, 2),
        },
    )


async def _lookback(
    settings: ProducerSettings, symbols: list[str], backfiller: Backfiller, seconds: float | None = None
) -> None:
    started = time.monotonic()
    seconds = settings.backfill if seconds is None else seconds
    try:
        await backfiller.lookback(symbols, settings.stream_types, settings.kline_intervals() or ["1m"], seconds)
    except Exception as error:
        log.error("lookback backfill failed", extra={"error": repr(error)})
        return
    log.info(
        "lookback backfill done",
        extra={"seconds": seconds, "symbols": len(symbols), "took_s": round(time.monotonic() - started, 1)},
    )


async def _validate(rest: BinanceRest, settings: ProducerSettings) -> tuple[list[str], int]:
    """The symbols to stream, checked against exchangeInfo (or all its TRADING ones), and the REST
    weight limit per minute."""
    info = await startup_exchange_info(rest, settings.reconnect_min_s, settings.reconnect_max_s)
    if settings.whole_market:
        symbols = trading_symbols(info)
        if not symbols:
            raise SymbolError("exchangeInfo lists no TRADING symbol")
    else:
        symbols = settings.symbols
        check_symbols(info, symbols)
    return symbols, request_weight_limit(info)


async def run(settings: ProducerSettings) -> int:
    rest = BinanceRest(settings.rest_base_url, settings.rest_timeout_s, settings.time_unit)
    try:
        symbols, weight_limit = await _validate(rest, settings)
    except SymbolError as error:
        log.error("invalid symbols", extra={"reason": str(error), "symbols": settings.symbols})
        return EXIT_BAD_SETTINGS
    except Exception as error:
        log.error("cannot check symbols against exchangeInfo", extra={"error": repr(error), "url": rest.client.API_URL})
        return EXIT_BAD_SETTINGS

    if settings.shard_count > 1:
        # PRODUCER_SHARD=i/n: the other processes stream the rest (every symbol was checked above).
        symbols = [symbol for symbol in symbols if settings.owns(symbol)]
        if not symbols:
            log.error(
                "PRODUCER_SHARD owns none of the symbols: run fewer shards",
                extra={"shard": settings.shard, "symbols": settings.symbols},
            )
            return EXIT_BAD_SETTINGS
    stream_names = settings.stream_names(symbols)
    tracked = {name for name in stream_names if stream_type(name) in TRACKED_ID_FIELDS}
    tracker = GapTracker(settings.gap_grace_s)
    publisher = RawPublisher(
        settings.kafka_bootstrap_servers, settings.raw_topic, settings.buffer_max_messages, time_unit=settings.time_unit
    )
    backfiller = Backfiller(
        rest,
        publisher,
        tracker,
        WeightBudget(weight_limit, settings.rest_weight_share),
        settings.reconnect_min_s,
        settings.reconnect_max_s,
        give_up_after_s=settings.backfill_give_up_s,
    )
    coverage = LiveCoverage(publisher, tracker, backfiller, stream_names, settings.time_unit == "MICROSECOND")
    backfiller.on_given_up = coverage.given_up
    await _resume(settings, coverage)
    ingest = Ingest(publisher, tracker, tracked, backfiller.kline_dropped, ReceiptDelay(settings.time_unit), coverage)
    publisher.on_lost = ingest.on_lost
    # Binance counts connection attempts per IP: the shards' processes share the budget.
    attempts = AttemptBudget(max(1, settings.max_connection_attempts_per_5min // settings.shard_count))

    def new_shard(index: int, streams: list[str]) -> Shard:
        return Shard(index, streams, settings, ingest.on_frame, attempts, ingest.on_dropped)

    shards = [
        new_shard(index, streams)
        for index, streams in enumerate(shard_streams(stream_names, settings.max_streams_per_connection))
    ]

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    log.info(
        "started",
        extra={
            "symbols": len(symbols),
            "whole_market": settings.whole_market,
            "shard": settings.shard,
            "streams": len(stream_names),
            "connections": len(shards),
            "topic": settings.raw_topic,
            "ws_base_url": settings.ws_base_url,
            "rest_base_url": settings.rest_base_url,
            "rest_weight_limit": weight_limit,
        },
    )
    tasks = [asyncio.create_task(shard.run(), name=f"shard-{shard.index}") for shard in shards]
    follower: MarketFollower | None = None
    if settings.whole_market and settings.exchange_info_refresh_s > 0:

        async def read_exchange_info() -> Mapping[str, Any]:
            info: Mapping[str, Any] = await backfiller.call("exchangeInfo", rest.exchange_info)
            return info

        lookbacks: set[asyncio.Task[None]] = set()

        def fetch_since_listing(listed: list[str]) -> None:
            # Twice the refresh period: the listing happened at most one period before we saw it.
            lookback_s = 2 * settings.exchange_info_refresh_s + 10
            task = asyncio.create_task(_lookback(settings, listed, backfiller, lookback_s), name="lookback-listed")
            lookbacks.add(task)
            task.add_done_callback(lookbacks.discard)

        follower = MarketFollower(settings, shards, new_shard, read_exchange_info, ingest.track, fetch_since_listing)
        tasks.append(asyncio.create_task(follower.run(), name="follow-market"))
    tasks.append(asyncio.create_task(backfiller.run(), name="backfill"))
    tasks.append(asyncio.create_task(_poll_kafka(publisher, Heartbeat(settings.heartbeat_path)), name="kafka-poll"))
    tasks.append(asyncio.create_task(_report_stats(settings, publisher, ingest, shards, backfiller), name="stats"))
    tasks.append(asyncio.create_task(_publish_coverage(settings, coverage), name="coverage"))
    collector = ProducerCollector(settings, publisher, ingest, shards, backfiller, follower)
    tasks.append(asyncio.create_task(serve_metrics(settings, collector), name="metrics"))
    if settings.backfill > 0:
        tasks.append(asyncio.create_task(_lookback(settings, symbols, backfiller), name="lookback"))
    stopping = asyncio.create_task(stop.wait())
    waiting: set[asyncio.Task[object]] = {stopping, *tasks}
    try:
        while stopping not in (done := (await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED))[0]):
            for task in done:
                waiting.discard(task)
                if task.get_name() != "lookback":
                    task.result()  # the others run forever: one that ended is a bug, so raise it
        log.info("stopping: closing connections, then flushing Kafka")
    finally:
        # Stop reading first, so that nothing new arrives while Kafka is flushed.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        stopping.cancel()
    # What was captured since the last tick, so that a restart refetches from as late as possible.
    coverage.tick()
    undelivered = publisher.flush(settings.flush_timeout_s)
    if undelivered:
        log.error("messages not confirmed by Kafka at shutdown", extra={"undelivered": undelivered})
        return EXIT_UNDELIVERED
    return EXIT_OK
