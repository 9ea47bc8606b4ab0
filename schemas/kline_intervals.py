"""Binance's kline intervals and when a kline of each closes. Pure: no I/O, no clock.

Binance's rule: a kline closes one unit (1 ms, or 1 us under timeUnit=MICROSECOND) before the next
one opens. Fixed intervals (1s to 1w) are a fixed length; a month runs to the next month's 1st.
"""

import calendar
import datetime as dt

_SECOND_MS = 1000
_MINUTE_MS = 60 * _SECOND_MS
_HOUR_MS = 60 * _MINUTE_MS
_DAY_MS = 24 * _HOUR_MS
FIXED_INTERVAL_MS: dict[str, int] = {
    "1s": _SECOND_MS,
    "1m": _MINUTE_MS,
    "3m": 3 * _MINUTE_MS,
    "5m": 5 * _MINUTE_MS,
    "15m": 15 * _MINUTE_MS,
    "30m": 30 * _MINUTE_MS,
    "1h": _HOUR_MS,
    "2h": 2 * _HOUR_MS,
    "4h": 4 * _HOUR_MS,
    "6h": 6 * _HOUR_MS,
    "8h": 8 * _HOUR_MS,
    "12h": 12 * _HOUR_MS,
    "1d": _DAY_MS,
    "3d": 3 * _DAY_MS,
    "1w": 7 * _DAY_MS,
}
MONTH = "1M"
KLINE_INTERVALS = frozenset((*FIXED_INTERVAL_MS, MONTH))


def kline_close_time(interval: str, open_time: int, units_per_ms: int = 1) -> int | None:
    """The close time of the `interval` kline opening at `open_time` (in ms, or in 1/units_per_ms
    of a ms), or None if a month kline's open time is not the start of a month."""
    if interval != MONTH:
        return open_time + FIXED_INTERVAL_MS[interval] * units_per_ms - 1
    if open_time % (_DAY_MS * units_per_ms):
        return None
    day = dt.datetime.fromtimestamp(open_time // (1000 * units_per_ms), tz=dt.UTC)
    if day.day != 1:
        return None
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return calendar.timegm((year, month, 1, 0, 0, 0)) * 1000 * units_per_ms - 1


# Binance pushes a 1s kline once, when it closes, and the open kline of every other interval
# every 2 seconds until its closing push ("x": true).
KLINE_PUSH_PERIOD_MS = 2000


def pushes_open_kline(interval: str, tick_ms: int) -> bool:
    """Whether Binance shows the open `interval` kline at the whole second `tick_ms`."""
    return interval != "1s" and tick_ms % KLINE_PUSH_PERIOD_MS == 0
