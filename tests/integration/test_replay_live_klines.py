"""live=true on a kline stream: the pushes computed from the stored trades go on from the
snapshot into trades stored while the replay runs, one push per second, none missing, none twice."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal

import pytest
from websockets.asyncio.client import connect

from tests.integration.api_helpers import TradeRow, migrated, ms_time
from tests.integration.replay_helpers import live_replay

pytestmark = pytest.mark.integration


def trades_at(first_id: int, seconds: list[int], per_second: int) -> list[TradeRow]:
    return [
        TradeRow("BTCUSDT", first_id + i * per_second + k, Decimal("84500.00000000"), Decimal("0.10000000"),
                 second * 1000 + 100 + k * 50, k % 2 == 0)
        for i, second in enumerate(seconds)
        for k in range(per_second)
    ]  # fmt: skip


def test_live_kline_pushes_continue_into_newly_stored_trades(database):
    store = migrated(database)
    now_s = int(time.time())
    # Stored before the replay: 3 trades in each of the seconds 12 to 6 before now.
    before = trades_at(1, list(range(now_s - 12, now_s - 5)), 3)
    store.trades(before)
    later_seconds = [now_s + 1, now_s + 2]

    async def read(url: str) -> list[dict[str, object]]:
        pushes: list[dict[str, object]] = []
        async with connect(url) as ws:
            # Stored while the replay plays: 2 trades in each of the next two seconds (stored
            # ahead of their time, so that no push of theirs races the insert), once it plays.
            pushes.append(json.loads(await ws.recv()))
            # (Trades alone: a live replay reads new rows by id, not through the rollups.)
            store._execute_values(
                "INSERT INTO trades (symbol, trade_id, price, quantity, trade_time, buyer_is_maker) VALUES %s",
                [
                    (t.symbol, t.trade_id, t.price, t.quantity, ms_time(t.trade_time_ms), t.buyer_is_maker)
                    for t in trades_at(1000, later_seconds, 2)
                ],
            )
            while not pushes or pushes[-1]["k"]["t"] < later_seconds[-1] * 1000:  # type: ignore[index]
                pushes.append(json.loads(await asyncio.wait_for(ws.recv(), 20)))
        return pushes

    with live_replay(database, live_end_grace_s=1.0, live_poll_s=0.2) as base:
        start = (now_s - 12) * 1000
        pushes = asyncio.run(read(f"{base}/ws/btcusdt@kline_1s?start={start}&live=true&speed=0"))
    opens = [push["k"]["t"] for push in pushes]  # type: ignore[index]
    assert opens == list(range(start, later_seconds[-1] * 1000 + 1, 1000)), "a second missing or pushed twice"
    assert all(push["k"]["x"] for push in pushes)  # type: ignore[index]
    counts = {push["k"]["t"] // 1000: push["k"]["n"] for push in pushes}  # type: ignore[index]
    expected = {second: 0 for second in range(now_s - 12, later_seconds[-1] + 1)}
    expected.update(dict.fromkeys(range(now_s - 12, now_s - 5), 3))
    expected.update(dict.fromkeys(later_seconds, 2))
    assert counts == expected
