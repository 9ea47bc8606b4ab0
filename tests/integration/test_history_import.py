"""`python -m producer history` end to end: the fake's archive and REST history -> Kafka -> PostgreSQL -> api.

Every service runs as a process with the command and environment docker-compose.yml gives it
(the `history` service included), on the test stack's real Kafka and PostgreSQL.
"""

import csv
import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx
import psycopg2
import pytest
from binance.client import Client

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
