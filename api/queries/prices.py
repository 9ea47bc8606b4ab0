"""Prices: the newest trade, the trade in effect at a time, a minute's range."""

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, RowMapping, Select, Text, bindparam, exists, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.tables import symbols, trade_candles_1m, trade_candles_1s, trades

_TRADE_COLUMNS = (trades.c.symbol, trades.c.price, trades.c.quantity, trades.c.trade_id, trades.c.trade_time)


async def latest_trade(connection: AsyncConnection, symbol: str) -> RowMapping | None:
    """The newest trade of a symbol. Trade ids grow with time per symbol, so the primary key
    index answers this with one backward step."""
    query = select(*_TRADE_COLUMNS).where(trades.c.symbol == symbol).order_by(trades.c.trade_id.desc()).limit(1)
    return (await connection.execute(query)).mappings().first()


async def latest_trades(connection: AsyncConnection) -> list[RowMapping]:
    """The newest trade of every symbol, by symbol.

    PostgreSQL has no skip scan: DISTINCT ON would read every trade. A recursive CTE walks the
    primary key from one symbol to the next (a "loose index scan"), one index probe per symbol,
    then takes each symbol's newest trade with one more probe.
    """
    following = trades.alias("following")
    seen = select(trades.c.symbol).order_by(trades.c.symbol).limit(1).cte("seen", recursive=True)
    next_symbol = (
        select(following.c.symbol)
        .where(following.c.symbol > seen.c.symbol)
        .order_by(following.c.symbol)
        .limit(1)
        .scalar_subquery()
    )
    seen = seen.union_all(select(next_symbol).where(seen.c.symbol.is_not(None)))
    newest = (
        select(*_TRADE_COLUMNS)
        .where(trades.c.symbol == seen.c.symbol)
        .order_by(trades.c.trade_id.desc())
        .limit(1)
        .lateral("newest")
    )
    query = select(newest).select_from(seen.join(newest, true())).order_by(newest.c.symbol)
    return list((await connection.execute(query)).mappings().all())


async def symbol_is_known(connection: AsyncConnection, symbol: str) -> bool:
    """A symbol with stored trades or a stored exchangeInfo entry."""
    query = select(
        or_(
            exists().where(trades.c.symbol == symbol),
            exists().where(symbols.c.symbol == symbol),
        )
    )
    return bool((await connection.execute(query)).scalar())


def _trade_before_query() -> Select[*tuple[Any, ...]]:
    """The last trade strictly before :before; :second is :before truncated to the second.

    The 1-second rollup maps a second to its first and last trade id. Binance assigns trade ids in
    match order, so trade times never decrease with the id: the last trade before a whole second
    is the last trade id of the latest rollup row before it (one backward step, however long ago
    that was), and the latest time comes with the largest id, as the (time, id) order wants. A
    time inside a second also looks at that second's own trades before it, walking its id range
    backwards. The rollups commit with the trades, so they are never behind them."""
    rollup = trade_candles_1s
    symbol = bindparam("symbol", type_=Text)
    second, before = (
        bindparam("second", type_=DateTime(timezone=True)),
        bindparam("before", type_=DateTime(timezone=True)),
    )
    own_second = (
        select(rollup.c.first_trade_id, rollup.c.last_trade_id)
        # On a whole second, a condition on parameters alone: PostgreSQL skips this part unread.
        .where(rollup.c.symbol == symbol, rollup.c.open_time == second, second < before)
        .subquery("own_second")
    )
    # LATERAL makes the id range an index condition: joined plainly, the planner may walk the
    # whole primary key backwards from the symbol's newest trade instead.
    last_before = (
        select(trades.c.trade_id)
        .where(
            trades.c.symbol == symbol,
            trades.c.trade_id.between(own_second.c.first_trade_id, own_second.c.last_trade_id),
            trades.c.trade_time < before,
        )
        .order_by(trades.c.trade_id.desc())
        .limit(1)
        .lateral("last_before")
    )
    within = select(last_before.c.trade_id).select_from(own_second.join(last_before, true())).scalar_subquery()
    earlier = (
        select(rollup.c.last_trade_id)
        .where(rollup.c.symbol == symbol, rollup.c.open_time < second)
        .order_by(rollup.c.open_time.desc())
        .limit(1)
        .scalar_subquery()
    )
    # COALESCE stops at its first non-null argument: the earlier seconds are only looked at when
    # nothing of :before's own second precedes it.
    trade_id = func.coalesce(within, earlier)
    return select(*_TRADE_COLUMNS).where(trades.c.symbol == symbol, trades.c.trade_id == trade_id)


# Built once: one constant statement, compiled once and planned once by PostgreSQL.
_TRADE_BEFORE = _trade_before_query()


async def trade_at_or_before(connection: AsyncConnection, symbol: str, before: datetime) -> RowMapping | None:
    """The last trade strictly before `before` (the trade whose price is in effect just before it),
    exact to the microsecond, through primary keys only."""
    parameters = {"symbol": symbol, "second": before.replace(microsecond=0), "before": before}
    return (await connection.execute(_TRADE_BEFORE, parameters)).mappings().first()


async def minute_candle(connection: AsyncConnection, symbol: str, minute: datetime) -> RowMapping | None:
    """The 1-minute rollup row of that minute: one primary key lookup, whatever the trade count."""
    query = select(trade_candles_1m).where(trade_candles_1m.c.symbol == symbol, trade_candles_1m.c.open_time == minute)
    return (await connection.execute(query)).mappings().first()
