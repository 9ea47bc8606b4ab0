"""The /v1 price questions against a real PostgreSQL filled by hand: latest, price at a second,
a minute's high and low, symbols, stats; and health, readiness, metrics."""

from datetime import UTC, datetime
from decimal import Decimal

import psycopg2
import pytest

from tests.integration.api_helpers import TradeRow, asgi_client, migrated, to_ms

pytestmark = pytest.mark.integration

T0 = to_ms(datetime(2025, 7, 3, 8, 30, 0, tzinfo=UTC))


def trade(symbol: str, trade_id: int, price: str, quantity: str, at_ms: int, maker: bool = False) -> TradeRow:
    return TradeRow(symbol, trade_id, Decimal(price), Decimal(quantity), at_ms, maker)


BTC = [
    trade("BTCUSDT", 100, "61928.31000000", "0.01000000", T0 + 35_984),
    trade("BTCUSDT", 101, "61930.00000000", "0.50000000", T0 + 36_000, maker=True),
    # Two trades in the same millisecond: the larger id is the later one.
    trade("BTCUSDT", 102, "61931.50000000", "0.20000000", T0 + 36_999),
    trade("BTCUSDT", 103, "61925.10000000", "1.00000000", T0 + 36_999, maker=True),
    trade("BTCUSDT", 104, "61940.00000000", "0.30000000", T0 + 59_999),
    # The next minute (08:31) has no trades; 08:32 has one.
    trade("BTCUSDT", 105, "61950.00000000", "0.10000000", T0 + 120_500),
]
ETH = [
    trade("ETHUSDT", 7, "2611.82000000", "1.00000000", T0 + 10_000),
    trade("ETHUSDT", 8, "2609.47000000", "2.00000000", T0 + 20_000, maker=True),
]


def test_latest_price_at_a_second_and_minute_range(database: dict[str, str]) -> None:
    store = migrated(database)
    store.trades(BTC + ETH)
    with asgi_client(database) as client:
        latest = client.get("/v1/prices/latest", params={"symbol": "btcusdt"})
        assert latest.status_code == 200, latest.text
        assert latest.json() == {
            "symbol": "BTCUSDT",
            "price": "61950.00000000",
            "quantity": "0.10000000",
            "trade_id": 105,
            "trade_time": "2025-07-03T08:32:00.500000Z",
        }
        every = client.get("/v1/prices/latest").json()["prices"]
        assert [(p["symbol"], p["trade_id"]) for p in every] == [("BTCUSDT", 105), ("ETHUSDT", 8)]

        # The end of 08:30:36 is 08:30:36.999: trade 103 (same ms as 102, larger id).
        at = client.get("/v1/prices/at", params={"symbol": "BTCUSDT", "timestamp": "2025-07-03T08:30:36"})
        assert at.status_code == 200, at.text
        assert at.json() == {
            "symbol": "BTCUSDT",
            "timestamp": "2025-07-03T08:30:36Z",
            "price": "61925.10000000",
            "quantity": "1.00000000",
            "trade_id": 103,
            "actual_timestamp": "2025-07-03T08:30:36.999000Z",
            "source": "trades",
        }
        # The same second as epoch milliseconds, and with a zone: the same answer.
        same = [
            client.get("/v1/prices/at", params={"symbol": "BTCUSDT", "timestamp": str(T0 + 36_500)}),
            client.get("/v1/prices/at", params={"symbol": "BTCUSDT", "timestamp": "2025-07-03T10:30:36.2+02:00"}),
        ]
        assert all(response.json() == at.json() for response in same)
        # 08:30:35 ends before 35.984? No: 35.984 is inside 08:30:35, so trade 100 is in effect.
        assert (
            client.get("/v1/prices/at", params={"symbol": "BTCUSDT", "timestamp": "2025-07-03T08:30:35"}).json()[
                "trade_id"
            ]
            == 100
        )
        # Later seconds without trades: the last trade before them.
        later = client.get("/v1/prices/at", params={"symbol": "BTCUSDT", "timestamp": "2025-07-03T08:31:30Z"})
        assert later.json()["trade_id"] == 104
        before = client.get("/v1/prices/at", params={"symbol": "BTCUSDT", "timestamp": "2025-07-03T08:30:34"})
        assert before.status_code == 404
        assert before.json()["errors"][0]["parameter"] == "timestamp"
        assert "no BTCUSDT trade stored at or before 2025-07-03T08:30:34" in before.json()["detail"]

        minute = client.get("/v1/prices/minmax", params={"symbol": "BTCUSDT", "minute": "2025-07-03T08:30"})
        assert minute.status_code == 200, minute.text
        assert minute.json() == {
            "symbol": "BTCUSDT",
            "minute": "2025-07-03T08:30:00Z",
            "high": "61940.00000000",
            "low": "61925.10000000",
            "open": "61928.31000000",
            "close": "61940.00000000",
            "volume": "2.01000000",
            "quote_volume": str(sum(t.price * t.quantity for t in BTC[:5])),
            "trade_count": 5,
            "source": "trades",
        }
        empty = client.get("/v1/prices/minmax", params={"symbol": "BTCUSDT", "minute": "2025-07-03T08:31:45"})
        assert empty.status_code == 200
        assert empty.json()["high"] is None and empty.json()["low"] is None
        assert empty.json()["trade_count"] == 0 and empty.json()["minute"] == "2025-07-03T08:31:00Z"


def test_unknown_and_malformed_input_is_a_4xx_naming_the_parameter(database: dict[str, str]) -> None:
    store = migrated(database)
    store.trades(BTC)
    with asgi_client(database) as client:
        cases = {
            ("/v1/prices/latest", "symbol=NOSUCHPAIR"): (404, "symbol"),
            ("/v1/prices/latest", "symbol=BTC-USDT"): (422, "symbol"),
            ("/v1/prices/at", "symbol=NOSUCHPAIR&timestamp=2025-07-03T08:30:36"): (404, "symbol"),
            ("/v1/prices/at", "symbol=BTCUSDT&timestamp=yesterday"): (422, "timestamp"),
            ("/v1/prices/at", "symbol=BTCUSDT&timestamp=99999999999999999"): (422, "timestamp"),
            ("/v1/prices/at", "symbol=BTCUSDT"): (422, "timestamp"),
            ("/v1/prices/minmax", "symbol=NOSUCHPAIR&minute=2025-07-03T08:30"): (404, "symbol"),
            ("/v1/prices/minmax", "symbol=BTCUSDT&minute=1969-12-31T23:59"): (422, "minute"),
            ("/v1/stats", "symbol=BTCUSDT&start=2025-07-03T09:00&end=2025-07-03T08:00"): (422, "end"),
            ("/v1/stats", "symbol=BTCUSDT&start=2024-01-01&end=2025-07-01"): (422, "end"),
            ("/v1/candles", "symbol=BTCUSDT&interval=2m"): (422, "interval"),
            ("/v1/candles", "symbol=BTCUSDT&interval=1m&limit=5001"): (422, "limit"),
            ("/v1/candles", "symbol=BTCUSDT&interval=1m&limit=0"): (422, "limit"),
            ("/v1/candles", "symbol=NOSUCHPAIR&interval=1m"): (404, "symbol"),
            ("/v1/indicators/sma", "symbol=BTCUSDT&interval=1m&windows=10,x"): (422, "windows"),
            ("/v1/trades", "symbol=BTCUSDT&start=2025-07-03&end=2025-07-03"): (422, "end"),
            ("/v1/trades", "symbol=BTCUSDT&start=2025-07-03&end=2025-07-04&format=xml"): (422, "format"),
            ("/v1/reconcile", "symbol=BTCUSDT&start=2025-07-03&end=2025-07-04"): (422, "end"),
        }
        for (path, query), (status, parameter) in cases.items():
            response = client.get(f"{path}?{query}")
            assert response.status_code == status, (path, query, response.text)
            body = response.json()
            assert isinstance(body["detail"], str) and parameter in body["detail"], (path, query, body)
            assert [error["parameter"] for error in body["errors"]] == [parameter], (path, query, body)
        too_long = client.get("/v1/prices/latest?symbol=" + "A" * 5000)
        assert too_long.status_code == 414
        with_body = client.request("GET", "/v1/prices/latest", content=b"x" * 10)
        assert with_body.status_code == 413


def test_symbols_and_stats(database: dict[str, str]) -> None:
    store = migrated(database)
    store.trades(BTC + ETH)
    with asgi_client(database) as client:
        listed = client.get("/v1/symbols").json()["symbols"]
        assert [(s["symbol"], s["first_trade_id"], s["last_trade_id"], s["trade_count"]) for s in listed] == [
            ("BTCUSDT", 100, 105, 6),
            ("ETHUSDT", 7, 8, 2),
        ]
        assert listed[0]["first_trade_time"] == "2025-07-03T08:30:35.984000Z"
        assert listed[0]["last_trade_time"] == "2025-07-03T08:32:00.500000Z"

        # [08:30:36, 08:32:00.500): trades 101..104.
        response = client.get(
            "/v1/stats", params={"symbol": "BTCUSDT", "start": "2025-07-03T08:30:36", "end": str(T0 + 120_500)}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        chosen = BTC[1:5]
        volume = sum(t.quantity for t in chosen)
        quote = sum(t.price * t.quantity for t in chosen)
        assert body["trade_count"] == 4
        assert Decimal(body["mean_price"]) == pytest.approx(sum(t.price for t in chosen) / 4, abs=Decimal("1e-12"))
        assert Decimal(body["vwap"]) == pytest.approx(quote / volume, abs=Decimal("1e-12"))
        assert (body["high"], body["low"]) == ("61940.00000000", "61925.10000000")
        assert Decimal(body["volume"]) == volume and Decimal(body["quote_volume"]) == quote
        empty = client.get(
            "/v1/stats", params={"symbol": "ETHUSDT", "start": "2025-07-03T09:00", "end": "2025-07-03T10:00"}
        ).json()
        assert empty["trade_count"] == 0 and empty["vwap"] is None and empty["volume"] == "0"


def test_health_ready_and_metrics(database: dict[str, str]) -> None:
    migrated(database)
    with asgi_client(database) as client:
        assert client.get("/health").json() == {"status": "ok"}
        assert client.get("/ready").json() == {"status": "ready"}
        client.get("/v1/prices/latest", params={"symbol": "NOSUCHPAIR"})
        metrics = client.get("/metrics")
        assert metrics.status_code == 200
        assert metrics.headers["content-type"].startswith("text/plain")
        text = metrics.text
        assert 'api_requests_total{method="GET",route="/v1/prices/latest",status="404"} 1.0' in text
        assert 'api_request_duration_seconds_bucket{le="0.005",route="/ready"}' in text
        assert "api_db_connections_in_use" in text
    # A database that does not answer: /ready is a 503, /health stays up.
    unreachable = {**database, "api": "postgresql+psycopg2://binance_api:x@127.0.0.1:1/none"}
    with asgi_client(unreachable) as client:
        assert client.get("/health").status_code == 200
        response = client.get("/ready")
        assert response.status_code == 503 and "retry" in response.json()["detail"]


def test_a_question_over_the_time_limit_is_a_503_not_a_hang(database: dict[str, str]) -> None:
    store = migrated(database)
    with psycopg2.connect(store.dsn) as connection, connection.cursor() as cursor:
        # A million trades in one second, and its rollup rows: the statistics of part of that second
        # add up the trades themselves, several times the 100 ms limit's worth of work.
        cursor.execute(
            "INSERT INTO trades (symbol, trade_id, price, quantity, trade_time, buyer_is_maker, event_time)"
            " SELECT 'BTCUSDT', g, 60000 + g %% 1000, 0.001, %(t0)s::timestamptz + g / 1000 * interval '1 ms',"
            " g %% 2 = 0, %(t0)s::timestamptz + g / 1000 * interval '1 ms' FROM generate_series(1, 1000000) AS g",
            {"t0": datetime(2025, 7, 3, tzinfo=UTC)},
        )
        for table, unit in (("trade_candles_1s", "second"), ("trade_candles_1m", "minute")):
            cursor.execute(
                # Constant table names and units of this loop.
                f"INSERT INTO {table} (symbol, open_time, open, high, low, close, volume, quote_volume, trade_count,"
                " taker_buy_base_volume, taker_buy_quote_volume, first_trade_id, last_trade_id, price_sum)"
                f" SELECT symbol, date_trunc('{unit}', trade_time), (array_agg(price ORDER BY trade_id))[1],"
                " max(price), min(price), (array_agg(price ORDER BY trade_id DESC))[1], sum(quantity),"
                " sum(price * quantity), count(*), coalesce(sum(quantity) FILTER (WHERE NOT buyer_is_maker), 0),"
                " coalesce(sum(price * quantity) FILTER (WHERE NOT buyer_is_maker), 0), min(trade_id),"
                " max(trade_id), sum(price) FROM trades GROUP BY 1, 2"
            )
    connection.close()
    with asgi_client(database, statement_timeout_ms=100) as client:
        part = {"symbol": "BTCUSDT", "start": "2025-07-03T00:00:00.001", "end": "2025-07-03T00:00:00.999"}
        response = client.get("/v1/stats", params=part)
        assert response.status_code == 503, response.text
        assert "time limit" in response.json()["detail"] and response.headers["retry-after"] == "1"
        # The pool is not poisoned: the next, quick question is answered.
        assert client.get("/v1/prices/latest", params={"symbol": "BTCUSDT"}).json()["trade_id"] == 1000000
