"""Everything one symbol has traded, and the REST queries over it. Pure: in memory, no I/O."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from fake_binance import klines as kl
from fake_binance.klines import Kline
from fake_binance.market import AggTrade, Trade


@dataclass(slots=True)
class SymbolHistory:
    """Trades and aggregate trades of one symbol in the order they were emitted."""

    symbol: str
    trades: list[Trade] = field(default_factory=list)
    trade_ids: list[int] = field(default_factory=list)
    trade_times: list[int] = field(default_factory=list)
    agg_trades: list[AggTrade] = field(default_factory=list)
    agg_ids: list[int] = field(default_factory=list)
    agg_times: list[int] = field(default_factory=list)

    def add_trade(self, trade: Trade) -> None:
        self.trades.append(trade)
        self.trade_ids.append(trade.trade_id)
        self.trade_times.append(trade.trade_time)

    def add_agg_trade(self, agg: AggTrade) -> None:
        self.agg_trades.append(agg)
        self.agg_ids.append(agg.agg_id)
        self.agg_times.append(agg.trade_time)

    def forget_before(self, cutoff_ms: int) -> None:
        """Drop trades and aggregate trades older than `cutoff_ms`: a bounded memory for a long run."""
        trades = bisect.bisect_left(self.trade_times, cutoff_ms)
        if trades:
            del self.trades[:trades], self.trade_ids[:trades], self.trade_times[:trades]
        aggs = bisect.bisect_left(self.agg_times, cutoff_ms)
        if aggs:
            del self.agg_trades[:aggs], self.agg_ids[:aggs], self.agg_times[:aggs]

    @property
    def last_trade(self) -> Trade | None:
        return self.trades[-1] if self.trades else None

    # GET /api/v3/trades and /api/v3/historicalTrades
    def recent_trades(self, limit: int) -> list[Trade]:
        return self.trades[-limit:] if limit > 0 else []

    def trades_from_id(self, from_id: int, limit: int) -> list[Trade]:
        start = bisect.bisect_left(self.trade_ids, from_id)
        return self.trades[start : start + limit]

    # GET /api/v3/aggTrades
    def agg_trades_query(
        self, from_id: int | None, start_time: int | None, end_time: int | None, limit: int
    ) -> list[AggTrade]:
        """Binance's rules: fromId, else oldest from startTime, else newest up to endTime, else newest."""
        if from_id is not None:
            start = bisect.bisect_left(self.agg_ids, from_id)
            return self.agg_trades[start : start + limit]
        stop = len(self.agg_trades) if end_time is None else bisect.bisect_right(self.agg_times, end_time)
        if start_time is not None:
            start = bisect.bisect_left(self.agg_times, start_time)
            return self.agg_trades[start : min(stop, start + limit)]
        return self.agg_trades[max(0, stop - limit) : stop]

    # GET /api/v3/klines
    def klines_query(
        self,
        interval: str,
        start_time: int | None,
        end_time: int | None,
        limit: int,
        now_ms: int,
        offset_ms: int = 0,
    ) -> list[Kline]:
        """Klines by open time: oldest from startTime, else newest up to endTime (or now).

        The symbol's klines run from the one holding its first trade to the one open now;
        a kline is selected when its open time lies within [startTime, endTime].
        """
        if not self.trades or limit <= 0:
            return []
        first_open = kl.open_time(interval, self.trade_times[0], offset_ms)
        last_open = kl.open_time(interval, max(now_ms, self.trade_times[-1]), offset_ms)
        if end_time is not None:
            last_open = min(last_open, kl.open_time(interval, end_time, offset_ms))
        if start_time is not None:
            first_open = max(first_open, kl.first_open_at_or_after(interval, start_time, offset_ms))
            if first_open > last_open:
                return []
            stop = first_open
            for _ in range(limit - 1):
                following = kl.next_open_time(interval, stop, offset_ms)
                if following > last_open:
                    break
                stop = following
            return kl.klines_between(self.trades, self.trade_times, self.symbol, interval, first_open, stop, offset_ms)
        if first_open > last_open:
            return []
        begin = last_open
        for _ in range(limit - 1):
            earlier = kl.previous_open_time(interval, begin, offset_ms)
            if earlier < first_open:
                break
            begin = earlier
        return kl.klines_between(self.trades, self.trade_times, self.symbol, interval, begin, last_open, offset_ms)
