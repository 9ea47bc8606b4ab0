"""The fake exchange's ids: from 1 (or first_trade_id) by default; with ids_from_clock, from the Unix
time in ms, so a demo's restarted exchange goes on above the ids its database already holds."""

import time

from fake_binance.exchange import Exchange
from fake_binance.exchange_info import load_exchange_info
from fake_binance.market import Fill
from fake_binance.settings import FakeBinanceSettings


def fills(exchange: Exchange, count: int) -> list[Fill]:
    market = exchange.markets["BTCUSDT"]
    return [market.next_fill(1_763_800_000_000 + i) for i in range(count)]


def ids(fill: Fill) -> tuple[int, int, int]:
    return fill.trades[0].trade_id, fill.agg_trade.agg_id, fill.book.update_id


def test_ids_start_where_told_by_default() -> None:
    settings = FakeBinanceSettings.model_validate({"symbols": "BTCUSDT", "first_trade_id": 500})
    trade_id, agg_id, update_id = ids(fills(Exchange(settings, load_exchange_info()), 1)[0])
    assert (trade_id, agg_id) == (500, 1) and 1 < update_id <= 6  # book updates advance 1-5 at a time


def test_ids_from_the_clock_go_on_above_an_earlier_run() -> None:
    settings = FakeBinanceSettings.model_validate({"symbols": "BTCUSDT", "ids_from_clock": True, "first_trade_id": 500})
    started_ms = time.time_ns() // 1_000_000
    earlier = fills(Exchange(settings, load_exchange_info()), 50)
    assert all(part >= started_ms for part in ids(earlier[0]))
    time.sleep(0.2)  # a restart, moments later: fewer trades than milliseconds in between
    restarted = fills(Exchange(settings, load_exchange_info()), 1)[0]
    assert all(new > old for new, old in zip(ids(restarted), ids(earlier[-1]), strict=True))
