"""What the metrics cost on each service's hot path, in-process, no services needed.

    bash scripts/stack.sh up      # parts 2 and 3 use a real broker (and 3 a real database)
    .venv/bin/python bench/metrics_overhead.py [--rounds 20000] [--consumer-runs 10 --trades 300000]

1. consumer: `batch_committed` + `offsets_committed` per committed batch part of 5,000 trades
   (the consumer's batch size), and what that is per message;
2. producer: `Ingest.on_frame` per frame (gap check, produce() into librdkafka's queue, the counts
   by stream), with and without the receipt-delay histogram, the one metric computed per frame;
3. consumer end to end (bench/consumer_throughput.py's run, Kafka -> committed rows): with its
   metrics, and with every metrics call a no-op and no librdkafka statistics, interleaved in one
   process on one topic and database; throughput and the process's CPU time per message.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "bench"))

import compose_local  # noqa: E402
import consumer_throughput  # noqa: E402
from confluent_kafka.admin import AdminClient  # noqa: E402
from confluent_kafka.cimpl import NewTopic  # noqa: E402
from prometheus_client import CollectorRegistry  # noqa: E402

from consumer import trade_lines  # noqa: E402
from consumer.loop import Batch, tune_garbage_collector  # noqa: E402
from consumer.metrics import ConsumerMetrics  # noqa: E402
from consumer.parse import TradeRow  # noqa: E402
from consumer.settings import ConsumerSettings  # noqa: E402
from consumer.sink import RowsByTable, Written  # noqa: E402
from producer.app import Ingest  # noqa: E402
from producer.gaps import GapTracker  # noqa: E402
from producer.publisher import RawPublisher  # noqa: E402

BATCH = 5000


def consumer_per_batch_s(rounds: int) -> float:
    now_us = time.time_ns() // 1000
    lines = [
        trade_lines.from_row(TradeRow("BTCUSDT", i, "1.0", "2.0", now_us, True, now_us - 1000)) for i in range(BATCH)
    ]
    metrics = ConsumerMetrics(CollectorRegistry())
    batch = Batch(rows=RowsByTable(trades=lines))
    written = Written(trades=BATCH)
    started = time.perf_counter()
    for offset in range(rounds):
        metrics.batch_committed(batch, written)
        metrics.offsets_committed({("raw", 0): offset + BATCH, ("raw", 1): offset + BATCH}, {("raw", 0): offset})
    return (time.perf_counter() - started) / rounds


def producer_per_frame_s(bootstrap: str, topic: str, frames: int, histogram: bool) -> float:
    """Ingest.on_frame as the producer runs it (gap check, produce() to the broker, counts by
    stream, receipt delay), with or without the receipt-delay histogram."""
    publisher = RawPublisher(bootstrap, topic, frames + 10)
    ingest = Ingest(publisher, GapTracker(2.0), {"btcusdt@trade"})
    if not histogram:
        ingest.receipt_delay.observe = lambda frame, received_at_ns: None  # type: ignore[method-assign]
    frame_of = (
        b'{"stream":"btcusdt@trade","data":{"e":"trade","E":1763800000123,"s":"BTCUSDT","t":%d,'
        b'"p":"84509.99000000","q":"0.00120000","T":1763800000122,"m":true,"M":true}}'
    )
    payloads = [frame_of % (5409000000 + i) for i in range(frames)]
    received_at_ns = 1763800000130 * 1_000_000
    started = time.perf_counter()
    for payload in payloads:
        ingest.on_frame(payload, "btcusdt@trade", received_at_ns, b"bench")
    elapsed = time.perf_counter() - started
    assert publisher.flush(60) == 0, "the broker did not take every message"
    return elapsed / frames


_REAL = {name: getattr(ConsumerMetrics, name) for name in ("batch_committed", "offsets_committed", "kafka_config")}


def consumer_metrics(on: bool) -> None:
    """Switches every call the loop makes into the metrics on, or to no-ops (what it did before)."""
    ConsumerMetrics.batch_committed = _REAL["batch_committed"] if on else (lambda self, *args: None)  # type: ignore[method-assign]
    ConsumerMetrics.offsets_committed = _REAL["offsets_committed"] if on else (lambda self, *args: None)  # type: ignore[method-assign]
    ConsumerMetrics.kafka_config = _REAL["kafka_config"] if on else (lambda self, settings: {})  # type: ignore[method-assign]


def consumer_on_off(stack: dict[str, str], trades: int, runs: int) -> dict[bool, list[tuple[float, float]]]:
    """(messages/s, CPU µs per message) of each run, by metrics on/off."""
    bootstrap, admin_url = stack["KAFKA_BOOTSTRAP_SERVERS"], stack["DATABASE_URL"]
    database_url = consumer_throughput.create_database(admin_url)
    results: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    try:
        topic = consumer_throughput.create_topic(bootstrap)
        consumer_throughput.produce_all(bootstrap, topic, trades)
        for run in range(runs):
            for on in (False, True) if run % 2 == 0 else (True, False):
                consumer_throughput.truncate_trades(database_url)
                consumer_metrics(on)
                settings = ConsumerSettings(
                    kafka_bootstrap_servers=bootstrap,
                    raw_topic=topic,
                    dlq_topic=f"{topic}.dlq",
                    group_id=f"bench-{uuid.uuid4().hex[:6]}",
                    database_url=database_url,
                )
                before = resource.getrusage(resource.RUSAGE_SELF)
                measured = consumer_throughput.run_consumer(settings, trades)
                after = resource.getrusage(resource.RUSAGE_SELF)
                cpu_s = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
                assert measured.first_batch_at is not None
                rate = measured.processed / (measured.last_commit_at - measured.first_batch_at)
                results[on].append((rate, cpu_s / trades * 1e6))
                state = "on " if on else "off"
                print(f"  run {run} metrics {state}: {rate:,.0f}/s, {cpu_s / trades * 1e6:.2f} µs CPU/msg", flush=True)
    finally:
        consumer_metrics(True)
        consumer_throughput.drop_database(admin_url, database_url)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20_000)
    parser.add_argument("--consumer-runs", type=int, default=10, help="on/off pairs of part 3 (0: skip it)")
    parser.add_argument("--trades", type=int, default=300_000, help="trades per run of part 3")
    parser.add_argument(
        "--stack-env", type=Path, default=Path(os.environ.get("STACK_ENV_FILE", REPO / ".local/stack/stack.env"))
    )
    args = parser.parse_args()
    per_batch = consumer_per_batch_s(args.rounds)
    print(
        f"consumer: {per_batch * 1e6:.1f} us per committed batch part of {BATCH:,} trades "
        f"= {per_batch / BATCH * 1e9:.1f} ns per message"
    )
    stack = compose_local.read_env_file(args.stack_env)
    bootstrap = stack["KAFKA_BOOTSTRAP_SERVERS"]
    topic = f"bench.metrics.{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    frames = args.rounds * 5
    try:
        # Interleaved, best of each: the machine's other load hits both alike.
        runs = [(producer_per_frame_s(bootstrap, topic, frames, h), h) for _ in range(3) for h in (False, True)]
    finally:
        admin.delete_topics([topic])[topic].result(30)
    without = min(t for t, h in runs if not h)
    with_histogram = min(t for t, h in runs if h)
    print(
        f"producer: Ingest.on_frame {with_histogram * 1e9:,.0f} ns per frame, {without * 1e9:,.0f} ns without the "
        f"receipt-delay histogram ({with_histogram / without - 1:+.0%})"
    )
    if args.consumer_runs:
        tune_garbage_collector()  # as consumer/__main__.py does
        results = consumer_on_off(stack, args.trades, args.consumer_runs)
        paired = [on[0] / off[0] for off, on in zip(results[False], results[True], strict=True)]
        rate = {on: statistics.median(r for r, _ in runs) for on, runs in results.items()}
        cpu = {on: statistics.median(c for _, c in runs) for on, runs in results.items()}
        print(
            f"consumer end to end, median of {args.consumer_runs} runs each: {rate[True]:,.0f}/s with metrics, "
            f"{rate[False]:,.0f}/s without (ratio {rate[True] / rate[False]:.2f}, median of paired ratios "
            f"{statistics.median(paired):.2f}); CPU {cpu[True]:.2f} against {cpu[False]:.2f} µs per message "
            f"(ratio {cpu[True] / cpu[False]:.2f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
