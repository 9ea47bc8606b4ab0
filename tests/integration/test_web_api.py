"""The api's side of the web page on a real PostgreSQL: GET /v1/status from the consumer's
tables, the live price stream (SSE) over the trades table, its client bound, and `/` with its
static files."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest

from api.app import create_app
from api.live import PriceFeed, engine_poll
from tests.conftest import wait_until
from tests.integration.api_helpers import TradeRow, api_settings, asgi_client, live_api, migrated, to_ms
from tests.integration.test_web_page import insert_pipeline_status, insert_trade

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)
TRADES = [
    TradeRow("BTCUSDT", 100, Decimal("84509.99000000"), Decimal("0.00120000"), to_ms(NOW) - 5000, False),
    TradeRow("BTCUSDT", 101, Decimal("84510.00000000"), Decimal("0.10000000"), to_ms(NOW) - 4000, True),
    TradeRow("ETHUSDT", 7, Decimal("2611.82000000"), Decimal("1.00000000"), to_ms(NOW) - 3000, False),
]


def test_status_reports_lag_dead_letters_and_freshness(database: dict[str, str]) -> None:
    store = migrated(database)
    with asgi_client(database) as client:
        empty = client.get("/v1/status")
        assert empty.status_code == 200, empty.text
        assert empty.json()["lag_by_group"] == [] and empty.json()["symbols"] == []
        assert empty.json()["dead_letters"] == {"total": 0, "last_24h": 0, "newest_at": None, "by_reason": []}

        store.trades(TRADES)
        insert_pipeline_status(database["owner"], NOW)
        status = client.get("/v1/status").json()
    assert status["lag_by_group"] == [
        {
            "group_id": "binance-consumer",
            "topic": "binance.raw",
            "lag": 12,
            "partitions": 3,
            "oldest_update": f"{NOW - timedelta(seconds=3):%Y-%m-%dT%H:%M:%S}Z",
        }
    ]
    assert [(p["partition"], p["next_offset"], p["high_watermark"], p["lag"]) for p in status["consumer_lag"]] == [
        (0, 100, 105, 5),
        (1, 200, 207, 7),
        (2, 50, 50, 0),
    ]
    dead = status["dead_letters"]
    assert (dead["total"], dead["last_24h"]) == (3, 2)
    assert [(r["reason"], r["total"], r["last_24h"]) for r in dead["by_reason"]] == [
        ("invalid_json", 2, 1),
        ("schema_violation", 1, 1),
    ]
    assert dead["newest_at"] == f"{NOW - timedelta(minutes=1):%Y-%m-%dT%H:%M:%S}Z"
    assert [(s["symbol"], s["last_trade_id"]) for s in status["symbols"]] == [("BTCUSDT", 101), ("ETHUSDT", 7)]
    assert status["symbols"][0]["last_trade_time"] == f"{NOW - timedelta(seconds=4):%Y-%m-%dT%H:%M:%S}Z"


def events(response: httpx.Response) -> Iterator[tuple[str, dict[str, Any]]]:
    name = None
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: ") and name is not None:
            yield name, orjson.loads(line.removeprefix("data: "))
            name = None


def next_prices(stream: Iterator[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    for name, body in stream:
        if name == "prices":
            prices: list[dict[str, Any]] = body["prices"]
            return prices
    raise AssertionError("the stream ended without prices")


def test_price_stream_over_the_database_and_its_client_bound(database: dict[str, str]) -> None:
    store = migrated(database)
    store.trades(TRADES)
    app = create_app(api_settings(database))
    app.state.price_feed = PriceFeed(engine_poll(app.state.engine), interval_s=0.2, max_clients=2)
    timeout = httpx.Timeout(10)
    with live_api(app) as url, httpx.Client(base_url=url, timeout=timeout) as client:
        with client.stream("GET", "/v1/stream/prices") as first, client.stream("GET", "/v1/stream/prices") as second:
            assert first.status_code == 200
            assert first.headers["content-type"].startswith("text/event-stream")
            stream = events(first)
            snapshot = next_prices(stream)
            assert [(p["symbol"], p["price"], p["trade_id"]) for p in snapshot] == [
                ("BTCUSDT", "84510.00000000", 101),
                ("ETHUSDT", "2611.82000000", 7),
            ]
            # Held until the end: dropping a half-read httpx line iterator closes its connection.
            second_stream = events(second)
            assert next_prices(second_stream) == snapshot

            # A third client is refused, in the /v1 error layout, while two are connected.
            third = client.get("/v1/stream/prices")
            assert third.status_code == 503
            assert third.headers["retry-after"] == "5"
            assert "2 live price clients connected already" in third.json()["detail"]

            trade = TradeRow("BTCUSDT", 102, Decimal("84511.50000000"), Decimal("0.5"), to_ms(datetime.now(UTC)), False)
            insert_trade(database["owner"], trade)
            change = next_prices(stream)
            assert [(p["symbol"], p["price"], p["trade_id"]) for p in change] == [("BTCUSDT", "84511.50000000", 102)]
            assert next_prices(second_stream) == change
        # Both streams closed: the slots are free again, once the server has noticed the
        # disconnects (it learns of them on its next write, so not at once on a busy machine).

        def slot_free() -> bool:
            with client.stream("GET", "/v1/stream/prices") as again:
                return again.status_code == 200

        wait_until(slot_free, 15, "a stream slot to be free again")


def test_the_page_and_its_files_are_served(database: dict[str, str]) -> None:
    migrated(database)
    with asgi_client(database) as client:
        page = client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["cache-control"] == "no-cache"
        assert '<section id="tiles"' in page.text
        for asset in ("app.js", "app.css"):
            response = client.get(f"/static/{asset}")
            assert response.status_code == 200 and len(response.content) > 1000
        assert client.get("/static/nope.js").status_code == 404
        # The page and the stream stay out of the OpenAPI document; the status is in it.
        paths = client.get("/openapi.json").json()["paths"]
        assert "/v1/status" in paths and "/" not in paths and "/v1/stream/prices" not in paths
