"""The running exchange: one market, many viewers.

It owns the clock, the per-symbol markets and histories, who is subscribed to which stream,
the trading (or replay) loop, the kline pushes and the ground-truth record. It knows nothing
about sockets: connections register as subscribers and receive `Event`s.
"""

from __future__ import annotations

import asyncio
import logging
import random
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
from fake_binance.klines import Kline, KlineAccumulator, empty_kline
from fake_binance.market import FILL_WEIGHTS, AggTrade, BookTop, Fill, RandomWalkMarket, Trade, reference_price
from fake_binance.past import PastMarket
from fake_binance.settings import FakeBinanceSettings
from fake_binance.whole_market import (
    WHOLE_MARKET_FILL_WEIGHTS,
    BurstSchedule,
    Pacer,
    book_rates,
    fills_per_trade,
    trade_rates,
)

log = logging.getLogger("fake_binance.exchange")

# Binance pushes 1s klines every second and every other interval every 2 seconds.
KLINE_PUSH_PERIOD_MS = 2000
# A symbol listed or resumed while running trades this often unless told otherwise.
DEFAULT_LISTED_TRADES_PER_SECOND = 1.0
STATUSES = ("TRADING", "HALT", "BREAK")
# The whole-market loop trades at most this many ticks' worth at a time (see _trade_whole_market).
_LONGEST_TICKS = 10
# How often old REST history is forgotten (history_keep_s).
_HISTORY_TRIM_PERIOD_S = 10.0


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
        if not settings.whole_market:
            unknown = [s for s in settings.symbol_list if s not in info.rules]
            if unknown:
                raise ValueError(f"symbols not in exchangeInfo: {', '.join(unknown)}")
        # A demo's database outlives the fake: ids that started at 1 again would all be taken as
        # stored already, and the demo would look frozen after a restart.
        self._first_trade_id, self._first_other_id = settings.first_trade_id, 1
        if settings.ids_from_clock:
            self._first_trade_id = self._first_other_id = time.time_ns() // 1_000_000
        # The whole market keeps a market for every listed symbol, so a halted one can resume.
        traded = info.symbols if settings.whole_market else settings.symbol_list
        self.markets: dict[str, RandomWalkMarket] = {symbol: self._new_market(symbol) for symbol in traded}
        self.histories: dict[str, SymbolHistory] = {s: SymbolHistory(s) for s in info.symbols}
        # Days before today: generated on demand, for the archive and REST history of past dates.
        self.past = PastMarket(info, settings.seed, settings.history_trades_per_day, self.clock.now_ms())
        self.bursts = BurstSchedule(
            settings.market_burst_factor,
            settings.market_burst_s,
            settings.market_burst_every_s,
            settings.market_first_burst_s,
        )
        self.burst_factor = 1.0
        # Market time the whole-market loop did not trade because it fell behind the clock.
        self.market_seconds_skipped = 0.0
        self.market_opened_at: float | None = None  # time.time() when trading began
        self.trade_pacers: dict[str, Pacer] = {}
        self.book_pacers: dict[str, Pacer] = {}
        if settings.whole_market:
            self._plan_whole_market()
        self._traders: set[asyncio.Task[None]] = set()
        self.trading_started = asyncio.Event()
        self.market_done = asyncio.Event()
        self._first_subscription = asyncio.Event()
        self._subscribers: dict[str, set[Subscriber]] = {}
        # symbol -> interval -> the open kline: a trade feeds only its own symbol's klines.
        self._accumulators: dict[str, dict[str, KlineAccumulator]] = {}
        self._record: IO[str] | None = None
        # Recorded traffic carries its own old times: klines are derived only from live trading.
        self._derive_klines = settings.replay_path is None
        self.trades_emitted: dict[str, int] = dict.fromkeys(self.markets, 0)
        self.faults = Faults.from_settings(settings)

    def _new_market(self, symbol: str) -> RandomWalkMarket:
        return RandomWalkMarket(
            self.info.rules[symbol],
            self.settings.seed,
            first_trade_id=self._first_trade_id,
            first_agg_id=self._first_other_id,
            first_update_id=self._first_other_id,
            fill_weights=WHOLE_MARKET_FILL_WEIGHTS if self.settings.whole_market else FILL_WEIGHTS,
        )

    def _plan_whole_market(self) -> None:
        settings = self.settings
        trades = trade_rates(
            self.info.trading(), settings.seed, settings.market_trades_per_second, settings.market_top_trades_per_second
        )
        books = book_rates(trades, settings.market_book_tickers_per_second)
        # FAKE_BINANCE_MARKET_SHARD: the rates are the whole market's; this process makes its share.
        trades = {symbol: rate for symbol, rate in trades.items() if settings.trades_here(symbol)}
        for symbol, rate in trades.items():
            self._pace(symbol, rate)
        for symbol, rate in books.items():
            if symbol not in trades:
                continue
            # Each fill already moves the top of the book once (0.7 a trade); quotes make up the rest.
            extra = max(0.0, rate - trades[symbol] * fills_per_trade(WHOLE_MARKET_FILL_WEIGHTS))
            self.book_pacers[symbol] = Pacer(extra, self._phase(symbol, "books"))

    def _phase(self, symbol: str, what: str) -> float:
        return random.Random(f"{self.settings.seed}:{symbol}:{what}").random()

    def _pace(self, symbol: str, trades_per_second: float) -> None:
        self.trade_pacers[symbol] = Pacer(trades_per_second, self._phase(symbol, "trades"))
        self.book_pacers.setdefault(symbol, Pacer(0.0, 0.0))

    # --- listing, halting (the /fake/symbol control endpoint) --------------------------------

    def list_symbol(self, symbol: str, like: str, trades_per_second: float | None = None) -> None:
        """A new TRADING symbol with the rules of `like`, listed in exchangeInfo and trading at once."""
        self.info.add_symbol(symbol, like)
        self.markets[symbol] = self._new_market(symbol)
        self.histories[symbol] = SymbolHistory(symbol)
        self.trades_emitted[symbol] = 0
        self._start_trading(symbol, trades_per_second)

    def set_symbol_status(self, symbol: str, status: str, trades_per_second: float | None = None) -> None:
        """TRADING, HALT or BREAK; a symbol not TRADING sends nothing, as on Binance."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}")
        self.info.set_status(symbol, status)
        if status == "TRADING":
            if symbol not in self.markets:
                self.markets[symbol] = self._new_market(symbol)
                self.trades_emitted[symbol] = 0
            if symbol not in self.trade_pacers or trades_per_second is not None:
                self._start_trading(symbol, trades_per_second)

    def _start_trading(self, symbol: str, trades_per_second: float | None) -> None:
        rate = DEFAULT_LISTED_TRADES_PER_SECOND if trades_per_second is None else trades_per_second
        if self.settings.whole_market:
            if self.settings.trades_here(symbol):
                self._pace(symbol, rate)
        elif self.trading_started.is_set():
            task = asyncio.get_running_loop().create_task(self._trade(self.markets[symbol], rate))
            self._traders.add(task)
            task.add_done_callback(self._traders.discard)

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
                # The stream's open kline is kept, and fed, with nobody watching: it is the market's
                # state, as on Binance. Rebuilding it from the history at the next subscription cost
                # a pass over every trade of the open interval: after a 20x burst, seconds per
                # reconnecting connection with the event loop blocked, so handshakes timed out and
                # were retried, each rebuilding it again.
                del self._subscribers[name]

    def _ensure_accumulator(self, name: str) -> None:
        if not self._derive_klines:
            return
        parsed = streams.parse_served(name)
        if parsed is None or parsed.kind != "kline" or parsed.interval is None:
            return
        if not streams.is_lowercase_symbol(name) or parsed.symbol not in self.info.rules:
            return
        by_interval = self._accumulators.setdefault(parsed.symbol, {})
        if parsed.interval not in by_interval:
            by_interval[parsed.interval] = self._seed_accumulator(parsed.symbol, parsed.interval)

    def _seed_accumulator(self, symbol: str, interval: str) -> KlineAccumulator:
        """The open kline as the history already knows it, so late subscribers see full candles."""
        history = self.histories[symbol]
        if not history.trades:
            if not self.settings.whole_market:
                return KlineAccumulator(symbol, interval)
            # The whole market pushes every symbol's open kline, traded in or not, as Binance does.
            opened = kl.open_time(interval, self.clock.now_ms())
            return KlineAccumulator(symbol, interval, empty_kline(symbol, interval, opened, self.last_price(symbol)))
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
        by_interval = self._accumulators.get(trade.symbol)
        if by_interval:
            for accumulator in list(by_interval.values()):
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
        for symbol, by_interval in list(self._accumulators.items()):
            rules = self.info.rules[symbol]
            for interval, accumulator in list(by_interval.items()):
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
        self.market_opened_at = time.time()
        log.info(
            "market open",
            extra={
                "symbols": len(self.trade_pacers) if self.settings.whole_market else list(self.markets),
                "whole_market": self.settings.whole_market,
                "replay": bool(self.settings.replay_path),
            },
        )
        async with asyncio.TaskGroup() as group:
            group.create_task(self._push_klines_forever())
            if self.settings.history_window_ms:
                group.create_task(self._forget_old_history())
            if self.settings.replay_path is not None:
                group.create_task(self._replay(self.settings.replay_path))
            elif self.settings.whole_market:
                group.create_task(self._trade_whole_market())
            else:
                group.create_task(self._trade_all())

    async def _trade_all(self) -> None:
        async with asyncio.TaskGroup() as group:
            for market in self.markets.values():
                group.create_task(self._trade(market))
        self.market_done.set()
        log.info("market quiet", extra={"trades_emitted": self.trades_emitted})

    async def _trade(self, market: RandomWalkMarket, trades_per_second: float | None = None) -> None:
        rate = self.settings.trades_per_second if trades_per_second is None else trades_per_second
        cap = self.settings.max_trades
        if rate <= 0:
            return
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        symbol = market.rules.symbol
        while True:
            if self.info.rules[symbol].status != "TRADING":
                # Halted: nothing trades; the schedule starts afresh when it resumes.
                await asyncio.sleep(0.2)
                next_at = loop.time()
                continue
            remaining = cap - self.trades_emitted[symbol] if cap else None
            if remaining is not None and remaining <= 0:
                return
            fill = market.next_fill(self.clock.now_ms(), max_trades=remaining)
            self.emit_fill(fill)
            # An absolute schedule keeps the long-run rate exact; bursts catch up after a stall.
            next_at += len(fill.trades) / rate
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    async def _trade_whole_market(self) -> None:
        """Every TRADING symbol at its own rate, all in one loop: a task per symbol would cost more
        in timers than the trades themselves."""
        loop = asyncio.get_running_loop()
        opened = previous = loop.time()
        # A tick trades for the time since the last one, but for no more than this: a fake short of
        # CPU (a 20x burst on a busy box) that caught up on everything due would trade in one
        # callback after another and starve its own sockets (handshakes and REST timed out), and
        # would carry a burst's backlog past the burst's end. What it skips it counts instead.
        longest_s = _LONGEST_TICKS * self.settings.market_tick_s
        while True:
            await asyncio.sleep(self.settings.market_tick_s)
            now = loop.time()
            elapsed, previous = now - previous, now
            if elapsed > longest_s:
                self.market_seconds_skipped += elapsed - longest_s
                elapsed = longest_s
            self.burst_factor = self.bursts.factor_at(now - opened)
            self._trade_tick(elapsed, self.burst_factor, self.clock.now_ms())

    def _trade_tick(self, elapsed_s: float, factor: float, now_ms: int) -> None:
        rules, cap = self.info.rules, self.settings.max_trades
        for symbol, pacer in self.trade_pacers.items():
            if rules[symbol].status != "TRADING":
                continue
            market = self.markets[symbol]
            if pacer.due(elapsed_s, factor):
                # Whole fills, their sizes drawn as always; the credit may go below 0 and is paid back.
                while pacer.credit >= 1:
                    remaining = cap - self.trades_emitted[symbol] if cap else None
                    if remaining is not None and remaining <= 0:
                        pacer.credit = 0.0
                        break
                    fill = market.next_fill(now_ms, max_trades=remaining)
                    self.emit_fill(fill)
                    pacer.spend(len(fill.trades))
            books = self.book_pacers[symbol]
            for _ in range(books.due(elapsed_s)):
                self.emit_book(market.next_quote())
            books.spend(int(books.credit))

    async def _forget_old_history(self) -> None:
        window_ms = self.settings.history_window_ms
        while True:
            await asyncio.sleep(_HISTORY_TRIM_PERIOD_S)
            cutoff = self.clock.now_ms() - window_ms
            for history in self.histories.values():
                history.forget_before(cutoff)

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
