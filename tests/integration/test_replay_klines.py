"""Kline and bookTicker replays. Klines are computed from the stored trades; the pushes must be
the fake exchange's own pushes for the same trades (fake_binance/klines.py and exchange.py's push
rule, its independent copy of Binance's), event times aside: a live push's event time is the
moment it went out, a replay's the whole second it stands for."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import pytest

from fake_binance import wire
from fake_binance.exchange_info import SymbolRules
from fake_binance.klines import KlineAccumulator
from fake_binance.market import Trade
from tests.integration.api_helpers import TradeRow, migrated, ms_time
from tests.integration.replay_helpers import live_replay
from tests.integration.test_replay_trades import read_all

pytestmark = pytest.mark.integration

MINUTE_0 = 1_763_840_520_000  # 2025-11-22T19:42:00Z
RULES = SymbolRules(
    "BTCUSDT", "TRADING", "BTC", "USDT", *(Decimal("0.01"),) * 3, *(Decimal("0.00001"),) * 2, Decimal(5), 8, 8, 8
)


def trades_over(seconds: int) -> list[TradeRow]:
    """A few trades in most seconds, none in some (flat klines), never in a second's first 5 ms
    (where a live push and a trade race)."""
    rows = []
    trade_id = 1
    for second in range(seconds):
        for k in range(second % 4):
            rows.append(
                TradeRow(
                    "BTCUSDT",
                    trade_id,
                    Decimal(f"{84500 + (second * 7 + k * 3) % 40}.{k}1000000"),
                    Decimal(f"0.{k + 1:02d}000000"),
                    MINUTE_0 + second * 1000 + 10 + k * 300,
                    (second + k) % 2 == 0,
                )
            )
            trade_id += 1
    return rows


def fake_pushes(rows: list[TradeRow], interval: str, first_tick: int, last_tick: int) -> list[dict[str, Any]]:
    """What the fake exchange pushes live for these trades: a clock tick just after every whole
    second closes what ended and shows the open kline every 2 s (never for 1s)."""
    accumulator = KlineAccumulator("BTCUSDT", interval)
    pushes: list[dict[str, Any]] = []
    pending = iter(rows)
    upcoming = next(pending, None)
    for tick in range(first_tick, last_tick + 1, 1000):
        while upcoming is not None and upcoming.trade_time_ms < tick:
            trade = Trade(
                "BTCUSDT",
                upcoming.trade_id,
                upcoming.price,
                upcoming.quantity,
                upcoming.trade_time_ms,
                upcoming.trade_time_ms,
                upcoming.buyer_is_maker,
            )
            assert accumulator.add(trade) == []  # closes come from ticks here
            upcoming = next(pending, None)
        for kline in accumulator.advance_to(tick + 2):
            pushes.append(wire.kline_payload(kline, RULES, tick, closed=True))
        if interval != "1s" and (tick + 2) // 1000 % 2 == 0 and accumulator.current is not None:
            pushes.append(wire.kline_payload(accumulator.current, RULES, tick, closed=False))
    return pushes


@pytest.mark.parametrize("interval", ["1s", "1m", "3m"])
def test_kline_pushes_equal_the_fake_exchanges_for_the_same_trades(database, interval):
    store = migrated(database)
    rows = trades_over(200)
    store.trades(rows)
    start, end = MINUTE_0, MINUTE_0 + 200_000
    with live_replay(database) as base:
        frames, code, _ = asyncio.run(read_all(f"{base}/ws/btcusdt@kline_{interval}?start={start}&end={end}&speed=0"))
    assert code == 1000
    expected = fake_pushes(rows, interval, MINUTE_0 + 1000, end)
    assert [json.loads(frame) for frame in frames] == expected
    assert frames == [wire.encode(push) for push in expected]
    closes = [push for push in expected if push["k"]["x"]]
    assert closes, "the range closes klines"


def test_book_tickers_are_sent_as_stored(database):
    store = migrated(database)
    rows = [
        (
            "BTCUSDT",
            400 + n,
            f"84515.{n:02d}000000",
            "1.50000000",
            f"84516.{n:02d}000000",
            "0.25000000",
            MINUTE_0 + n * 100,
        )
        for n in range(30)
    ]
    store._execute_values(
        "INSERT INTO book_tickers (symbol, update_id, bid_price, bid_quantity, ask_price, ask_quantity, received_at)"
        " VALUES %s",
        [(*row[:6], ms_time(row[6])) for row in rows],
    )
    with live_replay(database) as base:
        frames, code, _ = asyncio.run(
            read_all(f"{base}/stream?streams=btcusdt@bookTicker&start={MINUTE_0}&end={MINUTE_0 + 60_000}&speed=0")
        )
    assert code == 1000
    assert frames == [
        wire.combined_frame(
            "btcusdt@bookTicker",
            wire.encode({"u": update_id, "s": "BTCUSDT", "b": bid, "B": bid_qty, "a": ask, "A": ask_qty}),
        )
        for _symbol, update_id, bid, bid_qty, ask, ask_qty, _at in rows
    ]
