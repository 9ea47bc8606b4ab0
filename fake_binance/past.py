"""The market before the fake started: any past UTC day of any symbol, generated on demand. Pure.

A day's trades depend only on (seed, symbol, day), so the REST history, the archive files and
the klines of both agree whichever is asked first: the klines are the candles of the trades.
Every day holds exactly `trades_per_day` trades, evenly spread over the day (a fill's trades share
its time), so trade ids are consecutive across days: day d holds ids
PAST_ID_BASE + d*N + 1 .. PAST_ID_BASE + (d+1)*N. Aggregate trades of day d are numbered from
PAST_ID_BASE + d*N + 1 on (fewer than N a day, so their ids skip at midnight). The base keeps past
ids above any live id (live ids start at 1, or at the clock's milliseconds with ids_from_clock).
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from dataclasses import dataclass

from fake_binance import klines as kl
from fake_binance.exchange_info import ExchangeInfo
from fake_binance.klines import DAY_MS, Kline
from fake_binance.market import AggTrade, RandomWalkMarket, Trade

PAST_ID_BASE = 10**15
# Days kept generated (per fake): a month of one symbol, or a few days of many.
_CACHE_DAYS = 64


@dataclass(frozen=True, slots=True)
class PastDay:
    trades: list[Trade]
    trade_times: list[int]
    agg_trades: list[AggTrade]
    agg_ids: list[int]
    agg_times: list[int]


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
        generated = self._generate(symbol, day_index)
        self._days[key] = generated
        if len(self._days) > _CACHE_DAYS:
            self._days.popitem(last=False)
        return generated

    def _generate(self, symbol: str, day_index: int) -> PastDay:
        count = self.trades_per_day
        first_id = PAST_ID_BASE + day_index * count + 1
        market = RandomWalkMarket(
            self.info.rules[symbol], f"{self.seed}:past:{day_index}", first_trade_id=first_id, first_agg_id=first_id
        )
        day_start = day_index * DAY_MS
        trades: list[Trade] = []
        aggs: list[AggTrade] = []
        while len(trades) < count:
            at = day_start + len(trades) * DAY_MS // count
            fill = market.next_fill(at, max_trades=count - len(trades))
            trades.extend(fill.trades)
            aggs.append(fill.agg_trade)
        return PastDay(
            trades=trades,
            trade_times=[t.trade_time for t in trades],
            agg_trades=aggs,
            agg_ids=[a.agg_id for a in aggs],
            agg_times=[a.trade_time for a in aggs],
        )

    # --- what the archive and REST history read ------------------------------------------------

    def trades_between(self, symbol: str, start_ms: int, end_ms: int) -> list[Trade]:
        """Trades with a time in [start_ms, end_ms), within the past."""
        end_ms = min(end_ms, self.end_ms)
        found: list[Trade] = []
        for day_index in range(max(0, start_ms // DAY_MS), (end_ms - 1) // DAY_MS + 1):
            day = self.day(symbol, day_index)
            low = bisect.bisect_left(day.trade_times, start_ms)
            high = bisect.bisect_left(day.trade_times, end_ms)
            found.extend(day.trades[low:high])
        return found

    def agg_trades_between(self, symbol: str, start_ms: int, end_ms: int) -> list[AggTrade]:
        end_ms = min(end_ms, self.end_ms)
        found: list[AggTrade] = []
        for day_index in range(max(0, start_ms // DAY_MS), (end_ms - 1) // DAY_MS + 1):
            day = self.day(symbol, day_index)
            low = bisect.bisect_left(day.agg_times, start_ms)
            high = bisect.bisect_left(day.agg_times, end_ms)
            found.extend(day.agg_trades[low:high])
        return found

    def trades_from_id(self, symbol: str, from_id: int, limit: int) -> list[Trade]:
        found: list[Trade] = []
        day_index = max(0, (from_id - PAST_ID_BASE - 1) // self.trades_per_day)
        while len(found) < limit and day_index < self.end_ms // DAY_MS:
            day = self.day(symbol, day_index)
            offset = max(0, from_id - day.trades[0].trade_id)
            found.extend(day.trades[offset : offset + limit - len(found)])
            day_index += 1
        return found

    def agg_trades_from_id(self, symbol: str, from_id: int, limit: int) -> list[AggTrade]:
        found: list[AggTrade] = []
        day_index = max(0, (from_id - PAST_ID_BASE - 1) // self.trades_per_day)
        while len(found) < limit and day_index < self.end_ms // DAY_MS:
            day = self.day(symbol, day_index)
            low = bisect.bisect_left(day.agg_ids, from_id)
            found.extend(day.agg_trades[low : low + limit - len(found)])
            day_index += 1
        return found

    def agg_trades_query(self, symbol: str, start_ms: int, end_ms: int | None, limit: int) -> list[AggTrade]:
        """Binance's startTime rule: the oldest from startTime (to endTime, inclusive, if given)."""
        stop = self.end_ms if end_ms is None else min(end_ms + 1, self.end_ms)
        found: list[AggTrade] = []
        day_index = max(0, start_ms // DAY_MS)
        while len(found) < limit and day_index * DAY_MS < stop:
            day = self.day(symbol, day_index)
            low = bisect.bisect_left(day.agg_times, start_ms)
            high = bisect.bisect_left(day.agg_times, stop)
            found.extend(day.agg_trades[low:high][: limit - len(found)])
            day_index += 1
        return found

    def kline(self, symbol: str, interval: str, open_ms: int) -> Kline:
        """The kline opening at `open_ms`: the candle of the trades in it (every past day has some)."""
        close_ms = kl.close_time(interval, open_ms)
        trades = self.trades_between(symbol, open_ms, close_ms + 1)
        times = [t.trade_time for t in trades]
        return kl.klines_between(trades, times, symbol, interval, open_ms, open_ms)[0]

    def klines_query(self, symbol: str, interval: str, start_ms: int, end_ms: int | None, limit: int) -> list[Kline]:
        """Klines opening in [start_ms, end_ms] (and in the past), oldest first, at most `limit`."""
        found: list[Kline] = []
        open_ms = kl.first_open_at_or_after(interval, start_ms)
        last = self.end_ms - 1 if end_ms is None else min(end_ms, self.end_ms - 1)
        while len(found) < limit and open_ms <= last and kl.close_time(interval, open_ms) < self.end_ms:
            found.append(self.kline(symbol, interval, open_ms))
            open_ms = kl.next_open_time(interval, open_ms)
        return found

    def klines_between(self, symbol: str, interval: str, start_ms: int, end_ms: int) -> list[Kline]:
        """Every kline opening in [start_ms, end_ms): what an archive file of that period holds."""
        trades = self.trades_between(symbol, start_ms, end_ms)
        times = [t.trade_time for t in trades]
        last_open = kl.previous_open_time(interval, end_ms)
        return kl.klines_between(trades, times, symbol, interval, start_ms, last_open)
