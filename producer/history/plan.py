"""Which archive file or REST window holds each part of an asked period. Pure: no I/O, no clock.

data.binance.vision's layout (github.com/binance/binance-public-data):
  data/spot/daily/trades/BTCUSDT/BTCUSDT-trades-2021-05-22.zip
  data/spot/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2021-05-22.zip
  data/spot/daily/klines/BTCUSDT/5m/BTCUSDT-5m-2021-05-22.zip
  data/spot/monthly/.../BTCUSDT-trades-2021-05.zip        (a whole calendar month)
each with `<file>.zip.CHECKSUM` beside it. A month's klines are named `1mo`. Daily files are
published the next day, monthly ones early in the next month; so whole months take one monthly
file, other days their daily files, and what the archive can't hold yet (today) goes to REST.
"""

import calendar
import datetime as dt
from dataclasses import dataclass

from schemas.kline_intervals import FIXED_INTERVAL_MS

DAY_MS = 86_400_000
# Binance's spot archive writes microsecond times in the files of this day and after.
ARCHIVE_MICROSECONDS_FROM_MS = calendar.timegm((2025, 1, 1, 0, 0, 0)) * 1000
_ARCHIVE_KINDS = {"trade": "trades", "aggTrade": "aggTrades"}


@dataclass(frozen=True, slots=True)
class Unit:
    """One piece of work: one file, or one REST window, of one symbol's stream."""

    source: str  # "archive" or "rest"
    symbol: str
    stream: str  # trade, aggTrade, kline_<interval>
    start_ms: int  # the part of the asked period it covers, [start_ms, end_ms)
    end_ms: int
    file_start_ms: int = 0  # an archive file's own period (it may reach past the asked one)
    file_end_ms: int = 0
    period: str = ""  # daily or monthly (archive only)

    @property
    def stream_name(self) -> str:
        """The Binance stream name, as the stream header carries it."""
        return f"{self.symbol.lower()}@{self.stream}"

    @property
    def file_name(self) -> str:
        """e.g. ADABNB-5m-2021-05-22 (no .zip)."""
        label = _label(self.stream, self.period)
        day = dt.datetime.fromtimestamp(self.file_start_ms / 1000, tz=dt.UTC)
        date = f"{day:%Y-%m-%d}" if self.period == "daily" else f"{day:%Y-%m}"
        return f"{self.symbol}-{label}-{date}"

    @property
    def path(self) -> str:
        """The zip's path under the archive's base URL."""
        kind = "klines" if self.stream.startswith("kline_") else _ARCHIVE_KINDS[self.stream]
        folder = f"data/spot/{self.period}/{kind}/{self.symbol}"
        if kind == "klines":
            folder += f"/{_label(self.stream, self.period)}"
        return f"{folder}/{self.file_name}.zip"

    @property
    def microseconds(self) -> bool:
        return self.source == "archive" and self.file_start_ms >= ARCHIVE_MICROSECONDS_FROM_MS

    @property
    def key(self) -> str:
        """Names the unit in the state file and the logs."""
        if self.source == "archive":
            return self.file_name
        return f"rest:{self.stream_name}:{self.start_ms}-{self.end_ms}"

    @property
    def whole_file(self) -> bool:
        return self.start_ms == self.file_start_ms and self.end_ms == self.file_end_ms


def _label(stream: str, period: str) -> str:
    if not stream.startswith("kline_"):
        return _ARCHIVE_KINDS[stream]
    interval = stream.removeprefix("kline_")
    return "1mo" if interval == "1M" else interval


def archive_has_daily(stream: str) -> bool:
    """Daily files hold trades, aggTrades and klines up to 1d; longer klines come in monthly files."""
    interval = stream.removeprefix("kline_")
    return not stream.startswith("kline_") or FIXED_INTERVAL_MS.get(interval, DAY_MS + 1) <= DAY_MS


def month_bounds(time_ms: int) -> tuple[int, int]:
    day = dt.datetime.fromtimestamp(time_ms / 1000, tz=dt.UTC)
    start = calendar.timegm((day.year, day.month, 1, 0, 0, 0)) * 1000
    following = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return start, calendar.timegm((*following, 1, 0, 0, 0)) * 1000


def daily_unit(symbol: str, stream: str, day_start: int, start_ms: int, end_ms: int) -> Unit:
    return Unit(
        "archive",
        symbol,
        stream,
        max(start_ms, day_start),
        min(end_ms, day_start + DAY_MS),
        day_start,
        day_start + DAY_MS,
        "daily",
    )


def rest_unit(symbol: str, stream: str, start_ms: int, end_ms: int) -> Unit:
    return Unit("rest", symbol, stream, start_ms, end_ms)


def plan_stream(symbol: str, stream: str, start_ms: int, end_ms: int, now_ms: int, source: str) -> list[Unit]:
    """Units that together cover [start_ms, end_ms) once, in time order.

    rest: one REST window. archive and auto: a monthly file for each whole calendar month that
    ended before today, daily files for the other days that ended before today (the archive
    publishes a day the next day), and for what is left (today, or klines over 1d outside whole
    months) a REST window under auto; under archive that part is left out, and the caller reports
    it as not imported.
    """
    if source == "rest":
        return [rest_unit(symbol, stream, start_ms, end_ms)]
    today = now_ms // DAY_MS * DAY_MS
    units: list[Unit] = []
    cursor = start_ms
    while cursor < end_ms:
        month_start, month_end = month_bounds(cursor)
        if cursor == month_start and month_end <= min(end_ms, today):
            units.append(Unit("archive", symbol, stream, month_start, month_end, month_start, month_end, "monthly"))
            cursor = month_end
            continue
        day_start = cursor // DAY_MS * DAY_MS
        if day_start + DAY_MS > today or not archive_has_daily(stream):
            break
        unit = daily_unit(symbol, stream, day_start, start_ms, end_ms)
        units.append(unit)
        cursor = unit.end_ms
    if cursor < end_ms and source == "auto":
        units.append(rest_unit(symbol, stream, cursor, end_ms))
    return units


def unplanned(units: list[Unit], start_ms: int, end_ms: int) -> list[tuple[int, int]]:
    """Parts of [start_ms, end_ms) no unit covers (units in time order)."""
    missing: list[tuple[int, int]] = []
    cursor = start_ms
    for unit in units:
        if unit.start_ms > cursor:
            missing.append((cursor, unit.start_ms))
        cursor = max(cursor, unit.end_ms)
    if cursor < end_ms:
        missing.append((cursor, end_ms))
    return missing


def daily_units_of_month(unit: Unit) -> list[Unit]:
    """A monthly file the archive does not have (yet): its days' files instead."""
    return [
        daily_unit(unit.symbol, unit.stream, day, unit.start_ms, unit.end_ms)
        for day in range(unit.file_start_ms, unit.file_end_ms, DAY_MS)
    ]
