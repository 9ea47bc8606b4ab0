"""Replays of stored trades and aggTrades over /ws and /stream, read by plain `websockets` and by
python-binance, on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.integration.api_helpers import TradeRow, migrated
from tests.integration.replay_helpers import AggRow, agg_frame, in_event_order, live_replay, trade_frame, wire

pytestmark = pytest.mark.integration

T0 = 1_763_840_525_123  # 2025-11-22T19:42:05.123Z
START, END = "2025-11-22T19:42:00", "2025-11-22T19:44:00"


def some_trades(symbol: str, first_id: int, count: int, offset_ms: int) -> list[TradeRow]:
    return [
        TradeRow(
            symbol=symbol,
            trade_id=first_id + n,
            price=Decimal(f"{84000 + n % 97}.{n % 100:02d}000000"),
            quantity=Decimal("0.00120000") + Decimal(n % 7) / 100,
            trade_time_ms=T0 + offset_ms + n * 37,
            buyer_is_maker=n % 3 == 0,
        )
        for n in range(count)
    ]


def some_aggs(symbol: str, count: int, offset_ms: int) -> list[AggRow]:
    return [
        AggRow(
            symbol,
            500 + n,
            Decimal("0.35280000"),
            Decimal("58.00000000"),
            10 * n,
            10 * n + 9,
            T0 + offset_ms + n * 53,
            n % 2 == 0,
        )
        for n in range(count)
    ]


async def read_all(url: str) -> tuple[list[str], int | None, str | None]:
    """Every frame until the server closes; then its close code and reason."""
    frames: list[str] = []
    async with connect(url, max_size=None) as ws:
        try:
            async for message in ws:
                assert isinstance(message, str)
                frames.append(message)
        except ConnectionClosed:
            pass
        return frames, ws.close_code, ws.close_reason


def test_combined_stream_sends_every_stored_trade_and_agg_trade_in_event_time_order(database):
    store = migrated(database)
    btc = some_trades("BTCUSDT", 5_409_000_000, 700, 0)
    eth = some_trades("ETHUSDT", 1_000, 500, 11)
    aggs = some_aggs("BTCUSDT", 300, 5)
    # Outside [START, END): never sent.
    outside = some_trades("BTCUSDT", 5_409_100_000, 3, 10 * 60_000)
    store.trades([*btc, *eth, *outside])
    store.agg_trades([agg.as_tuple() for agg in aggs])
    streams = ["btcusdt@trade", "ethusdt@trade", "btcusdt@aggTrade"]
    expected = in_event_order(
        [(t.trade_time_ms, t.trade_id, 0, wire(trade_frame(t), streams[0])) for t in btc]
        + [(t.trade_time_ms, t.trade_id, 1, wire(trade_frame(t), streams[1])) for t in eth]
        + [(a.trade_time_ms, a.agg_trade_id, 2, wire(agg_frame(a), streams[2])) for a in aggs]
    )
    with live_replay(database, fetch_rows=97) as base:
        url = f"{base}/stream?streams={'/'.join(streams)}&start={START}&end={END}&speed=0"
        frames, code, reason = asyncio.run(read_all(url))
    assert frames == expected
    assert (code, reason) == (1000, "end of replay")


def test_raw_stream_sends_bare_payloads_of_one_symbol(database):
    store = migrated(database)
    btc = some_trades("BTCUSDT", 7, 50, 0)
    store.trades([*btc, *some_trades("ETHUSDT", 7, 50, 0)])
    with live_replay(database) as base:
        frames, code, _ = asyncio.run(read_all(f"{base}/ws/btcusdt@trade?start={START}&end={END}&speed=0"))
    assert frames == [wire(trade_frame(t)) for t in btc]
    assert code == 1000


def test_replay_parameters_in_a_path_segment_reach_the_same_replay(database):
    store = migrated(database)
    btc = some_trades("BTCUSDT", 7, 20, 0)
    store.trades(btc)
    with live_replay(database) as base:
        frames, code, _ = asyncio.run(read_all(f"{base}/replay/start={START}&end={END}&speed=0/ws/btcusdt@trade"))
    assert frames == [wire(trade_frame(t)) for t in btc]
    assert code == 1000


def test_speed_spaces_frames_by_their_stored_times(database):
    store = migrated(database)
    # Two trades 1.5 s apart, replayed at speed 3: the second is due 0.5 s after the first.
    trades = [
        TradeRow("BTCUSDT", 1, Decimal("1.00"), Decimal("1.00"), T0, False),
        TradeRow("BTCUSDT", 2, Decimal("1.00"), Decimal("1.00"), T0 + 1500, False),
    ]
    store.trades(trades)

    async def arrival_gap(url: str) -> float:
        async with connect(url) as ws:
            await ws.recv()
            first = time.monotonic()
            await ws.recv()
            return time.monotonic() - first

    with live_replay(database) as base:
        gap = asyncio.run(arrival_gap(f"{base}/ws/btcusdt@trade?start={START}&end={END}&speed=3"))
    # Never early (a lower bound only: how late a loaded machine runs is not the replay's to promise).
    assert gap >= 0.5 - 0.01


def test_python_binance_socket_manager_reads_a_replay(database):
    from binance import AsyncClient, BinanceSocketManager

    store = migrated(database)
    btc = some_trades("BTCUSDT", 5_409_000_000, 40, 0)
    aggs = some_aggs("BTCUSDT", 30, 5)
    store.trades(btc)
    store.agg_trades([agg.as_tuple() for agg in aggs])

    async def read(base: str) -> tuple[list[dict[str, object]], list[dict[str, object]], list[dict[str, object]]]:
        client = AsyncClient()  # no request is sent: only its socket manager is used
        manager = BinanceSocketManager(client)
        manager.STREAM_URL = f"{base}/replay/start={START}&end={END}&speed=0/"
        trades, combined = [], []
        async with manager.trade_socket("BTCUSDT") as socket:
            for _ in btc:
                trades.append(await socket.recv())
        async with manager.multiplex_socket(["btcusdt@aggTrade"]) as socket:
            for _ in aggs:
                combined.append(await socket.recv())
        klines = []
        async with manager.kline_socket("BTCUSDT", interval="1s") as socket:
            for _ in range(2):
                klines.append(await socket.recv())
        await client.close_connection()
        return trades, combined, klines

    with live_replay(database, end_linger_s=1.0) as base:
        trades, combined, klines = asyncio.run(read(base))
    assert trades == [trade_frame(t) for t in btc]
    assert combined == [{"stream": "btcusdt@aggTrade", "data": agg_frame(a)} for a in aggs]
    # The first two 1s klines, closed, each with the trades of its second (the 37 ms apart trades).
    first_second = [t for t in btc if t.trade_time_ms < 1_763_840_526_000]
    second_second = [t for t in btc if 1_763_840_526_000 <= t.trade_time_ms < 1_763_840_527_000]
    assert [(k["k"]["t"], k["k"]["x"], k["k"]["n"]) for k in klines] == [  # type: ignore[index]
        (1_763_840_525_000, True, len(first_second)),
        (1_763_840_526_000, True, len(second_second)),
    ]
    assert klines[0]["k"]["f"] == btc[0].trade_id  # type: ignore[index]
