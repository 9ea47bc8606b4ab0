"""The small HTTP rules, each over a generated class of requests (hypothesis): HEAD is GET
without a body on every GET route; a symbol with trailing whitespace or a newline is a 422; an
ISO 8601 basic date (20251122) is a 422 saying so, not epoch milliseconds; a /v1 parameter given
twice is a 422 naming it; 404 and 405 bodies have the errors layout of every other error."""

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.api_helpers import TradeRow, asgi_client, migrated, to_ms

pytestmark = pytest.mark.integration

T0 = to_ms(datetime(2025, 11, 22, 19, 42, tzinfo=UTC))
EXAMPLES = settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))

GET_PATHS = [
    "/health",
    "/ready",
    "/metrics",
    "/",
    "/v1/prices/latest?symbol=BTCUSDT",
    "/v1/prices/at?symbol=BTCUSDT&timestamp=2025-11-22T19:42:00",
    "/v1/prices/minmax?symbol=BTCUSDT&minute=2025-11-22T19:42",
    "/v1/candles?symbol=BTCUSDT&interval=1m",
    "/v1/stats?symbol=BTCUSDT&start=2025-11-22&end=2025-11-23",
    "/v1/trades?symbol=BTCUSDT&start=2025-11-22&end=2025-11-23",
    "/v1/trades?symbol=BTCUSDT&start=2025-11-22&end=2025-11-23&format=json",
    "/v1/symbols",
    "/v1/status",
    "/api/v3/ping",
    "/api/v3/klines?symbol=BTCUSDT&interval=1m",
    "/api/v3/ticker/price",
    "/v1/prices/latest?symbol=NOPE",
]


@pytest.fixture()
def client(database: dict[str, str]) -> Iterator[TestClient]:
    migrated(database).trades(
        [
            TradeRow("BTCUSDT", 1 + i, Decimal("84515.96"), Decimal("0.0012"), T0 + i * 700, i % 2 == 0)
            for i in range(20)
        ]
    )
    with asgi_client(database) as client:
        yield client


def test_head_is_get_without_a_body_on_every_get_route(client: TestClient) -> None:
    for path in GET_PATHS:
        got, head = client.get(path), client.head(path)
        assert head.status_code == got.status_code, path
        assert head.content == b"", path
        assert head.headers.get("content-type") == got.headers.get("content-type"), path
        if "content-length" in got.headers and path != "/metrics":  # metrics count the request itself
            assert head.headers["content-length"] == got.headers["content-length"], path


@given(
    symbol=st.sampled_from(["BTCUSDT", "btcusdt", "ETHUSDT"]),
    tail=st.text(alphabet=" \t\n\r\x0b\x0c", min_size=1, max_size=3),
    asked=st.sampled_from(
        [
            ("/v1/prices/latest", {}),
            ("/v1/candles", {"interval": "1m"}),
            ("/v1/stats", {"start": "2025-11-22", "end": "2025-11-23"}),
        ]
    ),
)
@EXAMPLES
def test_a_symbol_with_trailing_whitespace_is_a_422(
    client: TestClient, symbol: str, tail: str, asked: tuple[str, dict[str, str]]
) -> None:
    path, others = asked
    response = client.get(path, params={"symbol": symbol + tail, **others})
    assert response.status_code == 422, (symbol + tail, response.text)
    assert [error["parameter"] for error in response.json()["errors"]] == ["symbol"]


@given(day=st.dates(min_value=date(1970, 1, 2), max_value=date(8999, 12, 31)))
@EXAMPLES
def test_an_iso_basic_date_is_not_read_as_epoch_milliseconds(client: TestClient, day: date) -> None:
    basic = day.strftime("%Y%m%d")
    response = client.get("/v1/prices/at", params={"symbol": "BTCUSDT", "timestamp": basic})
    assert response.status_code == 422, (basic, response.text)
    assert response.json()["errors"][0]["parameter"] == "timestamp"
    assert day.isoformat() in response.json()["detail"]


@given(
    case=st.sampled_from(
        [
            ("/v1/prices/latest", "symbol", ["BTCUSDT", "ETHUSDT"]),
            ("/v1/prices/at", "timestamp", ["2025-11-22T19:42:01", "2025-11-22T19:42:05"]),
            ("/v1/candles", "interval", ["1m", "1h"]),
            ("/v1/candles", "limit", ["10", "10"]),
            ("/v1/stats", "start", ["2025-11-22", "2025-11-21"]),
            ("/v1/trades", "format", ["csv", "json"]),
        ]
    ),
    repeats=st.integers(min_value=2, max_value=4),
)
@EXAMPLES
def test_a_parameter_given_twice_under_v1_is_a_422_naming_it(
    client: TestClient, case: tuple[str, str, list[str]], repeats: int
) -> None:
    path, name, values = case
    base = {
        "symbol": "BTCUSDT",
        "timestamp": "2025-11-22T19:42:01",
        "interval": "1m",
        "start": "2025-11-22",
        "end": "2025-11-23",
    }
    query = [(key, value) for key, value in base.items() if key != name]
    query += [(name, values[index % 2]) for index in range(repeats)]
    response = client.get(path, params=query)
    assert response.status_code == 422, (path, query, response.text)
    assert [error["parameter"] for error in response.json()["errors"]] == [name]


def test_404_and_405_bodies_have_the_errors_layout(client: TestClient) -> None:
    missing = client.get("/v1/no-such-thing")
    assert missing.status_code == 404 and missing.json() == {"detail": "Not Found", "errors": []}
    wrong_method = client.post("/v1/prices/latest")
    assert wrong_method.status_code == 405
    assert set(wrong_method.json()) == {"detail", "errors"} and wrong_method.json()["errors"] == []
    assert "GET" in wrong_method.headers["allow"]
