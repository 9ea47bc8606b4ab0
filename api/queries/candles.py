"""Candles for any Binance interval, computed from the trade rollups the consumer maintains.

1s klines are the 1-second rollup's rows; every other interval groups 1-minute rollup rows into
Binance's boundaries (epoch-aligned, weeks from Monday, calendar months, shifted by a time zone
offset): low, high and sums aggregate, open and close come from the first and last rollup row of
the bucket (each a primary key lookup), so a day of 1m candles reads 1,440 rows, not the trades.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Table,
    Text,
    cast,
    func,
    literal,
    select,
)
from sqlalchemy import (
    Interval as SqlInterval,
)
from sqlalchemy.engine import Row, RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from api import intervals
from api.candles import Candle, RollupRow, assemble, cap_by_rollup_rows
from api.intervals import Interval
from api.params import EPOCH, LAST_DATETIME_MS, from_ms, to_ms
from api.queries.coverage import holes_overlapping
from api.queries.retention import latest_horizon
from schemas.tables import klines, trade_candles_1m, trade_candles_1s


def rollup_table(interval: Interval) -> Table:
    return trade_candles_1s if interval is Interval.S1 else trade_candles_1m


async def traded_span(connection: AsyncConnection, table: Table, symbol: str) -> tuple[datetime, datetime] | None:
    """Open times of the symbol's first and last row in the rollup `table` (the interval's: see
    rollup_table), two probes of its primary key (trades has no time index). Exact enough: a 1s
    kline's boundaries are whole seconds, and every longer kline's whole minutes, whatever the time
    zone offset. The interval's own rollup, because retention may keep the 1-minute rollup longer
    than the 1-second one: candles of 1m and up answer for as long as their rollup is kept."""
    opens = table.c.open_time
    first = (select(opens).where(table.c.symbol == symbol).order_by(opens).limit(1)).scalar_subquery()
    last = (select(opens).where(table.c.symbol == symbol).order_by(opens.desc()).limit(1)).scalar_subquery()
    row = (await connection.execute(select(first.label("first"), last.label("last")))).one()
    if row.first is None:
        return None
    return row.first, row.last


async def kline_bounds(
    connection: AsyncConnection, symbol: str, interval: Interval
) -> tuple[datetime, datetime] | None:
    """Open times of the symbol's first and last stored closed kline of `interval`: two probes of
    the klines primary key."""
    opens = klines.c.open_time
    where = (klines.c.symbol == symbol, klines.c.interval == interval.value, klines.c.is_closed)
    first = select(opens).where(*where).order_by(opens).limit(1).scalar_subquery()
    last = select(opens).where(*where).order_by(opens.desc()).limit(1).scalar_subquery()
    row = (await connection.execute(select(first.label("first"), last.label("last")))).one()
    return None if row.first is None else (row.first, row.last)


async def kline_opens_in(
    connection: AsyncConnection, symbol: str, interval: Interval, start: datetime, stop: datetime
) -> bool:
    """Whether a closed kline of `interval` is stored opening in [start, stop): one probe of the
    klines primary key."""
    query = select(
        select(klines.c.open_time)
        .where(
            klines.c.symbol == symbol,
            klines.c.interval == interval.value,
            klines.c.is_closed,
            klines.c.open_time >= start,
            klines.c.open_time < stop,
        )
        .exists()
    )
    return bool((await connection.execute(query)).scalar())


async def stored_klines(
    connection: AsyncConnection, symbol: str, interval: Interval, start: datetime, stop: datetime
) -> dict[int, RollupRow]:
    """Closed klines of `interval` as Binance sent them, open time in [start, stop): open time
    (epoch ms) -> api.candles.RollupRow."""
    query = select(*_row_columns(klines)).where(
        klines.c.symbol == symbol,
        klines.c.interval == interval.value,
        klines.c.is_closed,
        klines.c.open_time >= start,
        klines.c.open_time < stop,
    )
    return _by_open(await connection.execute(query))


async def close_before(connection: AsyncConnection, table: Table, symbol: str, before: datetime) -> str | None:
    """Close of the last rollup row before `before` (exact, as text): the price a gap after it
    stays flat at."""
    found = await close_and_time_before(connection, table, symbol, before)
    return None if found is None else found[0]


async def close_and_time_before(
    connection: AsyncConnection, table: Table, symbol: str, before: datetime
) -> tuple[str, datetime] | None:
    """Close and open time of the last rollup row before `before`."""
    query = (
        select(cast(table.c.close, Text), table.c.open_time)
        .where(table.c.symbol == symbol, table.c.open_time < before)
        .order_by(table.c.open_time.desc())
        .limit(1)
    )
    row = (await connection.execute(query)).first()
    return None if row is None else (row[0], row[1])


def _bucket(interval: Interval, open_time: ColumnElement[datetime], offset_ms: int) -> ColumnElement[datetime]:
    """The open time, in SQL, of the Binance kline a rollup row falls into."""
    offset = literal(timedelta(milliseconds=offset_ms), SqlInterval())
    if interval is Interval.MONTH1:
        # The three-argument date_trunc truncates in the named zone, whatever the session's.
        return func.date_trunc("month", open_time + offset, "UTC") - offset
    origin = EPOCH + timedelta(milliseconds=intervals.FIRST_MONDAY_MS if interval is Interval.W1 else 0)
    stride = timedelta(milliseconds=intervals.FIXED_MS[interval])
    return func.date_bin(literal(stride, SqlInterval()), open_time, literal(origin - timedelta(milliseconds=offset_ms)))


def _text(column: ColumnElement[Any]) -> ColumnElement[str]:
    """A NUMERIC as PostgreSQL prints it: exact, and far cheaper to fetch than a Decimal."""
    return cast(column, Text).label(column.key or "value")


def _epoch_ms(moment: ColumnElement[datetime]) -> ColumnElement[int]:
    """A time as epoch milliseconds, api/candles.py's unit: no datetime object per row."""
    return cast(func.extract("epoch", moment) * 1000, BigInteger).label("open_ms")


def _row_columns(table: Table) -> tuple[ColumnElement[Any], ...]:
    """A kline row of `table` (a rollup, or the stored klines: the same columns) in the order of
    api.candles.RollupRow."""
    return (
        _epoch_ms(table.c.open_time),
        _text(table.c.open),
        _text(table.c.high),
        _text(table.c.low),
        _text(table.c.close),
        _text(table.c.volume),
        _text(table.c.quote_volume),
        table.c.trade_count,
        _text(table.c.taker_buy_base_volume),
        _text(table.c.taker_buy_quote_volume),
        table.c.first_trade_id,
        table.c.last_trade_id,
    )


def _by_open(rows: Iterable[Row[Any]]) -> dict[int, RollupRow]:
    # Positional rows, not mappings: a day of 1m candles is 17,000 values, and a lookup by name
    # in SQLAlchemy's RowMapping cost more than the query. A Row is used as the tuple it is at
    # runtime (its typing only knows Any).
    by_open: dict[int, Any] = {row[0]: row for row in rows}
    return by_open


async def rollup_rows(
    connection: AsyncConnection, table: Table, symbol: str, start: datetime, stop: datetime
) -> dict[int, RollupRow]:
    """Rollup rows as they are (1s and 1m klines) with open time in [start, stop): open time
    (epoch ms) -> api.candles.RollupRow."""
    query = select(*_row_columns(table)).where(
        table.c.symbol == symbol, table.c.open_time >= start, table.c.open_time < stop
    )
    return _by_open(await connection.execute(query))


async def grouped_rollup_rows(
    connection: AsyncConnection, interval: Interval, symbol: str, start: datetime, stop: datetime, offset_ms: int
) -> dict[int, RollupRow]:
    """1-minute rollup rows in [start, stop) grouped into `interval` buckets: bucket open time
    (epoch ms) -> api.candles.RollupRow."""
    table = trade_candles_1m
    bucketed = (
        select(table, _bucket(interval, table.c.open_time, offset_ms).label("bucket"))
        .where(table.c.symbol == symbol, table.c.open_time >= start, table.c.open_time < stop)
        .subquery("bucketed")
    )
    grouped = (
        select(
            bucketed.c.bucket,
            func.max(bucketed.c.high).label("high"),
            func.min(bucketed.c.low).label("low"),
            func.sum(bucketed.c.volume).label("volume"),
            func.sum(bucketed.c.quote_volume).label("quote_volume"),
            cast(func.sum(bucketed.c.trade_count), BigInteger).label("trade_count"),
            func.sum(bucketed.c.taker_buy_base_volume).label("taker_buy_base_volume"),
            func.sum(bucketed.c.taker_buy_quote_volume).label("taker_buy_quote_volume"),
            func.min(bucketed.c.first_trade_id).label("first_trade_id"),
            func.max(bucketed.c.last_trade_id).label("last_trade_id"),
            func.min(bucketed.c.open_time).label("first_row"),
            func.max(bucketed.c.open_time).label("last_row"),
        )
        .group_by(bucketed.c.bucket)
        .cte("grouped")
    )
    # A bucket's open and close are its first and last minute's: one primary-key probe each per
    # bucket (correlated subqueries). A join here was planned as a hash join over every 1 m row
    # the symbol has, in every partition, whatever the range: seconds for a year of minutes.
    first_row, last_row = table.alias("first_row"), table.alias("last_row")
    open_price = (
        select(first_row.c.open)
        .where(first_row.c.symbol == symbol, first_row.c.open_time == grouped.c.first_row)
        .scalar_subquery()
    )
    close_price = (
        select(last_row.c.close)
        .where(last_row.c.symbol == symbol, last_row.c.open_time == grouped.c.last_row)
        .scalar_subquery()
    )
    query = select(
        _epoch_ms(grouped.c.bucket),
        cast(open_price, Text).label("open"),
        _text(grouped.c.high),
        _text(grouped.c.low),
        cast(close_price, Text).label("close"),
        _text(grouped.c.volume),
        _text(grouped.c.quote_volume),
        grouped.c.trade_count,
        _text(grouped.c.taker_buy_base_volume),
        _text(grouped.c.taker_buy_quote_volume),
        grouped.c.first_trade_id,
        grouped.c.last_trade_id,
    ).select_from(grouped)
    return _by_open(await connection.execute(query))


@dataclass(frozen=True, slots=True)
class CandleWindow:
    candles: list[Candle]
    # Open time of the candle after the last one returned, when more exist up to the request's end.
    next_open_ms: int | None
    # How many of `candles` come before the requested ones (asked for as `history`).
    history_count: int = 0
    # Known holes of the trade stream that touch the candles' range (start, end, detail), oldest first.
    holes: list[RowMapping] = field(default_factory=list)


async def candles(
    connection: AsyncConnection,
    symbol: str,
    interval: Interval,
    start_ms: int | None,
    end_ms: int | None,
    limit: int,
    max_rollup_rows: int,
    offset_ms: int = 0,
    history: int = 0,
) -> CandleWindow:
    """Binance's klines for a symbol: open times in [start_ms, end_ms] (inclusive, either may be
    None), the oldest `limit` with a start, else the newest; capped to `max_rollup_rows` rollup
    rows. With `history`, up to that many candles before the first are returned too (for
    indicators), not counted in `limit`."""
    bounds = await traded_span(connection, rollup_table(interval), symbol)
    # Binance's klines open on UTC boundaries: with a time zone offset they are not the candles asked for.
    kline_range = await kline_bounds(connection, symbol, interval) if offset_ms == 0 else None
    if bounds is None and kline_range is None:
        return CandleWindow([], None)
    ranges = [r for r in (bounds, kline_range) if r is not None]
    data_first, data_last = min(to_ms(r[0]) for r in ranges), max(to_ms(r[1]) for r in ranges)
    opens = intervals.kline_opens(interval, data_first, data_last, start_ms, end_ms, limit, offset_ms)
    opens = cap_by_rollup_rows(interval, opens, max_rollup_rows, keep_oldest=start_ms is not None, offset_ms=offset_ms)
    if not opens:
        return CandleWindow([], None)
    following = intervals.next_open_time(interval, opens[-1], offset_ms)
    last_available = intervals.open_time(interval, data_last, offset_ms)
    more = following <= last_available and (end_ms is None or following <= end_ms)
    first_data_open = intervals.open_time(interval, data_first, offset_ms)
    earlier = [o for o in intervals.earlier_opens(interval, opens[0], history, offset_ms) if o >= first_data_open]
    every_open = earlier + opens
    table = rollup_table(interval)
    # Rollup rows open on whole seconds: stopping at the last representable millisecond instead
    # of a candle opening in year 10000 leaves none out.
    start, stop = from_ms(every_open[0]), from_ms(min(following, LAST_DATETIME_MS))
    if interval in (Interval.S1, Interval.M1):
        by_open = await rollup_rows(connection, table, symbol, start, stop)
    else:
        by_open = await grouped_rollup_rows(connection, interval, symbol, start, stop, offset_ms)
    before = await close_and_time_before(connection, table, symbol, start)
    previous_close = None if before is None else before[0]
    # From the row the close comes from: a hole between it and the range leaves that close unknown.
    holes = await holes_overlapping(connection, symbol, "trade", start if before is None else before[1], stop)
    hole_ms = [(to_ms(hole["start_time"]), to_ms(hole["end_time"])) for hole in holes]
    if previous_close is not None and hole_ms and hole_ms[0][0] < every_open[0]:
        previous_close = None
    holes = [hole for hole in holes if hole["end_time"] > start]
    horizon = await latest_horizon(connection, (table.name,))
    if horizon is not None and to_ms(horizon.kept_since) > every_open[0]:
        # Before what retention keeps of the rollup, the trades are unknown, as in a hole: only
        # Binance's klines stored there make candles, and no flat one carries a close into it.
        hole_ms = sorted([(every_open[0], to_ms(horizon.kept_since)), *hole_ms])
    klines_by_open = await stored_klines(connection, symbol, interval, start, stop) if kline_range else None
    assembled = assemble(interval, every_open, by_open, previous_close, offset_ms, hole_ms, klines_by_open)
    history_count = sum(1 for candle in assembled if candle.open_time < opens[0])
    return CandleWindow(assembled, following if more else None, history_count, holes)
