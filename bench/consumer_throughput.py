"""Consumer benchmark: Kafka -> committed PostgreSQL rows, against the ceiling and the old way.

    bash scripts/stack.sh up        # the dev stack: PostgreSQL with fsync on, as in production
    .venv/bin/python bench/consumer_throughput.py [--trades 2000000] [--latency-seconds 20]

Reports, in one run on one machine (so the ratios are meaningful even when the box is noisy):
1. sustained consumer throughput for N trades, from Kafka to committed rows (offsets committed),
   for one consumer process and then for --processes of them in one group;
2. the raw COPY rate of the same rows straight into an empty trades table (the ceiling), the better
   of a run before and a run after the consumer's;
3. a row-by-row INSERT with a commit per row, as the reference tracker did, on a sample;
4. end-to-end latency at 5,000 messages/s: from the broker's append (LogAppendTime) to the row's
   commit in PostgreSQL, and to its offset's commit in Kafka.
Everything runs in its own database and topics, dropped at the end.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from multiprocessing.context import BaseContext
from multiprocessing.synchronize import Event as EventType
from pathlib import Path

import psycopg2
from confluent_kafka import Message, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

import compose_local  # noqa: E402

from bootstrap.__main__ import migrate  # noqa: E402
from consumer.dead_letters import DeadLetterRow  # noqa: E402
from consumer.loop import Batch, RawConsumer, tune_garbage_collector  # noqa: E402
from consumer.parse import TradeRow, parse_message  # noqa: E402
from consumer.settings import ConsumerSettings  # noqa: E402
from consumer.sink import ConflictFinder, RowsByTable, Sink, Written  # noqa: E402
from consumer.symbols import SymbolRegistry  # noqa: E402
from schemas.topics import Header, Source  # noqa: E402

SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBBTC", "SOLUSDT", "XRPUSDT", "DOGEUSDT", "ADAUSDT", "LTCBTC")
PARTITIONS = 4  # each symbol always on the same one, two symbols each: consumers get equal shares
T0_MS = 1_763_800_000_000  # 2025-11-22, a realistic epoch


def frame(symbol: str, trade_id: int) -> bytes:
    """A combined-stream trade frame as Binance sends it; a trade every ms, prices moving."""
    price = f"{84000 + (trade_id * 7919) % 1000}.{trade_id % 100:02d}000000"
    quantity = f"0.{(trade_id * 31) % 99999 + 1:05d}000"
    time_ms = T0_MS + trade_id
    payload = (
        f'{{"e":"trade","E":{time_ms + 1},"s":"{symbol}","t":{trade_id},"p":"{price}","q":"{quantity}",'
        f'"T":{time_ms},"m":{"true" if trade_id % 3 else "false"},"M":true}}'
    )
    return f'{{"stream":"{symbol.lower()}@trade","data":{payload}}}'.encode()


def headers(symbol: str) -> list[tuple[str, str | bytes | None]]:
    """The headers the producer puts on every WebSocket frame (producer/publisher.py)."""
    return [
        (Header.STREAM, f"{symbol.lower()}@trade".encode()),
        (Header.SOURCE, Source.WS.encode()),
        (Header.RECEIVED_AT_NS, str(time.time_ns()).encode()),
        (Header.CONNECTION_ID, b"0f6c2a9e41d3b857"),
    ]


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def create_database(admin_url: str) -> str:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    connection = psycopg2.connect(libpq(admin_url))
    connection.autocommit = True
    connection.cursor().execute(f'CREATE DATABASE "{name}"')  # a generated identifier
    connection.close()
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    migrate(url, api_role="")
    return url


def drop_database(admin_url: str, url: str) -> None:
    connection = psycopg2.connect(libpq(admin_url))
    connection.autocommit = True
    # An autovacuum worker (a superuser process) may still hold the database, and FORCE may not
    # end it: retry for a while.
    for attempt in range(40):
        try:
            connection.cursor().execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
            break
        except psycopg2.errors.InsufficientPrivilege:
            if attempt == 39:
                raise
            time.sleep(0.5)
    connection.close()


def produce_all(bootstrap: str, topic: str, count: int) -> float:
    producer = Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 20, "compression.type": "lz4"}
    )
    started = time.perf_counter()
    for trade_id in range(1, count + 1):
        symbol = SYMBOLS[trade_id % len(SYMBOLS)]
        while True:
            try:
                producer.produce(
                    topic,
                    frame(symbol, trade_id),
                    key=symbol.encode(),
                    partition=SYMBOLS.index(symbol) % PARTITIONS,
                    headers=headers(symbol),
                )
                break
            except BufferError:
                producer.poll(0.05)
        if trade_id % 10000 == 0:
            producer.poll(0)
    producer.flush(60)
    return count / (time.perf_counter() - started)


def produce_paced(bootstrap: str, topic: str, rate: int, seconds: float, first_id: int) -> None:
    """Runs in a second process: `rate` messages a second, spread evenly, for `seconds`."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 0})
    # Connected, with the topic's leaders known and an idempotent producer id, before the clock
    # starts: otherwise the first few hundred messages wait in the producer and reach the broker
    # as one burst, which measures the load generator's start-up, not the consumer.
    producer.list_topics(topic, timeout=10)
    producer.poll(1.0)
    started = time.perf_counter()
    sent = 0
    total = int(rate * seconds)
    while sent < total:
        due = min(total, int((time.perf_counter() - started) * rate))
        while sent < due:
            symbol = SYMBOLS[sent % len(SYMBOLS)]
            producer.produce(topic, frame(symbol, first_id + sent), key=symbol.encode(), headers=headers(symbol))
            sent += 1
        producer.poll(0)
        time.sleep(0.001)
    producer.flush(30)


class TimedSink(Sink):
    """The real sink, noting when each batch's transaction has committed (in the writer thread)."""

    def __init__(self, database_url: str) -> None:
        super().__init__(database_url)
        self.committed_ms: dict[int, float] = {}

    def write(
        self,
        rows: RowsByTable,
        dead_letters: Sequence[DeadLetterRow] = (),
        find_conflicts: ConflictFinder | None = None,
    ) -> Written:
        written = super().write(rows, dead_letters, find_conflicts)
        self.committed_ms[id(rows)] = time.time() * 1000
        return written


class MeasuredConsumer(RawConsumer):
    """The real consumer, counting what it commits; with `latency`, also a stopwatch on each
    message: when its row was committed to PostgreSQL (what the latency aim is about) and when its
    offset was committed to Kafka. (Without it the throughput runs carry no measuring cost.)"""

    def __init__(self, *args: object, expected: int, latency: bool = False, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.expected = expected
        self.latency = latency
        self.processed = 0
        self.first_batch_at: float | None = None
        self.last_commit_at = 0.0
        self.row_latencies_ms: list[float] = []
        self.offset_latencies_ms: list[float] = []
        self.batch_sizes: list[int] = []
        self._read: dict[int, int] = {}
        self._appended_ms: dict[int, list[float]] = {}

    def _parse(self, messages: list[Message]) -> Batch:
        if self.first_batch_at is None:
            self.first_batch_at = time.perf_counter()
        batch = super()._parse(messages)
        self._read[id(batch.rows)] = len(messages)
        if self.latency:
            # When each message entered Kafka (its broker timestamp), kept until its batch is committed.
            self._appended_ms[id(batch.rows)] = [float(m.timestamp()[1]) for m in messages]
        return batch

    def _on_committed(self, batch: Batch, writer: int) -> None:
        offsets_ms = time.time() * 1000
        self.last_commit_at = time.perf_counter()
        sink = self.sinks[writer]
        assert isinstance(sink, TimedSink)
        rows_ms = sink.committed_ms.pop(id(batch.rows))
        if self.latency:
            appended = self._appended_ms.pop(id(batch.rows))
            self.row_latencies_ms.extend(rows_ms - at for at in appended)
            self.offset_latencies_ms.extend(offsets_ms - at for at in appended)
        read = self._read.pop(id(batch.rows))
        self.processed += read
        self.batch_sizes.append(read)
        if self.processed >= self.expected:
            self.stopping.set()


def run_consumer(settings: ConsumerSettings, expected: int, latency: bool = False) -> MeasuredConsumer:
    registry = SymbolRegistry(settings.database_url, lambda: {"symbols": [{"symbol": s} for s in SYMBOLS]})
    sinks = [TimedSink(settings.database_url) for _ in range(settings.writers)]
    consumer = MeasuredConsumer(settings, sinks, registry, expected=expected, latency=latency)
    consumer.run()
    return consumer


class SharedProgress:
    """What one consumer process reports to the parent, in shared memory."""

    def __init__(self, context: BaseContext) -> None:
        self.processed = context.Value("q", 0)
        self.first_batch_at = context.Value("d", 0.0)  # time.monotonic(): one clock for all processes
        self.last_commit_at = context.Value("d", 0.0)


def consumer_process(settings_json: str, progress: SharedProgress, stop: EventType) -> None:
    """One consumer process of a group, as `python -m consumer` runs it, until told to stop."""
    tune_garbage_collector()
    settings = ConsumerSettings.model_validate_json(settings_json)

    class Reporting(MeasuredConsumer):
        def _on_committed(self, batch: Batch, writer: int) -> None:
            super()._on_committed(batch, writer)
            if self.first_batch_at is not None and not progress.first_batch_at.value:
                progress.first_batch_at.value = time.monotonic() - (time.perf_counter() - self.first_batch_at)
            progress.processed.value = self.processed
            progress.last_commit_at.value = time.monotonic()

    registry = SymbolRegistry(settings.database_url, lambda: {"symbols": [{"symbol": s} for s in SYMBOLS]})
    sinks = [TimedSink(settings.database_url) for _ in range(settings.writers)]
    consumer = Reporting(settings, sinks, registry, expected=2**62)

    def stop_when_told() -> None:
        stop.wait()
        consumer.stopping.set()

    threading.Thread(target=stop_when_told, daemon=True).start()
    consumer.run()


def run_consumer_processes(settings: ConsumerSettings, expected: int, count: int) -> float:
    """`count` consumer processes in one group share the topic's partitions; returns the rows per
    second from the first batch any of them read to the commit that completed the last row."""
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    progress = [SharedProgress(context) for _ in range(count)]
    processes = [
        context.Process(target=consumer_process, args=(settings.model_dump_json(), shares, stop)) for shares in progress
    ]
    for process in processes:
        process.start()
    deadline = time.monotonic() + 1800
    while sum(p.processed.value for p in progress) < expected:
        if time.monotonic() > deadline or not all(process.is_alive() for process in processes):
            stop.set()
            raise RuntimeError("consumer processes stopped or took too long")
        time.sleep(0.05)
    stop.set()
    for process in processes:
        process.join(60)
    started = min(p.first_batch_at.value for p in progress if p.first_batch_at.value)
    finished = max(p.last_commit_at.value for p in progress)
    return float(expected / (finished - started))


def vacuum(url: str) -> None:
    connection = psycopg2.connect(libpq(url))
    connection.autocommit = True  # VACUUM can't run inside a transaction
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) trades, trade_candles_1s, trade_candles_1m")
    connection.close()


def truncate_trades(url: str) -> None:
    connection = psycopg2.connect(libpq(url))
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE trades, trade_candles_1s, trade_candles_1m")
    connection.commit()
    connection.close()


def copy_ceiling(url: str, count: int) -> float:
    """The same rows, parsed the same way, COPY'd straight into trades: no staging table, no
    conflict handling, no rollups, one transaction. The fastest a write of these rows can be."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    lines = []
    for trade_id in range(1, count + 1):
        row = parse_message(frame(SYMBOLS[trade_id % len(SYMBOLS)], trade_id), {})
        assert isinstance(row, TradeRow) and row.event_time_us is not None
        # Times as timestamptz text (exact to the microsecond), made before the clock starts.
        trade_time = (epoch + timedelta(microseconds=row.trade_time_us)).isoformat()
        event_time = (epoch + timedelta(microseconds=row.event_time_us)).isoformat()
        maker = "t" if row.buyer_is_maker else "f"
        lines.append(
            f"{row.symbol}\t{row.trade_id}\t{row.price}\t{row.quantity}\t{trade_time}\t{maker}\t{event_time}\n"
        )
    text = "".join(lines)
    connection = psycopg2.connect(libpq(url))
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE trades, trade_candles_1s, trade_candles_1m")
    connection.commit()
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.copy_expert(
            "COPY trades (symbol, trade_id, price, quantity, trade_time, buyer_is_maker, event_time) FROM STDIN",
            io.StringIO(text),
        )
    connection.commit()
    elapsed = time.perf_counter() - started
    connection.close()
    return count / elapsed


def row_by_row(url: str, count: int) -> float:
    """The reference tracker's way: one INSERT and one commit per trade."""
    connection = psycopg2.connect(libpq(url))
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE trades")
    connection.commit()
    started = time.perf_counter()
    for trade_id in range(1, count + 1):
        payload = json.loads(frame(SYMBOLS[trade_id % len(SYMBOLS)], trade_id))["data"]
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO trades (symbol, trade_id, price, quantity, trade_time, buyer_is_maker, event_time)"
                " VALUES (%s, %s, %s, %s, to_timestamp(%s / 1000.0), %s, to_timestamp(%s / 1000.0))",
                (payload["s"], payload["t"], payload["p"], payload["q"], payload["T"], payload["m"], payload["E"]),
            )
        connection.commit()
    elapsed = time.perf_counter() - started
    connection.close()
    return count / elapsed


def create_topic(bootstrap: str, partitions: int = PARTITIONS, config: dict[str, str] | None = None) -> str:
    topic = f"bench.raw.{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1, config=config or {})])[topic].result()
    return topic


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trades", type=int, default=2_000_000)
    parser.add_argument("--row-by-row-sample", type=int, default=5_000)
    parser.add_argument(
        "--processes", type=int, default=2, help="also run this many consumer processes in one group (0: skip)"
    )
    parser.add_argument("--latency-rate", type=int, default=5_000)
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument(
        "--stack-env", type=Path, default=Path(os.environ.get("STACK_ENV_FILE", REPO / ".local/stack/stack.env"))
    )
    args = parser.parse_args()
    tune_garbage_collector()  # as consumer/__main__.py does

    stack = compose_local.read_env_file(args.stack_env)
    bootstrap, admin_url = stack["KAFKA_BOOTSTRAP_SERVERS"], stack["DATABASE_URL"]
    database_url = create_database(admin_url)
    try:
        topic = create_topic(bootstrap)
        produce_rate = produce_all(bootstrap, topic, args.trades)
        print(f"loaded {args.trades:,} trades into Kafka at {produce_rate:,.0f}/s", flush=True)

        # The ceiling is measured before and after the consumer runs and the better one kept: each
        # bulk phase leaves work behind (dirty buffers, autovacuum) that slows whatever follows.
        ceiling_before = copy_ceiling(database_url, args.trades)
        print(f"raw COPY ceiling, before the consumer runs: {ceiling_before:,.0f} rows/s", flush=True)
        truncate_trades(database_url)

        settings = ConsumerSettings(
            kafka_bootstrap_servers=bootstrap,
            raw_topic=topic,
            dlq_topic=f"{topic}.dlq",
            group_id=f"bench-{uuid.uuid4().hex[:6]}",
            database_url=database_url,
        )
        consumer = run_consumer(settings, args.trades)
        assert consumer.first_batch_at is not None
        sustained = consumer.processed / (consumer.last_commit_at - consumer.first_batch_at)
        connection = psycopg2.connect(libpq(database_url))
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM trades")
            stored = cursor.fetchone()[0]
            cursor.execute("SELECT sum(trade_count) FROM trade_candles_1s")
            rolled_up = cursor.fetchone()[0]
        connection.close()
        assert stored == args.trades == rolled_up, (stored, rolled_up)
        print(
            f"consumer: {consumer.processed:,} trades committed at {sustained:,.0f}/s sustained "
            f"(median batch {statistics.median(consumer.batch_sizes):,.0f}); rows {stored:,}, rollups agree",
            flush=True,
        )

        together = 0.0
        if args.processes:
            truncate_trades(database_url)
            group = settings.model_copy(update={"group_id": f"bench-{uuid.uuid4().hex[:6]}"})
            together = run_consumer_processes(group, args.trades, args.processes)
            print(
                f"{args.processes} consumer processes in one group: {args.trades:,} trades committed at "
                f"{together:,.0f}/s sustained",
                flush=True,
            )

        ceiling_after = copy_ceiling(database_url, args.trades)
        ceiling = max(ceiling_before, ceiling_after)
        print(
            f"raw COPY ceiling, after: {ceiling_after:,.0f} rows/s; the better, {ceiling:,.0f} rows/s, is the ceiling"
            f" -> one consumer process at {sustained / ceiling:.0%} of it"
            + (f", {args.processes} processes at {together / ceiling:.0%}" if args.processes else ""),
            flush=True,
        )

        slow = row_by_row(database_url, args.row_by_row_sample)
        print(
            f"row-by-row INSERT + commit per row ({args.row_by_row_sample:,} sample): {slow:,.0f} rows/s "
            f"-> consumer is {sustained / slow:,.0f}x faster",
            flush=True,
        )

        # The bulk phases leave millions of new rows for autovacuum, which would otherwise run
        # through the latency phase: do that maintenance first, as a steady-state system has.
        vacuum(database_url)
        # LogAppendTime: each message's timestamp is when the broker appended it, i.e. when it
        # entered Kafka (a producer's CreateTime would also count its own start-up queueing).
        latency_topic = create_topic(bootstrap, config={"message.timestamp.type": "LogAppendTime"})
        expected = int(args.latency_rate * args.latency_seconds)
        paced = multiprocessing.get_context("spawn").Process(
            target=produce_paced,
            args=(bootstrap, latency_topic, args.latency_rate, args.latency_seconds, 10**9),
        )
        settings = settings.model_copy(update={"raw_topic": latency_topic, "group_id": f"bench-{uuid.uuid4().hex[:6]}"})
        result: dict[str, MeasuredConsumer] = {}
        runner = threading.Thread(target=lambda: result.setdefault("c", run_consumer(settings, expected, latency=True)))
        runner.start()
        time.sleep(3)  # let the consumer join the group before the clock starts
        paced.start()
        paced.join()
        runner.join(timeout=60)
        measured = result["c"]
        for what, latencies in (
            ("row committed in PostgreSQL", measured.row_latencies_ms),
            ("offset committed in Kafka", measured.offset_latencies_ms),
        ):
            print(
                f"latency at {args.latency_rate:,} msg/s, broker append -> {what}, over {len(latencies):,} "
                f"messages: p50 {percentile(latencies, 0.50):.1f} ms, p99 {percentile(latencies, 0.99):.1f} ms, "
                f"max {max(latencies):.1f} ms",
                flush=True,
            )
    finally:
        drop_database(admin_url, database_url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
