"""The running exchange: one market, many viewers.

It owns the clock, the per-symbol markets and histories, who is subscribed to which stream,
the trading (or replay) loop, the kline pushes and the ground-truth record. It knows nothing
about sockets: connections register as subscribers and receive `Event`s.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Protocol

from fake_binance import klines as kl
from fake_binance import streams, wire
from fake_binance.exchange_info import ExchangeInfo, SymbolRules
from fake_binance.faults import Faults
from fake_binance.history import SymbolHistory
from fake_binance.klines import Kline, KlineAccumulator
from fake_binance.market import AggTrade, BookTop, Fill, RandomWalkMarket, Trade, reference_price
from fake_binance.past import PastMarket
from fake_binance.settings import FakeBinanceSettings

log = logging.getLogger("fake_binance.exchange")

# Binance pushes 1s klines every second and every other interval every 2 seconds.
KLINE_PUSH_PERIOD_MS = 2000


class Clock:
    """Wall-clock milliseconds that never go backwards, so trade times stay ordered."""

    def __init__(self, source: Callable[[], float] = time.time) -> None:
        self._source = source
        self._last = 0

    def now_ms(self) -> int:
        self._last = max(self._last, int(self._source() * 1000))
        return self._last


class Event:
    """One payload on one stream, encoded lazily once per time unit and framing."""

    __slots__ = ("_cache", "_render", "stream")

    def __init__(self, stream: str, render: Callable[[int], dict[str, Any]]) -> None:
        self.stream = stream
        self._render = render
        self._cache: dict[tuple[int, bool], str] = {}

    def text(self, time_scale: int, combined: bool) -> str:
        key = (time_scale, combined)
        cached = self._cache.get(key)
        if cached is None:
            if combined:
                cached = wire.combined_frame(self.stream, self.text(time_scale, False))
            else:
                cached = wire.encode(self._render(time_scale))
            self._cache[key] = cached
        return cached


class Subscriber(Protocol):
    def deliver(self, event: Event) -> None: ...


class Exchange:
    def __init__(self, settings: FakeBinanceSettings, info: ExchangeInfo, clock: Clock | None = None) -> None:
        self.settings = settings
        self.info = info
        self.clock = clock or Clock()
        unknown = [s for s in settings.symbol_list if s not in info.rules]
        if unknown:
            raise ValueError(f"symbols not in exchangeInfo: {', '.join(unknown)}")
        # A demo's database outlives the fake: ids that started at 1 again would all be taken as
        # stored already, and the demo would look frozen after a restart.
        first_trade, first_other = settings.first_trade_id, 1
        if settings.ids_from_clock:
            first_trade = first_other = time.time_ns() // 1_000_000
        self.markets: dict[str, RandomWalkMarket] = {
            symbol: RandomWalkMarket(
                info.rules[symbol],
                settings.seed,
                first_trade_id=first_trade,
                first_agg_id=first_other,
                first_update_id=first_other,
            )
            for symbol in settings.symbol_list
        }
        self.histories: dict[str, SymbolHistory] = {s: SymbolHistory(s) for s in info.symbols}
        # Days before today: generated on demand, for the archive and REST history of past dates.
        self.past = PastMarket(info, settings.seed, settings.history_trades_per_day, self.clock.now_ms())
        self.trading_started = asyncio.Event()
        self.market_done = asyncio.Event()
        self._first_subscription = asyncio.Event()
        self._subscribers: dict[str, set[Subscriber]] = {}
        self._accumulators: dict[tuple[str, str], KlineAccumulator] = {}
        self._record: IO[str] | None = None
        # Recorded traffic carries its own old times: klines are derived only from live trading.
        self._derive_klines = settings.replay_path is None
        self.trades_emitted: dict[str, int] = dict.fromkeys(settings.symbol_list, 0)
        self.faults = Faults.from_settings(settings)

    # --- subscriptions -------------------------------------------------------------------------

    def subscribe(self, subscriber: Subscriber, names: Iterable[str]) -> None:
        added = False
        for name in names:
            self._subscribers.setdefault(name, set()).add(subscriber)
            self._ensure_accumulator(name)
            added = True
        if added:
            self._first_subscription.set()

    def unsubscribe(self, subscriber: Subscriber, names: Iterable[str]) -> None:
        for name in names:
            viewers = self._subscribers.get(name)
            if viewers is None:
                continue
            viewers.discard(subscriber)
            if not viewers:
                del self._subscribers[name]
                self._drop_unwatched_accumulator(name)

    def _ensure_accumulator(self, name: str) -> None:
        if not self._derive_klines:
            return
        parsed = streams.parse_served(name)
        if parsed is None or parsed.kind != "kline" or parsed.interval is None:
            return
        if not streams.is_lowercase_symbol(name) or parsed.symbol not in self.info.rules:
            return
        key = (parsed.symbol, parsed.interval)
        if key not in self._accumulators:
            self._accumulators[key] = self._seed_accumulator(parsed.symbol, parsed.interval)

    def _drop_unwatched_accumulator(self, name: str) -> None:
        parsed = streams.parse_served(name)
        if parsed is None or parsed.kind != "kline" or parsed.interval is None:
            return
        if streams.stream_name(parsed.symbol, "kline", parsed.interval) not in self._subscribers:
            self._accumulators.pop((parsed.symbol, parsed.interval), None)

    def _seed_accumulator(self, symbol: str, interval: str) -> KlineAccumulator:
        """The open kline as the history already knows it, so late subscribers see full candles."""
        history = self.histories[symbol]
        if not history.trades:
            return KlineAccumulator(symbol, interval)
        now = max(self.clock.now_ms(), history.trade_times[-1])
        current_open = kl.open_time(interval, now)
        current = kl.klines_between(history.trades, history.trade_times, symbol, interval, current_open, current_open)
        return KlineAccumulator(symbol, interval, current[0] if current else None)

    def _publish(self, name: str, render: Callable[[int], dict[str, Any]]) -> None:
        viewers = self._subscribers.get(name)
        if not viewers:
            return
        event = Event(name, render)
        for viewer in list(viewers):
            viewer.deliver(event)

    # --- what the REST side reads ------------------------------------------------------------

    def rules(self, symbol: str) -> SymbolRules:
        return self.info.rules[symbol]

    def last_price(self, symbol: str) -> Decimal:
        last = self.histories[symbol].last_trade
        if last is not None:
            return last.price
        market = self.markets.get(symbol)
        return market.last_price if market is not None else reference_price(self.info.rules[symbol])

    # --- emitting ------------------------------------------------------------------------------

    def emit_trade(self, trade: Trade, payload: dict[str, Any] | None = None) -> bool:
        """Record a trade in the history and the ground truth, and send it to its viewers.

        Returns True when the id-gap fault left it out of the stream (it stays in REST history
        and in the record file, which is the ground truth of what was traded).
        """
        rules = self.info.rules.get(trade.symbol)
        history = self.histories.setdefault(trade.symbol, SymbolHistory(trade.symbol))
        history.add_trade(trade)
        if trade.symbol in self.trades_emitted:
            self.trades_emitted[trade.symbol] += 1
        if payload is None:
            if rules is None:
                raise ValueError(f"no rules for {trade.symbol}")
            payload = wire.trade_payload(trade, rules)
        emitted = payload
        if self._record is not None:
            self._record.write(wire.encode(emitted) + "\n")
            self._record.flush()
        hidden = self.faults.skip_trade()
        if not hidden:
            self._publish(streams.stream_name(trade.symbol, "trade"), lambda scale: wire.scale_times(emitted, scale))
        if rules is not None and self._derive_klines:
            self._feed_klines(trade, rules)
        return hidden

    def emit_agg_trade(self, agg: AggTrade, payload: dict[str, Any] | None = None, hidden: bool = False) -> None:
        self.histories.setdefault(agg.symbol, SymbolHistory(agg.symbol)).add_agg_trade(agg)
        if hidden:
            return
        name = streams.stream_name(agg.symbol, "aggTrade")
        if payload is not None:
            recorded = payload
            self._publish(name, lambda scale: wire.scale_times(recorded, scale))
        else:
            rules = self.info.rules[agg.symbol]
            self._publish(name, lambda scale: wire.agg_trade_payload(agg, rules, scale))

    def emit_book(self, book: BookTop) -> None:
        rules = self.info.rules[book.symbol]
        self._publish(
            streams.stream_name(book.symbol, "bookTicker"), lambda _scale: wire.book_ticker_payload(book, rules)
        )

    def emit_fill(self, fill: Fill) -> None:
        hidden = False
        for trade in fill.trades:
            hidden = self.emit_trade(trade) or hidden
        self.emit_agg_trade(fill.agg_trade, hidden=self.faults.skip_agg_trade(hidden))
        self.emit_book(fill.book)

    def _feed_klines(self, trade: Trade, rules: SymbolRules) -> None:
        for (symbol, _interval), accumulator in list(self._accumulators.items()):
            if symbol == trade.symbol:
                self._push_closed(accumulator.add(trade), rules)

    def _push_closed(self, closed: list[Kline], rules: SymbolRules) -> None:
        for kline in closed:
            self._push_kline(kline, rules, closed=True)

    def _push_kline(self, kline: Kline, rules: SymbolRules, closed: bool) -> None:
        event_time = self.clock.now_ms()
        self._publish(
            streams.stream_name(kline.symbol, "kline", kline.interval),
            lambda scale: wire.kline_payload(kline, rules, event_time, closed, scale),
        )

    def push_klines(self, now_ms: int) -> None:
        """One tick of the kline pusher: close what ended, then show the open klines that are due."""
        due = now_ms // 1000 % (KLINE_PUSH_PERIOD_MS // 1000) == 0
        for (symbol, interval), accumulator in list(self._accumulators.items()):
            rules = self.info.rules[symbol]
            self._push_closed(accumulator.advance_to(now_ms), rules)
            # A 1s kline closes at every push, so its closed form is the only one sent.
            if interval != "1s" and due and accumulator.current is not None:
                self._push_kline(accumulator.current, rules, closed=False)

    # --- running -------------------------------------------------------------------------------

    def open_record(self, path: Path | None) -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._record = path.open("a", encoding="utf-8")

    def close_record(self) -> None:
        if self._record is not None:
            self._record.close()
            self._record = None

    async def run(self) -> None:
        """Trade (or replay) and push klines until cancelled."""
        if self.settings.wait_for_subscriber:
            await self._first_subscription.wait()
        self.trading_started.set()
        log.info("market open", extra={"symbols": list(self.markets), "replay": bool(self.settings.replay_path)})
        async with asyncio.TaskGroup() as group:
            group.create_task(self._push_klines_forever())
            if self.settings.replay_path is not None:
                group.create_task(self._replay(self.settings.replay_path))
            else:
                group.create_task(self._trade_all())

    async def _trade_all(self) -> None:
        async with asyncio.TaskGroup() as group:
            for market in self.markets.values():
                group.create_task(self._trade(market))
        self.market_done.set()
        log.info("market quiet", extra={"trades_emitted": self.trades_emitted})

    async def _trade(self, market: RandomWalkMarket) -> None:
        rate = self.settings.trades_per_second
        cap = self.settings.max_trades
        if rate <= 0:
            return
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        symbol = market.rules.symbol
        while True:
            remaining = cap - self.trades_emitted[symbol] if cap else None
            if remaining is not None and remaining <= 0:
                return
            fill = market.next_fill(self.clock.now_ms(), max_trades=remaining)
            self.emit_fill(fill)
            # An absolute schedule keeps the long-run rate exact; bursts catch up after a stall.
            next_at += len(fill.trades) / rate
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    async def _push_klines_forever(self) -> None:
        while True:
            now = self.clock.now_ms()
            # Wake just after each second boundary, when the previous 1s kline has ended.
            await asyncio.sleep((1000 - now % 1000 + 2) / 1000)
            self.push_klines(self.clock.now_ms())

    async def _replay(self, path: Path) -> None:
        speed = self.settings.replay_speed
        previous: float | None = None
        replayed = 0
        for stream, payload, at in _read_recording(path):
            if speed > 0 and at is not None:
                if previous is not None and at > previous:
                    await asyncio.sleep((at - previous) / speed)
                previous = at
            else:
                await asyncio.sleep(0)
            self._replay_one(stream, payload)
            replayed += 1
        self.market_done.set()
        log.info("replay finished", extra={"frames": replayed, "path": str(path)})

    def _replay_one(self, stream: str, payload: dict[str, Any]) -> None:
        event = payload.get("e")
        if event == "trade":
            self.emit_trade(wire.trade_from_payload(payload), payload)  # the gap fault applies to replays too
        elif event == "aggTrade":
            self.emit_agg_trade(wire.agg_trade_from_payload(payload), payload)
        else:
            self._publish(stream, lambda scale: wire.scale_times(payload, scale))


def _read_recording(path: Path) -> Iterator[tuple[str, dict[str, Any], float | None]]:
    """(stream, payload, seconds) per usable line; the time is the recorder's or the event's."""
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            try:
                frame = wire.parse_recorded_line(line)
            except ValueError:
                log.warning("replay line is not JSON", extra={"path": str(path), "line": number})
                continue
            if frame is None:
                continue
            stream = frame.stream or wire.stream_of_payload(frame.payload)
            if stream is None:
                log.warning("replay line has no stream", extra={"path": str(path), "line": number})
                continue
            at = frame.received_at
            if at is None and isinstance(frame.payload.get("E"), int):
                at = frame.payload["E"] / 1000
            yield stream, frame.payload, at
