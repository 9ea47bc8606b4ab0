"""Statistics of a symbol's trades over a time range, from the rollups wherever they are exact.

[start, end) splits into whole minutes (1-minute rollup rows), whole seconds at the edges
(1-second rollup rows) and at most two sub-second edges, whose trades are read along the trades
primary key within the id range of their second's rollup row. A month then costs about 44,640
minute rows, not every trade; only the two partial seconds depend on the trade rate.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from sqlalchemy import (
    BigInteger,
    BindParameter,
    DateTime,
    ScalarSelect,
    Select,
    Subquery,
    Table,
    Text,
    bindparam,
    cast,
    func,
    literal,
    select,
    true,
    union_all,
)
from sqlalchemy import Interval as SqlInterval
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas import decimals
from schemas.tables import trade_candles_1m, trade_candles_1s, trades

SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)


class Source(Enum):
    MINUTES = "1m rollup"
    SECONDS = "1s rollup"
    TRADES = "trades"


@dataclass(frozen=True, slots=True)
class Piece:
    """[start, end) read from one source; a TRADES piece lies within one second."""

    source: Source
    start: datetime
    end: datetime


def _floor(moment: datetime, unit: timedelta) -> datetime:
    return moment - (moment - datetime.min.replace(tzinfo=moment.tzinfo)) % unit


def _ceil(moment: datetime, unit: timedelta) -> datetime:
    floor = _floor(moment, unit)
    return floor if floor == moment else floor + unit


def _seconds(start: datetime, end: datetime) -> list[Piece]:
    """[start, end), within one minute or not, as whole seconds and sub-second edges."""
    if start >= end:
        return []
    first, last = _ceil(start, SECOND), _floor(end, SECOND)
    if first > last:  # both ends inside one second
        return [Piece(Source.TRADES, start, end)]
    pieces = []
    if start < first:
        pieces.append(Piece(Source.TRADES, start, first))
    if first < last:
        pieces.append(Piece(Source.SECONDS, first, last))
    if last < end:
        pieces.append(Piece(Source.TRADES, last, end))
    return pieces


def split(start: datetime, end: datetime) -> list[Piece]:
    """[start, end) as disjoint pieces in time order, each read from the coarsest exact source."""
    first, last = _ceil(start, MINUTE), _floor(end, MINUTE)
    if first >= last:
        return _seconds(start, end)
    return [*_seconds(start, first), Piece(Source.MINUTES, first, last), *_seconds(last, end)]


# The pieces split() can give, in time order, fill these slots (unused ones stay empty): the
# statement is then one constant text, built and compiled once, that PostgreSQL plans once.
SLOTS = (Source.TRADES, Source.SECONDS, Source.MINUTES, Source.SECONDS, Source.TRADES)


def slot_bounds(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """[start, end) of each slot, (start, start) for an empty one."""
    bounds = [(start, start)] * len(SLOTS)
    slot = 0
    for piece in split(start, end):
        while SLOTS[slot] is not piece.source:
            slot += 1
        bounds[slot] = (piece.start, piece.end)
        slot += 1
    return bounds


_SYMBOL = bindparam("symbol", type_=Text)


def _time(name: str) -> BindParameter[datetime]:
    return bindparam(name, type_=DateTime(timezone=True))


def _slot_second(slot: int, name: str) -> Subquery:
    """The first and last trade id of a sub-second slot's own second, from its 1-second rollup row."""
    rollup = trade_candles_1s
    return (
        select(rollup.c.first_trade_id, rollup.c.last_trade_id)
        # An empty slot: a condition on parameters alone, so PostgreSQL skips the part unread.
        .where(
            rollup.c.symbol == _SYMBOL,
            rollup.c.open_time == _time(f"second{slot}"),
            _time(f"start{slot}") < _time(f"end{slot}"),
        )
        .subquery(name)
    )


def _trades_part(slot: int) -> Select[*tuple[Any, ...]]:
    """Partial sums (count, price sum, volume, quote volume, high, low, first and last trade id)
    of the trades in [start, end) of one second, found along the trades primary key within the
    id range of the second's rollup row."""
    start, end = _time(f"start{slot}"), _time(f"end{slot}")
    own_second = _slot_second(slot, f"own_second{slot}")
    # Every trade of the second lies in its rollup row's id range; the time condition keeps the
    # part of the second that is in the range. LATERAL makes the id range an index condition (a
    # plain join may let the planner scan the symbol's whole primary key).
    sums = (
        select(
            func.count().label("trade_count"),
            func.sum(trades.c.price).label("price_sum"),
            func.sum(trades.c.quantity).label("volume"),
            func.sum(trades.c.price * trades.c.quantity).label("quote_volume"),
            func.max(trades.c.price).label("high"),
            func.min(trades.c.price).label("low"),
            func.min(trades.c.trade_id).label("first_trade_id"),
            func.max(trades.c.trade_id).label("last_trade_id"),
        )
        .where(
            trades.c.symbol == _SYMBOL,
            trades.c.trade_id.between(own_second.c.first_trade_id, own_second.c.last_trade_id),
            trades.c.trade_time >= start,
            trades.c.trade_time < end,
        )
        .lateral(f"sums{slot}")
    )
    return select(*sums.c).select_from(own_second.join(sums, true()))


def _rollup_part(table: Table, slot: int) -> Select[*tuple[Any, ...]]:
    """The same partial sums over the rollup rows with open time in [start, end)."""
    return select(
        func.sum(table.c.trade_count).label("trade_count"),
        func.sum(table.c.price_sum).label("price_sum"),
        func.sum(table.c.volume).label("volume"),
        func.sum(table.c.quote_volume).label("quote_volume"),
        func.max(table.c.high).label("high"),
        func.min(table.c.low).label("low"),
        func.min(table.c.first_trade_id).label("first_trade_id"),
        func.max(table.c.last_trade_id).label("last_trade_id"),
    ).where(
        table.c.symbol == _SYMBOL, table.c.open_time >= _time(f"start{slot}"), table.c.open_time < _time(f"end{slot}")
    )


def _parts() -> Subquery:
    tables = {Source.SECONDS: trade_candles_1s, Source.MINUTES: trade_candles_1m}
    return union_all(
        *(
            _trades_part(slot) if source is Source.TRADES else _rollup_part(tables[source], slot)
            for slot, source in enumerate(SLOTS)
        )
    ).subquery("parts")


def _stats_query() -> Select[*tuple[Any, ...]]:
    """Sums of exact NUMERICs are exact whatever the grouping, so the mean (sum of prices / count)
    and VWAP divided out of them in trade_stats (schemas/decimals.py: exact wherever the quotient
    terminates; PostgreSQL's division would round to the inputs' scale) equal those over the
    trades themselves. The first and last trade times come from the edges' trades and the first
    and last traded whole second (a few index probes), not from the smallest and largest id."""
    parts = _parts()
    count = func.sum(parts.c.trade_count)
    volume = func.sum(parts.c.volume)
    quote_volume = func.sum(parts.c.quote_volume)
    totals = select(
        cast(func.coalesce(count, 0), BigInteger).label("trade_count"),
        func.sum(parts.c.price_sum).label("price_sum"),
        func.max(parts.c.high).label("high"),
        func.min(parts.c.low).label("low"),
        func.coalesce(volume, 0).label("volume"),
        func.coalesce(quote_volume, 0).label("quote_volume"),
        func.min(parts.c.first_trade_id).label("first_trade_id"),
        func.max(parts.c.last_trade_id).label("last_trade_id"),
    ).subquery("totals")

    first_edge, last_edge = 0, len(SLOTS) - 1
    return select(
        totals.c.trade_count,
        totals.c.price_sum,
        totals.c.high,
        totals.c.low,
        totals.c.volume,
        totals.c.quote_volume,
        func.coalesce(
            _edge_time(first_edge, latest=False), _whole_seconds_time(latest=False), _edge_time(last_edge, latest=False)
        ).label("first_trade_time"),
        func.coalesce(
            _edge_time(last_edge, latest=True), _whole_seconds_time(latest=True), _edge_time(first_edge, latest=True)
        ).label("last_trade_time"),
    )


def _second_time(rollup: Any, latest: bool, start: Any, end: Any) -> Any:
    """The earliest (or latest) trade time within [start, end) among the trades of rollup row
    `rollup`'s id range: LATERAL, so the id range is an index condition."""
    return (
        select((func.max if latest else func.min)(trades.c.trade_time).label("trade_time"))
        .where(
            trades.c.symbol == _SYMBOL,
            trades.c.trade_id.between(rollup.c.first_trade_id, rollup.c.last_trade_id),
            trades.c.trade_time >= start,
            trades.c.trade_time < end,
        )
        .lateral("second_time")
    )


def _edge_time(slot: int, latest: bool) -> ScalarSelect[datetime]:
    """The first (or last) trade time of a sub-second edge slot; null when it is empty."""
    start, end = _time(f"start{slot}"), _time(f"end{slot}")
    own_second = _slot_second(slot, f"edge_second{slot}")
    found = _second_time(own_second, latest, start, end)
    return select(found.c.trade_time).select_from(own_second.join(found, true())).scalar_subquery()


def _whole_seconds_time(latest: bool) -> ScalarSelect[datetime]:
    """The first (or last) trade time in the range's whole seconds [whole_start, whole_end): its
    first (or last) traded second, one step along the 1-second rollup's primary key, then that
    second's trades. Trade ids need not grow with time, so neither the smallest id nor the
    largest says which trade came first or last."""
    rollup = trade_candles_1s
    whole_start, whole_end = _time("whole_start"), _time("whole_end")
    second = (
        select(rollup.c.open_time, rollup.c.first_trade_id, rollup.c.last_trade_id)
        .where(rollup.c.symbol == _SYMBOL, rollup.c.open_time >= whole_start, rollup.c.open_time < whole_end)
        .order_by(rollup.c.open_time.desc() if latest else rollup.c.open_time)
        .limit(1)
        .subquery("whole_second")
    )
    found = _second_time(second, latest, second.c.open_time, second.c.open_time + literal(SECOND, SqlInterval()))
    return select(found.c.trade_time).select_from(second.join(found, true())).scalar_subquery()


_STATS = _stats_query()


def _id_bounds_query() -> Select[*tuple[Any, ...]]:
    """The smallest and largest trade id with a time in [start, end), from the same pieces as
    the statistics: exact whatever the order of times and ids (a trade id range is no time
    range when times go backwards as ids grow)."""
    parts = _parts()
    return select(func.min(parts.c.first_trade_id).label("first"), func.max(parts.c.last_trade_id).label("last"))


_ID_BOUNDS = _id_bounds_query()


def _parameters(symbol: str, start: datetime, end: datetime) -> dict[str, object]:
    parameters: dict[str, object] = {"symbol": symbol}
    for slot, (slot_start, slot_end) in enumerate(slot_bounds(start, end)):
        parameters[f"start{slot}"], parameters[f"end{slot}"] = slot_start, slot_end
        if SLOTS[slot] is Source.TRADES:
            parameters[f"second{slot}"] = _floor(slot_start, SECOND)
    whole = [bounds for slot, bounds in enumerate(slot_bounds(start, end)) if SLOTS[slot] is not Source.TRADES]
    nonempty = [(slot_start, slot_end) for slot_start, slot_end in whole if slot_start < slot_end]
    parameters["whole_start"] = nonempty[0][0] if nonempty else start
    parameters["whole_end"] = nonempty[-1][1] if nonempty else start
    return parameters


async def trade_id_bounds(
    connection: AsyncConnection, symbol: str, start: datetime, end: datetime
) -> tuple[int, int] | None:
    """First and last trade id with a time in [start, end): a range of trades is then read in id
    order along the trades primary key, its times checked row by row."""
    row = (await connection.execute(_ID_BOUNDS, _parameters(symbol, start, end))).one()
    if row.first is None:
        return None
    return int(row.first), int(row.last)


async def trade_stats(connection: AsyncConnection, symbol: str, start: datetime, end: datetime) -> dict[str, Any]:
    """Count, mean price, VWAP, high, low and volume of trades in [start, end), and the times of
    the first and last of them."""
    totals = dict((await connection.execute(_STATS, _parameters(symbol, start, end))).mappings().one())
    price_sum = totals.pop("price_sum")
    count, volume = totals["trade_count"], totals["volume"]
    totals["mean_price"] = decimals.divide(price_sum, count) if count else None
    totals["vwap"] = decimals.divide(totals["quote_volume"], volume) if volume else None
    return totals
