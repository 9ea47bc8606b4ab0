"""The live price feed (api/live.py) and its event stream (api/routes/live.py), without a
database: one poller for every client, bounded clients, a failing database shown as stale."""

import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest

from api.live import POLL_FAILED, PriceFeed, TooManyClients, changed_prices
from api.routes.live import price_events, sse_event


class FakeDatabase:
    """What prices.latest_trades would answer, changed by the test; counts the polls."""

    def __init__(self) -> None:
        self.polls = 0
        self.failing = False
        self.rows: dict[str, dict[str, Any]] = {}

    def trade(self, symbol: str, trade_id: int, price: str) -> None:
        self.rows[symbol] = {
            "symbol": symbol,
            "price": Decimal(price),
            "quantity": Decimal("0.00100000"),
            "trade_id": trade_id,
            "trade_time": datetime(2025, 7, 3, 8, 30, trade_id % 60, tzinfo=UTC),
        }

    async def poll(self) -> Sequence[Mapping[str, Any]]:
        self.polls += 1
        if self.failing:
            raise OSError("connection refused")
        return [self.rows[symbol] for symbol in sorted(self.rows)]


def feed_of(database: FakeDatabase, **options: Any) -> PriceFeed:
    return PriceFeed(database.poll, interval_s=0.02, backoff_max_s=0.05, **options)


def test_one_poller_serves_every_client_and_stops_with_the_last() -> None:
    async def scenario() -> None:
        database = FakeDatabase()
        database.trade("BTCUSDT", 1, "84509.99000000")
        feed = feed_of(database)

        async def client() -> str:
            async with feed.subscription():
                state = await feed.wait_for_change(0, 1.0)
                await asyncio.sleep(0.2)
                return str(state.prices["BTCUSDT"]["price"])

        prices = await asyncio.gather(*(client() for _ in range(20)))
        # Twenty clients for 0.2 s at a 0.02 s interval: about ten polls, not two hundred.
        assert database.polls <= 15
        assert prices == ["84509.99000000"] * 20  # the string as stored: no float on the way
        assert feed.clients == 0
        polls = database.polls
        await asyncio.sleep(0.1)
        assert database.polls == polls  # nobody listens: nobody polls

    asyncio.run(scenario())


def test_clients_beyond_the_bound_are_refused() -> None:
    async def scenario() -> None:
        feed = feed_of(FakeDatabase(), max_clients=2)
        async with feed.subscription(), feed.subscription():
            with pytest.raises(TooManyClients):
                async with feed.subscription():
                    pass
        async with feed.subscription():  # slots free again
            assert feed.clients == 1

    asyncio.run(scenario())


def test_a_failing_database_marks_the_feed_stale_until_it_answers_again() -> None:
    async def scenario() -> None:
        database = FakeDatabase()
        database.trade("ETHUSDT", 7, "2611.82000000")
        feed = feed_of(database)
        async with feed.subscription():
            state = await feed.wait_for_change(0, 1.0)
            assert state.error is None and "ETHUSDT" in state.prices
            database.failing = True
            state = await feed.wait_for_change(state.version, 1.0)
            assert state.error == POLL_FAILED
            assert state.prices["ETHUSDT"]["price"] == "2611.82000000"  # the last known, kept
            database.failing = False
            database.trade("ETHUSDT", 8, "2609.47000000")
            state = await feed.wait_for_change(state.version, 1.0)
            assert state.error is None and state.prices["ETHUSDT"]["trade_id"] == 8

    asyncio.run(scenario())


def parse_events(chunks: list[bytes]) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in b"".join(chunks).split(b"\n\n"):
        fields = dict(line.split(b": ", 1) for line in block.split(b"\n") if b": " in line)
        if b"event" in fields:
            events.append((fields[b"event"].decode(), orjson.loads(fields[b"data"])))
    return events


def test_the_stream_sends_a_snapshot_then_only_changes_then_bye() -> None:
    async def scenario() -> list[bytes]:
        database = FakeDatabase()
        database.trade("BTCUSDT", 1, "84509.99000000")
        database.trade("ETHUSDT", 7, "2611.82000000")
        feed = feed_of(database)
        chunks: list[bytes] = []

        async def change_later() -> None:
            await asyncio.sleep(0.1)
            database.trade("BTCUSDT", 2, "84510.00000000")

        changer = asyncio.create_task(change_later())
        async for chunk in price_events(feed, heartbeat_s=0.05, max_duration_s=0.3):
            chunks.append(chunk)
        await changer
        assert feed.clients == 0
        return chunks

    chunks = asyncio.run(scenario())
    assert chunks[0] == b"retry: 1000\n\n"
    events = parse_events(chunks)
    prices = [body["prices"] for name, body in events if name == "prices"]
    assert [[p["symbol"] for p in batch] for batch in prices] == [["BTCUSDT", "ETHUSDT"], ["BTCUSDT"]]
    assert prices[1][0] == {
        "symbol": "BTCUSDT",
        "price": "84510.00000000",
        "quantity": "0.00100000",
        "trade_id": 2,
        "trade_time": "2025-07-03T08:30:02Z",
    }
    statuses = [body for name, body in events if name == "status"]
    assert len(statuses) >= 3  # on connect, then heartbeats
    assert all(status["error"] is None for status in statuses)
    assert events[-1] == ("bye", {"reconnect": True})


def test_sse_event_framing() -> None:
    assert sse_event("prices", {"a": "1.0"}, 3) == b'event: prices\nid: 3\ndata: {"a":"1.0"}\n\n'
    assert sse_event("bye", {}) == b"event: bye\ndata: {}\n\n"


def test_changed_prices_lists_new_and_changed_symbols_only() -> None:
    before = {"BTCUSDT": {"trade_id": 1}, "ETHUSDT": {"trade_id": 7}}
    after = {"BTCUSDT": {"trade_id": 2}, "ETHUSDT": {"trade_id": 7}, "BNBUSDT": {"trade_id": 1}}
    assert changed_prices(before, after) == {"BTCUSDT": {"trade_id": 2}, "BNBUSDT": {"trade_id": 1}}
