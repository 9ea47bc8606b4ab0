"""Known holes (the coverage table, merged by the real coverage_apply) announced to a replay's
client as replayHole events in event-time order, read by plain `websockets` on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.integration.api_helpers import TradeRow, migrated
from tests.integration.replay_helpers import agg_frame, in_event_order, live_replay, trade_frame, wire
from tests.integration.test_replay_trades import T0, some_aggs, some_trades

pytestmark = pytest.mark.integration

START_MS = 1_763_840_520_000  # 2025-11-22T19:42:00Z
END_MS = START_MS + 120_000
PRICE, QUANTITY = Decimal("84000.01000000"), Decimal("0.00100000")


def hole_frame(symbol: str, stream: str, event_ms: int, start_ms: int, end_ms: int, detail: str) -> dict[str, Any]:
    """The documented replayHole event (README, "Replay")."""
    return {
        "e": "replayHole",
        "E": event_ms,
        "s": symbol,
        "stream": stream,
        "start": start_ms,
        "end": end_ms,
        "origin": "ws",
        "detail": detail,
    }


def hole_entry(order: int, stream: str, event_ms: int, start_ms: int, end_ms: int, detail: str) -> tuple[Any, ...]:
    """A combined hole frame's place among in_event_order's entries: before its millisecond's rows."""
    return (event_ms, -1, order, wire(hole_frame("BTCUSDT", stream, event_ms, start_ms, end_ms, detail), stream))


async def read_all(url: str) -> tuple[list[str], int | None]:
    frames: list[str] = []
    async with connect(url, max_size=None) as ws:
        try:
            async for message in ws:
                assert isinstance(message, str)
                frames.append(message)
        except ConnectionClosed:
            pass
        return frames, ws.close_code


def test_holes_of_requested_streams_arrive_among_the_frames_at_their_start(database):
    store = migrated(database)
    # Trades every 37 ms from T0 with a gap the producer could not fill: [gap_start, gap_end).
    trades = some_trades("BTCUSDT", 7_000, 900, 0)
    gap_start, gap_end = T0 + 10_000, T0 + 14_000
    stored = [t for t in trades if not gap_start <= t.trade_time_ms < gap_end]
    aggs = some_aggs("BTCUSDT", 300, 5)
    store.trades(stored)
    store.agg_trades([agg.as_tuple() for agg in aggs])
    detail = 'producer down; REST answered 429 "Too many requests"'
    store.coverage(
        [
            ("BTCUSDT", "trade", "held", START_MS - 60_000, gap_start, ""),
            ("BTCUSDT", "trade", "hole", gap_start, gap_end, detail),
            # A held period later cuts the end off a hole: what remains is announced.
            ("BTCUSDT", "trade", "hole", T0 + 20_000, T0 + 22_000, "bigger"),
            ("BTCUSDT", "trade", "held", T0 + 21_000, END_MS, ""),
            # Began before the replay's start: announced at the start, with its whole period.
            ("BTCUSDT", "aggTrade", "hole", START_MS - 5_000, START_MS + 1_000, "before"),
            # Not asked for, or outside [start, end): never sent.
            ("BTCUSDT", "bookTicker", "hole", T0, T0 + 5_000, "book"),
            ("ETHUSDT", "trade", "hole", T0, T0 + 5_000, "other symbol"),
            ("BTCUSDT", "trade", "hole", END_MS, END_MS + 5_000, "after"),
            ("BTCUSDT", "trade", "hole", START_MS - 9_000, START_MS, "before, touching"),
        ]
    )
    streams = ["btcusdt@trade", "btcusdt@aggTrade"]
    expected = in_event_order(
        [(t.trade_time_ms, t.trade_id, 0, wire(trade_frame(t), streams[0])) for t in stored]
        + [(a.trade_time_ms, a.agg_trade_id, 1, wire(agg_frame(a), streams[1])) for a in aggs]
        + [
            hole_entry(0, streams[0], gap_start, gap_start, gap_end, detail),
            hole_entry(0, streams[0], T0 + 20_000, T0 + 20_000, T0 + 21_000, "bigger"),
            hole_entry(1, streams[1], START_MS, START_MS - 5_000, START_MS + 1_000, "before"),
        ]
    )  # fmt: skip

    async def scenario(url: str) -> None:
        frames, code = await read_all(f"{url}/stream?streams={'/'.join(streams)}&start={START_MS}&end={END_MS}&speed=0")
        assert code == 1000
        assert frames == expected

    with live_replay(database) as url:
        asyncio.run(scenario(url))


def test_a_kline_stream_announces_the_holes_of_the_trades_it_is_computed_from(database):
    store = migrated(database)
    trades = some_trades("BTCUSDT", 7_000, 400, 0)
    gap_start, gap_end = T0 + 3_000, T0 + 9_000
    store.trades([t for t in trades if not gap_start <= t.trade_time_ms < gap_end])
    store.coverage([("BTCUSDT", "trade", "hole", gap_start, gap_end, "gap")])

    async def scenario(url: str) -> None:
        frames, code = await read_all(f"{url}/ws/btcusdt@kline_1m?start={START_MS}&end={START_MS + 60_000}&speed=0")
        assert code == 1000
        events = [orjson.loads(frame) for frame in frames]
        holes = [event for event in events if event["e"] == "replayHole"]
        assert holes == [hole_frame("BTCUSDT", "btcusdt@kline_1m", gap_start, gap_start, gap_end, "gap")]
        at = events.index(holes[0])
        # In event-time order: every push before it is earlier, every one after it not.
        assert all(event["E"] < gap_start for event in events[:at])
        assert all(event["E"] >= gap_start for event in events[at + 1 :])
        assert len(events) > at + 1

    with live_replay(database) as url:
        asyncio.run(scenario(url))


def test_a_hole_recorded_while_live_is_announced_once(database):
    store = migrated(database)
    now_ms = int(time.time() * 1000)
    # A minute before the later trade: the helper stores each trade's rollups, one per minute.
    store.trades([TradeRow("BTCUSDT", 1, PRICE, QUANTITY, now_ms - 60_000, False)])
    hole_start, hole_end = now_ms + 1_000, now_ms + 2_000
    # Long enough for a loaded box to do the steps below before the replay ends.
    end_ms = now_ms + 10_000

    async def scenario(url: str) -> None:
        frames: list[str] = []
        async with connect(f"{url}/ws/btcusdt@trade?start={now_ms - 70_000}&end={end_ms}&live=true&speed=0") as ws:
            frames.append(str(await ws.recv()))
            # Recorded while live, then recorded again grown by a touching hole (merged into one
            # period): announced, then announced again with its new period; a trade stored after.
            await asyncio.to_thread(store.coverage, [("BTCUSDT", "trade", "hole", hole_start, hole_end, "live gap")])
            frames.append(str(await ws.recv()))
            await asyncio.to_thread(
                store.coverage, [("BTCUSDT", "trade", "hole", hole_end, hole_end + 500, "live gap")]
            )
            frames.append(str(await ws.recv()))
            later = TradeRow("BTCUSDT", 2, PRICE, QUANTITY, hole_end + 600, True)
            await asyncio.to_thread(store.trades, [later])
            try:
                async for message in ws:
                    frames.append(str(message))
            except ConnectionClosed:
                pass
            assert ws.close_code == 1000
        events = [orjson.loads(frame) for frame in frames]
        assert [event["e"] for event in events] == ["trade", "replayHole", "replayHole", "trade"]
        assert events[1] == hole_frame("BTCUSDT", "btcusdt@trade", hole_start, hole_start, hole_end, "live gap")
        assert events[2] == hole_frame("BTCUSDT", "btcusdt@trade", hole_start, hole_start, hole_end + 500, "live gap")
        assert events[3]["t"] == 2

    with live_replay(database, live_poll_s=0.1, live_end_grace_s=0.5) as url:
        asyncio.run(scenario(url))
