"""GET /v1/coverage against a real PostgreSQL: held periods and holes per stream, filtered by
stream and range, and a 4xx naming each bad parameter."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.coverage import STREAM_TYPES
from tests.integration.api_helpers import TradeRow, asgi_client, migrated, to_ms

pytestmark = pytest.mark.integration

T0 = to_ms(datetime(2025, 7, 3, 8, 0, tzinfo=UTC))
MIN = 60_000


def fill(database: dict[str, str]) -> None:
    store = migrated(database)
    store.trades([TradeRow("BTCUSDT", 1, Decimal("1.5"), Decimal("1"), T0 + 1, False)])
    store.coverage(
        [
            ("BTCUSDT", "trade", "held", T0, T0 + 10 * MIN, ""),
            ("BTCUSDT", "trade", "hole", T0 + 10 * MIN, T0 + 12 * MIN, "producer down; REST answered 429"),
            ("BTCUSDT", "trade", "held", T0 + 12 * MIN, T0 + 20 * MIN, ""),
            ("BTCUSDT", "kline_1m", "held", T0, T0 + 5 * MIN, ""),
        ]
    )


def test_coverage_lists_each_streams_held_periods_and_holes(database: dict[str, str]) -> None:
    fill(database)
    with asgi_client(database) as client:
        answer = client.get("/v1/coverage", params={"symbol": "btcusdt"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "symbol": "BTCUSDT",
        "streams": [
            {
                "stream": "kline_1m",
                "held": [
                    {"start": "2025-07-03T08:00:00Z", "end": "2025-07-03T08:05:00Z", "origin": "ws", "detail": ""}
                ],
                "holes": [],
            },
            {
                "stream": "trade",
                "held": [
                    {"start": "2025-07-03T08:00:00Z", "end": "2025-07-03T08:10:00Z", "origin": "ws", "detail": ""},
                    {"start": "2025-07-03T08:12:00Z", "end": "2025-07-03T08:20:00Z", "origin": "ws", "detail": ""},
                ],
                "holes": [
                    {
                        "start": "2025-07-03T08:10:00Z",
                        "end": "2025-07-03T08:12:00Z",
                        "origin": "ws",
                        "detail": "producer down; REST answered 429",
                    }
                ],
            },
        ],
    }


def test_coverage_of_one_stream_within_a_range(database: dict[str, str]) -> None:
    fill(database)
    with asgi_client(database) as client:
        answer = client.get(
            "/v1/coverage",
            params={"symbol": "BTCUSDT", "stream": "trade", "start": "2025-07-03T08:11", "end": "2025-07-03T08:13"},
        ).json()
        empty = client.get("/v1/coverage", params={"symbol": "BTCUSDT", "stream": "aggTrade"}).json()
    assert [period["start"] for period in answer["streams"][0]["held"]] == ["2025-07-03T08:12:00Z"]
    assert [period["start"] for period in answer["streams"][0]["holes"]] == ["2025-07-03T08:10:00Z"]
    assert empty == {"symbol": "BTCUSDT", "streams": [{"stream": "aggTrade", "held": [], "holes": []}]}


def test_a_stream_that_is_not_stored_is_a_422_naming_it(database: dict[str, str]) -> None:
    migrated(database)
    with asgi_client(database) as client:

        @settings(max_examples=60, deadline=None)
        @given(st.text(max_size=30).filter(lambda stream: stream not in STREAM_TYPES))
        def refused(stream: str) -> None:
            answer = client.get("/v1/coverage", params={"symbol": "BTCUSDT", "stream": stream})
            assert answer.status_code == 422, answer.text
            assert [error["parameter"] for error in answer.json()["errors"]] == ["stream"]

        refused()


@pytest.mark.parametrize(
    ("params", "parameter", "status"),
    [
        ({"symbol": "BTC-USDT"}, "symbol", 422),
        ({"symbol": "NOPE"}, "symbol", 404),
        ({}, "symbol", 422),
        ({"symbol": "BTCUSDT", "start": "yesterday"}, "start", 422),
        ({"symbol": "BTCUSDT", "start": "2025-07-03T09:00", "end": "2025-07-03T08:00"}, "end", 422),
    ],
    ids=["malformed symbol", "unknown symbol", "no symbol", "bad start", "end before start"],
)
def test_a_bad_parameter_is_named(
    database: dict[str, str], params: dict[str, str], parameter: str, status: int
) -> None:
    fill(database)
    with asgi_client(database) as client:
        answer = client.get("/v1/coverage", params=params)
    assert answer.status_code == status, answer.text
    assert [error["parameter"] for error in answer.json()["errors"]] == [parameter]


def test_coverage_is_in_the_openapi_document(database: dict[str, str]) -> None:
    migrated(database)
    with asgi_client(database) as client:
        operation = client.get("/openapi.json").json()["paths"]["/v1/coverage"]["get"]
    assert {parameter["name"] for parameter in operation["parameters"]} == {"symbol", "stream", "start", "end"}
