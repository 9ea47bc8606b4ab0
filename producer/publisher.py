"""The Kafka side of the producer: raw messages in, delivery checked, losses counted and handed back."""

import logging
import time
from collections import Counter
from collections.abc import Callable

from confluent_kafka import KafkaError, Message, Producer

from producer.frames import SERVER_SHUTDOWN_STREAM
from producer.settings import KAFKA_MESSAGE_MAX_BYTES
from schemas.coverage import CoverageMarker, encode_marker
from schemas.topics import Header, Source, message_key

log = logging.getLogger(__name__)

# (value, stream, source) of a message that will never reach Kafka.
LostHandler = Callable[[bytes, str, str], None]

_SOURCE_WS = Source.WS.encode()
_SOURCE_REST = Source.REST.encode()
_SOURCE_COVERAGE = Source.COVERAGE.encode()
# Serve librdkafka's callbacks every this many produce() calls; poll() costs a GIL round trip.
_POLL_EVERY = 2000
# One "messages lost" error line at most this often, with the count since the previous one.
_LOSS_LOG_INTERVAL_S = 1.0


class RawPublisher:
    """Publishes raw messages keyed by symbol with the contract's headers, and accounts for each one.

    librdkafka's queue is the bounded buffer: while Kafka is away, messages wait there (no timeout)
    and reading goes on. When it is full the message is lost: counted, logged loudly and handed to
    `on_lost`, which schedules a REST backfill of the ids it carried.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        buffer_max_messages: int,
        on_lost: LostHandler | None = None,
        time_unit: str = "MILLISECOND",
    ) -> None:
        self.topic = topic
        self.buffer_max_messages = buffer_max_messages
        self.on_lost = on_lost
        self.produced = 0
        self.coverage_markers = 0
        # Messages handed to Kafka, by stream: live frames and REST records.
        self.produced_ws: Counter[str] = Counter()
        self.produced_rest: Counter[str] = Counter()
        self.failed = 0
        self.lost = 0
        self._lost_unlogged = 0
        self._last_loss_log = 0.0
        self._unpolled = 0
        self._kafka_down = False
        self._delivered_when_down = 0
        self._time_unit_header: list[tuple[str, str | bytes | None]] = (
            [] if time_unit == "MILLISECOND" else [(Header.TIME_UNIT, time_unit.encode())]
        )
        # stream name -> (key, stream header value); streams are few, so this stays small.
        self._stream_cache: dict[str, tuple[bytes | None, bytes]] = {}
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap_servers,
                # No loss and no duplicates from producer retries: idempotence implies acks=all,
                # but both are written out because they are what correctness rests on.
                "enable.idempotence": True,
                "acks": "all",
                # 0 = no delivery timeout: librdkafka retries until Kafka is back. The queue bound
                # below, not a timer, decides when a message is given up (and backfilled later).
                "message.timeout.ms": 0,
                "queue.buffering.max.messages": buffer_max_messages,
                # Its default, written out: the WebSocket frame limit (settings) is derived from it.
                "message.max.bytes": KAFKA_MESSAGE_MAX_BYTES,
                # Small batches: a few ms of latency buys large throughput gains.
                "linger.ms": 5,
                "compression.type": "lz4",
                # Only failures call back into Python: a callback per delivered message would cost
                # more than the produce() itself. Delivered = produced - queued - failed.
                "delivery.report.only.error": True,
                "on_delivery": self._on_delivery,
                "error_cb": self._on_error,
            }
        )

    # --- the hot path ---------------------------------------------------------------------------

    def _stream_key(self, stream: str) -> tuple[bytes | None, bytes]:
        cached = self._stream_cache.get(stream)
        if cached is None:
            symbol = stream.partition("@")[0]
            # Streams without a symbol ('!serverShutdown', error replies with no stream) carry no key.
            key = message_key(symbol) if symbol and "@" in stream and stream != SERVER_SHUTDOWN_STREAM else None
            cached = (key, stream.encode())
            if len(self._stream_cache) < 100_000:
                self._stream_cache[stream] = cached
        return cached

    def publish_ws(self, frame: bytes, stream: str, received_at_ns: int, connection_id: bytes) -> None:
        """One WebSocket frame, byte for byte. Never blocks: a full buffer loses the frame (and says so)."""
        key, stream_header = self._stream_key(stream)
        headers: list[tuple[str, str | bytes | None]] = [
            (Header.STREAM, stream_header),
            (Header.SOURCE, _SOURCE_WS),
            (Header.RECEIVED_AT_NS, str(received_at_ns).encode()),
            (Header.CONNECTION_ID, connection_id),
            *self._time_unit_header,
        ]
        try:
            self._producer.produce(self.topic, frame, key, headers=headers)
        except BufferError:
            self._lose(frame, stream, Source.WS)
            return
        self.produced += 1
        self.produced_ws[stream] += 1
        self._unpolled += 1
        if self._unpolled >= _POLL_EVERY:
            self.poll()

    def try_publish_rest(self, value: bytes, stream: str, received_at_ns: int, request_id: bytes) -> bool:
        """One REST record; False when the buffer is full (the caller waits and tries again)."""
        if not self.try_publish(value, stream, _SOURCE_REST, received_at_ns, request_id, self._time_unit_header):
            return False
        self.produced_rest[stream] += 1
        return True

    def try_publish(
        self,
        value: bytes,
        stream: str,
        source: bytes,
        received_at_ns: int,
        request_id: bytes,
        extra_headers: list[tuple[str, str | bytes | None]] | None = None,
    ) -> bool:
        """One message of any source (REST, a history import, a coverage marker); False when the
        buffer is full (the caller waits and tries again: such messages are not time critical)."""
        key, headers = self.addressing(stream, source, received_at_ns, request_id, extra_headers)
        return self.try_produce(value, key, headers)

    def addressing(
        self,
        stream: str,
        source: bytes,
        received_at_ns: int,
        request_id: bytes,
        extra_headers: list[tuple[str, str | bytes | None]] | None = None,
    ) -> tuple[bytes | None, list[tuple[str, str | bytes | None]]]:
        """The key and headers of a message; one pair serves every row of a file."""
        key, stream_header = self._stream_key(stream)
        headers: list[tuple[str, str | bytes | None]] = [
            (Header.STREAM, stream_header),
            (Header.SOURCE, source),
            (Header.RECEIVED_AT_NS, str(received_at_ns).encode()),
            (Header.CONNECTION_ID, request_id),
            *(extra_headers or ()),
        ]
        return key, headers

    def try_produce(self, value: bytes, key: bytes | None, headers: list[tuple[str, str | bytes | None]]) -> bool:
        try:
            self._producer.produce(self.topic, value, key, headers=headers)
        except BufferError:
            self.poll()
            return False
        self.produced += 1
        self._unpolled += 1
        if self._unpolled >= _POLL_EVERY:
            self.poll()
        return True

    def try_publish_coverage(self, marker: CoverageMarker, stream: str) -> bool:
        """A coverage marker for `stream`, keyed like its records so it follows them on their
        partition; False when the buffer is full (the caller offers it again later)."""
        key, stream_header = self._stream_key(stream)
        headers: list[tuple[str, str | bytes | None]] = [
            (Header.STREAM, stream_header),
            (Header.SOURCE, _SOURCE_COVERAGE),
        ]
        try:
            self._producer.produce(self.topic, encode_marker(marker), key, headers=headers)
        except BufferError:
            return False
        self.produced += 1
        self.coverage_markers += 1
        self._unpolled += 1
        return True

    # --- accounting -----------------------------------------------------------------------------

    def _lose(self, value: bytes, stream: str, source: str) -> None:
        self.lost += 1
        self._lost_unlogged += 1
        now = time.monotonic()
        if now - self._last_loss_log >= _LOSS_LOG_INTERVAL_S:
            log.error(
                "kafka buffer full: messages lost (trade and aggTrade ids will be backfilled over REST)",
                extra={
                    "lost": self._lost_unlogged,
                    "lost_total": self.lost,
                    "queued": self.queued,
                    "buffer_max_messages": self.buffer_max_messages,
                },
            )
            self._lost_unlogged = 0
            self._last_loss_log = now
        if self.on_lost is not None:
            self.on_lost(value, stream, source)

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is None:
            return
        self.failed += 1
        headers = dict(message.headers() or [])
        stream_value = headers.get(Header.STREAM) or b""
        source_value = headers.get(Header.SOURCE) or b""
        stream = stream_value.decode(errors="replace") if isinstance(stream_value, bytes) else str(stream_value)
        source = source_value.decode(errors="replace") if isinstance(source_value, bytes) else str(source_value)
        log.error(
            "delivery failed",
            extra={
                "error": str(error),
                "retriable": error.retriable(),
                "topic": message.topic(),
                "stream": stream,
                "source": source,
                "failed_total": self.failed,
            },
        )
        self._lose(message.value() or b"", stream, source)

    def _on_error(self, error: KafkaError) -> None:
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            if not self._kafka_down:
                log.warning(
                    "kafka unavailable: buffering and reading on",
                    extra={"error": str(error), "queued": self.queued, "buffer_max_messages": self.buffer_max_messages},
                )
            self._kafka_down = True
            self._delivered_when_down = self.delivered
            return
        level = logging.WARNING if error.code() == KafkaError._TRANSPORT else logging.ERROR
        log.log(level, "kafka error", extra={"error": str(error), "fatal": error.fatal(), "queued": self.queued})

    # --- state ----------------------------------------------------------------------------------

    @property
    def queued(self) -> int:
        """Messages produced but not yet confirmed by Kafka (the buffer's size)."""
        return len(self._producer)

    @property
    def delivered(self) -> int:
        return self.produced - self.queued - self.failed

    def has_room(self) -> bool:
        """Whether Kafka keeps up: the buffer at most half full (so recovering losses won't cause more)."""
        return self.queued < self.buffer_max_messages // 2

    def poll(self) -> None:
        self._unpolled = 0
        self._producer.poll(0)
        if self._kafka_down and self.delivered > self._delivered_when_down:
            self._kafka_down = False
            log.warning("kafka is back", extra={"queued": self.queued, "lost_total": self.lost})

    @property
    def kafka_down(self) -> bool:
        return self._kafka_down

    def drain(self, timeout_s: float) -> int:
        """Waits for outstanding deliveries, quietly; returns how many are still undelivered."""
        self._unpolled = 0
        remaining: int = self._producer.flush(timeout_s)
        return remaining

    def flush(self, timeout_s: float) -> int:
        """Waits for outstanding deliveries; returns how many are still undelivered."""
        started = time.monotonic()
        remaining = self._producer.flush(timeout_s)
        log.info(
            "flushed",
            extra={
                "produced": self.produced,
                "delivered": self.delivered,
                "failed": self.failed,
                "lost": self.lost,
                "undelivered": remaining,
                "flush_s": round(time.monotonic() - started, 3),
            },
        )
        return remaining
