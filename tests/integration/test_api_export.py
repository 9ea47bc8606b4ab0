"""Trade export (CSV streamed, JSON paged) and the WebSocket-versus-REST reconciliation."""

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.integration.api_helpers import TradeRow, asgi_client, migrated, ms_time, to_ms

pytestmark = pytest.mark.integration

T0 = to_ms(datetime(2025, 9, 30, 0, 6, 22, tzinfo=UTC))


def many_trades(count: int) -> list[TradeRow]:
    return [
        TradeRow(
            "BTCUSDT",
            6_666_783_623 + i,
            Decimal("114244.00") + Decimal(i % 97) / 10,
            Decimal("0.047") + Decimal(i % 13) / 1000,
            T0 + i * 7,  # several trades a millisecond apart, spanning about 5 minutes
            i % 3 == 0,
        )
        for i in range(count)
    ]


def test_csv_export_streams_every_trade_of_the_range_and_json_pages_by_id(database: dict[str, str]) -> None:
    rows = many_trades(45_000)  # more than two CSV chunks
    migrated(database).trades(rows)
    start, end = rows[10].trade_time_ms, rows[44_990].trade_time_ms
    chosen = [r for r in rows if start <= r.trade_time_ms < end]
    with asgi_client(database) as client:
        response = client.get(
            "/v1/trades", params={"symbol": "btcusdt", "start": start, "end": ms_time(end).isoformat(), "format": "csv"}
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/csv")
        assert "attachment" in response.headers["content-disposition"]
        table = list(csv.reader(io.StringIO(response.text)))
        assert table[0] == ["trade_time", "price", "quantity", "symbol", "trade_id", "side"]
        assert len(table) - 1 == len(chosen)
        for line, trade in zip(table[1:], chosen, strict=True):
            assert line == [
                ms_time(trade.trade_time_ms).strftime("%Y-%m-%dT%H:%M:%S.") + f"{trade.trade_time_ms % 1000:03d}000Z",
                str(trade.price),
                str(trade.quantity),
                "BTCUSDT",
                str(trade.trade_id),
                "sell" if trade.buyer_is_maker else "buy",
            ]

        paged: list[dict[str, object]] = []
        params: dict[str, object] = {"symbol": "BTCUSDT", "start": start, "end": end, "format": "json", "limit": 10_000}
        while True:
            page = client.get("/v1/trades", params=params)
            assert page.status_code == 200, page.text
            body = page.json()
            paged.extend(body["trades"])
            if body["next_from_id"] is None:
                break
            params["from_id"] = body["next_from_id"]
        assert [t["trade_id"] for t in paged] == [t.trade_id for t in chosen]
        assert paged[0] == {
            "trade_id": chosen[0].trade_id,
            "trade_time": ms_time(chosen[0].trade_time_ms).isoformat().replace("+00:00", "Z"),
            "price": str(chosen[0].price),
            "quantity": str(chosen[0].quantity),
            "side": "sell" if chosen[0].buyer_is_maker else "buy",
        }
        # A range without trades: the header alone, and an empty last page.
        empty = client.get("/v1/trades", params={"symbol": "BTCUSDT", "start": "2024-01-01", "end": "2024-01-02"})
        assert empty.status_code == 200 and empty.text == "trade_time,price,quantity,symbol,trade_id,side\n"
        over = client.get(
            "/v1/trades", params={"symbol": "BTCUSDT", "start": start, "end": end, "format": "json", "limit": 10_001}
        )
        assert over.status_code == 422 and over.json()["errors"][0]["parameter"] == "limit"


def rest_kline(second_ms: int, close: str, trade_count: int) -> dict[str, object]:
    price = Decimal(close)
    return {
        "symbol": "BTCUSDC", "interval": "1s", "open_time": ms_time(second_ms),
        "close_time": ms_time(second_ms + 999), "open": price, "high": price, "low": price, "close": price,
        "volume": Decimal(0), "quote_volume": Decimal(0), "trade_count": trade_count,
        "taker_buy_base_volume": Decimal(0), "taker_buy_quote_volume": Decimal(0), "first_trade_id": None,
        "last_trade_id": None, "is_closed": True, "event_time": None, "source": "rest",
    }  # fmt: skip


def test_reconcile_lists_every_second_where_websocket_and_rest_disagree(database: dict[str, str]) -> None:
    s0 = to_ms(datetime(2025, 11, 22, 19, 42, 5, tzinfo=UTC))
    trades = [
        TradeRow("BTCUSDC", 1, Decimal("84515.96"), Decimal("0.1"), s0 + 100, False),
        TradeRow("BTCUSDC", 2, Decimal("84502.85"), Decimal("0.1"), s0 + 1200, False),
        # s0+2: no trade; the price in effect is still 84502.85
        TradeRow("BTCUSDC", 3, Decimal("84486.29"), Decimal("0.1"), s0 + 3500, True),
        TradeRow("BTCUSDC", 4, Decimal("84485.48"), Decimal("0.1"), s0 + 4999, True),
    ]
    store = migrated(database)
    store.trades(trades)
    store.klines(
        [
            rest_kline(s0, "84515.96", 1),
            rest_kline(s0 + 1000, "84502.85", 1),
            rest_kline(s0 + 2000, "84502.85", 0),  # flat second: matches the carried price
            rest_kline(s0 + 3000, "84486.30", 1),  # differs by a cent
            # s0+4000 never fetched over REST
        ]
    )
    with asgi_client(database) as client:
        response = client.get(
            "/v1/reconcile", params={"symbol": "BTCUSDC", "start": s0, "end": ms_time(s0 + 10_000).isoformat()}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["seconds_compared"], body["matching"]) == (5, 3)
        assert [(s["second"][11:19], s["agreement"]) for s in body["seconds"]] == [
            ("19:42:05", "match"),
            ("19:42:06", "match"),
            ("19:42:07", "match"),
            ("19:42:08", "close_differs"),
            ("19:42:09", "missing_rest"),
        ]
        differs = body["differences"][0]
        assert (differs["ws_close"], differs["rest_close"], differs["difference"]) == ("84486.29", "84486.30", "-0.01")
        assert body["differences"][1]["rest_close"] is None and body["differences"][1]["ws_trade_count"] == 1
