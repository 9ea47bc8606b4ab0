"""Trades dated anywhere the consumer accepts (1970-01-01 to 9999-12-31T23:59:59.999999Z) leave
every endpoint answering a 2xx or a 4xx, never a 500; trade times print at the precision they
were stored, in JSON and CSV, and far-future ones exactly."""

import csv
import io
import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg2
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import libpq_dsn
from tests.integration.api_helpers import asgi_client, migrated

pytestmark = pytest.mark.integration

FIRST = datetime(1970, 1, 1, tzinfo=UTC)
LAST = datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
# A few days at either end of the accepted range, to the microsecond.
edge_times = st.one_of(
    st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(1970, 1, 5), timezones=st.just(UTC)),
    st.datetimes(min_value=datetime(9999, 12, 27), max_value=LAST.replace(tzinfo=None), timezones=st.just(UTC)),
    st.sampled_from([FIRST, LAST]),
)

INTERVALS = ("1s", "1m", "1h", "1d", "3d", "1w", "1M")


def insert_trades(owner_url: str, symbol: str, times: list[datetime]) -> None:
    """Trades and their rollups, with microsecond times, through plain SQL (rollups grouped by
    PostgreSQL's date_trunc, independently of the consumer's statement)."""
    with psycopg2.connect(libpq_dsn(owner_url)) as connection, connection.cursor() as cursor:
        for trade_id, moment in enumerate(sorted(times), start=1):
            cursor.execute(
                "INSERT INTO trades (symbol, trade_id, price, quantity, trade_time, buyer_is_maker)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (symbol, trade_id, Decimal("1.50000000"), Decimal("0.10000000"), moment, trade_id % 2 == 0),
            )
        for table, unit in (("trade_candles_1s", "second"), ("trade_candles_1m", "minute")):
            cursor.execute(
                f"INSERT INTO {table} (symbol, open_time, open, high, low, close, volume, quote_volume, trade_count,"
                " taker_buy_base_volume, taker_buy_quote_volume, first_trade_id, last_trade_id, price_sum)"
                " SELECT symbol, date_trunc(%s, trade_time), min(price), max(price), min(price),"
                " max(price), sum(quantity), sum(price * quantity), count(*),"
                " coalesce(sum(quantity) FILTER (WHERE NOT buyer_is_maker), 0),"
                " coalesce(sum(price * quantity) FILTER (WHERE NOT buyer_is_maker), 0),"
                " min(trade_id), max(trade_id), sum(price)"
                " FROM trades WHERE symbol = %s GROUP BY 1, 2",
                (unit, symbol),
            )
    connection.close()


def requests_for(symbol: str, moment: datetime) -> list[str]:
    """Every GET route, asked about the symbol without times (its newest data) and around `moment`
    (clamped to what the api accepts as a query time)."""
    asked = min(moment, datetime(8999, 12, 31, tzinfo=UTC))
    ms = int((asked - FIRST) / timedelta(milliseconds=1))
    iso = asked.strftime("%Y-%m-%dT%H:%M:%S")
    day = f"start={asked:%Y-%m-%d}&end={(asked + timedelta(days=1)):%Y-%m-%d}"
    paths = [
        f"/v1/prices/latest?symbol={symbol}",
        "/v1/prices/latest",
        f"/v1/prices/at?symbol={symbol}&timestamp={iso}",
        f"/v1/prices/minmax?symbol={symbol}&minute={iso}",
        f"/v1/stats?symbol={symbol}&{day}",
        f"/v1/trades?symbol={symbol}&{day}&format=json",
        f"/v1/trades?symbol={symbol}&{day}&format=csv",
        f"/v1/reconcile?symbol={symbol}&start={iso}&end={ms + 60_000}",
        "/v1/symbols",
        "/v1/status",
        f"/api/v3/trades?symbol={symbol}",
        f"/api/v3/historicalTrades?symbol={symbol}&fromId=1",
        f"/api/v3/aggTrades?symbol={symbol}",
        f"/api/v3/ticker/price?symbol={symbol}",
        "/api/v3/ticker/price",
    ]
    for interval in INTERVALS:
        paths += [
            f"/v1/candles?symbol={symbol}&interval={interval}",
            f"/v1/candles?symbol={symbol}&interval={interval}&start={iso}",
            f"/v1/candles?symbol={symbol}&interval={interval}&end={iso}",
            f"/v1/indicators/sma?symbol={symbol}&interval={interval}&windows=2,3",
            f"/api/v3/klines?symbol={symbol}&interval={interval}",
            f"/api/v3/klines?symbol={symbol}&interval={interval}&startTime={ms}",
            f"/api/v3/klines?symbol={symbol}&interval={interval}&endTime={ms}",
            f"/api/v3/uiKlines?symbol={symbol}&interval={interval}&timeZone=-12:00",
            f"/api/v3/uiKlines?symbol={symbol}&interval={interval}&timeZone=+14:00",
        ]
    return paths


def test_trades_at_the_edges_of_time_never_make_an_endpoint_fail(database: dict[str, str]) -> None:
    migrated(database)
    names = (f"E{n}USDT" for n in itertools.count())
    with asgi_client(database) as client:

        @given(times=st.lists(edge_times, min_size=1, max_size=4, unique=True))
        @settings(max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def check(times: list[datetime]) -> None:
            symbol = next(names)
            insert_trades(database["owner"], symbol, times)
            failures = []
            for path in requests_for(symbol, times[0]):
                try:
                    response = client.get(path)
                except Exception as error:  # the test client re-raises what the app raised
                    failures.append(f"{path}: {error!r}")
                    continue
                if response.status_code >= 500:
                    failures.append(f"{path}: {response.status_code} {response.text[:200]}")
            assert not failures, "\n".join(failures)

        check()


def test_trade_times_print_at_their_stored_precision(database: dict[str, str]) -> None:
    migrated(database)
    times = [datetime(2025, 7, 3, 8, 30, 5, 123_456, tzinfo=UTC), LAST]
    insert_trades(database["owner"], "BTCUSDT", times)
    with asgi_client(database) as client:
        exported = client.get("/v1/trades?symbol=BTCUSDT&start=2025-07-03&end=2025-07-04&format=csv")
        assert [row["trade_time"] for row in csv.DictReader(io.StringIO(exported.text))] == [
            "2025-07-03T08:30:05.123456Z"
        ]
        page = client.get("/v1/trades?symbol=BTCUSDT&start=2025-07-03&end=2025-07-04&format=json").json()
        assert [trade["trade_time"] for trade in page["trades"]] == ["2025-07-03T08:30:05.123456Z"]
        latest = assert_ok(client, "/v1/prices/latest?symbol=BTCUSDT")
        assert latest["trade_time"] == "9999-12-31T23:59:59.999999Z"


def assert_ok(client: TestClient, path: str) -> dict[str, object]:
    response = client.get(path)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body
