"""A gap backfill's records carry the time their REST answer came (RECEIVED_AT_NS), as live frames
carry the time they were read: not when the event loop got round to them or Kafka took them."""

import asyncio
import threading
from typing import Any, cast

import pytest

from producer.backfill import Backfiller, BinanceRest
from producer.gaps import BackfillRange, GapTracker
from producer.limits import WeightBudget
from producer.publisher import RawPublisher

ANSWERED_NS = 1_763_800_000_123_456_789
# How far the clock moves while the event loop is busy (live frames) before the backfill coroutine
# resumes, and again each time Kafka's queue is full.
LATER_NS = 1_000_000_000


class Clock:
    def __init__(self) -> None:
        self.now_ns = 0
        self.read_off_the_loop = threading.Event()

    def __call__(self) -> int:
        if threading.current_thread() is not threading.main_thread():
            self.read_off_the_loop.set()
        return self.now_ns

    def advance(self) -> None:
        self.now_ns += LATER_NS

    def advance_once_read(self) -> None:
        """advance(), after the request's thread has read the clock (if it does so within a second):
        the busy loop is then later than the answer, never earlier."""
        self.read_off_the_loop.wait(timeout=1.0)
        self.read_off_the_loop.clear()
        self.advance()


class SlowLoopRest:
    """Answers as Binance does; as each answer returns, the event loop has other work queued first."""

    def __init__(self, clock: Clock, loop: asyncio.AbstractEventLoop) -> None:
        self.clock = clock
        self.loop = loop

    def _answer(self, records: list[Any]) -> list[Any]:
        self.clock.now_ns = ANSWERED_NS
        # Runs on the loop before the backfiller's coroutine is woken with this answer.
        self.loop.call_soon_threadsafe(self.clock.advance_once_read)
        return records

    def used_weight(self) -> str | None:
        return None

    def historical_trades(self, symbol: str, from_id: int, limit: int) -> list[dict[str, Any]]:
        return self._answer(
            [{"id": i, "price": "1.0", "qty": "2.0", "time": 1_000 + i} for i in (from_id, from_id + 1)]
        )

    def agg_trades(self, symbol: str, limit: int, from_id: int) -> list[dict[str, Any]]:
        return self._answer(
            [{"a": i, "p": "1.0", "q": "2.0", "f": i, "l": i, "T": 1_000 + i} for i in (from_id, from_id + 1)]
        )

    def klines(self, symbol: str, interval: str, start: int, end: int, limit: int) -> list[list[Any]]:
        if start > 0:  # one kline, then none after it
            return self._answer([])
        return self._answer([[0, "1", "1", "1", "1", "0", 59_999, "0", 0, "0", "0", "0"]])


class FullQueuePublisher:
    """Refuses each record once (Kafka behind), the clock moving meanwhile; records the stamps."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.stamps: list[int] = []
        self._refused = False

    def try_publish_rest(self, value: bytes, stream: str, received_at_ns: int, request_id: bytes) -> bool:
        if not self._refused:
            self._refused = True
            self.clock.advance()
            return False
        self._refused = False
        self.stamps.append(received_at_ns)
        return True


def backfiller(clock: Clock, loop: asyncio.AbstractEventLoop) -> tuple[Backfiller, FullQueuePublisher]:
    publisher = FullQueuePublisher(clock)
    return (
        Backfiller(
            cast(BinanceRest, SlowLoopRest(clock, loop)),
            cast(RawPublisher, publisher),
            GapTracker(0.0),
            WeightBudget(6000, 0.5),
            receipt_clock_ns=clock,
        ),
        publisher,
    )


@pytest.mark.parametrize("stream", ["btcusdt@trade", "btcusdt@aggTrade"])
def test_backfilled_trades_carry_the_answers_receipt_time(stream: str) -> None:
    async def run() -> list[int]:
        clock = Clock()
        worker, publisher = backfiller(clock, asyncio.get_running_loop())
        assert await worker.fetch(BackfillRange(stream, 5, 6)) == 2
        assert clock.now_ns > ANSWERED_NS  # the loop and Kafka's queue did delay the publishing
        return publisher.stamps

    assert asyncio.run(run()) == [ANSWERED_NS, ANSWERED_NS]


def test_refetched_klines_carry_the_answers_receipt_time() -> None:
    async def run() -> list[int]:
        clock = Clock()
        worker, publisher = backfiller(clock, asyncio.get_running_loop())
        assert await worker._klines("BTCUSDT", "1m", 0, 120_000) == 1
        return publisher.stamps

    assert asyncio.run(run()) == [ANSWERED_NS]
