"""The Kafka side of the producer: raw frames in, delivery checked."""

import logging
import time

from confluent_kafka import KafkaError, Message, Producer

from schemas.topics import Header, Source, message_key

log = logging.getLogger(__name__)


class RawPublisher:
    """Publishes frames byte for byte, keyed by symbol, and counts what Kafka confirmed."""

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        self.topic = topic
        self.delivered = 0
        self.failed = 0
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap_servers,
                # No loss and no duplicates from producer retries: idempotence implies acks=all,
                # but both are written out because they are what correctness rests on.
                "enable.idempotence": True,
                "acks": "all",
                # Small batches: a few ms of latency buys large throughput gains.
                "linger.ms": 5,
                "compression.type": "lz4",
            }
        )

    def publish(self, frame: bytes, stream: str, received_at_ns: int, connection_id: str) -> None:
        symbol_key = message_key(stream.split("@", 1)[0]) if stream else None
        headers: list[tuple[str, str | bytes | None]] = [
            (Header.STREAM, stream.encode()),
            (Header.SOURCE, Source.WS.encode()),
            (Header.RECEIVED_AT_NS, str(received_at_ns).encode()),
            (Header.CONNECTION_ID, connection_id.encode()),
        ]
        while True:
            try:
                self._producer.produce(
                    self.topic, value=frame, key=symbol_key, headers=headers, on_delivery=self._on_delivery
                )
                break
            except BufferError:
                # The local queue is full (Kafka slow or away): wait for deliveries rather than drop.
                log.warning("kafka queue full, waiting", extra={"queued": len(self._producer)})
                self._producer.poll(0.5)
        self._producer.poll(0)

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is None:
            self.delivered += 1
            return
        self.failed += 1
        log.error(
            "delivery failed",
            extra={"error": str(error), "topic": message.topic(), "key": (message.key() or b"").decode()},
        )

    def poll(self) -> None:
        self._producer.poll(0)

    def flush(self, timeout_s: float = 30.0) -> int:
        """Waits for outstanding deliveries; returns how many are still undelivered."""
        deadline = time.monotonic() + timeout_s
        remaining = self._producer.flush(timeout_s)
        log.info(
            "flushed",
            extra={
                "delivered": self.delivered,
                "failed": self.failed,
                "undelivered": remaining,
                "flush_s": round(timeout_s - (deadline - time.monotonic()), 3),
            },
        )
        return remaining
