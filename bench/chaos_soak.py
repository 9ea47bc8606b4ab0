"""Chaos soak: a million trades or more of many symbols through the whole chain (fake exchange ->
producer -> Kafka -> consumer -> PostgreSQL -> api, each the compose service, on a Kafka broker
and a PostgreSQL of the soak's own) while a seeded random schedule injects every fault the fault
suite knows; then every trade, every rollup row, every dead letter and a sample of api answers
are checked against the ground truth (tests/faults/harness.py, truth.py).

    .venv/bin/python bench/chaos_soak.py --trades 1000000 --symbols 12 --rate 1200 --seed 14

Faults, each at least once, in a seeded order, one at a time, about `--fault-every` s apart:
kill -9 of the producer (restarted with a lookback backfill over the time it was away), of the
consumer and of the api (each restarted), the broker stopped and started, PostgreSQL stopped and
started, every WebSocket connection cut (or frozen), an id gap (REST backfill), REST 429s on the
next requests (with a gap, so that a backfill meets them), and the poison messages of
tests/faults/poison.py produced straight into binance.raw (with a few valid trades of a symbol
the market does not trade).

It ends by itself: the market is bounded (`--trades`), every wait has a deadline, and
`--max-minutes` stops the whole run. Figures go to artifacts/soak/figures.json (docs/reliability.md
quotes them); the services' logs to artifacts/logs/soak/.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import random
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg2
from confluent_kafka import Producer

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.conftest import ARTIFACTS, wait_until  # noqa: E402
from tests.faults import poison  # noqa: E402
from tests.faults.harness import (  # noqa: E402
    DLQ_TOPIC,
    FAST_PRODUCER,
    RAW_TOPIC,
    FaultPipeline,
    epoch_ms,
    process_tree_rss_kb,
    read_topic,
)
from tests.faults.truth import MINUTE_MS, SECOND_MS, Trade  # noqa: E402
from tests.support.raw_records import produce_raw  # noqa: E402

# Symbols with a reference price in the fake (fake_binance/market.py), in the order they are taken.
SOAK_SYMBOLS = (
    "BTCUSDT",
    "ETHUSDT",
    "BNBBTC",
    "ETHBTC",
    "LTCUSDT",
    "XRPUSDT",
    "ADAUSDT",
    "SOLUSDT",
    "DOTUSDT",
    "DOGEUSDT",
    "LINKUSDT",
    "TRXUSDT",
    "BCHUSDT",
    "ETCUSDT",
    "XLMUSDT",
    "ATOMUSDT",
)
HAND_MADE_SYMBOL = "BNBUSDT"  # listed, not traded by the soak's market: the poison rounds' valid trades
FAULT_KINDS = (
    "kill_producer",
    "kill_consumer",
    "kill_api",
    "kafka_outage",
    "postgres_outage",
    "websocket_cut",
    "id_gap",
    "rest_429",
    "poison",
)
SERVICES = ("producer", "consumer", "api")
FIGURES_PATH = ARTIFACTS / "soak" / "figures.json"


@dataclass
class Injected:
    kind: str
    at: float  # monotonic time of the injection
    recovered_at: float  # when the fault's own action was over (the restart, the server back)
    detail: dict[str, Any] = field(default_factory=dict)


class ProgressMonitor:
    """Samples how far ingestion has got (the sum over symbols of the largest stored trade id, off
    the primary key) a few times a second; a sample that fails (the database away) counts as no
    progress. The longest run of unchanged samples after a fault is its stall of ingestion."""

    def __init__(self, dsn: str, symbols: list[str], interval_s: float = 0.2) -> None:
        self.dsn, self.symbols, self.interval_s = dsn, symbols, interval_s
        self.samples: list[tuple[float, int | None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="progress", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        connection: Any = None
        while not self._stop.is_set():
            value: int | None = None
            try:
                if connection is None:
                    connection = psycopg2.connect(self.dsn, connect_timeout=2)
                    connection.autocommit = True
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT coalesce(sum(m), 0) FROM (SELECT (SELECT max(trade_id) FROM trades WHERE symbol = s) m"
                        " FROM unnest(%s::text[]) s) x",
                        (self.symbols,),
                    )
                    value = int(cursor.fetchone()[0])
            except psycopg2.Error:
                if connection is not None:
                    connection.close()
                connection = None
            self.samples.append((time.monotonic(), value))
            self._stop.wait(self.interval_s)
        if connection is not None:
            connection.close()

    def longest_stall(self, start: float, end: float) -> float:
        """The longest time in [start, end) during which the stored frontier did not move."""
        before = [value for at, value in self.samples if at < start and value is not None]
        last = before[-1] if before else None
        longest, since, seen = 0.0, start, start
        for at, value in self.samples:
            if not start <= at < end:
                continue
            seen = at
            if value is not None and value != last:
                longest = max(longest, at - since)
                since, last = at, value
        return round(max(longest, seen - since), 2)


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.symbols = list(SOAK_SYMBOLS[: args.symbols])
        self.work_dir = Path(tempfile.mkdtemp(prefix="chaos-soak-"))
        self.pipeline = FaultPipeline(
            {"KAFKA_LIBS": args.kafka_libs},
            self.work_dir,
            ARTIFACTS / "logs" / "soak",
            symbols=tuple(self.symbols),
            rules=poison.rules(),
            kafka_ports=(args.kafka_port, args.kafka_controller_port),
            pg_port=args.pg_port,
        )
        self.injected: list[Injected] = []
        self.fresh = poison.fresh_trades(HAND_MADE_SYMBOL, 1, int(time.time() * 1000) - 60_000)
        self.poison_sent: Counter[str] = Counter()
        self.poison_expected: dict[str, frozenset[str] | None] = {}
        self.poison_offsets: dict[tuple[int, int], str] = {}
        self.raw_cases: list[str] = []
        self.poison_stored_cases: set[str] = set()
        self.poison_undelivered: dict[str, str] = {}
        self.api_503s: list[str] = []
        self.api_label = "api"
        self.restarts = Counter[str]()
        self.rss_before_kill: list[tuple[str, int]] = []

    # --- the run -----------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        started = time.monotonic()
        pipeline = self.pipeline
        pipeline.start()
        per_symbol = math.ceil(self.args.trades / len(self.symbols))
        self.market = pipeline.start_market(
            "soak",
            fake={
                "FAKE_BINANCE_TRADES_PER_SECOND": f"{self.args.rate / len(self.symbols):.3f}",
                "FAKE_BINANCE_MAX_TRADES": str(per_symbol),
            },
            first_trade_id=1_000_000,
        )
        self.monitor = ProgressMonitor(pipeline.owner_dsn, self.symbols)
        self.monitor.start()
        wait_until(lambda: pipeline.stored_count() >= 1000, 60, "the first trades stored")
        rss_start = self.rss()
        market_seconds = per_symbol * len(self.symbols) / self.args.rate
        ingest_started = time.monotonic()
        for kind, pause_s in self.schedule(market_seconds):
            time.sleep(pause_s)
            if pipeline.fake_state()["market_done"]:
                break
            self.inject(kind)
            pipeline.services.assert_running()
        wait_until(lambda: pipeline.fake_state()["market_done"], market_seconds * 2 + 300, "the market's last trade")
        rss_end = self.rss()
        ingest_done = self.market_done_at = time.monotonic()
        fake_state = pipeline.finish_market(self.market, timeout_s=600)
        caught_up = time.monotonic()
        self.monitor.stop()
        verify_started = time.monotonic()
        checks = pipeline.verify("soak", self.sample_window())
        checks["api_sample_answers_checked"] = self.check_api_sample()
        letters = self.check_poison_letters()
        verified = time.monotonic()
        return self.figures(
            rss_start,
            rss_end,
            checks,
            letters,
            fake_state,
            {
                "setup_and_first_trades_s": round(ingest_started - started, 1),
                "market_s": round(ingest_done - ingest_started, 1),
                "catch_up_after_the_last_trade_s": round(caught_up - ingest_done, 1),
                "verification_s": round(verified - verify_started, 1),
                "total_s": round(verified - started, 1),
            },
        )

    def schedule(self, market_seconds: float) -> list[tuple[str, float]]:
        """Every kind once in a seeded order, then seeded random kinds; each after a seeded pause
        of about fault_every from the end of the one before (the loop stops with the market)."""
        kinds = list(FAULT_KINDS)
        self.rng.shuffle(kinds)
        slots = max(len(kinds), int(market_seconds // self.args.fault_every) + 1)
        kinds += [self.rng.choice(FAULT_KINDS) for _ in range(slots - len(kinds))]
        return [(kind, self.args.fault_every * self.rng.uniform(0.6, 1.4)) for kind in kinds]

    # --- faults ------------------------------------------------------------------------------

    def inject(self, kind: str) -> None:
        at = time.monotonic()
        detail: dict[str, Any] = getattr(self, f"_{kind}")()
        self.injected.append(Injected(kind, at, time.monotonic(), detail))
        print(f"soak: {time.strftime('%H:%M:%S')} {kind} {detail}", flush=True)

    def _kill(self, label: str) -> float:
        self.rss_before_kill.append((label, process_tree_rss_kb(self.pipeline.services.processes[label].pid) // 1024))
        process = self.pipeline.services.processes.pop(label)
        process.send_signal(signal.SIGKILL)
        assert process.wait(20) == -signal.SIGKILL, f"{label} did not die of SIGKILL"
        return time.monotonic()

    def _kill_producer(self) -> dict[str, Any]:
        killed_at = self._kill(self.market.producer_label)
        time.sleep(self.rng.uniform(0.5, 3.0))
        self.restarts["producer"] += 1
        label = f"producer-soak-{self.restarts['producer']}"
        # Trades sent while no producer read them are fetched over REST: a lookback over the time it
        # was away, with a margin for what librdkafka held unsent when it died.
        lookback_s = math.ceil(time.monotonic() - killed_at) + self.args.lookback_margin_s
        self.pipeline.services.start("producer", {**FAST_PRODUCER, "PRODUCER_BACKFILL": f"{lookback_s}s"}, label=label)
        self.market.producer_label = label
        wait_until(lambda: self.pipeline.fake_state()["connections_open"] >= 1, 60, "the restarted producer")
        return {"lookback_s": lookback_s, "down_s": round(time.monotonic() - killed_at, 1)}

    def _kill_consumer(self) -> dict[str, Any]:
        killed_at = self._kill(self.pipeline.consumer_label)
        self.restarts["consumer"] += 1
        self.pipeline.start_consumer(f"consumer-{self.restarts['consumer']}")
        return {"restarted_after_s": round(time.monotonic() - killed_at, 1)}

    def _kill_api(self) -> dict[str, Any]:
        killed_at = self._kill(self.api_label)
        self.restarts["api"] += 1
        self.api_label = f"api-{self.restarts['api']}"
        self.pipeline.services.start("api", {"API_PORT": str(self.pipeline.api_port)}, label=self.api_label)
        url = f"{self.pipeline.api_url}/ready"
        wait_until(lambda: httpx.get(url, timeout=2).status_code == 200, 120, "the restarted api")
        return {"api_unavailable_s": round(time.monotonic() - killed_at, 1)}

    def _kafka_outage(self) -> dict[str, Any]:
        seconds = self.rng.uniform(self.args.outage_s / 2, self.args.outage_s)
        self.pipeline.broker.stop()
        time.sleep(seconds)
        self.pipeline.broker.start()
        return {"down_s": round(seconds, 1)}

    def _postgres_outage(self) -> dict[str, Any]:
        seconds = self.rng.uniform(self.args.outage_s / 2, self.args.outage_s)
        self.pipeline.postgres.stop()
        time.sleep(seconds)
        self.pipeline.postgres.start()
        return {"down_s": round(seconds, 1)}

    def _websocket_cut(self) -> dict[str, Any]:
        if self.rng.random() < 0.3:
            # Silent, not closed: only the producer's keepalive can tell.
            self.pipeline.fake_control("freeze-connections")
            return {"how": "frozen"}
        mode = self.rng.choice(["abrupt", "close"])
        return {"how": mode, **self.pipeline.fake_control("drop-connections", mode=mode)}

    def _id_gap(self) -> dict[str, Any]:
        trades = self.rng.randint(1, 20)
        return {"trades_left_out": trades, **self.pipeline.fake_control("gap", trades=trades, agg_trades=trades)}

    def _rest_429(self) -> dict[str, Any]:
        count = self.rng.randint(1, 4)
        self.pipeline.fake_control("rate-limit", status=429, count=count, retry_after_s=1)
        self.pipeline.fake_control("gap", trades=3, agg_trades=3)  # a backfill to meet the 429s
        return {"rest_429s": count}

    def _poison(self) -> dict[str, Any]:
        template = self.stored_trade(self.rng.choice(self.symbols))
        messages = poison.poison_messages(template, self.fresh)
        producer = Producer(
            {"bootstrap.servers": self.pipeline.broker.bootstrap, "enable.idempotence": True, "linger.ms": 5}
        )
        round_number = sum(1 for i in self.injected if i.kind == "poison") + 1
        stored: list[Trade] = []
        for name, message in messages.items():
            case = f"{name}#{round_number}"
            self.poison_sent[name] += 1
            self.poison_expected[case] = message.reasons
            if message.stored is not None:
                stored.append(message.stored)
                self.poison_stored_cases.add(case)
            if message.raw:
                # Its offset is not reported: it is the raw topic's message whose headers are unreadable.
                produce_raw(
                    self.pipeline.broker.bootstrap, RAW_TOPIC, 0, message.value, None, message.raw_headers(case, 0)
                )
                self.raw_cases.append(case)
                continue
            # Where it landed, from the delivery report: the dead letter names that offset, whatever
            # became of the message's own headers (cut to fit).
            producer.produce(
                RAW_TOPIC,
                value=message.value,
                key=(message.stored or template).symbol.encode(),
                headers=message.headers(case, time.time_ns()),
                on_delivery=functools.partial(self._delivered, case),
            )
        valid = [next(self.fresh) for _ in range(20)]
        for trade in valid:
            value = poison.frame(f"{trade.symbol.lower()}@trade", poison.ws_payload(trade))
            stream = f"{trade.symbol.lower()}@trade"
            headers: dict[str, str | bytes | None] = {"stream": stream, "source": "ws"}
            headers["received_at_ns"] = str(time.time_ns())
            producer.produce(RAW_TOPIC, value=value, key=trade.symbol.encode(), headers=headers)
        assert producer.flush(30) == 0, "poison not delivered"
        # Into the truth at once: finish_market waits until PostgreSQL holds as many trades as it.
        self.pipeline.truth.add([*stored, *valid])
        return {"messages": len(messages), "valid_trades": len(valid), "template": template.key}

    def _delivered(self, case: str, error: object, delivered: Any) -> None:
        if error is not None:
            self.poison_undelivered[case] = str(error)
        else:
            self.poison_offsets[(delivered.partition(), delivered.offset())] = case

    def stored_trade(self, symbol: str) -> Trade:
        row = self.pipeline.query(
            "SELECT symbol, trade_id, price::text, quantity::text, (extract(epoch FROM trade_time) * 1000)::bigint,"
            " buyer_is_maker FROM trades WHERE symbol = %s ORDER BY trade_id DESC LIMIT 1",
            (symbol,),
        )[0]
        return Trade(*row)

    # --- checks --------------------------------------------------------------------------------

    def sample_window(self) -> tuple[int, int]:
        """A seeded two-minute window of the market, whose every minute and second the harness checks."""
        start, end = self.market.window_ms or (0, 0)
        first = start + self.rng.randrange(max(1, end - start - 2 * MINUTE_MS))
        return first, min(end, first + 2 * MINUTE_MS)

    def check_api_sample(self) -> int:
        """Seeded random seconds and minutes over the whole run, of every symbol: the price in effect
        and the minute's range, against the truth."""
        truth, checked = self.pipeline.truth, 0
        start, end = self.market.window_ms or (0, 0)
        minute_rollup = truth.rollup(MINUTE_MS)
        with httpx.Client(base_url=self.pipeline.api_url, timeout=30) as client:
            for _ in range(self.args.api_samples):
                symbol = self.rng.choice(self.symbols)
                second = (start + self.rng.randrange(end - start)) // SECOND_MS * SECOND_MS
                body = self.ask(client, "/v1/prices/at", {"symbol": symbol, "timestamp": second})
                expected = truth.price_at(symbol, second)
                assert expected is not None
                got = (body["price"], body["quantity"], body["trade_id"], epoch_ms(body["actual_timestamp"]))
                assert got == (expected.price, expected.quantity, expected.trade_id, expected.time_ms), (second, body)
                minute = second // MINUTE_MS * MINUTE_MS
                body = self.ask(client, "/v1/prices/minmax", {"symbol": symbol, "minute": minute})
                candle = minute_rollup.get((symbol, minute))
                if candle is None:
                    assert body["trade_count"] == 0, body
                else:
                    assert (body["high"], body["low"], body["open"], body["close"], body["trade_count"]) == (
                        candle.high,
                        candle.low,
                        candle.open,
                        candle.close,
                        candle.trade_count,
                    ), (symbol, minute, body)
                checked += 2
        return checked

    def ask(self, client: httpx.Client, path: str, params: dict[str, Any]) -> Any:
        """A 200's body. A 503 (the api found a pooled connection dead, e.g. after PostgreSQL was
        restarted) is counted and asked again after its Retry-After; anything else fails."""
        for _ in range(5):
            response = client.get(path, params=params)
            if response.status_code != 503:
                break
            self.api_503s.append(f"{path} {response.json().get('detail')}")
            time.sleep(float(response.headers.get("Retry-After", "1")))
        assert response.status_code == 200, (path, params, response.status_code, response.text)
        return response.json()

    def check_poison_letters(self) -> dict[str, Any]:
        """Each poison message dead-lettered once with an expected reason, or stored; expected and
        found dead letters by reason."""
        # The raw-produced ones, all to partition 0, are the messages with unreadable headers, in order.
        unreadable = self.pipeline.unreadable_raw_offsets
        assert len(unreadable) == len(self.raw_cases), (unreadable, self.raw_cases)
        self.poison_offsets.update(zip(unreadable, self.raw_cases, strict=True))
        found: dict[str, str] = {}
        for record in read_topic(self.pipeline.broker.bootstrap, DLQ_TOPIC, 1):
            source = (int(record.headers["dlq_source_partition"]), int(record.headers["dlq_source_offset"]))
            case = self.poison_offsets.get(source)
            if case is not None:
                assert case not in found, f"dead-lettered twice: {case}"
                found[case] = record.headers["dlq_reason"]
        assert not self.poison_undelivered, f"poison Kafka refused: {self.poison_undelivered}"
        unreported = set(self.poison_expected) - set(self.poison_offsets.values())
        assert not unreported, f"no delivery report for {sorted(unreported)}"
        expected_by_reason: Counter[str] = Counter()
        for case, reasons in self.poison_expected.items():
            if case in self.poison_stored_cases:
                assert case not in found, f"{case} must be stored, was dead-lettered as {found.get(case)}"
                continue
            assert case in found, f"{case} was not dead-lettered"
            assert reasons is None or found[case] in reasons, (case, found[case], reasons)
            expected_by_reason[found[case] if reasons is None else min(reasons)] += 1
        found_by_reason = Counter(found.values())
        assert found_by_reason == expected_by_reason, (found_by_reason, expected_by_reason)
        return {
            "poison_sent_by_class": dict(sorted(self.poison_sent.items())),
            "poison_dead_letters_expected_by_reason": dict(sorted(expected_by_reason.items())),
            "poison_dead_letters_found_by_reason": dict(sorted(found_by_reason.items())),
            "poison_stored": len(self.poison_stored_cases),
        }

    def rss(self) -> dict[str, int]:
        labels = {"producer": self.market.producer_label, "consumer": self.pipeline.consumer_label}
        labels["api"] = self.api_label
        return {
            service: process_tree_rss_kb(self.pipeline.services.processes[label].pid) // 1024
            for service, label in labels.items()
        }

    # --- figures -------------------------------------------------------------------------------

    def stalls(self) -> dict[str, dict[str, float]]:
        """Per kind of fault: the longest stall of ingestion from an injection until the next one
        (or the market's end), and the longest in the calm before the first fault."""
        # The last window ends when ingestion last moved (everything stored), not at an idle tail.
        final = self.monitor.samples[-1][1]
        done = next((at for at, value in self.monitor.samples if value == final), self.market_done_at)
        ends = [i.at for i in self.injected[1:]] + [max(done, self.injected[-1].at if self.injected else done)]
        by_kind: dict[str, dict[str, float]] = {}
        for injected, end in zip(self.injected, ends, strict=True):
            stall = self.monitor.longest_stall(injected.at, end)
            entry = by_kind.setdefault(injected.kind, {"count": 0, "longest_stall_s": 0.0, "action_s_max": 0.0})
            entry["count"] += 1
            entry["longest_stall_s"] = max(entry["longest_stall_s"], stall)
            entry["action_s_max"] = max(entry["action_s_max"], round(injected.recovered_at - injected.at, 1))
        first = self.injected[0].at if self.injected else time.monotonic()
        by_kind["(none: before the first fault)"] = {
            "count": 0,
            "longest_stall_s": self.monitor.longest_stall(self.monitor.samples[0][0], first),
            "action_s_max": 0.0,
        }
        return by_kind

    def figures(
        self,
        rss_start: dict[str, int],
        rss_end: dict[str, int],
        checks: dict[str, Any],
        letters: dict[str, Any],
        fake_state: dict[str, Any],
        seconds: dict[str, float],
    ) -> dict[str, Any]:
        statuses = [request["status"] for request in fake_state.get("rest_requests", [])]
        return {
            "command": " ".join(["python", "bench/chaos_soak.py", *sys.argv[1:]]),
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "seed": self.args.seed,
            "symbols": self.symbols,
            "rate_trades_per_s": self.args.rate,
            "trades_checked": checks["trades_checked"],
            "lost": checks["losses"] + checks["wrong_values"],
            "duplicated": checks["duplicate_rows"] + checks["duplicates_counted_in_rollups"],
            "faults_injected": dict(Counter(i.kind for i in self.injected)),
            "stalls_by_fault": self.stalls(),
            # A killed service's end is its last incarnation's; what each held when killed is listed.
            "rss_mib": {"start": rss_start, "end": rss_end, "when_killed": self.rss_before_kill},
            "dead_letters": {
                # The classifier's invalid raw messages, and the DLQ's (the harness asserts the same set).
                "expected_total": checks["invalid_raw_messages"],
                "found_total": checks["dead_lettered"],
                "by_reason": self.pipeline.figures.get("dead_letter_reasons", {}),
                **letters,
            },
            "issue_14_classes_left_out": sorted(set(poison.ISSUE_14_CLASSES) - poison.LANDED),
            "exchange": {
                "trades_emitted": sum(fake_state["trades_emitted"].values()),
                "connections_dropped": fake_state.get("connections_dropped"),
                "connections_opened": fake_state.get("connections_accepted"),
                "trades_left_out_of_the_stream": fake_state.get("trades_skipped"),
                "rest_requests": len(statuses),
                "rest_429": statuses.count(429),
            },
            "checks": checks,
            "api_503_answers_in_the_sample_then_asked_again": Counter(self.api_503s),
            "faults": [
                {"kind": i.kind, "at_s": round(i.at - self.injected[0].at, 1), **i.detail} for i in self.injected
            ],
            "seconds": seconds,
        }

    def shutdown(self) -> None:
        if hasattr(self, "monitor"):
            self.monitor.stop()
        self.pipeline.shutdown()


def markdown(figures: dict[str, Any]) -> str:
    """The figures as the tables docs/reliability.md shows."""
    rss, letters, seconds = figures["rss_mib"], figures["dead_letters"], figures["seconds"]
    api_answers = figures["checks"]["api_answers_checked"] + figures["checks"]["api_sample_answers_checked"]
    lines = [
        f"`{figures['command']}` (finished {figures['finished_at']}, {seconds['total_s'] / 60:.1f} min in all)",
        "",
        "| | |",
        "|---|---|",
        f"| trades checked | **{figures['trades_checked']:,}** of {len(figures['symbols'])} symbols"
        f" (+ the poison rounds' hand-made ones), {figures['checks']['raw_trade_messages']:,} trade messages"
        f" ({figures['checks']['raw_trade_duplicates_absorbed']:,} duplicates absorbed,"
        f" {figures['checks']['raw_trades_from_rest']:,} over REST) |",
        f"| lost / duplicated | **{figures['lost']}** / **{figures['duplicated']}** |",
        "| rollup rows checked | every row of trade_candles_1s and trade_candles_1m |",
        f"| api answers checked | {api_answers:,} |",
        f"| dead letters expected = found | **{letters['expected_total']} = {letters['found_total']}**"
        f" ({figures['checks']['dead_letters_cut_to_fit']} cut to fit) |",
        f"| time | setup {seconds['setup_and_first_trades_s']} s, market {seconds['market_s']} s,"
        f" catch-up {seconds['catch_up_after_the_last_trade_s']} s, checks {seconds['verification_s']} s |",
        "",
        "| fault | injected | longest stall of ingestion after it (s) | the fault's own action, longest (s) |",
        "|---|---|---|---|",
    ]
    for kind, entry in figures["stalls_by_fault"].items():
        lines.append(f"| {kind} | {entry['count']} | {entry['longest_stall_s']} | {entry['action_s_max']} |")
    lines += ["", "| dead-letter reason | expected | found |", "|---|---|---|"]
    expected, found = letters["poison_dead_letters_expected_by_reason"], letters["poison_dead_letters_found_by_reason"]
    for reason in sorted(set(expected) | set(found)):
        lines.append(f"| `{reason}` | {expected.get(reason, 0)} | {found.get(reason, 0)} |")
    lines += ["", "| service | RSS at start (MiB) | RSS at end (MiB) |", "|---|---|---|"]
    for service in SERVICES:
        lines.append(f"| {service} | {rss['start'][service]} | {rss['end'][service]} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trades", type=int, default=1_000_000, help="trades the market emits (all symbols)")
    parser.add_argument("--symbols", type=int, default=12, choices=range(2, len(SOAK_SYMBOLS) + 1))
    parser.add_argument("--rate", type=float, default=1200.0, help="trades per second, all symbols together")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--fault-every", type=float, default=45.0, help="mean seconds between faults")
    parser.add_argument("--outage-s", type=float, default=20.0, help="longest broker or database outage")
    parser.add_argument(
        "--lookback-margin-s", type=int, default=25, help="added to a killed producer's downtime: its successor's boot"
    )
    parser.add_argument("--api-samples", type=int, default=300)
    parser.add_argument("--max-minutes", type=float, default=45.0, help="the whole run's deadline")
    parser.add_argument("--kafka-port", type=int, default=int(os.environ.get("TEST_KAFKA_PORT", "29492")))
    parser.add_argument(
        "--kafka-controller-port", type=int, default=int(os.environ.get("TEST_KAFKA_CONTROLLER_PORT", "29493"))
    )
    parser.add_argument("--pg-port", type=int, default=int(os.environ.get("TEST_PG_PORT", "25832")))
    parser.add_argument("--kafka-libs", default=os.environ.get("KAFKA_LIBS", str(REPO / ".local/kafka/libs")))
    parser.add_argument("--figures", type=Path, default=FIGURES_PATH)
    args = parser.parse_args()

    def out_of_time(_signum: int, _frame: object) -> None:
        raise TimeoutError(f"the soak ran past --max-minutes {args.max_minutes}")

    signal.signal(signal.SIGALRM, out_of_time)
    signal.alarm(int(args.max_minutes * 60))
    soak = Soak(args)
    try:
        figures = soak.run()
    finally:
        signal.alarm(0)
        soak.shutdown()
    args.figures.parent.mkdir(parents=True, exist_ok=True)
    args.figures.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    args.figures.with_suffix(".md").write_text(markdown(figures))
    print(json.dumps({k: figures[k] for k in ("trades_checked", "lost", "duplicated", "faults_injected")}))
    print(f"soak: figures in {args.figures}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
