"""Helpers of the replay's integration tests: the replay server on a loopback port, stored rows,
and the frames Binance would have sent for them, built here with orjson from the documented key
order, independently of replay/frames.py."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from replay.server import ReplayServer
from replay.settings import ReplaySettings
from tests.conftest import free_port, wait_until
from tests.integration.api_helpers import TradeRow


@dataclass(frozen=True)
class AggRow:
    symbol: str
    agg_trade_id: int
    price: Decimal
    quantity: Decimal
    first_trade_id: int
    last_trade_id: int
    trade_time_ms: int
    buyer_is_maker: bool

    def as_tuple(self) -> tuple[Any, ...]:
        return (
            self.symbol,
            self.agg_trade_id,
            self.price,
            self.quantity,
            self.first_trade_id,
            self.last_trade_id,
            self.trade_time_ms,
            self.buyer_is_maker,
        )


def trade_frame(trade: TradeRow) -> dict[str, Any]:
    return {
        "e": "trade",
        "E": trade.trade_time_ms,
        "s": trade.symbol,
        "t": trade.trade_id,
        "p": f"{trade.price:f}",
        "q": f"{trade.quantity:f}",
        "T": trade.trade_time_ms,
        "m": trade.buyer_is_maker,
        "M": True,
    }


def agg_frame(agg: AggRow) -> dict[str, Any]:
    return {
        "e": "aggTrade",
        "E": agg.trade_time_ms,
        "s": agg.symbol,
        "a": agg.agg_trade_id,
        "p": f"{agg.price:f}",
        "q": f"{agg.quantity:f}",
        "f": agg.first_trade_id,
        "l": agg.last_trade_id,
        "T": agg.trade_time_ms,
        "m": agg.buyer_is_maker,
        "M": True,
    }


def wire(payload: dict[str, Any], stream: str | None = None) -> str:
    """The frame's text: compact JSON in the payload's key order, wrapped when combined."""
    if stream is not None:
        return orjson.dumps({"stream": stream, "data": payload}).decode()
    return orjson.dumps(payload).decode()


def in_event_order(frames: Sequence[tuple[int, int, int, str]]) -> list[str]:
    """(event ms, id, stream order, text) sorted as a replay sends them."""
    return [text for *_key, text in sorted(frames)]


@dataclass
class RunningReplay:
    url: str  # ws://host:port
    server: ReplayServer

    def closes_with(self, code: int) -> float:
        """How many replays the server closed with `code`, from its metrics."""
        value = self.server.metrics.registry.get_sample_value("replay_connections_closed_total", {"code": str(code)})
        return value or 0.0


@contextmanager
def running_replay(database: dict[str, str], **overrides: Any) -> Iterator[RunningReplay]:
    """The replay server on a loopback port, its own event loop in a thread."""
    # No linger at the end but where a test reads with python-binance (replay/settings.py says why).
    overrides.setdefault("end_linger_s", 0.0)
    settings = ReplaySettings(database_url=database["api"], port=free_port(), db_ssl="disable", **overrides)
    loop = asyncio.new_event_loop()
    server = ReplayServer(settings)
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, name="replay-server", daemon=True)
    thread.start()
    try:
        wait_until(started.is_set, 15, "the replay server to listen")
        yield RunningReplay(f"ws://127.0.0.1:{settings.port}", server)
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(timeout=20)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)


@contextmanager
def live_replay(database: dict[str, str], **overrides: Any) -> Iterator[str]:
    """running_replay's ws://host:port."""
    with running_replay(database, **overrides) as replay:
        yield replay.url
