"""`python -m producer history` end to end: the fake's archive and REST history -> Kafka -> PostgreSQL -> api.

Every service runs as a process with the command and environment docker-compose.yml gives it
(the `history` service included), on the test stack's real Kafka and PostgreSQL.
"""

import csv
import io
import json
import os
import signal
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg2
import pytest
from binance.client import Client
from confluent_kafka import Consumer

from fake_binance.archive import csv_lines, parse_path
from fake_binance.exchange_info import load_exchange_info
from fake_binance.past import PastMarket
from schemas.topics import Header, Source
from tests.conftest import Services, free_port, libpq_dsn, wait_until

pytestmark = pytest.mark.integration

DAY = "2021-05-22"
NEXT_DAY = "2021-05-23"


@dataclass
class HistoryStack:
    services: Services
    database_url: str
    api_url: str
    fake_url: str
    raw_topic: str
    state_dir: Path

    def history_env(self, **settings: str) -> dict[str, str]:
        env = {
            "PRODUCER_HISTORY_RAW_TOPIC": self.raw_topic,
            "PRODUCER_HISTORY_STATE_DIR": str(self.state_dir),
            "PRODUCER_HISTORY_PROGRESS": "log",
        }
        env.update({f"PRODUCER_HISTORY_{name.upper()}": value for name, value in settings.items()})
        return env

    def run_history(self, **settings: str) -> int:
        process = self.services.start("history", self.history_env(**settings))
        return process.wait(timeout=180)

    def query(self, sql: str, *args: object) -> list[tuple[object, ...]]:
        with closing(psycopg2.connect(libpq_dsn(self.database_url))) as connection, connection.cursor() as cursor:
            cursor.execute(sql, args)
            return list(cursor.fetchall())

    def archive_rows(self, path: str) -> list[list[str]]:
        """The fake archive's CSV rows of a file, as the importer should have stored them."""
        body = httpx.get(f"{self.fake_url}/{path}", timeout=60).raise_for_status().content
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            text = archive.read(archive.namelist()[0]).decode()
        return list(csv.reader(io.StringIO(text)))


def start_stack(services: Services, database: dict[str, str], tmp_path: Path, fake: dict[str, str]) -> HistoryStack:
    suffix = uuid.uuid4().hex[:8]
    raw_topic, dlq_topic = f"binance.raw.{suffix}", f"binance.raw.dlq.{suffix}"
    rest_port, ws_port, api_port = free_port(), free_port(), free_port()
    services.extra_addresses = {
        "fake-binance:9443": f"127.0.0.1:{ws_port}",
        "fake-binance:8090": f"127.0.0.1:{rest_port}",
    }
    services.variables = {
        "BINANCE_WS_BASE_URL": "ws://fake-binance:9443",
        "BINANCE_REST_BASE_URL": "http://fake-binance:8090",
        "BINANCE_ARCHIVE_BASE_URL": "http://fake-binance:8090",
    }
    services.run_once(
        "init",
        {
            "BOOTSTRAP_DATABASE_URL": database["owner"],
            "BOOTSTRAP_RAW_TOPIC": raw_topic,
            "BOOTSTRAP_DLQ_TOPIC": dlq_topic,
        },
    )
    services.start(
        "fake-binance",
        {
            "FAKE_BINANCE_WS_PORT": str(ws_port),
            "FAKE_BINANCE_REST_PORT": str(rest_port),
            "FAKE_BINANCE_TRADES_PER_SECOND": "0",
            "FAKE_BINANCE_SEED": "16",
            **fake,
        },
    )
    fake_url = f"http://127.0.0.1:{rest_port}"
    wait_until(lambda: httpx.get(f"{fake_url}/api/v3/ping", timeout=1).status_code == 200, 30, "the fake exchange")
    services.start(
        "consumer",
        {
            "CONSUMER_DATABASE_URL": database["owner"],
            "CONSUMER_RAW_TOPIC": raw_topic,
            "CONSUMER_DLQ_TOPIC": dlq_topic,
            "CONSUMER_GROUP_ID": f"test-{suffix}",
        },
    )
    services.start("api", {"API_DATABASE_URL": database["api"], "API_PORT": str(api_port)})
    api_url = f"http://127.0.0.1:{api_port}"
    wait_until(lambda: httpx.get(f"{api_url}/health", timeout=1).status_code == 200, 30, "the api")
    return HistoryStack(
        services, database["owner"], f"http://127.0.0.1:{api_port}", fake_url, raw_topic, tmp_path / "state"
    )


@pytest.fixture()
def stack(database: dict[str, str], services: Services, tmp_path: Path) -> Iterator[HistoryStack]:
    yield start_stack(services, database, tmp_path, {})


def stored_klines(stack: HistoryStack, symbol: str, interval: str) -> list[list[str]]:
    rows = stack.query(
        "SELECT (extract(epoch FROM open_time) * 1000)::bigint, open::text, high::text, low::text, close::text,"
        " volume::text, (extract(epoch FROM close_time) * 1000)::bigint, quote_volume::text, trade_count,"
        " taker_buy_base_volume::text, taker_buy_quote_volume::text FROM klines"
        " WHERE symbol = %s AND interval = %s ORDER BY open_time",
        symbol,
        interval,
    )
    return [[str(value) for value in row] for row in rows]


def as_numbers(rows: list[list[object]]) -> list[list[Decimal]]:
    """Klines compared as numbers: the api prints NUMERIC sums with their own scale."""
    return [[Decimal(str(value)) for value in row[:11]] for row in rows]


def test_notebook_adabnb_5m_klines_read_back_through_python_binance(stack: HistoryStack) -> None:
    assert stack.run_history(symbols="ADABNB", streams="trade,kline_5m", start=DAY, end=NEXT_DAY) == 0, (
        stack.services.log_tail("history")
    )
    expected = stack.archive_rows(f"data/spot/daily/klines/ADABNB/5m/ADABNB-5m-{DAY}.zip")
    assert len(expected) == 288
    wait_until(lambda: len(stored_klines(stack, "ADABNB", "5m")) == 288, 60, "the 288 archive klines stored")
    assert stored_klines(stack, "ADABNB", "5m") == [row[:11] for row in expected]  # exact text, as the file has it
    trades = stack.archive_rows(f"data/spot/daily/trades/ADABNB/ADABNB-trades-{DAY}.zip")
    wait_until(
        lambda: stack.query("SELECT count(*) FROM trades WHERE symbol = 'ADABNB'")[0][0] == len(trades),
        60,
        "every archive trade stored",
    )

    client = Client(ping=False)
    client.API_URL = f"{stack.api_url}/api"  # python-binance has no base-URL argument
    # The notebook's own call, dates as it writes them.
    klines = client.get_historical_klines("ADABNB", "5m", "22 May, 2021", "23 May, 2021")
    # The api computes its klines from the stored trades: they equal the archive's klines file.
    assert as_numbers(klines) == as_numbers(expected)  # type: ignore[arg-type]


def test_rerun_of_a_finished_import_publishes_nothing(stack: HistoryStack) -> None:
    assert stack.run_history(symbols="ADABNB", streams="kline_5m", start=DAY, end=NEXT_DAY) == 0
    assert stack.run_history(symbols="ADABNB", streams="kline_5m", start=DAY, end=NEXT_DAY) == 0
    summaries = [
        json.loads(line)
        for line in stack.services.log_tail("history", 400).splitlines()
        if '"history import finished"' in line
    ]
    assert [summary["records"] for summary in summaries] == [288, 0]
    assert summaries[1]["units_already_done"] == 1


# --- what the fake serves, computed here from the same seed -----------------------------------

SEED = 16
INFO = load_exchange_info()


def expected_rows(path: str, trades_per_day: int = 2000) -> list[list[str]]:
    """The CSV rows the fake's archive file at `path` holds (whether or not it serves it)."""
    parsed = parse_path(f"/{path}")
    assert parsed is not None
    file, _ = parsed
    past = PastMarket(INFO, SEED, trades_per_day, time.time_ns() // 1_000_000)
    text = "".join(csv_lines(file, past, INFO.rules[file.symbol]))
    return list(csv.reader(io.StringIO(text)))


def stored_trades(stack: HistoryStack, symbol: str) -> list[list[str]]:
    rows = stack.query(
        "SELECT trade_id, price::text, quantity::text, (extract(epoch FROM trade_time) * 1000)::bigint, buyer_is_maker"
        " FROM trades WHERE symbol = %s ORDER BY trade_id",
        symbol,
    )
    return [[str(value) for value in row] for row in rows]


def stored_agg_trades(stack: HistoryStack, symbol: str) -> list[list[str]]:
    rows = stack.query(
        "SELECT agg_trade_id, price::text, quantity::text, first_trade_id, last_trade_id,"
        " (extract(epoch FROM trade_time) * 1000)::bigint, buyer_is_maker"
        " FROM agg_trades WHERE symbol = %s ORDER BY agg_trade_id",
        symbol,
    )
    return [[str(value) for value in row] for row in rows]


def trade_columns(rows: list[list[str]]) -> list[list[str]]:
    """id, price, qty, time, isBuyerMaker of archive trade rows (quoteQty and isBestMatch are not stored)."""
    return [[r[0], r[1], r[2], r[4], r[5]] for r in rows]


def raw_markers(stack: HistoryStack) -> list[tuple[str, dict[str, Any]]]:
    """Every coverage marker on the import's raw topic: (stream header, marker)."""
    consumer = Consumer(
        {
            "bootstrap.servers": stack.services.stack_env["KAFKA_BOOTSTRAP_SERVERS"],
            "group.id": f"markers-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([stack.raw_topic])
    markers = []
    idle = 0
    try:
        while idle < 10:
            batch = consumer.consume(10_000, timeout=0.5)
            idle = 0 if batch else idle + 1
            for message in batch:
                headers: dict[str, Any] = dict(message.headers() or [])
                if headers.get(Header.SOURCE) == Source.COVERAGE.encode():
                    markers.append((headers[Header.STREAM].decode(), json.loads(message.value() or b"")))
    finally:
        consumer.close()
    return markers


def summary_lines(stack: HistoryStack) -> list[dict[str, Any]]:
    lines = stack.services.log_tail("history", 2000).splitlines()
    return [json.loads(line) for line in lines if '"history import' in line]


@pytest.mark.parametrize("fault", ["ARCHIVE_BAD_CHECKSUM", "ARCHIVE_TRUNCATED"])
def test_a_file_that_fails_its_checksum_is_named_and_nothing_of_it_stored(
    database: dict[str, str], services: Services, tmp_path: Path, fault: str
) -> None:
    stack = start_stack(services, database, tmp_path, {f"FAKE_BINANCE_{fault}": f"BTCUSDT-trades-{DAY}"})
    code = stack.run_history(symbols="BTCUSDT", streams="trade", start=DAY, end="2021-05-24", source="archive")
    assert code == 1
    log = stack.services.log_tail("history", 200)
    assert f"BTCUSDT-trades-{DAY}.zip: SHA-256" in log
    good_day = expected_rows(f"data/spot/daily/trades/BTCUSDT/BTCUSDT-trades-{NEXT_DAY}.zip")
    wait_until(lambda: len(stored_trades(stack, "BTCUSDT")) >= len(good_day), 60, "the good day's trades")
    # The other day stored whole, nothing of the bad file: its rows, and no marker for its day.
    assert stored_trades(stack, "BTCUSDT") == trade_columns(good_day)
    markers = raw_markers(stack)
    assert [(m["kind"], m["start_ms"]) for _, m in markers] == [("held", 1621728000000)]


def test_a_missing_day_is_a_hole_under_archive_and_comes_from_rest_under_auto(
    database: dict[str, str], services: Services, tmp_path: Path
) -> None:
    stack = start_stack(services, database, tmp_path, {"FAKE_BINANCE_ARCHIVE_MISSING": DAY})
    assert stack.run_history(symbols="ADABNB", streams="aggTrade", start=DAY, end=NEXT_DAY, source="archive") == 1
    assert [(stream, m["kind"], m["origin"]) for stream, m in raw_markers(stack)] == [
        ("adabnb@aggTrade", "hole", "archive")
    ]
    assert stack.run_history(symbols="ADABNB", streams="aggTrade,trade,kline_5m", start=DAY, end=NEXT_DAY) == 0
    expected = expected_rows(f"data/spot/daily/aggTrades/ADABNB/ADABNB-aggTrades-{DAY}.zip")
    wait_until(lambda: len(stored_agg_trades(stack, "ADABNB")) == len(expected), 60, "the aggTrades over REST")
    assert stored_agg_trades(stack, "ADABNB") == [row[:7] for row in expected]
    trades = expected_rows(f"data/spot/daily/trades/ADABNB/ADABNB-trades-{DAY}.zip")
    wait_until(lambda: len(stored_trades(stack, "ADABNB")) == len(trades), 60, "the trades over REST")
    assert stored_trades(stack, "ADABNB") == trade_columns(trades)
    klines = expected_rows(f"data/spot/daily/klines/ADABNB/5m/ADABNB-5m-{DAY}.zip")
    wait_until(lambda: len(stored_klines(stack, "ADABNB", "5m")) == len(klines), 60, "the klines over REST")
    assert stored_klines(stack, "ADABNB", "5m") == [row[:11] for row in klines]
    held = [m for _, m in raw_markers(stack) if m["kind"] == "held"]
    assert {m["origin"] for m in held} == {"history"}
    assert min(m["start_ms"] for m in held) == 1621641600000
    assert max(m["end_ms"] for m in held) == 1621728000000


def test_rest_source_within_429s(database: dict[str, str], services: Services, tmp_path: Path) -> None:
    stack = start_stack(services, database, tmp_path, {"FAKE_BINANCE_REST_429_EVERY": "5"})
    end = f"{DAY}T06:00"
    assert stack.run_history(symbols="BTCUSDT", streams="trade,aggTrade", start=DAY, end=end, source="rest") == 0
    trades = [
        r
        for r in expected_rows(f"data/spot/daily/trades/BTCUSDT/BTCUSDT-trades-{DAY}.zip")
        if int(r[4]) < 1621663200000
    ]
    wait_until(lambda: len(stored_trades(stack, "BTCUSDT")) == len(trades), 60, "the trades over REST")
    assert stored_trades(stack, "BTCUSDT") == trade_columns(trades)
    summary = summary_lines(stack)[-1]
    assert summary["rest_429"] > 0


def test_import_killed_mid_file_resumes_and_stores_each_trade_once(
    database: dict[str, str], services: Services, tmp_path: Path
) -> None:
    trades_per_day = 100_000
    stack = start_stack(services, database, tmp_path, {"FAKE_BINANCE_HISTORY_TRADES_PER_DAY": str(trades_per_day)})
    settings = {"symbols": "BTCUSDT", "streams": "trade", "start": DAY, "end": NEXT_DAY, "checkpoint_rows": "2000"}
    process = stack.services.start("history", stack.history_env(**settings), label="history-killed")
    state_file = stack.state_dir / "btcusdt@trade.json"

    def partly_done() -> bool:
        return bool(state_file.exists() and json.loads(state_file.read_text())["partial"])

    wait_until(partly_done, 120, "the import to acknowledge part of the file", interval_s=0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    acknowledged = json.loads(state_file.read_text())["partial"][f"BTCUSDT-trades-{DAY}"]
    assert 0 < acknowledged < trades_per_day

    assert stack.run_history(**settings) == 0
    summary = summary_lines(stack)[-1]
    assert summary["resumed_rows"] == acknowledged
    assert summary["records"] == trades_per_day - acknowledged  # it went on from there, not from the start
    expected = expected_rows(f"data/spot/daily/trades/BTCUSDT/BTCUSDT-trades-{DAY}.zip", trades_per_day)
    wait_until(lambda: len(stored_trades(stack, "BTCUSDT")) >= trades_per_day, 120, "every trade stored")
    assert stored_trades(stack, "BTCUSDT") == trade_columns(expected)


def stored_klines_us(stack: HistoryStack, symbol: str, interval: str) -> list[list[str]]:
    rows = stack.query(
        "SELECT (extract(epoch FROM open_time) * 1000000)::bigint, open::text, high::text, low::text, close::text,"
        " volume::text, (extract(epoch FROM close_time) * 1000000)::bigint, quote_volume::text, trade_count,"
        " taker_buy_base_volume::text, taker_buy_quote_volume::text FROM klines"
        " WHERE symbol = %s AND interval = %s ORDER BY open_time",
        symbol,
        interval,
    )
    return [[str(value) for value in row] for row in rows]


def test_a_month_of_2025_comes_in_monthly_files_in_microseconds_through_429s(
    database: dict[str, str], services: Services, tmp_path: Path
) -> None:
    stack = start_stack(services, database, tmp_path, {"FAKE_BINANCE_ARCHIVE_429_EVERY": "3"})
    assert stack.run_history(symbols="ADABNB", streams="trade,kline_1h", start="2025-01-01", end="2025-02-01") == 0
    assert summary_lines(stack)[-1]["archive_429"] > 0
    log = stack.services.log_tail("history", 50)
    assert "ADABNB-trades-2025-01.zip" in log and "ADABNB-1h-2025-01.zip" in log  # one file each, the month's
    klines = expected_rows("data/spot/monthly/klines/ADABNB/1h/ADABNB-1h-2025-01.zip")
    assert len(klines) == 31 * 24 and klines[0][6].endswith("999999")  # microseconds, as Binance writes them
    wait_until(lambda: len(stored_klines_us(stack, "ADABNB", "1h")) == len(klines), 60, "the month's klines")
    assert stored_klines_us(stack, "ADABNB", "1h") == [row[:11] for row in klines]
    trades = expected_rows("data/spot/monthly/trades/ADABNB/ADABNB-trades-2025-01.zip")
    rows = [[r[0], r[1], r[2], r[4], r[5]] for r in trades]

    def stored() -> list[tuple[object, ...]]:
        return stack.query(
            "SELECT trade_id::text, price::text, quantity::text,"
            " (extract(epoch FROM trade_time) * 1000000)::bigint::text,"
            " CASE WHEN buyer_is_maker THEN 'True' ELSE 'False' END"
            " FROM trades WHERE symbol = 'ADABNB' ORDER BY trade_id"
        )

    wait_until(lambda: len(stored()) == len(rows), 60, "the month's trades")
    assert [list(row) for row in stored()] == rows


def test_rest_import_killed_mid_way_resumes_after_its_last_acknowledged_page(
    database: dict[str, str], services: Services, tmp_path: Path
) -> None:
    # Short pages, so that the import is still running when it is killed.
    stack = start_stack(
        services,
        database,
        tmp_path,
        {"FAKE_BINANCE_HISTORY_TRADES_PER_DAY": "300000", "FAKE_BINANCE_REST_PAGE_CAP": "100"},
    )
    # 4,167 trades in 42 pages of weight 25: within the fake's 1,200 a minute at the whole share.
    settings = {
        "symbols": "BTCUSDT",
        "streams": "trade",
        "start": DAY,
        "end": f"{DAY}T00:20",
        "source": "rest",
        "rest_weight_share": "1",
    }
    process = stack.services.start("history", stack.history_env(**settings), label="history-killed")
    state_file = stack.state_dir / "btcusdt@trade.json"

    def some_pages_done() -> bool:
        return bool(state_file.exists() and json.loads(state_file.read_text())["delivered"])

    wait_until(some_pages_done, 120, "the import to acknowledge some pages", interval_s=0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    [[_, delivered_to]] = json.loads(state_file.read_text())["delivered"]
    end_ms = 1621641600000 + 20 * 60_000
    assert 1621641600000 < delivered_to < end_ms

    assert stack.run_history(**settings) == 0
    expected = [
        r
        for r in expected_rows(f"data/spot/daily/trades/BTCUSDT/BTCUSDT-trades-{DAY}.zip", 300_000)
        if int(r[4]) < end_ms
    ]
    # The rerun asked only for what was not acknowledged (from the last page's last millisecond on).
    assert summary_lines(stack)[-1]["records"] <= sum(1 for r in expected if int(r[4]) >= delivered_to)
    wait_until(lambda: len(stored_trades(stack, "BTCUSDT")) >= len(expected), 60, "every trade stored")
    assert stored_trades(stack, "BTCUSDT") == trade_columns(expected)


def _traded_and_quiet(newest_trade_ms: Callable[[], int]) -> bool:
    try:
        return newest_trade_ms() < time.time() * 1000 - 2000
    except (httpx.HTTPError, IndexError):
        return False  # no trade yet


def test_a_rest_import_up_to_now_holds_only_final_records(
    database: dict[str, str], services: Services, tmp_path: Path
) -> None:
    # A market that traded a little and went quiet: the import's end (now) falls well after its
    # newest trade, with no later trade to prove the period up to now over, and inside a kline
    # still open.
    quiet = {"FAKE_BINANCE_TRADES_PER_SECOND": "50", "FAKE_BINANCE_MAX_TRADES": "100"}
    stack = start_stack(services, database, tmp_path, {**quiet, "FAKE_BINANCE_WAIT_FOR_SUBSCRIBER": "false"})

    def newest_trade_at_the_fake_ms() -> int:
        url = f"{stack.fake_url}/api/v3/trades?symbol=BTCUSDT&limit=1"
        return int(httpx.get(url, timeout=5).raise_for_status().json()[0]["time"])

    wait_until(lambda: _traded_and_quiet(newest_trade_at_the_fake_ms), 30, "a market that traded and went quiet")
    start = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 120))
    code = stack.run_history(symbols="BTCUSDT", streams="trade,aggTrade,kline_1m", start=start, end="", source="rest")
    assert code == 0, stack.services.log_tail("history")
    held = {
        stream: max(m["end_ms"] for s, m in raw_markers(stack) if s == stream and m["kind"] == "held")
        for stream in ("btcusdt@trade", "btcusdt@aggTrade", "btcusdt@kline_1m")
    }

    def stored_held_end(stream: str) -> object:
        return stack.query(
            "SELECT (extract(epoch FROM max(end_time)) * 1000)::bigint FROM coverage"
            " WHERE symbol = 'BTCUSDT' AND stream = %s AND kind = 'held'",
            stream.partition("@")[2],
        )[0][0]

    # Each marker is stored after its records (same partition): then the store has them all.
    for stream, end_ms in held.items():

        def stored(stream: str = stream, end_ms: int = end_ms) -> bool:
            return stored_held_end(stream) == end_ms

        wait_until(stored, 60, f"{stream} held")
    # The kline open at the import's end was published, but the held period ends where it starts.
    assert stack.query(
        "SELECT (extract(epoch FROM open_time) * 1000)::bigint, is_closed FROM klines"
        " WHERE symbol = 'BTCUSDT' AND interval = '1m' ORDER BY open_time DESC LIMIT 1"
    ) == [(held["btcusdt@kline_1m"], False)]
    # Trades are held up to the newest one's time (more may follow in its millisecond), not to now.
    for stream, table in (("btcusdt@trade", "trades"), ("btcusdt@aggTrade", "agg_trades")):
        [(newest_trade_ms,)] = stack.query(
            f"SELECT (extract(epoch FROM max(trade_time)) * 1000)::bigint FROM {table} WHERE symbol = 'BTCUSDT'"
        )
        assert held[stream] == newest_trade_ms, stream
