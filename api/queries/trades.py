"""Individual trades and aggregate trades: pages, exports, Binance's trade lists."""

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, Select, Text, case, cast, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from schemas.tables import agg_trades, trades

_TRADE_COLUMNS = (
    trades.c.trade_id,
    trades.c.trade_time,
    trades.c.price,
    trades.c.quantity,
    trades.c.buyer_is_maker,
)


async def trade_id_bounds(
    connection: AsyncConnection, symbol: str, start: datetime, end: datetime
) -> tuple[int, int] | None:
    """First trade id at or after `start` and last one before `end` (two probes of the time
    index), so that a range of trades can then be read in id order along the primary key."""
    first = (
        select(trades.c.trade_id)
        .where(trades.c.symbol == symbol, trades.c.trade_time >= start, trades.c.trade_time < end)
        .order_by(trades.c.trade_time, trades.c.trade_id)
        .limit(1)
        .scalar_subquery()
    )
    last = (
        select(trades.c.trade_id)
        .where(trades.c.symbol == symbol, trades.c.trade_time >= start, trades.c.trade_time < end)
        .order_by(trades.c.trade_time.desc(), trades.c.trade_id.desc())
        .limit(1)
        .scalar_subquery()
    )
    row = (await connection.execute(select(first.label("first"), last.label("last")))).one()
    if row.first is None:
        return None
    return int(row.first), int(row.last)


async def trades_page(
    connection: AsyncConnection, symbol: str, start: datetime, end: datetime, first_id: int, last_id: int, limit: int
) -> list[RowMapping]:
    """Up to `limit` trades in [start, end) with ids in [first_id, last_id], by trade id: a
    primary key range scan that stops after `limit` rows. Prices and quantities come as the
    exact text PostgreSQL prints: they are only passed on."""
    query = (
        select(
            trades.c.trade_id,
            trades.c.trade_time,
            cast(trades.c.price, Text).label("price"),
            cast(trades.c.quantity, Text).label("quantity"),
            trades.c.buyer_is_maker,
        )
        .where(
            trades.c.symbol == symbol,
            trades.c.trade_id >= first_id,
            trades.c.trade_id <= last_id,
            trades.c.trade_time >= start,
            trades.c.trade_time < end,
        )
        .order_by(trades.c.trade_id)
        .limit(limit)
    )
    return list((await connection.execute(query)).mappings().all())


CSV_HEADER = b"trade_time,price,quantity,symbol,trade_id,side\n"


def _csv_query(symbol: str, start: datetime, end: datetime, first_id: int, last_id: int) -> Select[Any]:
    return (
        select(
            # Binance trade times are milliseconds; ISO 8601 in UTC with a Z, like every time here.
            func.to_char(func.timezone("UTC", trades.c.trade_time), 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
            trades.c.price,
            trades.c.quantity,
            trades.c.symbol,
            trades.c.trade_id,
            # The taker's side: the buyer is the maker when the seller took liquidity.
            case((trades.c.buyer_is_maker, "sell"), else_="buy"),
        )
        .where(
            trades.c.symbol == symbol,
            trades.c.trade_id >= first_id,
            trades.c.trade_id <= last_id,
            trades.c.trade_time >= start,
            trades.c.trade_time < end,
        )
        .order_by(trades.c.trade_id)
    )


async def csv_chunks(
    engine: AsyncEngine,
    symbol: str,
    start: datetime,
    end: datetime,
    first_id: int,
    last_id: int,
    timeout_ms: int,
    buffered_chunks: int = 8,
) -> AsyncIterator[bytes]:
    """The trades of [start, end) as CSV rows (no header), streamed in constant memory.

    PostgreSQL writes the CSV itself (COPY ... TO STDOUT): no row is decoded in Python, which is
    what makes an export run at network speed. COPY takes no bound parameters, so the Core query
    is compiled and asyncpg inlines its parameters, each quoted by the server (quote_literal).
    A bounded queue between the COPY and the response holds at most `buffered_chunks` chunks: a
    slow client slows the COPY down instead of filling memory. The whole export is one
    REPEATABLE READ snapshot, under its own statement timeout."""
    compiled = _csv_query(symbol, start, end, first_id, last_id).compile(dialect=engine.dialect)
    arguments = [compiled.params[name] for name in compiled.positiontup or ()]
    chunks: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=buffered_chunks)

    async def keep(data: bytes | bytearray) -> None:
        # asyncpg hands over its receive buffer: take a copy before it is reused.
        await chunks.put(bytes(data))

    async def copy() -> None:
        try:
            async with engine.connect() as connection:
                snapshot = await connection.execution_options(isolation_level="REPEATABLE READ")
                async with snapshot.begin():
                    await snapshot.execute(select(func.set_config("statement_timeout", str(timeout_ms), True)))
                    raw = await snapshot.get_raw_connection()
                    driver = raw.driver_connection
                    assert driver is not None
                    await driver.copy_from_query(str(compiled), *arguments, output=keep, format="csv")
        finally:
            await chunks.put(None)

    task = asyncio.create_task(copy())
    try:
        while (chunk := await chunks.get()) is not None:
            yield chunk
        await task  # re-raises what ended the COPY early
    finally:
        # The client went away (or the COPY failed): stop the COPY and free its connection.
        task.cancel()


# --- Binance's lists --------------------------------------------------------------------------


async def recent_trades(connection: AsyncConnection, symbol: str, limit: int) -> list[RowMapping]:
    """The newest `limit` trades, oldest first (GET /api/v3/trades)."""
    newest = (
        select(*_TRADE_COLUMNS)
        .where(trades.c.symbol == symbol)
        .order_by(trades.c.trade_id.desc())
        .limit(limit)
        .subquery()
    )
    return list((await connection.execute(select(newest).order_by(newest.c.trade_id))).mappings().all())


async def trades_from_id(connection: AsyncConnection, symbol: str, from_id: int, limit: int) -> list[RowMapping]:
    """`limit` trades from trade id `from_id` on (GET /api/v3/historicalTrades)."""
    query = (
        select(*_TRADE_COLUMNS)
        .where(trades.c.symbol == symbol, trades.c.trade_id >= from_id)
        .order_by(trades.c.trade_id)
        .limit(limit)
    )
    return list((await connection.execute(query)).mappings().all())


_AGG_COLUMNS = (
    agg_trades.c.agg_trade_id,
    agg_trades.c.price,
    agg_trades.c.quantity,
    agg_trades.c.first_trade_id,
    agg_trades.c.last_trade_id,
    agg_trades.c.trade_time,
    agg_trades.c.buyer_is_maker,
)


async def agg_trades_list(
    connection: AsyncConnection,
    symbol: str,
    from_id: int | None,
    start: datetime | None,
    end: datetime | None,
    limit: int,
) -> list[RowMapping]:
    """GET /api/v3/aggTrades: from `from_id` on; else the oldest from `start` (to `end`); else the
    newest up to `end`; else the newest. Times inclusive, as Binance's are."""
    query = select(*_AGG_COLUMNS).where(agg_trades.c.symbol == symbol)
    if from_id is not None:
        query = query.where(agg_trades.c.agg_trade_id >= from_id).order_by(agg_trades.c.agg_trade_id)
        return list((await connection.execute(query.limit(limit))).mappings().all())
    if end is not None:
        query = query.where(agg_trades.c.trade_time <= end)
    if start is not None:
        query = query.where(agg_trades.c.trade_time >= start).order_by(
            agg_trades.c.trade_time, agg_trades.c.agg_trade_id
        )
        return list((await connection.execute(query.limit(limit))).mappings().all())
    newest = query.order_by(agg_trades.c.trade_time.desc(), agg_trades.c.agg_trade_id.desc()).limit(limit).subquery()
    return list((await connection.execute(select(newest).order_by(newest.c.agg_trade_id))).mappings().all())
