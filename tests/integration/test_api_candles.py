"""Candles from the rollups equal the klines Binance sends for the same trades.

The reference is the fake exchange's kline code (fake_binance/klines.py and history.py, Binance's
boundaries and REST layout, written separately from the api), fed the same trades that are put in
the database here; plus hand-computed week and month boundaries.
"""

import json
import random
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from api.intervals import Interval
from fake_binance import wire
from fake_binance.exchange_info import load_exchange_info
from fake_binance.history import SymbolHistory
from fake_binance.market import Trade
from tests.integration.api_helpers import TradeRow, asgi_client, migrated, ms_time, to_ms

pytestmark = pytest.mark.integration

SYMBOL = "BTCUSDT"
INFO = load_exchange_info()
RULES = INFO.rules[SYMBOL]
ENTRY = next(entry for entry in INFO.document(0)["symbols"] if entry["symbol"] == SYMBOL)


def market_trades(seed: int = 11) -> list[TradeRow]:
    """Bursts of trades over three months: month and Monday boundaries, days and weeks without
    trades, several trades in one millisecond."""
    rng = random.Random(seed)
    anchors = [
        datetime(2025, 12, 28, 23, 58, tzinfo=UTC),  # a Sunday: the week turns at Monday 00:00
        datetime(2025, 12, 31, 23, 59, 30, tzinfo=UTC),  # the month and year turn
        datetime(2026, 1, 1, 5, 44, tzinfo=UTC),
        datetime(2026, 1, 9, 12, 0, tzinfo=UTC),  # after a week without trades
        datetime(2026, 1, 31, 23, 59, 58, tzinfo=UTC),
        datetime(2026, 2, 2, 0, 0, tzinfo=UTC),
        datetime(2026, 2, 27, 18, 29, tzinfo=UTC),
        datetime(2026, 3, 2, 9, 15, tzinfo=UTC),
    ]
    price = Decimal("87000.00")
    trade_id = 5_000_000
    rows: list[TradeRow] = []
    for anchor in anchors:
        at = to_ms(anchor)
        for _ in range(rng.randint(40, 120)):
            at += rng.choice((0, 0, 1, 37, 250, 999, 1000, 1500, 4000, 61_000))
            price += Decimal(rng.randint(-300, 300)) / 100
            quantity = Decimal(rng.randint(1, 200_000)) / 100_000
            trade_id += 1
            rows.append(
                TradeRow(SYMBOL, trade_id, price, quantity.quantize(Decimal("0.00000001")), at, rng.random() < 0.5)
            )
    return rows


def fake_history(rows: list[TradeRow]) -> SymbolHistory:
    history = SymbolHistory(SYMBOL)
    for row in rows:
        history.add_trade(
            Trade(
                SYMBOL, row.trade_id, row.price, row.quantity, row.trade_time_ms, row.trade_time_ms, row.buyer_is_maker
            )
        )
    return history


def request_shapes(rows: list[TradeRow]) -> list[dict[str, Any]]:
    first, last = rows[0].trade_time_ms, rows[-1].trade_time_ms
    middle = rows[len(rows) // 2].trade_time_ms + 333
    return [
        {},
        {"startTime": 0, "limit": 1},  # python-binance's probe for the earliest kline
        {"startTime": middle, "limit": 7},
        {"startTime": rows[100].trade_time_ms - 500, "limit": 20},
        {"endTime": middle, "limit": 5},
        {"startTime": first - 86_400_000, "endTime": last + 86_400_000, "limit": 1000},
        {"startTime": middle, "endTime": middle + 3 * 86_400_000, "limit": 3, "timeZone": "5:45"},
        {"endTime": last, "limit": 4, "timeZone": "-3"},
    ]


def test_klines_and_candles_equal_binance_klines_for_every_interval(database: dict[str, str]) -> None:
    rows = market_trades()
    store = migrated(database)
    store.trades(rows)
    store.symbols([ENTRY])
    history = fake_history(rows)
    now = rows[-1].trade_time_ms
    with asgi_client(database) as client:
        for interval in Interval:
            for shape in request_shapes(rows):
                offset = _offset_ms(shape.get("timeZone"))
                expected_klines = history.klines_query(
                    interval.value,
                    shape.get("startTime"),
                    shape.get("endTime"),
                    shape.get("limit", 500),
                    now,
                    offset,
                )
                expected = [wire.rest_kline_row(kline, RULES) for kline in expected_klines]
                response = client.get("/api/v3/klines", params={"symbol": SYMBOL, "interval": interval.value, **shape})
                assert response.status_code == 200, response.text
                assert response.json() == expected, (interval, shape)
                if offset == 0:
                    _check_v1_candles(client, interval, shape, expected_klines)


def _offset_ms(time_zone: str | None) -> int:
    if not time_zone:
        return 0
    sign = -1 if time_zone.startswith("-") else 1
    hours, _, minutes = time_zone.lstrip("+-").partition(":")
    return sign * (int(hours) * 60 + int(minutes or 0)) * 60_000


def _check_v1_candles(client: Any, interval: Interval, shape: dict[str, Any], expected: list[Any]) -> None:
    params: dict[str, Any] = {"symbol": SYMBOL.lower(), "interval": interval.value, "limit": shape.get("limit", 500)}
    if "startTime" in shape:
        params["start"] = ms_time(shape["startTime"]).isoformat()
    if "endTime" in shape:
        params["end"] = shape["endTime"] + 1  # /v1 ends are exclusive
    response = client.get("/v1/candles", params=params)
    assert response.status_code == 200, response.text
    candles = response.json()["candles"]
    assert len(candles) == len(expected), (interval, shape)
    for candle, kline in zip(candles, expected, strict=True):
        assert candle["open_time"] == _iso(kline.open_time) and candle["close_time"] == _iso(kline.close_time)
        got = [Decimal(candle[k]) for k in ("open", "high", "low", "close", "volume", "quote_volume")]
        assert got == [kline.open, kline.high, kline.low, kline.close, kline.volume, kline.quote_volume]
        assert Decimal(candle["taker_buy_base_volume"]) == kline.taker_buy_volume
        assert Decimal(candle["taker_buy_quote_volume"]) == kline.taker_buy_quote_volume
        assert candle["trade_count"] == kline.trade_count
        ids = (candle["first_trade_id"], candle["last_trade_id"])
        assert ids == ((None, None) if kline.trade_count == 0 else (kline.first_trade_id, kline.last_trade_id))


def _iso(milliseconds: int) -> str:
    return ms_time(milliseconds).isoformat().replace("+00:00", "Z").replace(".000000Z", "Z")


def test_week_and_month_boundaries_by_hand(database: dict[str, str]) -> None:
    def at(text: str) -> int:
        return to_ms(datetime.fromisoformat(text).replace(tzinfo=UTC))

    rows = [
        TradeRow(SYMBOL, 1, Decimal("10.00"), Decimal("1.0"), at("2025-12-28T23:59:59.999"), False),  # Sunday
        TradeRow(SYMBOL, 2, Decimal("12.00"), Decimal("2.0"), at("2025-12-29T00:00:00"), True),  # Monday
        TradeRow(SYMBOL, 3, Decimal("11.00"), Decimal("1.0"), at("2025-12-31T23:59:59.999"), False),
        TradeRow(SYMBOL, 4, Decimal("13.00"), Decimal("0.5"), at("2026-01-01T00:00:00"), False),
    ]
    migrated(database).trades(rows)
    with asgi_client(database) as client:
        weeks = client.get("/v1/candles", params={"symbol": SYMBOL, "interval": "1w"}).json()["candles"]
        assert [(w["open_time"], w["close_time"], w["trade_count"]) for w in weeks] == [
            ("2025-12-22T00:00:00Z", "2025-12-28T23:59:59.999000Z", 1),
            ("2025-12-29T00:00:00Z", "2026-01-04T23:59:59.999000Z", 3),
        ]
        assert (weeks[1]["open"], weeks[1]["high"], weeks[1]["low"], weeks[1]["close"]) == (
            "12.00",
            "13.00",
            "11.00",
            "13.00",
        )
        assert weeks[1]["volume"] == "3.5" and weeks[1]["taker_buy_base_volume"] == "1.5"
        months = client.get("/api/v3/klines", params={"symbol": SYMBOL, "interval": "1M"}).json()
        assert [(m[0], m[6], m[1], m[4], m[8]) for m in months] == [
            (at("2025-12-01T00:00:00"), at("2025-12-31T23:59:59.999"), "10.00000000", "11.00000000", 3),
            (at("2026-01-01T00:00:00"), at("2026-01-31T23:59:59.999"), "13.00000000", "13.00000000", 1),
        ]
        # Three days are epoch-aligned: 2025-12-28 is day 20450 since the epoch, a multiple of 3 minus 2.
        days3 = client.get("/api/v3/klines", params={"symbol": SYMBOL, "interval": "3d"}).json()
        assert [d[0] for d in days3] == [
            at("2025-12-26T00:00:00"),
            at("2025-12-29T00:00:00"),
            at("2026-01-01T00:00:00"),
        ]


def test_moving_averages_of_closes(database: dict[str, str]) -> None:
    start = to_ms(datetime(2025, 11, 22, 19, 42, 5, tzinfo=UTC))
    # The notebook's 1s closes (../shared/seeds/000): one trade per second.
    closes = ["84515.96", "84502.85", "84502.85", "84502.85", "84486.29", "84485.48", "84483.66", "84483.66",
              "84483.66", "84488.00", "84490.10", "84495.50", "84470.00", "84471.01", "84480.00", "84499.99",
              "84505.00", "84510.00", "84512.50", "84517.28", "84516.00", "84500.00"]  # fmt: skip
    rows = [
        TradeRow(SYMBOL, 100 + i, Decimal(c), Decimal("0.001"), start + 1000 * i, False) for i, c in enumerate(closes)
    ]
    migrated(database).trades(rows)
    with asgi_client(database) as client:
        response = client.get(
            "/v1/indicators/sma",
            params={"symbol": SYMBOL, "interval": "1s", "windows": "10,20", "start": start, "limit": 1000},
        )
        assert response.status_code == 200, response.text
        points = response.json()["points"]
        assert len(points) == len(closes)
        values = [Decimal(c) for c in closes]
        for index, point in enumerate(points):
            for window in (10, 20):
                expected = sum(values[index - window + 1 : index + 1]) / window if index >= window - 1 else None
                got = point["sma"][str(window)]
                assert (Decimal(got) if got is not None else None) == expected, (index, window)
        # The notebook's first 10-period MA, rounded as it printed it.
        assert round(Decimal(points[9]["sma"]["10"]), 2) == Decimal("84493.53")
        # Asked from a later start, the averages still use the earlier closes.
        later = client.get(
            "/v1/indicators/sma",
            params={"symbol": SYMBOL, "interval": "1s", "windows": "20", "start": start + 19_000, "limit": 2},
        ).json()["points"]
        assert [p["sma"]["20"] for p in later] == [points[19]["sma"]["20"], points[20]["sma"]["20"]]
        assert json.dumps(later)
