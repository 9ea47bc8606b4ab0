"""The whole pipeline on a Kafka broker and a PostgreSQL cluster of the suite's own, and the checks
that every fault run ends with.

Every service runs as the compose service (scripts/compose_local.py: the command and environment
docker-compose.yml gives it), with compose's host names mapped to the private servers. Those are
the suite's own because the faults stop them: the shared test stack (29092/25432) is never
touched. The database passwords are random per run, so that the logs can be searched for them.

A market is one run of the fake exchange (and a fresh producer) with its own range of trade ids;
the consumer and the api keep running across markets, so each check covers everything so far.
"""

from __future__ import annotations

import json
import operator
import os
import secrets
import socket
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg2
from confluent_kafka import Consumer, TopicPartition

from schemas.topics import TOPICS
from tests.conftest import REPO, Services, free_port, wait_until
from tests.faults.truth import (
    MINUTE_MS,
    SECOND_MS,
    TODAY,
    Candle,
    Control,
    Invalid,
    MarketData,
    Rules,
    Trade,
    Truth,
    classify,
    listed_symbols,
    read_record,
)
from tests.support import kafka as private_kafka
from tests.support.kafka import PrivateKafka
from tests.support.postgres import PrivatePostgres

RAW_TOPIC, DLQ_TOPIC = "binance.raw", "binance.raw.dlq"  # compose's defaults, on the private broker
RAW_PARTITIONS = next(spec.partitions for spec in TOPICS if spec.name == RAW_TOPIC)  # as bootstrap creates it
CONSUMER_GROUP = "binance-consumer"  # compose's default group
SYMBOLS = ("BTCUSDT", "ETHUSDT")
EXCHANGE_INFO = REPO / "fake_binance/data/exchangeInfo.json"
# Short timings so each run takes seconds; everything else is what compose gives the producer.
FAST_PRODUCER = {
    "PRODUCER_RECONNECT_MIN_S": "0.05",
    "PRODUCER_RECONNECT_MAX_S": "0.5",
    "PRODUCER_GAP_GRACE_S": "0.3",
    "PRODUCER_PING_INTERVAL_S": "0.5",
    "PRODUCER_PING_TIMEOUT_S": "1",
    "PRODUCER_STATS_INTERVAL_S": "1",
    "PRODUCER_FLUSH_TIMEOUT_S": "15",
}


def epoch_ms(text: str) -> int:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return round(moment.timestamp() * 1000)


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class RawRecord:
    topic: str
    partition: int
    offset: int
    value: bytes | None
    headers: dict[str, str]


UNREADABLE_HEADERS = "<unreadable headers>"


# Called from C, so that CPython always checks for the error confluent-kafka's headers() leaves set
# on a header name that is not UTF-8 (a plain call in specialised code can crash: consumer/loop.py).
_read_headers = operator.methodcaller("headers")


def readable_headers(message: Any) -> dict[str, str]:
    """A message's headers as text; one whose header name is not UTF-8 gets a single marker entry
    (the message itself is still counted)."""
    try:
        pairs = list(_read_headers(message) or [])
    except Exception:  # the decoding error of a header name that is not UTF-8
        return {UNREADABLE_HEADERS: ""}
    return {str(key): value.decode(errors="replace") if isinstance(value, bytes) else "" for key, value in pairs}


def process_tree_rss_kb(pid: int) -> int:
    """Resident memory of a process and all its descendants (the api's workers), in KiB."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry))
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        pending.extend(children.get(current, []))
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


@contextmanager
def pinned_ports(*ports: int) -> Iterator[None]:
    """Makes PrivateKafka take the given ports (broker, then controller) instead of free ones."""
    # PrivateKafka (tests/support) takes both ports from free_port(); the soak runs on its brief's.
    given = iter(ports)
    original = getattr(private_kafka, "free_port")  # noqa: B009 - not re-exported, so mypy needs getattr
    setattr(private_kafka, "free_port", lambda: next(given))  # noqa: B010
    try:
        yield
    finally:
        setattr(private_kafka, "free_port", original)  # noqa: B010


def read_topic(bootstrap: str, topic: str, partitions: int) -> list[RawRecord]:
    """Every message of a topic, from offset 0 to the high watermark of each partition."""
    reader = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"faults-reader-{secrets.token_hex(4)}",
            "enable.auto.commit": False,
        }
    )
    records: list[RawRecord] = []
    try:
        ends = {p: reader.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions)}
        reader.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        seen = dict.fromkeys(range(partitions), 0)
        deadline = time.monotonic() + 60
        while any(seen[p] < ends[p] for p in range(partitions)):
            assert time.monotonic() < deadline, f"reading {topic}: {seen} of {ends}"
            for message in reader.consume(num_messages=10_000, timeout=0.5):
                if message.error() is not None:
                    continue
                partition, offset = message.partition() or 0, message.offset() or 0
                seen[partition] = max(seen[partition], offset + 1)
                if offset < ends[partition]:
                    records.append(RawRecord(topic, partition, offset, message.value(), readable_headers(message)))
    finally:
        reader.close()
    return records


@dataclass
class Market:
    name: str
    first_trade_id: int
    record_path: Path
    fake_label: str
    producer_label: str
    started_at: float = field(default_factory=time.monotonic)
    # Times of the market's first and last trade (+1 ms), once it is done.
    window_ms: tuple[int, int] | None = None


class FaultPipeline:
    def __init__(
        self,
        shared_stack_env: dict[str, str],
        work_dir: Path,
        log_dir: Path,
        symbols: tuple[str, ...] = SYMBOLS,
        rules: Rules = TODAY,
        kafka_ports: tuple[int, int] | None = None,
        pg_port: int | None = None,
    ) -> None:
        """`kafka_ports` (broker, controller) and `pg_port` pin the private servers to given ports
        (the soak's); by default they take free ones."""
        self.work_dir = work_dir
        self.symbols = symbols
        self.rules = rules
        if kafka_ports is None:
            self.broker = PrivateKafka(shared_stack_env["KAFKA_LIBS"], work_dir / "kafka")
        else:
            with pinned_ports(*kafka_ports):
                self.broker = PrivateKafka(shared_stack_env["KAFKA_LIBS"], work_dir / "kafka", heap="512m")
        self.postgres = PrivatePostgres(passwords=True)
        if pg_port is not None:
            self.postgres.port = pg_port
        self.owner_password = secrets.token_hex(16)
        self.api_password = secrets.token_hex(16)
        self.ws_port, self.rest_port, self.api_port = free_port(), free_port(), free_port()
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.owner_dsn = (
            f"host=127.0.0.1 port={self.postgres.port} dbname=binance user=binance password={self.owner_password}"
        )
        self.api_dsn = (
            f"host=127.0.0.1 port={self.postgres.port} dbname=binance user=binance_api password={self.api_password}"
        )
        stack_env = {
            "KAFKA_BOOTSTRAP_SERVERS": self.broker.bootstrap,
            "PG_PORT": str(self.postgres.port),
            "KAFKA_LIBS": shared_stack_env["KAFKA_LIBS"],
        }
        self.services = Services(stack_env, log_dir)
        self.services.extra_addresses = {
            "fake-binance:9443": f"127.0.0.1:{self.ws_port}",
            "fake-binance:8090": f"127.0.0.1:{self.rest_port}",
        }
        # Compose's own variables: the passwords reach every URL through ${PG_PASSWORD} etc.
        self.services.variables = {
            "BINANCE_WS_BASE_URL": "ws://fake-binance:9443",
            "BINANCE_REST_BASE_URL": "http://fake-binance:8090",
            "SYMBOLS": ",".join(symbols),
            "PG_PASSWORD": self.owner_password,
            "PG_API_PASSWORD": self.api_password,
        }
        self.truth = Truth()
        self.known_symbols = listed_symbols(EXCHANGE_INFO)
        self.markets: list[Market] = []
        self.consumer_label = "consumer"
        self.figures: dict[str, Any] = {"faults": {}}
        self.unreadable_raw_offsets: list[tuple[int, int]] = []

    @property
    def passwords(self) -> list[str]:
        """Every password of this run: none may appear in any log."""
        superuser = self.postgres.superuser_password
        return [self.owner_password, self.api_password, *([superuser] if superuser else [])]

    # --- the stack ---------------------------------------------------------------------------------

    def start(self) -> None:
        started = time.monotonic()
        self.broker.start()
        broker_ready = time.monotonic()
        self.postgres.start()
        self.postgres.create_login_role("binance", self.owner_password)
        self.postgres.create_login_role("binance_api", self.api_password)
        self.postgres.create_database("binance", "binance")
        # init: the topics on the private broker and the migrations, then the grants to binance_api.
        self.services.run_once("init", {})
        initialised = time.monotonic()
        self.start_consumer()
        self.services.start("api", {"API_PORT": str(self.api_port)})
        # Generous: on the shared 2-core box the api took over 30 s to start under load.
        wait_until(lambda: httpx.get(f"{self.api_url}/ready", timeout=2).status_code == 200, 120, "the api")
        self.figures["setup_seconds"] = {
            "kafka": round(broker_ready - started, 1),
            "postgresql_and_init": round(initialised - broker_ready, 1),
            "services": round(time.monotonic() - initialised, 1),
        }

    def start_consumer(self, label: str = "consumer") -> None:
        # Retries capped at 1 s (compose: 15 s) so that the suite sees the end of an outage at once.
        self.consumer_label = label
        self.services.start("consumer", {"CONSUMER_RETRY_MAX_S": "1"}, label=label)

    def shutdown(self) -> None:
        self.services.stop_all()
        self.broker.stop()
        self.postgres.remove()

    # --- markets -----------------------------------------------------------------------------------

    def start_market(
        self, name: str, fake: dict[str, str], producer: dict[str, str] | None = None, first_trade_id: int = 0
    ) -> Market:
        """A fresh fake exchange (trade ids from `first_trade_id`) and a fresh producer reading it."""
        self._abandon_unfinished_markets()
        first_trade_id = first_trade_id or (len(self.markets) + 1) * 1_000_000
        market = Market(
            name, first_trade_id, self.work_dir / f"{name}.trades.jsonl", f"fake-{name}", f"producer-{name}"
        )
        self.services.start(
            "fake-binance",
            {
                "FAKE_BINANCE_WS_PORT": str(self.ws_port),
                "FAKE_BINANCE_REST_PORT": str(self.rest_port),
                "FAKE_BINANCE_RECORD_PATH": str(market.record_path),
                "FAKE_BINANCE_FIRST_TRADE_ID": str(first_trade_id),
                "FAKE_BINANCE_IDS_FROM_CLOCK": "false",  # each market's ids are the harness's to choose
                "FAKE_BINANCE_SEED": str(len(self.markets) + 11),
                **fake,
            },
            label=market.fake_label,
        )
        wait_until(lambda: port_open(self.ws_port) and port_open(self.rest_port), 30, "the fake exchange")
        self.services.start("producer", {**FAST_PRODUCER, **(producer or {})}, label=market.producer_label)
        wait_until(lambda: self.fake_state()["connections_open"] >= 1, 30, "the producer's connection")
        self.markets.append(market)
        return market

    def _abandon_unfinished_markets(self) -> None:
        """After a failed test: stop its exchange and producer (they hold the fake's ports) and take
        what its exchange emitted into the truth, so that later checks still compare all of it."""
        for market in self.markets:
            if market.window_ms is None:
                for label in (market.producer_label, market.fake_label):
                    if label in self.services.processes:
                        self.services.stop(label)
                emitted = read_record(market.record_path)
                if emitted:
                    market.window_ms = (min(t.time_ms for t in emitted), max(t.time_ms for t in emitted) + 1)
                    self.truth.add(emitted)

    def fake_state(self) -> dict[str, Any]:
        state: dict[str, Any] = httpx.get(f"http://127.0.0.1:{self.rest_port}/fake/state", timeout=5).json()
        return state

    def fake_control(self, action: str, **body: Any) -> dict[str, Any]:
        response = httpx.post(f"http://127.0.0.1:{self.rest_port}/fake/{action}", json=body, timeout=5)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def finish_market(self, market: Market, timeout_s: float = 90) -> dict[str, Any]:
        """Waits for the market's last trade, then for all of it in PostgreSQL; stops the producer
        (a clean exit: everything it read is in Kafka) and waits until the consumer has read every
        message. Returns the fake's last state (its fault counters)."""
        wait_until(lambda: self.fake_state()["market_done"], timeout_s, f"the last trade of {market.name}")
        emitted = read_record(market.record_path)
        market.window_ms = (min(t.time_ms for t in emitted), max(t.time_ms for t in emitted) + 1)
        self.truth.add(emitted)
        wait_until(lambda: self.stored_count() >= len(self.truth), timeout_s, f"every trade of {market.name} stored")
        self.services.assert_running()
        state = self.fake_state()  # read now: the backfills (and their 429s) are over
        exit_code = self.services.stop(market.producer_label)
        assert exit_code == 0, self.services.log_tail(market.producer_label)
        self.wait_consumed(timeout_s)
        self.services.stop(market.fake_label)
        return state

    # --- Kafka and PostgreSQL, from the outside ---------------------------------------------------

    def wait_consumed(self, timeout_s: float = 60) -> None:
        """Until the consumer group's committed offsets reach the raw topic's end on every partition."""

        def consumed() -> bool:
            reader = Consumer({"bootstrap.servers": self.broker.bootstrap, "group.id": CONSUMER_GROUP})
            try:
                partitions = [TopicPartition(RAW_TOPIC, p) for p in range(RAW_PARTITIONS)]
                committed = reader.committed(partitions, timeout=5)
                ends = [reader.get_watermark_offsets(p, timeout=5)[1] for p in partitions]
            finally:
                reader.close()
            return all(c.offset == end for c, end in zip(committed, ends, strict=True) if end > 0)

        wait_until(consumed, timeout_s, "the consumer to commit every raw message", interval_s=0.5)

    def committed_total(self) -> int:
        reader = Consumer({"bootstrap.servers": self.broker.bootstrap, "group.id": CONSUMER_GROUP})
        try:
            partitions = [TopicPartition(RAW_TOPIC, p) for p in range(RAW_PARTITIONS)]
            return sum(max(tp.offset, 0) for tp in reader.committed(partitions, timeout=10))
        finally:
            reader.close()

    @contextmanager
    def owner_connection(self) -> Iterator[Any]:
        with closing(psycopg2.connect(self.owner_dsn)) as connection:
            yield connection

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        with self.owner_connection() as connection, connection.cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())

    def stored_count(self) -> int:
        count: int = self.query("SELECT count(*) FROM trades")[0][0]
        return count

    # --- the checks after every fault -------------------------------------------------------------

    def verify(self, name: str, window_ms: tuple[int, int] | None = None) -> dict[str, Any]:
        """Everything the pipeline must hold after a fault, against the ground truth. Returns figures."""
        figures = {"trades_checked": len(self.truth)}
        figures.update(self._verify_trades())
        figures.update(self._verify_rollups())
        figures.update(self._verify_dead_letters())
        figures.update(self._verify_api(window_ms))
        self.figures["faults"].setdefault(name, {}).update(figures)
        return figures

    def _verify_trades(self) -> dict[str, int]:
        rows = self.query(
            "SELECT symbol, trade_id, price::text, quantity::text,"
            " (extract(epoch FROM trade_time) * 1000)::bigint, buyer_is_maker FROM trades"
        )
        stored: dict[tuple[str, int], Trade] = {}
        for symbol, trade_id, price, quantity, time_ms, maker in rows:
            stored[(symbol, trade_id)] = Trade(symbol, trade_id, price, quantity, time_ms, maker)
        duplicates = len(rows) - len(stored)
        missing = sorted(set(self.truth.trades) - set(stored))
        extra = sorted(set(stored) - set(self.truth.trades))
        # Prices and quantities compared as text: exact, trailing zeros included.
        wrong = [key for key, trade in self.truth.trades.items() if key in stored and stored[key] != trade]
        assert not missing, f"{len(missing)} emitted trades missing from PostgreSQL, e.g. {missing[:5]}"
        assert not extra, f"{len(extra)} stored trades nobody emitted, e.g. {extra[:5]}"
        examples = [(self.truth.trades[key], stored[key]) for key in wrong[:3]]
        assert not wrong, f"{len(wrong)} trades stored with other values, e.g. {examples}"
        assert duplicates == 0
        return {"losses": len(missing), "duplicate_rows": duplicates, "wrong_values": len(wrong)}

    def _verify_rollups(self) -> dict[str, int]:
        """The consumer's 1 s and 1 min rollups against candles computed from the truth: a trade
        written twice would count twice here, even though the primary key keeps one row."""
        over_counted = 0
        for table, interval_ms in (("trade_candles_1s", SECOND_MS), ("trade_candles_1m", MINUTE_MS)):
            rows = self.query(
                "SELECT symbol, (extract(epoch FROM open_time) * 1000)::bigint, open::text, high::text, low::text,"
                " close::text, volume, quote_volume, trade_count, taker_buy_base_volume, taker_buy_quote_volume,"
                f" first_trade_id, last_trade_id FROM {table}"  # a constant table name of this loop
            )
            stored = {(row[0], row[1]): Candle(row[1], *row[2:]) for row in rows}
            expected = self.truth.rollup(interval_ms)
            over_counted += sum(c.trade_count for c in stored.values()) - sum(c.trade_count for c in expected.values())
            assert set(stored) == set(expected), f"{table}: intervals differ: {set(stored) ^ set(expected)}"
            wrong = [key for key in expected if stored[key] != expected[key]]
            assert not wrong, f"{table}: {len(wrong)} rows differ, e.g. {[(stored[k], expected[k]) for k in wrong[:2]]}"
        assert over_counted == 0
        return {"duplicates_counted_in_rollups": over_counted}

    def _verify_dead_letters(self) -> dict[str, int]:
        """Every raw message the truth's rules call invalid is in the DLQ topic and the dead_letters
        table, with a reason; no valid one is; every valid one agrees with the truth."""
        raw = read_topic(self.broker.bootstrap, RAW_TOPIC, RAW_PARTITIONS)
        invalid: set[tuple[int, int]] = set()
        valid_messages = controls = other_data = from_rest = conflicting = 0
        distinct: set[tuple[str, int]] = set()
        self.unreadable_raw_offsets = sorted((r.partition, r.offset) for r in raw if UNREADABLE_HEADERS in r.headers)
        for record in raw:
            kind = (
                Invalid("header names not UTF-8")
                if UNREADABLE_HEADERS in record.headers
                else classify(record.value, record.headers, self.known_symbols, self.rules)
            )
            if isinstance(kind, Trade) and self.rules.conflicting_duplicates:
                known = self.truth.trades.get(kind.key)
                if known is not None and known != kind:
                    kind = Invalid("a trade id stored with other values")
                    conflicting += 1
            if isinstance(kind, Invalid):
                invalid.add((record.partition, record.offset))
            elif isinstance(kind, Control):
                controls += 1
            elif isinstance(kind, MarketData):
                other_data += 1
            else:
                valid_messages += 1
                distinct.add(kind.key)
                from_rest += record.headers.get("source") == "rest"
                assert self.truth.trades.get(kind.key) == kind, f"a raw trade that is not the truth's: {kind}"
        dlq = read_topic(self.broker.bootstrap, DLQ_TOPIC, 1)
        dead: dict[tuple[int, int], str] = {}
        for record in dlq:
            assert record.headers.get("dlq_source_topic") == RAW_TOPIC
            assert record.headers.get("dlq_reason"), record.headers
            key = (int(record.headers["dlq_source_partition"]), int(record.headers["dlq_source_offset"]))
            assert key not in dead, f"dead-lettered twice: {key}"
            dead[key] = record.headers["dlq_reason"]
        # The original bytes, unchanged; or, for a message too large to fit with the dlq_* headers,
        # its beginning, saying how long the original (still in the raw topic) is.
        by_offset = {(r.partition, r.offset): r.value for r in raw}
        truncated = 0
        for record in dlq:
            source = (int(record.headers["dlq_source_partition"]), int(record.headers["dlq_source_offset"]))
            original = by_offset[source] or b""
            if "dlq_truncated_from" in record.headers:
                truncated += 1
                assert int(record.headers["dlq_truncated_from"]) == len(original)
                assert record.value and original.startswith(record.value), f"dead letter {source} is not the original"
            else:
                assert (record.value or b"") == original, f"dead letter {source} is not the original message"
        assert set(dead) == invalid, (
            f"DLQ and invalid raw messages differ: missing from DLQ {sorted(invalid - set(dead))[:5]}, "
            f"dead-lettered but valid {sorted(set(dead) - invalid)[:5]}"
        )
        table = {
            (partition, offset): reason
            for partition, offset, reason in self.query(
                "SELECT source_partition, source_offset, reason FROM dead_letters WHERE source_topic = %s", (RAW_TOPIC,)
            )
        }
        assert table == dead, "the dead_letters table and the DLQ topic differ"
        reasons: dict[str, int] = {}
        for reason in dead.values():
            reasons[reason] = reasons.get(reason, 0) + 1
        self.figures["dead_letter_reasons"] = dict(sorted(reasons.items()))
        return {
            "raw_messages": len(raw),
            "raw_trade_messages": valid_messages,
            "raw_trade_duplicates_absorbed": valid_messages - len(distinct),
            "raw_trades_from_rest": from_rest,
            "control_messages": controls,
            "other_market_data_messages": other_data,
            "conflicting_duplicates": conflicting,
            "invalid_raw_messages": len(invalid),
            "dead_lettered": len(dead),
            "dead_letters_cut_to_fit": truncated,
        }

    def _verify_api(self, window_ms: tuple[int, int] | None) -> dict[str, int]:
        answers = 0
        with httpx.Client(base_url=self.api_url, timeout=10) as client:
            wait_until(lambda: client.get("/ready").status_code == 200, 30, "the api to reach the database")
            every = client.get("/v1/prices/latest")
            assert every.status_code == 200, every.text
            assert [p["symbol"] for p in every.json()["prices"]] == self.truth.symbols()
            answers += 1
            for symbol in self.truth.symbols():
                answers += self._check_symbol(client, symbol, window_ms)
        return {"api_answers_checked": answers}

    def _check_symbol(self, client: httpx.Client, symbol: str, window_ms: tuple[int, int] | None) -> int:
        trades = self.truth.of(symbol)
        newest = self.truth.latest(symbol)
        latest = client.get("/v1/prices/latest", params={"symbol": symbol.lower()}).json()
        assert (latest["price"], latest["quantity"], latest["trade_id"]) == (
            newest.price,
            newest.quantity,
            newest.trade_id,
        )
        assert epoch_ms(latest["trade_time"]) == newest.time_ms
        answers = 1
        first_ms, last_ms = (min(t.time_ms for t in trades), max(t.time_ms for t in trades))
        start_ms, end_ms = window_ms or (first_ms, last_ms + 1)
        start_ms, end_ms = max(start_ms, first_ms), min(end_ms, last_ms + 1)
        if start_ms >= end_ms:  # this symbol did not trade in the window: check its whole history
            start_ms, end_ms = first_ms, last_ms + 1
        # The price at a second: before any trade (404), the window's first, middle and last seconds.
        seconds = {start_ms // SECOND_MS * SECOND_MS, (start_ms + end_ms) // 2 // SECOND_MS * SECOND_MS}
        seconds |= {(end_ms - 1) // SECOND_MS * SECOND_MS, first_ms // SECOND_MS * SECOND_MS - SECOND_MS}
        for second in sorted(seconds):
            response = client.get("/v1/prices/at", params={"symbol": symbol, "timestamp": second})
            expected = self.truth.price_at(symbol, second)
            if expected is None:
                assert response.status_code == 404, response.text
            else:
                body = response.json()
                assert response.status_code == 200, response.text
                assert (body["price"], body["quantity"], body["trade_id"]) == (
                    expected.price,
                    expected.quantity,
                    expected.trade_id,
                ), (second, body, expected)
                assert epoch_ms(body["actual_timestamp"]) == expected.time_ms
            answers += 1
        # Minute high and low: every minute of the window, and the minute after the last trade.
        minutes = range(start_ms // MINUTE_MS * MINUTE_MS, end_ms, MINUTE_MS)
        buckets = self.truth.buckets(symbol, MINUTE_MS)
        for minute in [*minutes, last_ms // MINUTE_MS * MINUTE_MS + MINUTE_MS]:
            body = client.get("/v1/prices/minmax", params={"symbol": symbol, "minute": minute}).json()
            members = buckets.get(minute)
            if members is None:
                assert (body["high"], body["low"], body["trade_count"]) == (None, None, 0), body
            else:
                expected_minute = self.truth.rollup(MINUTE_MS)[(symbol, minute)]
                assert (body["high"], body["low"], body["open"], body["close"]) == (
                    expected_minute.high,
                    expected_minute.low,
                    expected_minute.open,
                    expected_minute.close,
                ), (minute, body)
                assert Decimal(body["volume"]) == expected_minute.volume
                assert Decimal(body["quote_volume"]) == expected_minute.quote_volume
                assert body["trade_count"] == expected_minute.trade_count
            answers += 1
        # Candles: 1 s over the window, 1 min over the symbol's whole history (flat where quiet).
        for interval, interval_ms, start, end in (
            ("1s", SECOND_MS, start_ms // SECOND_MS * SECOND_MS, end_ms),
            ("1m", MINUTE_MS, first_ms // MINUTE_MS * MINUTE_MS, last_ms + 1),
        ):
            response = client.get(
                "/v1/candles",
                params={"symbol": symbol, "interval": interval, "start": start, "end": end, "limit": 1000},
            )
            assert response.status_code == 200, response.text
            got = response.json()["candles"]
            expected_candles = self.truth.candles(symbol, interval_ms, start, end)
            assert [epoch_ms(c["open_time"]) for c in got] == [c.open_ms for c in expected_candles], interval
            for candle, truth in zip(got, expected_candles, strict=True):
                assert (candle["open"], candle["high"], candle["low"], candle["close"]) == (
                    truth.open,
                    truth.high,
                    truth.low,
                    truth.close,
                ), (interval, candle, truth)
                assert Decimal(candle["volume"]) == truth.volume
                assert Decimal(candle["quote_volume"]) == truth.quote_volume
                assert candle["trade_count"] == truth.trade_count
                assert (candle["first_trade_id"], candle["last_trade_id"]) == (
                    truth.first_trade_id,
                    truth.last_trade_id,
                )
            answers += 1
        return answers

    # --- logs -------------------------------------------------------------------------------------

    def log_lines(self, label: str) -> list[dict[str, Any]]:
        """A service's JSON log lines (anything else, e.g. a traceback, is skipped)."""
        path = self.services.log_dir / f"{label}.log"
        lines = []
        for line in path.read_text(errors="replace").splitlines() if path.exists() else []:
            if line.startswith("{"):
                try:
                    lines.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return lines

    def log_files(self) -> list[Path]:
        """Every log the fault runs wrote: the services', the broker's and the database server's."""
        return [*sorted(self.services.log_dir.glob("*.log")), self.broker.log_path, self.postgres.log_path]
