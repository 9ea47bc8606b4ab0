"""Where the store holds Binance's klines and no trades (a kline-only import), /v1/candles and
/api/v3/klines answer from those klines, and say so (/v1/candles per candle, /api/v3/klines in the
X-Kline-Source header); where both are held,
trades win."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from tests.integration.api_helpers import TradeRow, asgi_client, migrated, ms_time, to_ms

pytestmark = pytest.mark.integration

T0 = to_ms(datetime(2021, 5, 22, 0, 0, tzinfo=UTC))
FIVE_MIN = 300_000


def kline(open_ms: int, close: str, trades: int = 7) -> dict[str, Any]:
    price = Decimal(close)
    return {
        "symbol": "ADABNB", "interval": "5m", "open_time": ms_time(open_ms),
        "close_time": ms_time(open_ms + FIVE_MIN - 1),
        "open": price - 1, "high": price + 1, "low": price - 2, "close": price, "volume": Decimal("12.5"),
        "quote_volume": Decimal("99.1"), "trade_count": trades, "taker_buy_base_volume": Decimal("1"),
        "taker_buy_quote_volume": Decimal("2"), "first_trade_id": None, "last_trade_id": None, "is_closed": True,
        "event_time": None, "source": "rest",
    }  # fmt: skip


def test_kline_only_periods_are_answered_from_the_klines_and_say_so(database: dict[str, str]) -> None:
    store = migrated(database)
    store.klines([kline(T0 + i * FIVE_MIN, f"{10 + i}.5") for i in range(6)])
    # Trades in the last 5 minutes only: there the candle comes from them.
    store.trades([TradeRow("ADABNB", 1, Decimal("20.25"), Decimal("3"), T0 + 5 * FIVE_MIN + 1_000, False)])
    with asgi_client(database) as client:
        candles = client.get("/v1/candles", params={"symbol": "ADABNB", "interval": "5m", "start": T0}).json()
        answer = client.get("/api/v3/klines", params={"symbol": "ADABNB", "interval": "5m", "startTime": T0})
        # Binance's array has no room for the source: a header says it for the whole answer.
        sources = {
            (start, end): client.get(
                "/api/v3/klines",
                params={"symbol": "ADABNB", "interval": "5m", "startTime": T0 + start, "endTime": T0 + end},
            ).headers["X-Kline-Source"]
            for start, end in (
                (0, 4 * FIVE_MIN),
                (5 * FIVE_MIN, 5 * FIVE_MIN),
                (0, 5 * FIVE_MIN),
                (99 * FIVE_MIN, 99 * FIVE_MIN),
            )
        }
        ui = client.get("/api/v3/uiKlines", params={"symbol": "ADABNB", "interval": "5m", "startTime": T0})
    klines = answer.json()
    assert answer.headers["X-Kline-Source"] == "mixed" and ui.headers["X-Kline-Source"] == "mixed"
    assert sources == {
        (0, 4 * FIVE_MIN): "klines",
        (5 * FIVE_MIN, 5 * FIVE_MIN): "trades",
        (0, 5 * FIVE_MIN): "mixed",
        (99 * FIVE_MIN, 99 * FIVE_MIN): "none",
    }
    assert [(c["open_time"][11:16], c["close"], c["source"]) for c in candles["candles"]] == [
        ("00:00", "10.5", "klines"),
        ("00:05", "11.5", "klines"),
        ("00:10", "12.5", "klines"),
        ("00:15", "13.5", "klines"),
        ("00:20", "14.5", "klines"),
        ("00:25", "20.25", "trades"),
    ]
    assert candles["candles"][0]["volume"] == "12.5" and candles["candles"][0]["trade_count"] == 7
    # Binance's layout prints the symbol's precision (8 places without a stored exchangeInfo entry).
    assert [(row[0], Decimal(row[4])) for row in klines] == [
        (T0 + i * FIVE_MIN, Decimal(f"{10 + i}.5")) for i in range(5)
    ] + [(T0 + 5 * FIVE_MIN, Decimal("20.25"))]


def test_a_symbol_with_klines_and_no_trades_has_candles(database: dict[str, str]) -> None:
    store = migrated(database)
    store.klines([kline(T0, "10.5"), kline(T0 + 2 * FIVE_MIN, "11.5")])
    store.symbols([{"symbol": "ADABNB", "status": "TRADING", "baseAsset": "ADA", "quoteAsset": "BNB"}])
    with asgi_client(database) as client:
        answer = client.get("/v1/candles", params={"symbol": "ADABNB", "interval": "5m", "start": T0})
        other = client.get("/v1/candles", params={"symbol": "ADABNB", "interval": "1m", "start": T0})
    assert answer.status_code == 200, answer.text
    # The missing kline between two stored ones is flat at the close before it, from the klines.
    assert [(c["close"], c["trade_count"], c["source"]) for c in answer.json()["candles"]] == [
        ("10.5", 7, "klines"),
        ("10.5", 0, "klines"),
        ("11.5", 7, "klines"),
    ]
    # Klines of another interval are not candles of this one.
    assert other.status_code == 200 and other.json()["candles"] == []


def test_a_minute_without_stored_trades_is_answered_from_its_1m_kline(database: dict[str, str]) -> None:
    store = migrated(database)
    one_minute = {**kline(T0, "10.5"), "interval": "1m", "close_time": ms_time(T0 + 59_999)}
    quiet = {**kline(T0 + 60_000, "10.5", trades=0), "interval": "1m", "close_time": ms_time(T0 + 119_999)}
    store.klines([one_minute, quiet])
    store.symbols([{"symbol": "ADABNB", "status": "TRADING", "baseAsset": "ADA", "quoteAsset": "BNB"}])
    # A hole of the trade stream over both: the klines still answer, they are Binance's whole minutes.
    store.coverage([("ADABNB", "trade", "hole", T0, T0 + 120_000, "producer down")])
    with asgi_client(database) as client:
        traded = client.get("/v1/prices/minmax", params={"symbol": "ADABNB", "minute": T0}).json()
        empty = client.get("/v1/prices/minmax", params={"symbol": "ADABNB", "minute": T0 + 60_000}).json()
    assert (traded["high"], traded["low"], traded["trade_count"], traded["source"]) == ("11.5", "8.5", 7, "klines")
    assert (empty["high"], empty["low"], empty["trade_count"], empty["source"]) == (None, None, 0, "klines")


def second_kline(open_ms: int, close: str, trades: int) -> dict[str, Any]:
    return {**kline(open_ms, close, trades), "interval": "1s", "close_time": ms_time(open_ms + 999)}


def test_the_price_at_a_second_comes_from_a_newer_1s_kline_than_any_stored_trade(database: dict[str, str]) -> None:
    store = migrated(database)
    store.trades([TradeRow("ADABNB", 1, Decimal("10.25"), Decimal("3"), T0 + 1_500, False)])
    # Klines of seconds 5 and 6 (the 6th without trades) with no stored trades: REST klines only.
    store.klines([second_kline(T0 + 5_000, "11.5", 2), second_kline(T0 + 6_000, "11.5", 0)])
    with asgi_client(database) as client:
        from_trade = client.get("/v1/prices/at", params={"symbol": "ADABNB", "timestamp": T0 + 3_000}).json()
        from_kline = client.get("/v1/prices/at", params={"symbol": "ADABNB", "timestamp": T0 + 9_000}).json()
    assert (from_trade["price"], from_trade["trade_id"], from_trade["source"]) == ("10.25", 1, "trades")
    assert from_kline == {
        "symbol": "ADABNB",
        "timestamp": "2021-05-22T00:00:09Z",
        "price": "11.5",
        "quantity": None,
        "trade_id": None,
        "actual_timestamp": "2021-05-22T00:00:05Z",
        "source": "klines",
    }
