"""Prices: the newest trade, the trade in effect at a time, a minute's range."""

from datetime import datetime

from sqlalchemy import RowMapping, exists, or_, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.tables import symbols, trade_candles_1m, trades

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


async def trade_at_or_before(connection: AsyncConnection, symbol: str, before: datetime) -> RowMapping | None:
    """The last trade strictly before `before` (the trade whose price is in effect just before
    it): a backward step on the (symbol, trade_time) index, ties broken by trade id."""
    query = (
        select(*_TRADE_COLUMNS)
        .where(trades.c.symbol == symbol, trades.c.trade_time < before)
        .order_by(trades.c.trade_time.desc(), trades.c.trade_id.desc())
        .limit(1)
    )
    return (await connection.execute(query)).mappings().first()


async def minute_candle(connection: AsyncConnection, symbol: str, minute: datetime) -> RowMapping | None:
    """The 1-minute rollup row of that minute: one primary key lookup, whatever the trade count."""
    query = select(trade_candles_1m).where(trade_candles_1m.c.symbol == symbol, trade_candles_1m.c.open_time == minute)
    return (await connection.execute(query)).mappings().first()
