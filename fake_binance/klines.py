"""Kline (candlestick) bucketing from trades, with Binance's boundaries. Pure: no I/O, no clock."""

from __future__ import annotations

import bisect
import calendar
import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal

from fake_binance.market import Trade

SECOND_MS = 1000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
WEEK_MS = 7 * DAY_MS
# 1970-01-01 was a Thursday; Binance's weekly klines open on Monday 00:00 UTC.
_FIRST_MONDAY_MS = 4 * DAY_MS

_FIXED_INTERVALS_MS: dict[str, int] = {
    "1s": SECOND_MS,
    "1m": MINUTE_MS,
    "3m": 3 * MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": HOUR_MS,
    "2h": 2 * HOUR_MS,
    "4h": 4 * HOUR_MS,
    "6h": 6 * HOUR_MS,
    "8h": 8 * HOUR_MS,
    "12h": 12 * HOUR_MS,
    "1d": DAY_MS,
    "3d": 3 * DAY_MS,
}
# Binance's interval names are case-sensitive: "1m" is a minute, "1M" a month.
INTERVALS: tuple[str, ...] = (*_FIXED_INTERVALS_MS, "1w", "1M")


def is_interval(interval: str) -> bool:
    return interval in INTERVALS


def open_time(interval: str, time_ms: int, offset_ms: int = 0) -> int:
    """Open time of the kline containing `time_ms`; `offset_ms` shifts boundaries to a time zone."""
    local = time_ms + offset_ms
    if interval == "1M":
        day = dt.datetime.fromtimestamp(local // 1000, tz=dt.UTC)
        start = dt.datetime(day.year, day.month, 1, tzinfo=dt.UTC)
        return calendar.timegm(start.timetuple()) * 1000 - offset_ms
    if interval == "1w":
        return (local - _FIRST_MONDAY_MS) // WEEK_MS * WEEK_MS + _FIRST_MONDAY_MS - offset_ms
    length = _FIXED_INTERVALS_MS[interval]
    return local // length * length - offset_ms


def next_open_time(interval: str, open_ms: int, offset_ms: int = 0) -> int:
    if interval == "1M":
        local = dt.datetime.fromtimestamp((open_ms + offset_ms) // 1000, tz=dt.UTC)
        year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
        start = dt.datetime(year, month, 1, tzinfo=dt.UTC)
        return calendar.timegm(start.timetuple()) * 1000 - offset_ms
    if interval == "1w":
        return open_ms + WEEK_MS
    return open_ms + _FIXED_INTERVALS_MS[interval]


def close_time(interval: str, open_ms: int, offset_ms: int = 0) -> int:
    """Binance's close time: the next kline's open time minus 1 ms."""
    return next_open_time(interval, open_ms, offset_ms) - 1


def previous_open_time(interval: str, open_ms: int, offset_ms: int = 0) -> int:
    return open_time(interval, open_ms - 1, offset_ms)


def first_open_at_or_after(interval: str, time_ms: int, offset_ms: int = 0) -> int:
    start = open_time(interval, time_ms, offset_ms)
    return start if start >= time_ms else next_open_time(interval, start, offset_ms)


@dataclass(frozen=True, slots=True)
class Kline:
    symbol: str
    interval: str
    open_time: int
    close_time: int
    # Binance sends -1 for both when the kline has no trades.
    first_trade_id: int
    last_trade_id: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    trade_count: int
    taker_buy_volume: Decimal
    taker_buy_quote_volume: Decimal


def empty_kline(symbol: str, interval: str, open_ms: int, previous_close: Decimal, offset_ms: int = 0) -> Kline:
    """A kline without trades: flat at the previous close, zero volume, trade ids -1."""
    zero = Decimal(0)
    return Kline(
        symbol=symbol,
        interval=interval,
        open_time=open_ms,
        close_time=close_time(interval, open_ms, offset_ms),
        first_trade_id=-1,
        last_trade_id=-1,
        open=previous_close,
        high=previous_close,
        low=previous_close,
        close=previous_close,
        volume=zero,
        quote_volume=zero,
        trade_count=0,
        taker_buy_volume=zero,
        taker_buy_quote_volume=zero,
    )


def add_trade(kline: Kline, trade: Trade) -> Kline:
    """The kline with one more trade (which must fall inside it)."""
    # The taker is the buyer when the buyer is not the maker. Built field by field, not with
    # dataclasses.replace: every trade of the whole market passes here (a tenth of the fake's CPU).
    taker_buy = not trade.buyer_is_maker
    price, qty, quote_qty = trade.price, trade.qty, trade.quote_qty
    if kline.trade_count == 0:
        return Kline(
            kline.symbol,
            kline.interval,
            kline.open_time,
            kline.close_time,
            trade.trade_id,
            trade.trade_id,
            price,
            price,
            price,
            price,
            qty,
            quote_qty,
            1,
            qty if taker_buy else Decimal(0),
            quote_qty if taker_buy else Decimal(0),
        )
    return Kline(
        kline.symbol,
        kline.interval,
        kline.open_time,
        kline.close_time,
        kline.first_trade_id,
        trade.trade_id,
        kline.open,
        max(kline.high, price),
        min(kline.low, price),
        price,
        kline.volume + qty,
        kline.quote_volume + quote_qty,
        kline.trade_count + 1,
        kline.taker_buy_volume + qty if taker_buy else kline.taker_buy_volume,
        kline.taker_buy_quote_volume + quote_qty if taker_buy else kline.taker_buy_quote_volume,
    )


def klines_between(
    trades: Sequence[Trade],
    trade_times: Sequence[int],
    symbol: str,
    interval: str,
    first_open: int,
    last_open: int,
    offset_ms: int = 0,
) -> list[Kline]:
    """Every kline from `first_open` to `last_open` inclusive, gaps filled flat at the last price.

    `trades` are one symbol's trades in time order and `trade_times` their trade times. Klines
    before the symbol's first trade do not exist, as on Binance before a listing.
    """
    first_open = open_time(interval, first_open, offset_ms)
    start_index = bisect.bisect_left(trade_times, first_open)
    previous_close = trades[start_index - 1].price if start_index > 0 else None
    end_index = bisect.bisect_right(trade_times, close_time(interval, last_open, offset_ms))
    klines: list[Kline] = []
    index = start_index
    bucket = first_open
    while bucket <= last_open:
        bucket_close = close_time(interval, bucket, offset_ms)
        current: Kline | None = None
        if previous_close is not None:
            current = empty_kline(symbol, interval, bucket, previous_close, offset_ms)
        while index < end_index and trade_times[index] <= bucket_close:
            trade = trades[index]
            if current is None:
                current = empty_kline(symbol, interval, bucket, trade.price, offset_ms)
            current = add_trade(current, trade)
            index += 1
        if current is not None:
            klines.append(current)
            previous_close = current.close
        bucket = next_open_time(interval, bucket, offset_ms)
    return klines


def klines_of_trades(
    trades: Iterable[Trade], symbol: str, interval: str, first_open: int, last_open: int
) -> Iterator[Kline]:
    """klines_between() over trades read one by one and not held: the period's trades in time order,
    none before it known (so no kline before the period's first trade, as klines_between() when
    given only the period's trades)."""
    # klines_between()'s walk, with the next trade of an iterator in place of an index.
    bucket = open_time(interval, first_open)
    upcoming = (trade for trade in trades if trade.trade_time >= bucket)
    pending = next(upcoming, None)
    previous_close: Decimal | None = None
    while bucket <= last_open:
        bucket_close = close_time(interval, bucket)
        current = empty_kline(symbol, interval, bucket, previous_close) if previous_close is not None else None
        while pending is not None and pending.trade_time <= bucket_close:
            if current is None:
                current = empty_kline(symbol, interval, bucket, pending.price)
            current = add_trade(current, pending)
            pending = next(upcoming, None)
        if current is not None:
            yield current
            previous_close = current.close
        bucket = next_open_time(interval, bucket)


class KlineAccumulator:
    """The open kline of one (symbol, interval), fed trade by trade and by the clock."""

    def __init__(self, symbol: str, interval: str, current: Kline | None = None) -> None:
        self.symbol = symbol
        self.interval = interval
        self.current = current

    def advance_to(self, time_ms: int) -> list[Kline]:
        """Close every kline that ended before `time_ms`; returns them in order (gaps filled)."""
        closed: list[Kline] = []
        if self.current is None:
            return closed
        target = open_time(self.interval, time_ms)
        while self.current.open_time < target:
            closed.append(self.current)
            following = next_open_time(self.interval, self.current.open_time)
            self.current = empty_kline(self.symbol, self.interval, following, self.current.close)
        return closed

    def add(self, trade: Trade) -> list[Kline]:
        """Add a trade; returns the klines its arrival closed."""
        closed = self.advance_to(trade.trade_time)
        if self.current is None:
            self.current = empty_kline(
                self.symbol, self.interval, open_time(self.interval, trade.trade_time), trade.price
            )
        self.current = add_trade(self.current, trade)
        return closed
