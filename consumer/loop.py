"""poll -> parse -> write -> dead-letter -> commit. Offsets move only past rows that are committed."""

import logging
import threading
from collections import Counter
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from sqlalchemy.exc import DBAPIError

from consumer.parse import Rejection, parse_message
from consumer.settings import ConsumerSettings
from consumer.sink import TradeSink
from schemas.messages import Trade
from schemas.topics import Header

log = logging.getLogger(__name__)


@dataclass
class Batch:
    trades: list[Trade] = field(default_factory=list)
    rejected: list[tuple[Message, Rejection]] = field(default_factory=list)
    # Next offset to read, per (topic, partition): what gets committed once the batch is safe.
    next_offsets: dict[tuple[str, int], int] = field(default_factory=dict)


def build_batch(messages: list[Message]) -> Batch:
    batch = Batch()
    for message in messages:
        if message.error() is not None:
            # Errors delivered as messages (e.g. a partition EOF) carry no data to keep.
            log.warning("kafka message error", extra={"error": str(message.error())})
            continue
        result = parse_message(message.value())
        if isinstance(result, Trade):
            batch.trades.append(result)
        else:
            batch.rejected.append((message, result))
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        if topic is not None and partition is not None and offset is not None:
            batch.next_offsets[(topic, partition)] = offset + 1
    return batch


class TradeConsumer:
    def __init__(self, settings: ConsumerSettings, sink: TradeSink) -> None:
        self.settings = settings
        self.sink = sink
        self.stopping = threading.Event()
        self.counts: Counter[str] = Counter()
        self._consumer = Consumer(
            {
                "bootstrap.servers": settings.kafka_bootstrap_servers,
                "group.id": settings.group_id,
                # Offsets are committed by hand after the database commit; never automatically.
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                # Only read what the idempotent producer has fully committed to the log.
                "isolation.level": "read_committed",
            }
        )
        self._dlq = Producer(
            {
                "bootstrap.servers": settings.kafka_bootstrap_servers,
                "enable.idempotence": True,
                "acks": "all",
            }
        )
        self._dlq_failures = 0

    def run(self) -> None:
        self._consumer.subscribe([self.settings.raw_topic])
        log.info("consuming", extra={"topic": self.settings.raw_topic, "group": self.settings.group_id})
        try:
            while not self.stopping.is_set():
                messages = self._consumer.consume(
                    num_messages=self.settings.batch_max_messages, timeout=self.settings.batch_max_wait_s
                )
                if messages:
                    self.process(build_batch(messages))
        finally:
            # close() leaves the group at once, so partitions move to other members without waiting
            # for a session timeout; nothing uncommitted is committed by it (auto commit is off).
            self._consumer.close()
            self._dlq.flush(10)
            log.info("stopped", extra=dict(self.counts))

    def process(self, batch: Batch) -> None:
        inserted = self._write_until_done(batch.trades)
        if inserted is None:
            return  # stopping while the database was away: commit nothing, the batch is redelivered
        self._dead_letter(batch.rejected)
        if batch.next_offsets:
            offsets = [TopicPartition(t, p, o) for (t, p), o in batch.next_offsets.items()]
            self._consumer.commit(offsets=offsets, asynchronous=False)
        self.counts["trades_seen"] += len(batch.trades)
        self.counts["trades_inserted"] += inserted
        self.counts["rejected"] += len(batch.rejected)
        log.info(
            "batch committed",
            extra={"trades": len(batch.trades), "inserted": inserted, "rejected": len(batch.rejected)},
        )

    def _write_until_done(self, trades: list[Trade]) -> int | None:
        attempt = 0
        while True:
            try:
                return self.sink.write(trades)
            except DBAPIError as error:
                delay = min(self.settings.retry_max_s, self.settings.retry_min_s * 2**attempt)
                log.error(
                    "database write failed, retrying",
                    extra={"error": str(error).splitlines()[0], "retry_in_s": delay, "trades": len(trades)},
                )
                self.sink.dispose()
                attempt += 1
                if self.stopping.wait(delay):
                    return None

    def _dead_letter(self, rejected: list[tuple[Message, Rejection]]) -> None:
        """Sends rejected messages, unchanged, to the DLQ with the reason, and waits until Kafka has
        them: their offsets are about to be committed, so this is their last chance."""
        if not rejected:
            return
        for message, rejection in rejected:
            headers = [
                *(message.headers() or []),
                (Header.DLQ_REASON, rejection.reason.encode()),
                (Header.DLQ_DETAIL, rejection.detail.encode()),
                (Header.DLQ_SOURCE_TOPIC, (message.topic() or "").encode()),
                (Header.DLQ_SOURCE_PARTITION, str(message.partition()).encode()),
                (Header.DLQ_SOURCE_OFFSET, str(message.offset()).encode()),
            ]
            self._dlq.produce(
                self.settings.dlq_topic,
                value=message.value(),
                key=message.key(),
                headers=headers,
                on_delivery=self._on_dlq_delivery,
            )
            self.counts[f"rejected.{rejection.reason}"] += 1
            log.warning(
                "message rejected",
                extra={"reason": rejection.reason, "detail": rejection.detail, "offset": message.offset()},
            )
        failures_before = self._dlq_failures
        if self._dlq.flush(30) > 0 or self._dlq_failures > failures_before:
            raise RuntimeError("dead-letter messages were not delivered; refusing to commit their offsets")

    def _on_dlq_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self._dlq_failures += 1
            log.error("dead-letter delivery failed", extra={"error": str(error)})
