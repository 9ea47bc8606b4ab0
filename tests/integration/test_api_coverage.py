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


def test_answers_inside_a_hole_are_not_invented_and_say_so(database: dict[str, str]) -> None:
    store = migrated(database)
    # Trades at 08:00:30 and 08:07:30; the store knows it lacks 08:02..08:05.
    store.trades(
        [
            TradeRow("BTCUSDT", 1, Decimal("100.5"), Decimal("1"), T0 + 30_000, False),
            TradeRow("BTCUSDT", 2, Decimal("101.5"), Decimal("1"), T0 + 7 * MIN + 30_000, False),
        ]
    )
    store.coverage([("BTCUSDT", "trade", "hole", T0 + 2 * MIN, T0 + 5 * MIN, "producer down; REST answered 418")])
    with asgi_client(database) as client:
        candles = client.get("/v1/candles", params={"symbol": "BTCUSDT", "interval": "1m", "start": T0}).json()
        klines = client.get("/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "1m", "startTime": T0}).json()
        in_hole = client.get("/v1/prices/at", params={"symbol": "BTCUSDT", "timestamp": T0 + 3 * MIN})
        after_hole = client.get("/v1/prices/at", params={"symbol": "BTCUSDT", "timestamp": T0 + 6 * MIN})
        before_hole = client.get("/v1/prices/at", params={"symbol": "BTCUSDT", "timestamp": T0 + MIN})
        minute = client.get("/v1/prices/minmax", params={"symbol": "BTCUSDT", "minute": T0 + 4 * MIN})
        quiet = client.get("/v1/prices/minmax", params={"symbol": "BTCUSDT", "minute": T0 + 6 * MIN})
        stats = client.get("/v1/stats", params={"symbol": "BTCUSDT", "start": T0, "end": T0 + 10 * MIN}).json()
        stats_before = client.get("/v1/stats", params={"symbol": "BTCUSDT", "start": T0, "end": T0 + MIN}).json()
    # 08:00 traded, 08:01 flat at its close; 08:02-08:06 absent (in the hole, then no known close); 08:07 traded.
    opens = ["08:00", "08:01", "08:07"]
    assert [c["open_time"][11:16] for c in candles["candles"]] == opens
    assert candles["holes"] == [
        {
            "start": "2025-07-03T08:02:00Z",
            "end": "2025-07-03T08:05:00Z",
            "origin": "ws",
            "detail": "producer down; REST answered 418",
        }
    ]
    assert [k[0] for k in klines] == [T0, T0 + MIN, T0 + 7 * MIN]
    for answer, parameter in ((in_hole, "timestamp"), (after_hole, "timestamp"), (minute, "minute")):
        assert answer.status_code == 404, answer.text
        assert answer.json()["errors"][0]["parameter"] == parameter
        assert "lacks BTCUSDT trades from 2025-07-03T08:02:00" in answer.json()["detail"]
    assert before_hole.status_code == 200 and before_hole.json()["price"] == "100.5"
    # The range's figures are of the stored trades, and the answer names the hole they lack.
    assert stats["trade_count"] == 2 and stats["holes"] == candles["holes"]
    assert stats_before["holes"] == []
    # 08:06 is held-or-unknown and had no trade: its high and low are null, as before.
    assert quiet.status_code == 200 and quiet.json()["trade_count"] == 0
