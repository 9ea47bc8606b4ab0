"""Binance kline intervals and their boundaries, in epoch milliseconds. Pure: no I/O, no clock.

Binance's rules: fixed intervals (1s to 3d) are aligned to the epoch; weeks open on Monday
00:00; months on the 1st at 00:00; a kline closes 1 ms before the next one opens. With a
`timeZone` offset the boundaries are those of local time (the offset is a whole number of minutes).
"""

from collections.abc import Sequence
from enum import StrEnum

from schemas.kline_intervals import FIXED_INTERVAL_MS

SECOND_MS = 1000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
WEEK_MS = 7 * DAY_MS
# 1970-01-01 was a Thursday: the first Monday was 4 days later.
FIRST_MONDAY_MS = 4 * DAY_MS


class Interval(StrEnum):
    """Binance's kline intervals; case-sensitive ("1m" is a minute, "1M" a month)."""

    S1 = "1s"
    M1 = "1m"
    M3 = "3m"
    M5 = "5m"
    M15 = "15m"
    M30 = "30m"
    H1 = "1h"
    H2 = "2h"
    H4 = "4h"
    H6 = "6h"
    H8 = "8h"
    H12 = "12h"
    D1 = "1d"
    D3 = "3d"
    W1 = "1w"
    MONTH1 = "1M"


# The lengths are the consumer's (schemas/kline_intervals.py): one home for Binance's interval list.
FIXED_MS: dict[Interval, int] = {Interval(name): ms for name, ms in FIXED_INTERVAL_MS.items()}


def rollup_ms(interval: Interval) -> int:
    """Which rollup an interval is built from: 1s klines from the 1-second rollup, every other
    interval (a whole number of minutes, whatever the time zone offset) from the 1-minute one."""
    return SECOND_MS if interval is Interval.S1 else MINUTE_MS


def _month_start_ms(year: int, month: int) -> int:
    """Epoch ms of the 1st of a month, in integers: the proleptic Gregorian calendar goes on past
    year 9999 (where Python's datetime ends, and a trade dated 9999-12-31 has its month's end)."""
    leap_day = 1 if month > 2 and _is_leap(year) else 0
    days = _days_before_year(year) - _DAYS_BEFORE_1970 + _DAYS_BEFORE_MONTH[month - 1] + leap_day
    return days * DAY_MS


def _year_month(time_ms: int) -> tuple[int, int]:
    """(year, month) of an epoch ms time, past year 9999 too."""
    days = time_ms // DAY_MS
    # A first guess from the mean Gregorian year, then corrected by at most a year either way.
    year = 1970 + days * 400 // 146_097
    while _month_start_ms(year, 1) > time_ms:
        year -= 1
    while _month_start_ms(year + 1, 1) <= time_ms:
        year += 1
    month = 12
    while _month_start_ms(year, month) > time_ms:
        month -= 1
    return year, month


_DAYS_BEFORE_MONTH = (0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334)


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _days_before_year(year: int) -> int:
    previous = year - 1
    return previous * 365 + previous // 4 - previous // 100 + previous // 400


_DAYS_BEFORE_1970 = _days_before_year(1970)


def open_time(interval: Interval, time_ms: int, offset_ms: int = 0) -> int:
    """Open time of the kline that contains `time_ms`."""
    local = time_ms + offset_ms
    if interval is Interval.MONTH1:
        year, month = _year_month(local)
        return _month_start_ms(year, month) - offset_ms
    if interval is Interval.W1:
        return (local - FIRST_MONDAY_MS) // WEEK_MS * WEEK_MS + FIRST_MONDAY_MS - offset_ms
    length = FIXED_MS[interval]
    return local // length * length - offset_ms


def next_open_time(interval: Interval, open_ms: int, offset_ms: int = 0) -> int:
    if interval is Interval.MONTH1:
        year, month = _year_month(open_ms + offset_ms)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return _month_start_ms(year, month) - offset_ms
    return open_ms + FIXED_MS[interval]


def previous_open_time(interval: Interval, open_ms: int, offset_ms: int = 0) -> int:
    return open_time(interval, open_ms - 1, offset_ms)


def close_time(interval: Interval, open_ms: int, offset_ms: int = 0) -> int:
    """Binance's close time: the next kline's open time minus 1 ms."""
    return next_open_time(interval, open_ms, offset_ms) - 1


def close_times(interval: Interval, opens: Sequence[int], offset_ms: int = 0) -> list[int]:
    """close_time of each of `opens`, in one pass (a day of 1m klines is 1,440)."""
    if interval is Interval.MONTH1:
        return [close_time(interval, open_ms, offset_ms) for open_ms in opens]
    last_ms = FIXED_MS[interval] - 1
    return [open_ms + last_ms for open_ms in opens]


def first_open_at_or_after(interval: Interval, time_ms: int, offset_ms: int = 0) -> int:
    start = open_time(interval, time_ms, offset_ms)
    return start if start >= time_ms else next_open_time(interval, start, offset_ms)


def kline_opens(
    interval: Interval,
    data_first_ms: int,
    data_last_ms: int,
    start_ms: int | None,
    end_ms: int | None,
    limit: int,
    offset_ms: int = 0,
) -> list[int]:
    """Open times of the klines a request selects, Binance's way.

    Klines exist from the one holding the first stored trade to the one holding the last (there
    is no kline before a symbol's first trade; after the last stored trade this service does not
    invent flat klines up to now). A kline is selected when its open time lies in
    [start_ms, end_ms] (both inclusive); with a start, the oldest `limit` of them, otherwise the
    newest `limit`.
    """
    if limit <= 0 or data_last_ms < data_first_ms:
        return []
    first = open_time(interval, data_first_ms, offset_ms)
    last = open_time(interval, data_last_ms, offset_ms)
    if end_ms is not None:
        last = min(last, open_time(interval, end_ms, offset_ms))
    if start_ms is not None:
        first = max(first, first_open_at_or_after(interval, start_ms, offset_ms))
        opens: list[int] = []
        current = first
        while current <= last and len(opens) < limit:
            opens.append(current)
            current = next_open_time(interval, current, offset_ms)
        return opens
    backwards: list[int] = []
    current = last
    while current >= first and len(backwards) < limit:
        backwards.append(current)
        current = previous_open_time(interval, current, offset_ms)
    return backwards[::-1]


def earlier_opens(interval: Interval, open_ms: int, count: int, offset_ms: int = 0) -> list[int]:
    """The `count` open times before `open_ms`, oldest first (for indicators that need history)."""
    opens: list[int] = []
    current = open_ms
    for _ in range(count):
        current = previous_open_time(interval, current, offset_ms)
        opens.append(current)
    return opens[::-1]
