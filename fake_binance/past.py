"""The market before the fake started: any past UTC day of any symbol, generated on demand. Pure.

A day's trades depend only on (seed, symbol, day), so the REST history, the archive files and
the klines of both agree whichever is asked first: the klines are the candles of the trades.
Every day holds exactly `trades_per_day` trades, evenly spread over the day (a fill's trades share
its time), so trade ids are consecutive across days: day d holds ids
PAST_ID_BASE + d*N + 1 .. PAST_ID_BASE + (d+1)*N. Aggregate trades of day d are numbered from
PAST_ID_BASE + d*N + 1 on (fewer than N a day, so their ids skip at midnight). The base keeps past
ids above any live id (live ids start at 1, or at the clock's milliseconds with ids_from_clock).

A day is never held whole (a day of 1.5 million trades was over 800 MB as objects): one pass
through it keeps the random walk's state every SEGMENT_TRADES trades (2.5 kB each), and a query
regenerates the segments it reads from the nearest one, a few kept for the pages that follow.
"""

from __future__ import annotations

import bisect
import itertools
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from fake_binance import klines as kl
from fake_binance.exchange_info import ExchangeInfo
from fake_binance.klines import DAY_MS, Kline
from fake_binance.market import AggTrade, RandomWalkMarket, Trade, WalkState

PAST_ID_BASE = 10**15
# Trades between two saved states of a day's walk: what one query regenerates at most, beyond
# what it returns.
SEGMENT_TRADES = 10_000
# Days whose saved states are kept (per fake): a month of one symbol, or a few days of many.
_CACHE_DAYS = 64
# Segments kept generated: the next page of a walk by id or by time is usually in the same one.
_CACHE_SEGMENTS = 8

# One fill of the walk: its trades (one price, one time) and their aggregate trade.
_Fill = tuple[tuple[Trade, ...], AggTrade]


@dataclass(frozen=True, slots=True)
class PastDay:
    """One symbol's day as saved states of its walk, each at the start of a fill."""

    symbol: str
    day_index: int
    states: list[WalkState]
    trade_starts: list[int]  # the day's trades before each state
    agg_starts: list[int]  # the day's aggregate trades before each state
    times: list[int]  # the time of the fill starting at each state
    agg_count: int

    @property
    def first_id(self) -> int:
        return self.states[0].next_trade_id


class PastMarket:
    """Every symbol's trades on the days before yesterday (of `today_ms`).

    Yesterday and today belong to live trading: a client's "the last hour" just after midnight
    must find the live history, not a generated one. Yesterday is then also the day Binance's
    archive has not published yet, as on a morning when the previous day's file is still being made.
    """

    def __init__(self, info: ExchangeInfo, seed: int, trades_per_day: int, today_ms: int) -> None:
        self.info = info
        self.seed = seed
        self.trades_per_day = trades_per_day
        self.end_ms = (today_ms // DAY_MS - 1) * DAY_MS  # the first moment that is not past: yesterday
        self._days: OrderedDict[tuple[str, int], PastDay] = OrderedDict()
        self._segments: OrderedDict[tuple[str, int, int], list[_Fill]] = OrderedDict()

    def is_past(self, time_ms: int) -> bool:
        return time_ms < self.end_ms

    def is_past_id(self, any_id: int) -> bool:
        return PAST_ID_BASE < any_id <= PAST_ID_BASE + self.end_ms // DAY_MS * self.trades_per_day

    def day(self, symbol: str, day_index: int) -> PastDay:
        key = (symbol, day_index)
        cached = self._days.get(key)
        if cached is not None:
            self._days.move_to_end(key)
            return cached
        walked = self._walk(symbol, day_index)
        self._days[key] = walked
        if len(self._days) > _CACHE_DAYS:
            self._days.popitem(last=False)
        return walked

    def _market(self, symbol: str, day_index: int) -> RandomWalkMarket:
        first_id = PAST_ID_BASE + day_index * self.trades_per_day + 1
        return RandomWalkMarket(
            self.info.rules[symbol], f"{self.seed}:past:{day_index}", first_trade_id=first_id, first_agg_id=first_id
        )

    def _fills(self, market: RandomWalkMarket, day_index: int, done: int, stop: int) -> Iterator[_Fill]:
        """The fills from the day's `done`-th trade until `stop` trades are done. Every day holds
        exactly trades_per_day trades, evenly spread; a fill's trades share its time."""
        count = self.trades_per_day
        day_start = day_index * DAY_MS
        while done < stop:
            fill = market.next_fill(day_start + done * DAY_MS // count, max_trades=count - done)
            done += len(fill.trades)
            yield fill.trades, fill.agg_trade

    def _walk(self, symbol: str, day_index: int) -> PastDay:
        """One pass through the day, saving the walk's state before the first fill of each segment."""
        market = self._market(symbol, day_index)
        count, day_start = self.trades_per_day, day_index * DAY_MS
        states, trade_starts, agg_starts, times = [market.walk_state()], [0], [0], [day_start]
        done = aggs = 0
        for trades, _ in self._fills(market, day_index, 0, count):
            done += len(trades)
            aggs += 1
            # The generator waits here, before its next fill: the state is the one that fill starts from.
            if done < count and done >= len(states) * SEGMENT_TRADES:
                states.append(market.walk_state())
                trade_starts.append(done)
                agg_starts.append(aggs)
                times.append(day_start + done * DAY_MS // count)
        return PastDay(symbol, day_index, states, trade_starts, agg_starts, times, aggs)

    def _segment(self, day: PastDay, number: int) -> list[_Fill]:
        key = (day.symbol, day.day_index, number)
        cached = self._segments.get(key)
        if cached is not None:
            self._segments.move_to_end(key)
            return cached
        market = self._market(day.symbol, day.day_index)
        market.resume(day.states[number])
        stop = day.trade_starts[number + 1] if number + 1 < len(day.states) else self.trades_per_day
        fills = list(self._fills(market, day.day_index, day.trade_starts[number], stop))
        self._segments[key] = fills
        if len(self._segments) > _CACHE_SEGMENTS:
            self._segments.popitem(last=False)
        return fills

    def _fills_from(self, day: PastDay, number: int) -> Iterator[_Fill]:
        """The day's fills from the start of segment `number` to the day's end."""
        for each in range(number, len(day.states)):
            yield from self._segment(day, each)

    def _days_between(self, symbol: str, start_ms: int, end_ms: int) -> Iterator[PastDay]:
        for day_index in range(max(0, start_ms // DAY_MS), (end_ms - 1) // DAY_MS + 1):
            yield self.day(symbol, day_index)

    @staticmethod
    def _segment_at_time(day: PastDay, time_ms: int) -> int:
        """The last segment starting before `time_ms`: no trade at or after it comes earlier."""
        return max(0, bisect.bisect_left(day.times, time_ms) - 1)

    # --- what the archive and REST history read ------------------------------------------------

    def trades_between(self, symbol: str, start_ms: int, end_ms: int) -> Iterator[Trade]:
        """Trades with a time in [start_ms, end_ms), within the past, oldest first."""
        end_ms = min(end_ms, self.end_ms)
        for day in self._days_between(symbol, start_ms, end_ms):
            for trades, agg in self._fills_from(day, self._segment_at_time(day, start_ms)):
                if agg.trade_time >= end_ms:
                    return
                if agg.trade_time >= start_ms:
                    yield from trades

    def agg_trades_between(self, symbol: str, start_ms: int, end_ms: int) -> Iterator[AggTrade]:
        end_ms = min(end_ms, self.end_ms)
        for day in self._days_between(symbol, start_ms, end_ms):
            for _, agg in self._fills_from(day, self._segment_at_time(day, start_ms)):
                if agg.trade_time >= end_ms:
                    return
                if agg.trade_time >= start_ms:
                    yield agg

    def trades_from_id(self, symbol: str, from_id: int, limit: int) -> list[Trade]:
        return list(itertools.islice(self._trades_from_id(symbol, from_id), limit))

    def _trades_from_id(self, symbol: str, from_id: int) -> Iterator[Trade]:
        day_index = max(0, (from_id - PAST_ID_BASE - 1) // self.trades_per_day)
        while day_index < self.end_ms // DAY_MS:
            day = self.day(symbol, day_index)
            offset = max(0, from_id - day.first_id)
            number = max(0, bisect.bisect_right(day.trade_starts, offset) - 1)
            for trades, _ in self._fills_from(day, number):
                if trades[-1].trade_id >= from_id:
                    yield from (trade for trade in trades if trade.trade_id >= from_id)
            day_index += 1

    def agg_trades_from_id(self, symbol: str, from_id: int, limit: int) -> list[AggTrade]:
        return list(itertools.islice(self._agg_trades_from_id(symbol, from_id), limit))

    def _agg_trades_from_id(self, symbol: str, from_id: int) -> Iterator[AggTrade]:
        day_index = max(0, (from_id - PAST_ID_BASE - 1) // self.trades_per_day)
        while day_index < self.end_ms // DAY_MS:
            day = self.day(symbol, day_index)
            offset = max(0, from_id - day.first_id)  # the day's aggregate ids are consecutive from it
            number = max(0, bisect.bisect_right(day.agg_starts, offset) - 1)
            for _, agg in self._fills_from(day, number):
                if agg.agg_id >= from_id:
                    yield agg
            day_index += 1

    def agg_trades_query(self, symbol: str, start_ms: int, end_ms: int | None, limit: int) -> list[AggTrade]:
        """Binance's startTime rule: the oldest from startTime (to endTime, inclusive, if given)."""
        stop = self.end_ms if end_ms is None else min(end_ms + 1, self.end_ms)
        return list(itertools.islice(self.agg_trades_between(symbol, start_ms, stop), limit))

    def klines_query(self, symbol: str, interval: str, start_ms: int, end_ms: int | None, limit: int) -> list[Kline]:
        """Klines opening in [start_ms, end_ms] (and in the past), oldest first, at most `limit`:
        the candles of the trades in them, one pass over those trades."""
        first_open = open_ms = kl.first_open_at_or_after(interval, start_ms)
        last = self.end_ms - 1 if end_ms is None else min(end_ms, self.end_ms - 1)
        last_open: int | None = None
        for _ in range(limit):
            if open_ms > last or kl.close_time(interval, open_ms) >= self.end_ms:
                break
            last_open, open_ms = open_ms, kl.next_open_time(interval, open_ms)
        if last_open is None:
            return []
        trades = self.trades_between(symbol, first_open, kl.close_time(interval, last_open) + 1)
        return list(kl.klines_of_trades(trades, symbol, interval, first_open, last_open))

    def klines_between(self, symbol: str, interval: str, start_ms: int, end_ms: int) -> Iterator[Kline]:
        """Every kline opening in [start_ms, end_ms): what an archive file of that period holds."""
        trades = self.trades_between(symbol, start_ms, end_ms)
        last_open = kl.previous_open_time(interval, end_ms)
        return kl.klines_of_trades(trades, symbol, interval, start_ms, last_open)
