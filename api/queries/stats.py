"""Statistics of a symbol's trades over a time range."""

from datetime import datetime

from sqlalchemy import BigInteger, RowMapping, cast, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.tables import trades


async def trade_stats(connection: AsyncConnection, symbol: str, start: datetime, end: datetime) -> RowMapping:
    """Count, mean price, VWAP, high, low and volume of trades in [start, end).

    The mean price needs every trade's price (the rollups keep no sum of prices), so this reads
    the trades through the (symbol, trade_time) index: the endpoint bounds the range."""
    volume = func.sum(trades.c.quantity)
    quote_volume = func.sum(trades.c.price * trades.c.quantity)
    query = select(
        cast(func.count(), BigInteger).label("trade_count"),
        func.avg(trades.c.price).label("mean_price"),
        (quote_volume / func.nullif(volume, 0)).label("vwap"),
        func.max(trades.c.price).label("high"),
        func.min(trades.c.price).label("low"),
        func.coalesce(volume, 0).label("volume"),
        func.coalesce(quote_volume, 0).label("quote_volume"),
        func.min(trades.c.trade_time).label("first_trade_time"),
        func.max(trades.c.trade_time).label("last_trade_time"),
    ).where(trades.c.symbol == symbol, trades.c.trade_time >= start, trades.c.trade_time < end)
    return (await connection.execute(query)).mappings().one()
