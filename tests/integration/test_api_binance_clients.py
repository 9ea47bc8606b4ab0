"""python-binance and ccxt, unmodified, pointed at this service's /api/v3, read the stored history.

The api runs under uvicorn on a loopback port (the clients speak real HTTP); the data is put
in by SQL; the expected klines come from the fake exchange's kline code fed the same trades.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import ccxt
import httpx
import pytest
from binance.client import Client
from binance.exceptions import BinanceAPIException

from api.app import create_app
from fake_binance import wire
from fake_binance.exchange_info import load_exchange_info
from fake_binance.history import SymbolHistory
from fake_binance.market import Trade
from tests.integration.api_helpers import TradeRow, api_settings, live_api, migrated, to_ms

pytestmark = pytest.mark.integration

INFO = load_exchange_info()
ENTRIES = {entry["symbol"]: entry for entry in INFO.document(0)["symbols"]}
T0 = to_ms(datetime(2025, 11, 22, 18, 0, tzinfo=UTC))
# Two hours and a half of trades, one every 1.7 s (5,294 trades): 150 one-minute klines, and
# thousands of one-second ones (python-binance reads them in pages of 1000).
SPAN_MS = 150 * 60_000


def trades_of(symbol: str, first_price: str, first_id: int) -> list[TradeRow]:
    price = Decimal(first_price)
    rows = []
    for i in range(SPAN_MS // 1700):
        price += Decimal((i * 7919) % 11 - 5) / 100
        rows.append(TradeRow(symbol, first_id + i, price, Decimal("0.00100") * (1 + i % 9), T0 + i * 1700, i % 4 == 0))
    return rows


@dataclass
class Served:
    url: str
    trades: dict[str, list[TradeRow]]

    def history(self, symbol: str) -> SymbolHistory:
        history = SymbolHistory(symbol)
        for r in self.trades[symbol]:
            history.add_trade(
                Trade(symbol, r.trade_id, r.price, r.quantity, r.trade_time_ms, r.trade_time_ms, r.buyer_is_maker)
            )
        return history


@pytest.fixture()
def served(database: dict[str, str]) -> Iterator[Served]:
    store = migrated(database)
    trades = {
        "BTCUSDT": trades_of("BTCUSDT", "84500.00", 4_200_000_000),
        "ETHUSDT": trades_of("ETHUSDT", "2800.00", 1_000),
    }
    store.trades([*trades["BTCUSDT"], *trades["ETHUSDT"]])
    # Entries exactly as recorded (2021, MIN_NOTIONAL filters), and one symbol without trades.
    store.symbols([ENTRIES["BTCUSDT"], ENTRIES["ETHUSDT"], ENTRIES["BNBBTC"]])
    # One aggregate trade per two trades.
    btc = trades["BTCUSDT"]
    store.agg_trades(
        [
            (
                "BTCUSDT",
                900 + i // 2,
                btc[i].price,
                btc[i].quantity + btc[i + 1].quantity,
                btc[i].trade_id,
                btc[i + 1].trade_id,
                btc[i].trade_time_ms,
                btc[i].buyer_is_maker,
            )
            for i in range(0, len(btc) - 1, 2)
        ]
    )
    with live_api(create_app(api_settings(database))) as url:
        yield Served(url, trades)


def test_python_binance_reads_the_stored_history(served: Served) -> None:
    # python-binance has no base URL argument; Client() sends GET /api/v3/ping on creation.
    local_client = type("LocalClient", (Client,), {"API_URL": f"{served.url}/api"})
    client = local_client()
    client.ping()
    assert abs(client.get_server_time()["serverTime"] - datetime.now(UTC).timestamp() * 1000) < 60_000
    assert client.get_symbol_info("BTCUSDT") == ENTRIES["BTCUSDT"]
    assert [s["symbol"] for s in client.get_exchange_info()["symbols"]] == ["BNBBTC", "BTCUSDT", "ETHUSDT"]

    history = served.history("BTCUSDT")
    rules = INFO.rules["BTCUSDT"]
    last_ms = served.trades["BTCUSDT"][-1].trade_time_ms
    for interval, start, expected_count in (("1m", T0, 150), ("1s", T0 + 5 * 60_000, 8_699)):
        # Pages of 1000 from the earliest kline: python-binance probes with startTime=0&limit=1 first.
        klines = client.get_historical_klines("BTCUSDT", interval, start_str=start, end_str=last_ms)
        assert len(klines) == expected_count
        expected = history.klines_query(interval, start, last_ms, 10_000, last_ms)
        assert klines == [wire.rest_kline_row(k, rules) for k in expected]

    recent = client.get_recent_trades(symbol="BTCUSDT", limit=3)
    assert [t["id"] for t in recent] == [t.trade_id for t in served.trades["BTCUSDT"][-3:]]
    assert recent[-1]["price"] == f"{served.trades['BTCUSDT'][-1].price:.8f}"
    aggregated = client.get_aggregate_trades(symbol="BTCUSDT", startTime=T0, endTime=T0 + 60_000)
    assert [a["a"] for a in aggregated] == list(range(900, 900 + len(aggregated)))
    assert all(T0 <= a["T"] <= T0 + 60_000 for a in aggregated) and len(aggregated) == 18
    ticker = client.get_symbol_ticker(symbol="ETHUSDT")
    assert ticker == {"symbol": "ETHUSDT", "price": f"{served.trades['ETHUSDT'][-1].price:.8f}"}
    assert [t["symbol"] for t in client.get_all_tickers()] == ["BTCUSDT", "ETHUSDT"]

    with pytest.raises(BinanceAPIException) as unknown:
        client.get_klines(symbol="NOSUCHPAIR", interval="1m")
    assert (unknown.value.code, unknown.value.message, unknown.value.status_code) == (-1121, "Invalid symbol.", 400)
    with pytest.raises(BinanceAPIException) as bad_interval:
        client.get_klines(symbol="BTCUSDT", interval="2m")
    assert bad_interval.value.code == -1120
    with pytest.raises(BinanceAPIException) as bad_limit:
        client.get_klines(symbol="BTCUSDT", interval="1m", limit=1001)
    assert bad_limit.value.code == -1130


def ccxt_client(url: str) -> ccxt.binance:
    exchange = ccxt.binance(
        {
            "options": {
                "defaultType": "spot",
                "fetchMarkets": {"types": ["spot"]},
                "fetchMargins": False,
                "fetchCurrencies": False,
            }
        }
    )
    for name in ("public", "private", "v1"):
        exchange.urls["api"][name] = f"{url}/api/v3"
    return exchange


def test_ccxt_reads_the_stored_history(served: Served) -> None:
    exchange = ccxt_client(served.url)
    markets = exchange.load_markets()
    assert {"BTC/USDT", "ETH/USDT", "BNB/BTC"} <= set(markets)
    btc = markets["BTC/USDT"]
    # From the recorded filters: PRICE_FILTER, LOT_SIZE and the 2021 MIN_NOTIONAL.
    assert (btc["precision"]["price"], btc["precision"]["amount"], btc["limits"]["cost"]["min"]) == (
        0.01,
        0.00001,
        10.0,
    )

    history = served.history("BTCUSDT")
    expected = history.klines_query("1m", T0, None, 100, served.trades["BTCUSDT"][-1].trade_time_ms)
    ohlcv = exchange.fetch_ohlcv("BTC/USDT", "1m", since=T0, limit=100)
    assert ohlcv == [
        [k.open_time, float(k.open), float(k.high), float(k.low), float(k.close), float(k.volume)] for k in expected
    ]
    trades = exchange.fetch_trades("BTC/USDT", since=T0 + 30 * 60_000, limit=50)
    assert len(trades) == 50 and trades[0]["timestamp"] >= T0 + 30 * 60_000
    assert [t["id"] for t in trades] == sorted(t["id"] for t in trades)
    assert abs(exchange.fetch_time() - datetime.now(UTC).timestamp() * 1000) < 60_000
    with pytest.raises(ccxt.BadSymbol):
        exchange.fetch_ohlcv("NOPE/USDT", "1m")


def test_binance_errors_and_parameters(served: Served) -> None:
    with httpx.Client(base_url=served.url, timeout=10) as client:

        def error(path: str, **params: str | int) -> tuple[int, int]:
            response = client.get(path, params=params)
            body = response.json()
            assert list(body) == ["code", "msg"], body
            return response.status_code, body["code"]

        assert error("/api/v3/exchangeInfo", symbol="NOSUCHPAIR") == (400, -1121)
        assert error("/api/v3/exchangeInfo", symbol="BTCUSDT", symbols='["ETHUSDT"]') == (400, -1128)
        assert error("/api/v3/klines", symbol="BTCUSDT") == (400, -1102)
        assert error("/api/v3/klines", symbol="BTCUSDT", interval="1m", limit="abc") == (400, -1100)
        assert error("/api/v3/klines", symbol="BTCUSDT", interval="1m", timeZone="15") == (400, -1130)
        assert error("/api/v3/aggTrades", symbol="BTCUSDT", fromId=900, startTime=T0) == (400, -1128)
        assert error("/api/v3/trades", symbol="BTCUSDT", limit=1001) == (400, -1130)
        assert error("/api/v3/ticker/price", symbols='["BTCUSDT","NOSUCHPAIR"]') == (400, -1121)
        assert error("/api/v3/ticker/price", symbol="BNBBTC") == (400, -1121)  # listed, but never traded
        info = client.get("/api/v3/exchangeInfo", params={"symbols": '["ETHUSDT","BTCUSDT"]'}).json()
        assert [s["symbol"] for s in info["symbols"]] == ["BTCUSDT", "ETHUSDT"] and info["timezone"] == "UTC"
        prices = client.get("/api/v3/ticker/price", params={"symbols": '["ETHUSDT","BTCUSDT"]'}).json()
        assert [p["symbol"] for p in prices] == ["ETHUSDT", "BTCUSDT"]
        # A trade's quoteQty is price times quantity at the symbol's quote precision.
        trade = client.get("/api/v3/trades", params={"symbol": "ETHUSDT", "limit": 1}).json()[0]
        assert Decimal(trade["quoteQty"]) == (Decimal(trade["price"]) * Decimal(trade["qty"])).quantize(Decimal("1e-8"))
        assert client.get("/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "1m", "startTime": T0 + SPAN_MS,
                                                    "endTime": T0}).json() == []  # fmt: skip
