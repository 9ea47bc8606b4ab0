"""Full-market soak: the fake exchange in whole-market mode (every TRADING symbol of the recorded
exchangeInfo, Zipf-law trade rates, bursts) -> producer (PRODUCER_SYMBOLS=ALL, trade, aggTrade,
kline_1m, bookTicker) -> Kafka -> consumer -> PostgreSQL, each the compose service run as a local
process (scripts/compose_local.py) against a running local stack's Kafka and PostgreSQL.

    bash scripts/stack.sh up                      # or any stack; its env file is --stack-env
    .venv/bin/python bench/full_market_soak.py    # 30 minutes at full rates, bursts every 10 min

It measures, from the services' own /metrics and /proc and from PostgreSQL:
- messages per second received by the producer and rows stored by the consumer, by kind, in and
  outside bursts;
- the consumer's lag (consumer_lag_seconds: now minus the event time of the newest committed
  message) p50/p99/max, and how long after each burst it takes to fall under 1 s again;
- end-to-end latency of trades, event time to the stored row (the writing transaction's time, in
  a column `stored_at` the soak adds to its own database's trades for this: the schema keeps no
  per-row ingestion time since migration 0007, and the disk figures include its 8 bytes a trade),
  p50/p99 in and outside bursts;
- each process's CPU share and resident memory at the start (after warm-up) and at the end, the
  fake exchange, Kafka and PostgreSQL included;
- disk use of every table (partitions, indexes and TOAST included) at the start and the end, per
  hour, projected per day and per 90 days.

Figures go to artifacts/soak/full_market.json and, as markdown, to stdout (docs/benchmarks.md).
The run is bounded: --minutes, and every wait has a deadline. The database and topics are its own
and are dropped at the end unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

import compose_local  # noqa: E402

from tests.conftest import ARTIFACTS, Services, create_database, drop_database, free_port, libpq_dsn  # noqa: E402

STREAM_TYPES = "trade,aggTrade,kline_1m,bookTicker"
GAP_COUNTERS = ("websocket_connections_dropped", "ids_missed", "backfilled_records", "ids_given_up")
TABLES = ("trades", "agg_trades", "klines", "book_tickers", "trade_candles_1s", "trade_candles_1m", "dead_letters")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


# --- /proc ------------------------------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def tree_usage(pid: int, children: dict[int, list[int]]) -> tuple[float, int]:
    """(CPU seconds, resident KiB) of a process and its descendants (PostgreSQL's backends)."""
    cpu_s, rss_kb, pending = 0.0, 0, [pid]
    while pending:
        current = pending.pop()
        pending.extend(children.get(current, []))
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        cpu_s += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        rss_kb += int(fields[21]) * PAGE_KB
    return cpu_s, rss_kb


def stack_pids(stack_dir: str, pg_port: str) -> dict[str, int]:
    """The stack's Kafka broker (its command line names the stack directory) and PostgreSQL
    postmaster (scripts/stack.sh names its cluster stack<PG_PORT>): this stack's, not another's."""
    found: dict[str, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        line = b" ".join(argv).decode(errors="replace")
        if stack_dir in line and "kafka" in line and argv[0].endswith(b"java"):
            found.setdefault("kafka", int(entry))
        elif argv[0].endswith(b"/postgres") and f"/stack{pg_port} " in line:
            # The postmaster: its backends rename themselves ("postgres: 15/stack…: …").
            found.setdefault("postgres", int(entry))
    return found


# --- metrics ----------------------------------------------------------------------------------


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def by_label(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, label: str) -> dict[str, float]:
    totals: dict[str, float] = {}
    for (sample_name, labels), value in samples.items():
        if sample_name == name:
            key = dict(labels).get(label, "")
            totals[key] = totals.get(key, 0.0) + value
    return totals


def single(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str) -> float | None:
    return samples.get((name, ()))


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# --- the run ----------------------------------------------------------------------------------


@dataclass
class Sample:
    at: float
    received: dict[str, float]
    stored: dict[str, float]
    lag_s: float | None
    lag_messages: float | None
    usage: dict[str, tuple[float, int]]
    # Summed over the producer processes: connections that ended unasked, ids found missing, records
    # fetched over REST, ids given up.
    gaps: dict[str, float] = field(default_factory=dict)
    load_average: float = 0.0


@dataclass
class Soak:
    args: argparse.Namespace
    stack_env: dict[str, str]
    services: Services
    database: dict[str, str] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)
    producer_metrics: list[str] = field(default_factory=list)
    consumer_metrics: str = ""
    fake_urls: list[str] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    opened_at: float = 0.0

    def start(self) -> None:
        args = self.args
        suffix = uuid.uuid4().hex[:8]
        raw_topic, dlq_topic = f"soak.raw.{suffix}", f"soak.raw.dlq.{suffix}"
        consumer_port, *ports = self.ports(1 + args.producers + 2 * args.fakes)
        producer_ports, fake_ports = ports[: args.producers], ports[args.producers :]
        ws_ports, rest_ports = fake_ports[0::2], fake_ports[1::2]
        ws_port, rest_port = ws_ports[0], rest_ports[0]
        self.fake_urls = [f"http://127.0.0.1:{port}" for port in rest_ports]
        self.producer_metrics = [f"http://127.0.0.1:{port}/metrics" for port in producer_ports]
        self.consumer_metrics = f"http://127.0.0.1:{consumer_port}/metrics"
        self.services.extra_addresses = {
            "fake-binance:9443": f"127.0.0.1:{ws_port}",
            "fake-binance:8090": f"127.0.0.1:{rest_port}",
        }
        self.services.variables = {
            "BINANCE_WS_BASE_URL": "ws://fake-binance:9443",
            "BINANCE_REST_BASE_URL": "http://fake-binance:8090",
            "SYMBOLS": "ALL",
            "STREAM_TYPES": args.stream_types,
        }
        self.database = create_database(self.stack_env)
        self.services.run_once(
            "init",
            {
                "BOOTSTRAP_DATABASE_URL": self.database["owner"],
                "BOOTSTRAP_RAW_TOPIC": raw_topic,
                "BOOTSTRAP_DLQ_TOPIC": dlq_topic,
            },
        )
        with psycopg2.connect(libpq_dsn(self.database["owner"])) as connection, connection.cursor() as cursor:
            cursor.execute("ALTER TABLE trades ADD COLUMN stored_at timestamptz NOT NULL DEFAULT now()")
        connection.close()
        # FAKE_BINANCE_MARKET_SHARD=i/n: fake i makes the symbols producer i streams.
        for index, (fake_ws, fake_rest) in enumerate(zip(ws_ports, rest_ports, strict=True)):
            self._start_fake(index, fake_ws, fake_rest)
        self.pids["consumer"] = self.services.start(
            "consumer",
            {
                "CONSUMER_DATABASE_URL": self.database["owner"],
                "CONSUMER_RAW_TOPIC": raw_topic,
                "CONSUMER_DLQ_TOPIC": dlq_topic,
                "CONSUMER_GROUP_ID": f"soak-{suffix}",
                "CONSUMER_METRICS_PORT": str(consumer_port),
            },
        ).pid
        for url in self.fake_urls:
            self._wait(lambda url=url: urllib.request.urlopen(url + "/api/v3/ping", timeout=1), 60, "the fake exchange")
        # PRODUCER_SHARD=i/n: each process streams the symbols whose name hashes to it.
        for index, port in enumerate(producer_ports):
            label = "producer" if args.producers == 1 else f"producer-{index}"
            own_fake = (
                {
                    "PRODUCER_WS_BASE_URL": f"ws://127.0.0.1:{ws_ports[index]}",
                    "PRODUCER_REST_BASE_URL": f"http://127.0.0.1:{rest_ports[index]}",
                }
                if args.fakes > 1
                else {}
            )
            self.pids[label] = self.services.start(
                "producer",
                {
                    "PRODUCER_RAW_TOPIC": raw_topic,
                    "PRODUCER_METRICS_PORT": str(port),
                    "PRODUCER_SHARD": f"{index}/{args.producers}",
                    **own_fake,
                },
                label=label,
            ).pid
        self.pids.update(stack_pids(self.stack_env["STACK_DIR"], self.stack_env["PG_PORT"]))
        for url in self.fake_urls:
            self._wait(lambda url=url: self.fake_state(url)["market_opened_at"], 60, "the market to open")
        # The fakes open at their first subscription, seconds apart: bursts are timed from the first.
        self.opened_at = min(float(self.fake_state(url)["market_opened_at"]) for url in self.fake_urls)

    def _start_fake(self, index: int, ws_port: int, rest_port: int) -> None:
        args = self.args
        label = "fake-binance" if args.fakes == 1 else f"fake-binance-{index}"
        self.pids[label] = self.services.start(
            "fake-binance",
            {
                "FAKE_BINANCE_WS_PORT": str(ws_port),
                "FAKE_BINANCE_REST_PORT": str(rest_port),
                "FAKE_BINANCE_MARKET_SHARD": f"{index}/{args.fakes}",
                "FAKE_BINANCE_MARKET": "all",
                "FAKE_BINANCE_MARKET_TRADES_PER_SECOND": str(args.trade_rate),
                "FAKE_BINANCE_MARKET_TOP_TRADES_PER_SECOND": str(args.top_rate),
                "FAKE_BINANCE_MARKET_BOOK_TICKERS_PER_SECOND": str(args.book_rate),
                "FAKE_BINANCE_MARKET_BURST_FACTOR": str(args.burst_factor),
                "FAKE_BINANCE_MARKET_BURST_S": str(args.burst_s),
                "FAKE_BINANCE_MARKET_BURST_EVERY_S": str(args.burst_every_s),
                "FAKE_BINANCE_MARKET_FIRST_BURST_S": str(args.first_burst_s),
                "FAKE_BINANCE_SEED": str(args.seed),
                **({"FAKE_BINANCE_HISTORY_KEEP_S": str(args.history_keep_s)} if args.history_keep_s else {}),
            },
            label=label,
        ).pid

    def ports(self, count: int) -> list[int]:
        """`count` ports: from --port-base on when given (a shared box hands out port ranges), else any free ones."""
        if self.args.port_base is None:
            return [free_port() for _ in range(count)]
        return [self.args.port_base + offset for offset in range(count)]

    def fake_state(self, url: str) -> dict[str, Any]:
        with urllib.request.urlopen(url + "/fake/state", timeout=30) as response:
            state: dict[str, Any] = json.loads(response.read())
        return state

    @staticmethod
    def _wait(condition: Any, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if condition():
                    return
            except Exception:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"timed out waiting for {what}")

    def sample(self) -> Sample:
        children = _children()
        usage = {name: tree_usage(pid, children) for name, pid in self.pids.items()}
        producers = [scrape(url) for url in self.producer_metrics]
        consumer = scrape(self.consumer_metrics)
        received: dict[str, float] = {}
        gaps: dict[str, float] = {}
        for producer in producers:
            for kind, count in by_label(producer, "producer_frames_received_total", "stream_type").items():
                received[kind] = received.get(kind, 0.0) + count
            for name in GAP_COUNTERS:
                gaps[name] = gaps.get(name, 0.0) + sum(by_label(producer, f"producer_{name}_total", "cause").values())
            for cause, count in by_label(producer, "producer_websocket_connections_dropped_total", "cause").items():
                gaps[f"dropped_{cause}"] = gaps.get(f"dropped_{cause}", 0.0) + count
        return Sample(
            at=time.time(),
            received=received,
            gaps=gaps,
            load_average=float(Path("/proc/loadavg").read_text().split()[0]),
            stored=by_label(consumer, "consumer_rows_written_total", "table"),
            lag_s=single(consumer, "consumer_lag_seconds"),
            lag_messages=sum(by_label(consumer, "consumer_lag_messages", "partition").values()) or None,
            usage=usage,
        )

    def run(self) -> None:
        deadline = time.time() + self.args.minutes * 60
        while time.time() < deadline:
            self.services.assert_running()
            try:
                self.samples.append(self.sample())
            except OSError as error:
                print(f"sample failed: {error!r}", file=sys.stderr)
            time.sleep(self.args.sample_s)

    # --- figures ----------------------------------------------------------------------------------

    def bursts(self) -> list[tuple[float, float]]:
        args, end = self.args, self.samples[-1].at if self.samples else time.time()
        windows, start = [], self.opened_at + args.first_burst_s
        while args.burst_s > 0 and start < end:
            windows.append((start, start + args.burst_s))
            start += args.burst_every_s
        return windows

    def in_burst(self, at: float) -> bool:
        return any(start <= at < stop for start, stop in self.bursts())

    def rates(self) -> dict[str, Any]:
        """Messages per second by kind, received and stored, outside and inside bursts."""
        phases: dict[str, dict[str, dict[str, float]]] = {"outside": {}, "inside": {}}
        seconds = {"outside": 0.0, "inside": 0.0}
        for before, after in zip(self.samples, self.samples[1:], strict=False):
            phase = "inside" if self.in_burst((before.at + after.at) / 2) else "outside"
            seconds[phase] += after.at - before.at
            for what, counts_before, counts_after in (
                ("received", before.received, after.received),
                ("stored", before.stored, after.stored),
            ):
                totals = phases[phase].setdefault(what, {})
                for kind, count in counts_after.items():
                    totals[kind] = totals.get(kind, 0.0) + count - counts_before.get(kind, 0.0)
        return {
            phase: {
                what: {kind: round(count / seconds[phase], 1) for kind, count in sorted(totals.items())}
                for what, totals in kinds.items()
            }
            | {"seconds": round(seconds[phase])}
            for phase, kinds in phases.items()
            if seconds[phase] > 0
        }

    def lag(self) -> dict[str, Any]:
        lags = [s.lag_s for s in self.samples if s.lag_s is not None]
        recoveries = []
        for start, stop in self.bursts():
            after = [s for s in self.samples if s.at >= stop]
            back = next((s.at - stop for s in after if s.lag_s is not None and s.lag_s < 1.0), None)
            peak = max((s.lag_s for s in self.samples if start <= s.at and s.lag_s is not None), default=None)
            # From the burst's start to the next one's (or the run's end): what it cost the producers.
            window = [s for s in self.samples if start <= s.at < start + self.args.burst_every_s]
            cost = (
                {name: window[-1].gaps.get(name, 0.0) - window[0].gaps.get(name, 0.0) for name in window[-1].gaps}
                if len(window) > 1
                else {}
            )
            recoveries.append(
                {
                    "until_next_burst": cost,
                    "burst_start_s": round(start - self.opened_at),
                    "peak_lag_s": None if peak is None else round(peak, 1),
                    "under_1s_after_burst_end_s": None if back is None else round(back, 1),
                }
            )
        return {
            "p50_s": _round(percentile(lags, 0.5)),
            "p99_s": _round(percentile(lags, 0.99)),
            "max_s": _round(max(lags, default=None)),
            "max_messages": max((s.lag_messages or 0 for s in self.samples), default=0),
            "bursts": recoveries,
        }

    def latency(self) -> dict[str, Any]:
        """Event time to stored row of every live trade, in and outside bursts (bursts by event time)."""
        windows = self.bursts()
        # Built from our own numbers (the burst windows), not from input.
        case = " OR ".join(
            f"(event_time >= to_timestamp({start}) AND event_time < to_timestamp({stop}))" for start, stop in windows
        )
        in_burst = f"({case})" if case else "false"
        sql = f"""
            SELECT {in_burst} AS in_burst, count(*), percentile_cont(ARRAY[0.5, 0.99])
                   WITHIN GROUP (ORDER BY extract(epoch FROM stored_at - event_time))
            FROM trades WHERE event_time IS NOT NULL GROUP BY 1
        """
        with psycopg2.connect(libpq_dsn(self.database["owner"])) as connection, connection.cursor() as cursor:
            cursor.execute(sql)
            rows = cursor.fetchall()
        return {
            ("inside" if burst else "outside"): {
                "trades": count,
                "p50_ms": round(quantiles[0] * 1000, 1),
                "p99_ms": round(quantiles[1] * 1000, 1),
            }
            for burst, count, quantiles in rows
        }

    def ids_missing(self) -> dict[str, int]:
        """Ids missing from the store between each symbol's first and last stored trade (aggTrade):
        live ids are consecutive, so these are the gaps neither the stream nor REST filled."""
        missing = {}
        with psycopg2.connect(libpq_dsn(self.database["owner"])) as connection, connection.cursor() as cursor:
            for table, column in (("trades", "trade_id"), ("agg_trades", "agg_trade_id")):
                cursor.execute(
                    f"SELECT coalesce(sum(high - low + 1 - n), 0) FROM"
                    f" (SELECT max({column}) AS high, min({column}) AS low, count(DISTINCT {column}) AS n"
                    f" FROM {table} GROUP BY symbol) AS per_symbol"
                )
                missing[table] = int(cursor.fetchone()[0])
        return missing

    def gap_figures(self) -> dict[str, Any]:
        first, last = self.samples[0], self.samples[-1]
        loads = [s.load_average for s in self.samples]
        return {
            "during_run": {name: last.gaps.get(name, 0.0) - first.gaps.get(name, 0.0) for name in GAP_COUNTERS},
            "load_average_1m": {
                "min": min(loads),
                "p50": percentile(loads, 0.5),
                "max": max(loads),
            },
        }

    def table_bytes(self) -> dict[str, int]:
        sizes = {}
        with psycopg2.connect(libpq_dsn(self.database["owner"])) as connection, connection.cursor() as cursor:
            for table in TABLES:
                cursor.execute("SELECT to_regclass(%s)", (table,))
                if cursor.fetchone()[0] is None:
                    continue
                # Partitions, indexes and TOAST included, whether the table is partitioned or not.
                # pg_partition_tree lists nothing for a plain table: then the table's own size.
                cursor.execute(
                    "SELECT coalesce((SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree(%s)),"
                    " pg_total_relation_size(%s))",
                    (table, table),
                )
                sizes[table] = int(cursor.fetchone()[0])
        return sizes

    def usage(self) -> dict[str, Any]:
        first, last = self.samples[0], self.samples[-1]
        elapsed = last.at - first.at
        figures = {}
        for name in last.usage:
            cpu_start, rss_start = first.usage.get(name, (0.0, 0))
            cpu_end, rss_end = last.usage[name]
            figures[name] = {
                "cpu_share_of_one_core": round((cpu_end - cpu_start) / elapsed, 3) if elapsed else None,
                "rss_mb_start": round(rss_start / 1024),
                "rss_mb_end": round(rss_end / 1024),
                "rss_growth_pct": round(100 * (rss_end - rss_start) / rss_start, 1) if rss_start else None,
            }
        return figures


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def disk_figures(start: dict[str, int], end: dict[str, int], hours: float) -> dict[str, Any]:
    figures = {}
    for table, size in end.items():
        per_hour = (size - start.get(table, 0)) / hours if hours else 0
        figures[table] = {
            "mb_end": round(size / 2**20, 1),
            "mb_per_hour": round(per_hour / 2**20, 1),
            "gb_per_day": round(per_hour * 24 / 2**30, 2),
            "gb_per_90_days": round(per_hour * 24 * 90 / 2**30, 1),
        }
    return figures


def markdown(figures: dict[str, Any]) -> str:
    lines = [f"Run: {figures['minutes']} min, settings {json.dumps(figures['settings'])}", ""]
    lines += ["| phase | kind | received/s | stored/s |", "|---|---|---:|---:|"]
    for phase, kinds in figures["rates"].items():
        received, stored = kinds.get("received", {}), kinds.get("stored", {})
        for kind in sorted(received):
            lines.append(f"| {phase} ({kinds['seconds']} s) | {kind} | {received[kind]} | |")
        for table in sorted(stored):
            lines.append(f"| {phase} | {table} | | {stored[table]} |")
    lag = figures["lag"]
    lines += ["", f"Consumer lag: p50 {lag['p50_s']} s, p99 {lag['p99_s']} s, max {lag['max_s']} s", ""]
    for burst in lag["bursts"]:
        lines.append(
            f"- burst at +{burst['burst_start_s']} s: peak lag {burst['peak_lag_s']} s, under 1 s again"
            f" {burst['under_1s_after_burst_end_s']} s after its end;"
            f" until the next: {json.dumps(burst['until_next_burst'])}"
        )
    gaps = figures["gaps"]
    lines += [
        "",
        f"During the run: {json.dumps(gaps['during_run'])}; after {gaps['drain_s']} s more:"
        f" {json.dumps(gaps['after_drain'])}; ids missing in the store: {json.dumps(gaps['ids_missing_in_store'])};"
        f" load average (1 min) {json.dumps(gaps['load_average_1m'])};"
        f" the fake skipped {figures['fake'].get('market_seconds_skipped')} s of market time",
    ]
    lines += ["", "| trades | count | p50 ms | p99 ms |", "|---|---:|---:|---:|"]
    for phase, values in figures["latency"].items():
        lines.append(f"| {phase} bursts | {values['trades']} | {values['p50_ms']} | {values['p99_ms']} |")
    lines += [
        "",
        "| process | CPU (share of one core) | RSS start MB | RSS end MB | growth |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, values in figures["usage"].items():
        lines.append(
            f"| {name} | {values['cpu_share_of_one_core']} | {values['rss_mb_start']} | {values['rss_mb_end']}"
            f" | {values['rss_growth_pct']} % |"
        )
    lines += ["", "| table | MB at end | MB/hour | GB/day | GB/90 days |", "|---|---:|---:|---:|---:|"]
    for table, values in figures["disk"].items():
        lines.append(
            f"| {table} | {values['mb_end']} | {values['mb_per_hour']} | {values['gb_per_day']}"
            f" | {values['gb_per_90_days']} |"
        )
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0, help="length of the measured run")
    parser.add_argument("--warmup-s", type=float, default=60.0, help="left out of the figures (connections, caches)")
    parser.add_argument("--trade-rate", type=float, default=1000.0, help="trades per second in all")
    parser.add_argument("--top-rate", type=float, default=50.0, help="trades per second of the busiest symbol")
    parser.add_argument("--book-rate", type=float, default=5000.0, help="bookTicker updates per second in all")
    parser.add_argument("--burst-factor", type=float, default=20.0)
    parser.add_argument("--burst-s", type=float, default=60.0)
    parser.add_argument("--burst-every-s", type=float, default=600.0)
    parser.add_argument("--first-burst-s", type=float, default=300.0, help="after the market opens")
    parser.add_argument("--stream-types", default=STREAM_TYPES)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sample-s", type=float, default=2.0)
    parser.add_argument("--stack-env", type=Path, default=REPO / ".local/test-stack/stack.env")
    parser.add_argument("--keep", action="store_true", help="keep the soak's database")
    parser.add_argument("--producers", type=int, default=1, help="producer processes (PRODUCER_SHARD=i/n)")
    parser.add_argument(
        "--fakes", type=int, default=1, help="fake exchanges (FAKE_BINANCE_MARKET_SHARD), 1 or as many as producers"
    )
    parser.add_argument("--history-keep-s", type=float, default=0.0, help="the fake's REST history (0: its default)")
    parser.add_argument("--drain-s", type=float, default=60.0, help="after the run, time left for REST backfills")
    parser.add_argument("--port-base", type=int, help="the servers' ports from here on (default: any free ports)")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if args.fakes not in (1, args.producers):
        raise SystemExit("--fakes must be 1 or equal to --producers (fake i makes what producer i streams)")
    stack_env = compose_local.read_env_file(args.stack_env)
    services = Services(stack_env, ARTIFACTS / "logs" / "full_market_soak")
    soak = Soak(args, stack_env, services)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        soak.start()
        time.sleep(args.warmup_s)
        disk_start = soak.table_bytes()
        soak.run()
        samples_out = ARTIFACTS / "soak" / "full_market_samples.json"
        samples_out.parent.mkdir(parents=True, exist_ok=True)
        samples_out.write_text(json.dumps([vars(sample) for sample in soak.samples]))
        disk_end = soak.table_bytes()
        hours = (soak.samples[-1].at - soak.samples[0].at) / 3600
        # The backfill's time to finish what the last burst left: the services run on, unmeasured.
        time.sleep(args.drain_s)
        drained = soak.sample()
        try:
            states = [soak.fake_state(url) for url in soak.fake_urls]
            fake = {
                key: sum(state[key] for state in states) if key != "market_opened_at" else states[0][key]
                for key, value in states[0].items()
                if isinstance(value, (int, float)) and not isinstance(value, bool)
            }
        except OSError as error:
            fake = {"error": repr(error)}
        # What needs only the database is computed with the services stopped: no load beside it.
        services.stop_all()
        figures = {
            "minutes": args.minutes,
            "settings": {k: v for k, v in vars(args).items() if k not in ("stack_env", "keep")},
            "rates": soak.rates(),
            "lag": soak.lag(),
            "usage": soak.usage(),
            "disk": disk_figures(disk_start, disk_end, hours),
            "fake": fake,
            "gaps": soak.gap_figures()
            | {
                "after_drain": {name: drained.gaps.get(name, 0.0) for name in GAP_COUNTERS},
                "drain_s": args.drain_s,
                "ids_missing_in_store": soak.ids_missing(),
            },
            "latency": soak.latency(),
        }
    finally:
        services.stop_all()
        if soak.database and not args.keep:
            drop_database(stack_env, soak.database)
    out = ARTIFACTS / "soak" / "full_market.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))
    print(markdown(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
