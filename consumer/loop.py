"""poll -> parse -> write -> dead-letter -> commit. Offsets move only past rows that are committed."""

import gc
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from consumer import trade_lines
from consumer.conflicts import conflicting_messages
from consumer.dead_letters import MAX_DETAIL_CHARS, DeadLetterRow, DlqRecord, Headers, Rejected
from consumer.headers import HEADER_ERRORS, each_headers, message_headers
from consumer.metrics import METRICS
from consumer.parse import Rejection, Skipped, parse_message
from consumer.settings import ConsumerSettings
from consumer.sink import Conflict, LagRow, RowsByTable, Sink, Written
from consumer.symbols import SymbolRegistry
from schemas.heartbeat import Heartbeat

log = logging.getLogger(__name__)


def tune_garbage_collector() -> None:
    """Collects cyclic garbage 100x less often. The hot path allocates a few container objects
    per message and makes no reference cycles (refcounting frees all of it), but at Python's default
    threshold of 700 allocations a collection ran every hundred messages or so, each walking the
    rows of the batch in hand: a quarter of the cost of parsing a trade."""
    gc.collect()
    gc.freeze()  # what start-up built lives for the whole process: never walk it again
    gc.set_threshold(70_000, 50, 100)


class Deferred(Exception):
    """A write not tried because an earlier batch of its writer failed: it is written after that
    batch's retry, so that no batch (and no coverage marker in it) commits before the records
    read before it."""


@dataclass
class Batch:
    messages: list[Message] = field(default_factory=list)
    rows: RowsByTable = field(default_factory=RowsByTable)
    rejected: list[Rejected] = field(default_factory=list)
    dead_letters: list[DeadLetterRow] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    # Next offset to read, per (topic, partition): what gets committed once the batch is safe.
    next_offsets: dict[tuple[str, int], int] = field(default_factory=dict)

    def write_to(self, sink: Sink) -> Written:
        return sink.write(self.rows, self.dead_letters, self.find_conflicts)

    def find_conflicts(self, conflicts: Sequence[Conflict]) -> list[Rejected]:
        """The messages that sent rows conflicting with stored ones (the rare merge path)."""
        return conflicting_messages(self.messages, conflicts)

    def reject(self, message: Message, headers: Headers | None, rejection: Rejection) -> None:
        rejected = Rejected(
            message.topic() or "",
            message.partition() or 0,
            message.offset() or 0,
            message.value(),
            message.key(),
            headers,
            rejection,
        )
        self.rejected.append(rejected)
        self.dead_letters.append(rejected.row())


@dataclass(frozen=True)
class KnownSymbols:
    """The exchange's symbols, as text for the general parser and as bytes for the hot path."""

    as_text: frozenset[str]
    as_bytes: frozenset[bytes]

    @classmethod
    def of(cls, symbols: frozenset[str]) -> "KnownSymbols":
        return cls(symbols, frozenset(symbol.encode() for symbol in symbols))


UNREADABLE_HEADER = Rejection(
    "invalid_header", "a header name is not valid UTF-8; the message is kept whole in its source topic"
)


def build_batch(messages: list[Message], known_symbols: KnownSymbols | None) -> Batch:
    batch = Batch(messages=messages)
    done = 0
    while done < len(messages):
        done = _build(batch, messages, done, known_symbols)
        if done < len(messages):  # its headers can't be read (see consumer/headers.py)
            batch.reject(messages[done], None, UNREADABLE_HEADER)
            _advance(batch, messages[done])
            done += 1
    return batch


def _build(batch: Batch, messages: list[Message], done: int, known_symbols: KnownSymbols | None) -> int:
    """Adds messages[done:] to the batch until one's headers can't be read; returns how many of
    `messages` are in it (all of them, or up to the unreadable one)."""
    trades = batch.rows.trades
    known_bytes = known_symbols.as_bytes if known_symbols is not None else None
    known_text = known_symbols.as_text if known_symbols is not None else None
    rest = messages[done:] if done else messages
    try:
        for message, pairs in zip(rest, each_headers(rest), strict=True):
            done += 1
            if message.error() is not None:
                # Errors delivered as messages (e.g. a partition EOF) carry no data to keep.
                log.warning("kafka message error", extra={"error": str(message.error())})
                continue
            value = message.value()
            line = trade_lines.from_frame(value, pairs, known_bytes) if value else None
            if line is not None:
                trades.append(line)
            else:
                _add_parsed(batch, message, value, pairs, known_text)
            _advance(batch, message)
    except HEADER_ERRORS:  # from each_headers: messages[done] is the one (parsing catches its own)
        pass
    return done


def _advance(batch: Batch, message: Message) -> None:
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    if topic is not None and partition is not None and offset is not None:
        batch.next_offsets[(topic, partition)] = offset + 1


def _add_parsed(
    batch: Batch, message: Message, value: bytes | None, pairs: Headers | None, known: frozenset[str] | None
) -> None:
    """What the hot path left: the general parser's row, rejection or skip."""
    try:
        result = parse_message(value, message_headers(pairs), known, message.key())
    except Exception as error:  # a parser bug must cost this message, not stop the consumer
        log.exception("parser failed on a message", extra={"offset": message.offset()})
        result = Rejection("parse_error", f"the parser failed: {error!r}")
    if isinstance(result, Rejection):
        batch.reject(message, pairs, result)
    elif isinstance(result, Skipped):
        batch.skipped[result.reason] += 1
    else:
        batch.rows.add(result)


class RawConsumer:
    def __init__(self, settings: ConsumerSettings, sinks: Sequence[Sink], registry: SymbolRegistry | None) -> None:
        """`sinks`: one per writer thread, each its own database connection."""
        self.settings = settings
        self.sinks = list(sinks)
        self.registry = registry
        self.stopping = threading.Event()
        self.counts: Counter[str] = Counter()
        self._database_down = False
        self._consumer = Consumer(
            {
                "bootstrap.servers": settings.kafka_bootstrap_servers,
                "group.id": settings.group_id,
                # Offsets are committed by hand after the database commit; never automatically.
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                # Only read what the idempotent producer has fully committed to the log.
                "isolation.level": "read_committed",
                "session.timeout.ms": settings.session_timeout_ms,
                **METRICS.kafka_config(settings),
            }
        )
        self._dlq = Producer(
            {
                "bootstrap.servers": settings.kafka_bootstrap_servers,
                "enable.idempotence": True,
                "acks": "all",
            }
        )
        # Dead letters given up because the consumer was stopping while Kafka was away.
        self._dlq_abandoned = 0
        # The database write of a batch overlaps the parsing of the next. With several writers each
        # takes the partitions of its own share (partition number modulo writers) on its own
        # connection: their transactions run side by side, one's commit flush overlapping the
        # other's work, and each partition's batches are still written in order.
        self._writers = [
            ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"db-writer-{index}") for index, _ in enumerate(sinks)
        ]
        # Reads being written, oldest first: each one part per writer that has its messages, with
        # that writer's index. Up to batches_in_flight of them while the next is read and parsed.
        self._in_flight: deque[list[tuple[Batch, int, Future[Written]]]] = deque()
        # (topic, partition)s of a part whose write was given up: no later offset of theirs may be
        # committed before they are read again.
        self._given_up: set[tuple[str, int]] = set()
        # Per writer: an earlier write failed and is not yet retried, so the later ones queued
        # behind it are Deferred. Set and cleared on the writer's thread; reset after a rebalance.
        self._failed_write = [False] * len(self.sinks)
        self._heartbeat = Heartbeat(settings.heartbeat_path)
        # Offsets this member committed last, per (topic, partition): the lag it reports.
        self._committed: dict[tuple[str, int], int] = {}
        self._lag_reported_at = float("-inf")
        self._known: KnownSymbols | None = None

    def run(self) -> None:
        if self.registry is not None:
            self._load_symbols()
        self._consumer.subscribe([self.settings.raw_topic], on_assign=self._on_assign, on_revoke=self._on_revoke)
        log.info("consuming", extra={"topic": self.settings.raw_topic, "group": self.settings.group_id})
        try:
            while not self.stopping.is_set():
                messages = self._consumer.consume(
                    num_messages=self.settings.batch_max_messages, timeout=self.settings.batch_max_wait_s
                )
                # Queued behind the batches still being written, so a writer goes from one batch
                # straight to the next while this thread reads and parses the one after.
                self._submit(self._parse_parts(messages))
                self._finish_written(keep=self.settings.batches_in_flight)
                self._heartbeat.beat()
                self._report_lag()
            self._finish_all()
        finally:
            for writer in self._writers:
                writer.shutdown(wait=True)
            # close() leaves the group at once, so partitions move to other members without waiting
            # for a session timeout; it commits nothing (auto commit is off).
            self._consumer.close()
            self._dlq.flush(10)
            log.info("stopped", extra=dict(self.counts))

    def _parse_parts(self, messages: list[Message]) -> list[tuple[int, Batch]]:
        """The messages parsed into one batch per writer that has any, by partition."""
        writers = len(self.sinks)
        if writers == 1:
            return [(0, self._parse(messages))] if messages else []
        shares: list[list[Message]] = [[] for _ in range(writers)]
        for message in messages:
            shares[(message.partition() or 0) % writers].append(message)
        return [(index, self._parse(share)) for index, share in enumerate(shares) if share]

    def _submit(self, parts: list[tuple[int, Batch]]) -> None:
        if parts:
            self._in_flight.append(
                [
                    (batch, index, self._writers[index].submit(self._write_in_order, batch, index))
                    for index, batch in parts
                ]
            )

    def _write_in_order(self, batch: Batch, writer: int) -> Written:
        """On the writer's thread. A writer's batches commit in the order they were read: once one
        fails, those queued behind it wait for its retry (the store would otherwise claim a period
        held, its marker committed, before the failed batch's records were in)."""
        if self._failed_write[writer]:
            raise Deferred
        try:
            return batch.write_to(self.sinks[writer])
        except BaseException:
            self._failed_write[writer] = True
            raise

    def _write_again(self, batch: Batch, writer: int) -> Written:
        """On the writer's thread: the retry of the oldest failed or deferred write."""
        written = batch.write_to(self.sinks[writer])
        self._failed_write[writer] = False
        return written

    def _parse(self, messages: list[Message]) -> Batch:
        batch = build_batch(messages, self._known_symbols())
        unknown = any(rejected.rejection.reason == "unknown_symbol" for rejected in batch.rejected)
        # A symbol listed since the last load is not an error: reload at once (rate-limited) and retry.
        if unknown and self.registry is not None and self.registry.reload_for_unknown():
            batch = build_batch(messages, self._known_symbols())
        return batch

    def _finish_written(self, keep: int) -> None:
        """Finishes batches in the order they were read: waits while more than `keep` are in flight,
        then also finishes those already written, so their offsets are committed without delay."""
        while self._in_flight and (
            len(self._in_flight) > keep or all(write.done() for _, _, write in self._in_flight[0])
        ):
            self._finish(self._in_flight.popleft(), retry=True)

    def _finish_all(self, retry: bool = True) -> None:
        """Finishes every batch in flight. Without `retry` (a rebalance) a failed write is given up:
        nothing of it is committed, and its messages are read again by whoever owns them next."""
        while self._in_flight:
            self._finish(self._in_flight.popleft(), retry)
        self._given_up.clear()
        # Nothing is in flight: what failed or was deferred is read again, in order.
        self._failed_write = [False] * len(self.sinks)

    def _finish(self, parts: list[tuple[Batch, int, Future[Written]]], retry: bool) -> None:
        """Waits for one read's parts to be written, then dead-letters their rejects and commits
        their offsets. Runs on the main thread: the Kafka consumer must not be used from two
        threads. Parts hold disjoint partitions, so each part's offsets are committed only if its
        own write was, and never past a part of an earlier read that was given up."""
        done: list[tuple[Batch, int, Written]] = []
        for batch, index, write in parts:
            try:
                written: Written | None = write.result()
            except Deferred:
                # The batches before it are finished (written, or given up): its turn now.
                written = self._write_deferred(batch, index) if retry and not self._given_up else None
            except Exception as error:  # the database away, or any failure of this write
                if not retry:
                    log.warning("write failed during a rebalance; its messages will be read again")
                    written = None
                else:
                    written = self._write_until_done(batch, index, error)
            # None: given up (stopping while the database was away, or a rebalance): the part's
            # messages are read again, and nothing after them in its partitions may be committed.
            if written is None:
                self._given_up.update(batch.next_offsets)
            else:
                done.append((batch, index, written))
        if not self._dead_letter(
            [item for batch, _, written in done for item in (*batch.rejected, *written.conflicts)]
        ):
            # Asked to stop before Kafka had every dead letter: these messages are read again.
            for batch, _, _ in done:
                self._given_up.update(batch.next_offsets)
            done = []
        self._commit(
            {
                key: offset
                for batch, _, _ in done
                for key, offset in batch.next_offsets.items()
                if key not in self._given_up
            }
        )
        for batch, index, written in done:
            self._count(batch, written)
            self._on_committed(batch, index)

    def _write_deferred(self, batch: Batch, writer: int) -> Written | None:
        try:
            return self._writers[writer].submit(self._write_again, batch, writer).result()
        except Exception as error:
            return self._write_until_done(batch, writer, error)

    def _on_committed(self, batch: Batch, writer: int) -> None:
        """Called for each part once its rows and offsets are committed (a hook for measurements)."""

    def _known_symbols(self) -> KnownSymbols | None:
        if self.registry is None:
            return None
        # Encoded once per load of the list, not once per batch.
        if self._known is None or self._known.as_text is not self.registry.known:
            self._known = KnownSymbols.of(self.registry.known)
        return self._known

    def _load_symbols(self) -> None:
        """Without a symbol list every message would look unknown: wait for one rather than
        dead-letter good data."""
        assert self.registry is not None
        delay = self.settings.retry_min_s
        while not self.registry.load():
            log.error("no symbol list yet (exchangeInfo and table both empty), retrying", extra={"retry_in_s": delay})
            if self.stopping.wait(delay):
                return
            delay = min(self.settings.retry_max_s, delay * 2)

    def _write_until_done(self, batch: Batch, writer: int, error: Exception) -> Written | None:
        """Retries a failed write with backoff, partitions paused, until it succeeds or we stop."""
        attempt = 0
        while True:
            delay = min(self.settings.retry_max_s, self.settings.retry_min_s * 2**attempt)
            log.error(
                "database write failed, retrying",
                extra={"error": str(error).splitlines()[0], "retry_in_s": delay, "rows": len(batch.rows)},
            )
            attempt += 1
            if self._wait_paused(delay):
                return None
            try:
                # On the writer's own thread, like every use of its connection; the sink has
                # already dropped the broken connection and reconnects on this write.
                written = self._writers[writer].submit(self._write_again, batch, writer).result()
            except Exception as next_error:  # still failing: back off further
                error = next_error
                continue
            self._database_down = False
            self._consumer.resume(self._consumer.assignment())
            log.info("database back, resumed", extra={"attempts": attempt + 1})
            return written

    def _wait_paused(self, delay_s: float) -> bool:
        """Waits out a database outage while staying in the consumer group: partitions paused, the
        consumer still polled (a consumer that stops polling is evicted after max.poll.interval.ms).
        Returns True if asked to stop meanwhile."""
        if not self._database_down:
            self._database_down = True
            self._consumer.pause(self._consumer.assignment())
        message = self._consumer.poll(delay_s)
        if message is not None and message.error() is None:
            # Not expected while paused; rewind so it is read again, never dropped.
            topic, partition, offset = message.topic(), message.partition(), message.offset()
            if topic is not None and partition is not None and offset is not None:
                self._consumer.seek(TopicPartition(topic, partition, offset))
        return self.stopping.is_set()

    def _commit(self, next_offsets: dict[tuple[str, int], int]) -> None:
        if not next_offsets:
            return
        offsets = [TopicPartition(topic, partition, offset) for (topic, partition), offset in next_offsets.items()]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
            METRICS.offsets_committed(next_offsets, self._committed)
            self._committed.update(next_offsets)
        except KafkaException as error:
            # Partitions moved to another member while this batch was written: the rows are in and
            # idempotent, the new owner reads the same messages again and changes nothing.
            log.warning("offset commit refused, partitions moved", extra={"error": str(error)})

    def _report_lag(self) -> None:
        """Every few seconds, records how far behind the log end each owned partition is, for the
        status page (the api can't ask Kafka). Queued on the writer thread, behind the batches."""
        now = time.monotonic()
        if now - self._lag_reported_at < self.settings.lag_report_s:
            return
        self._lag_reported_at = now
        rows = []
        for partition in self._consumer.assignment():
            # cached=True: the watermarks the fetcher already knows, no round trip to the broker.
            low, high = self._consumer.get_watermark_offsets(partition, cached=True)
            if high is None or high < 0:
                continue  # nothing fetched from this partition yet
            # Never committed: the group starts at the earliest offset still in the log.
            committed = self._committed.get((partition.topic, partition.partition), max(low, 0))
            lag = max(0, high - committed)
            rows.append(LagRow(self.settings.group_id, partition.topic, partition.partition, committed, high, lag))
        if rows:
            future = self._writers[0].submit(self.sinks[0].write_lag, rows)
            future.add_done_callback(_log_failure)

    def _count(self, batch: Batch, written: Written) -> None:
        METRICS.batch_committed(batch, written)
        self.counts["trades"] += len(batch.rows.trades)
        self.counts["trades_inserted"] += written.trades
        self.counts["agg_trades"] += len(batch.rows.agg_trades)
        self.counts["klines"] += len(batch.rows.klines)
        self.counts["book_tickers"] += len(batch.rows.book_tickers)
        self.counts["coverage_markers"] += len(batch.rows.coverage)
        self.counts["rejected"] += len(batch.rejected) + len(written.conflicts)
        self.counts.update({f"skipped.{reason}": n for reason, n in batch.skipped.items()})
        log.debug(
            "batch committed",
            extra={
                "rows": len(batch.rows),
                "trades_inserted": written.trades,
                "rejected": len(batch.rejected),
                "skipped": sum(batch.skipped.values()),
            },
        )

    def _dead_letter(self, rejected: Sequence[Rejected]) -> bool:
        """Sends rejected messages, unchanged but for what Kafka's size limit forces, to the DLQ with
        the reason, and waits until Kafka has them: their offsets are about to be committed, so this
        is their last chance. False if asked to stop before then."""
        if not rejected:
            return True
        abandoned_before = self._dlq_abandoned
        for item in rejected:
            self._produce_dead_letter(item, item.record(), minimal=False)
            self.counts[f"rejected.{item.rejection.reason}"] += 1
            log.warning(
                "message rejected",
                extra={
                    "reason": item.rejection.reason,
                    "detail": item.rejection.detail[:MAX_DETAIL_CHARS],
                    "partition": item.partition,
                    "offset": item.offset,
                },
            )
        while self._dlq.flush(5) > 0:  # the broker away: wait for it, as the raw topic's reads do
            log.warning("dead letters not delivered yet, waiting", extra={"pending": len(self._dlq)})
            if self.stopping.is_set():
                return False
        return self._dlq_abandoned == abandoned_before

    def _produce_dead_letter(self, item: Rejected, record: DlqRecord, minimal: bool) -> None:
        def on_delivery(error: KafkaError | None, _: Message) -> None:
            if error is not None:
                self._on_dlq_failure(item, error, minimal)

        try:
            while True:
                try:
                    self._dlq.produce(
                        self.settings.dlq_topic,
                        record.value,
                        record.key,
                        headers=record.headers,
                        on_delivery=on_delivery,
                    )
                    return
                except BufferError:  # the producer's queue is full: let deliveries drain it
                    self._dlq.poll(0.5)
        except KafkaException as error:  # refused at once, e.g. over the size limit after all
            self._on_dlq_failure(item, error.args[0], minimal)

    def _on_dlq_failure(self, item: Rejected, error: KafkaError, minimal: bool) -> None:
        """A dead letter Kafka did not take: sent again while the broker is away, sent in its
        smallest form if Kafka refuses it, and lost (logged, counted) only if even that is refused.
        One message's dead letter never stops the consumer."""
        where = {"partition": item.partition, "offset": item.offset, "reason": item.rejection.reason}
        if _transient(error):
            if self.stopping.is_set():
                self._dlq_abandoned += 1
                return
            log.warning("dead letter not delivered, sending again", extra={**where, "error": str(error)})
            self._produce_dead_letter(item, item.minimal_record() if minimal else item.record(), minimal)
        elif not minimal:
            log.error("dead letter refused, sending it without the original", extra={**where, "error": str(error)})
            self._produce_dead_letter(item, item.minimal_record(), minimal=True)
        else:
            self.counts["dead_letters_lost"] += 1
            METRICS.dead_letters_lost.inc()
            log.error(
                "DEAD LETTER LOST: Kafka refused it even without the original; the message stays in its"
                " source topic and its dead_letters row is stored",
                extra={**where, "topic": item.topic, "error": str(error)},
            )

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("partitions assigned", extra={"partitions": [p.partition for p in partitions]})
        try:
            for committed in consumer.committed(partitions, timeout=10):
                if committed.offset >= 0:
                    self._committed[(committed.topic, committed.partition)] = committed.offset
        except KafkaException as error:  # only the lag report needs these: carry on without
            log.warning("committed offsets unavailable", extra={"error": str(error)})
        if self._database_down:
            consumer.pause(partitions)  # stay paused until the database is back

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Finish the batch in flight while these partitions are still ours, so its offsets are
        # committed and the next owner starts right after it.
        log.info("partitions revoked", extra={"partitions": [p.partition for p in partitions]})
        self._finish_all(retry=False)


# Errors after which the same dead letter may well be delivered: the broker away or busy.
_TRANSIENT = frozenset(
    (KafkaError._MSG_TIMED_OUT, KafkaError._TIMED_OUT, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN)
)


def _transient(error: KafkaError) -> bool:
    return bool(error.retriable()) or error.code() in _TRANSIENT


def _log_failure(future: Future[None]) -> None:
    if (error := future.exception()) is not None:
        log.warning("lag report not written", extra={"error": str(error).splitlines()[0]})
