"""WebSocket trades against REST klines, second by second."""

from datetime import datetime

from sqlalchemy import RowMapping, select
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.tables import klines, trade_candles_1s
from schemas.topics import Source


async def trade_closes(connection: AsyncConnection, symbol: str, start: datetime, end: datetime) -> list[RowMapping]:
    """Close of every second in [start, end) that had trades (from the 1-second rollup)."""
    query = (
        select(trade_candles_1s.c.open_time, trade_candles_1s.c.close, trade_candles_1s.c.trade_count)
        .where(
            trade_candles_1s.c.symbol == symbol,
            trade_candles_1s.c.open_time >= start,
            trade_candles_1s.c.open_time < end,
        )
        .order_by(trade_candles_1s.c.open_time)
    )
    return list((await connection.execute(query)).mappings().all())


async def rest_kline_closes(
    connection: AsyncConnection, symbol: str, start: datetime, end: datetime
) -> list[RowMapping]:
    """Close of every 1s kline fetched over REST with open time in [start, end)."""
    query = (
        select(klines.c.open_time, klines.c.close, klines.c.trade_count, klines.c.is_closed)
        .where(
            klines.c.symbol == symbol,
            klines.c.interval == "1s",
            klines.c.source == Source.REST,
            klines.c.open_time >= start,
            klines.c.open_time < end,
        )
        .order_by(klines.c.open_time)
    )
    return list((await connection.execute(query)).mappings().all())
