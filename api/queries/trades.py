"""Individual trades and aggregate trades: pages, exports, Binance's trade lists."""

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, RowMapping, Select, Text, bindparam, case, cast, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from api.queries import stats
from schemas.tables import agg_trades, trades

_TRADE_COLUMNS = (
    trades.c.trade_id,
    trades.c.trade_time,
    trades.c.price,
    trades.c.quantity,
    trades.c.buyer_is_maker,
)


_SYMBOL = bindparam("symbol", type_=Text)
_START = bindparam("start", type_=DateTime(timezone=True))
_END = bindparam("end", type_=DateTime(timezone=True))
# :start truncated to the second: the rollup row :start falls in.
_START_SECOND = bindparam("start_second", type_=DateTime(timezone=True))


async def trade_id_bounds(
    connection: AsyncConnection, symbol: str, start: datetime, end: datetime
) -> tuple[int, int] | None:
    """First and last trade id with a time in [start, end) (api/queries/stats.py finds them
    through the rollups)."""
    return await stats.trade_id_bounds(connection, symbol, start, end)


async def trades_page(
    connection: AsyncConnection, symbol: str, first_id: int, last_id: int, limit: int
) -> list[RowMapping]:
    """Up to `limit` trades with ids in [first_id, last_id], by trade id: a primary key range scan
    that stops after `limit` rows. Prices and quantities come as the exact text PostgreSQL prints:
    they are only passed on.

    The ids between a time range's trade_id_bounds may include trades of other times (times can
    go backwards as ids grow): the caller keeps the rows in its range. No condition on the time
    here, which would make the planner expect few rows and sort the whole id range instead of
    stopping after `limit`."""
    query = (
        select(
            trades.c.trade_id,
            trades.c.trade_time,
            cast(trades.c.price, Text).label("price"),
            cast(trades.c.quantity, Text).label("quantity"),
            trades.c.buyer_is_maker,
        )
        .where(trades.c.symbol == symbol, trades.c.trade_id >= first_id, trades.c.trade_id <= last_id)
        .order_by(trades.c.trade_id)
        .limit(limit)
    )
    return list((await connection.execute(query)).mappings().all())


CSV_HEADER = b"trade_time,price,quantity,symbol,trade_id,side\n"


def _csv_query(symbol: str, first_id: int, last_id: int, start: datetime, end: datetime) -> Select[Any]:
    """The trades of [start, end) by id, within their trade_id_bounds (which may hold trades of
    other times too: those the time condition leaves out)."""
    return (
        select(
            # ISO 8601 in UTC with a Z, at the precision times are stored (microseconds: a stream
            # under a microsecond time unit has them), as the JSON answers print them.
            func.to_char(func.timezone("UTC", trades.c.trade_time), 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
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


async def begin_export(connection: AsyncConnection) -> AsyncConnection:
    """The export's own REPEATABLE READ transaction on `connection`: its bounds and its COPY then
    read one snapshot."""
    snapshot = await connection.execution_options(isolation_level="REPEATABLE READ")
    await snapshot.begin()
    return snapshot


async def csv_chunks(
    snapshot: AsyncConnection,
    symbol: str,
    first_id: int,
    last_id: int,
    start: datetime,
    end: datetime,
    timeout_ms: int,
    buffered_chunks: int = 8,
) -> AsyncIterator[bytes]:
    """The trades of [start, end) with ids in [first_id, last_id] (from trade_id_bounds)
    as CSV rows (no header), streamed in constant memory, on the export's own connection (from
    begin_export), which the caller checked out before answering: an export never waits for a
    second connection once its status line is out.

    PostgreSQL writes the CSV itself (COPY ... TO STDOUT): no row is decoded in Python, which is
    what makes an export run at network speed. COPY takes no bound parameters, so the Core query
    is compiled and asyncpg inlines its parameters, each quoted by the server (quote_literal).
    A bounded queue between the COPY and the response holds at most `buffered_chunks` chunks: a
    slow client slows the COPY down instead of filling memory. The COPY runs under its own
    statement timeout."""
    compiled = _csv_query(symbol, first_id, last_id, start, end).compile(dialect=snapshot.dialect)
    arguments = [compiled.params[name] for name in compiled.positiontup or ()]
    chunks: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=buffered_chunks)

    async def keep(data: bytes | bytearray) -> None:
        # asyncpg hands over its receive buffer: take a copy before it is reused.
        await chunks.put(bytes(data))

    async def copy() -> None:
        try:
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
        # The client went away (or the COPY failed): stop the COPY.
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


async def first_trade_id(connection: AsyncConnection, symbol: str) -> int | None:
    """The symbol's smallest stored trade id: the primary key's first entry in each partition."""
    first: int | None = (
        await connection.execute(select(func.min(trades.c.trade_id)).where(trades.c.symbol == symbol))
    ).scalar()
    return first


async def first_agg_trade_id(connection: AsyncConnection, symbol: str) -> int | None:
    """The symbol's smallest stored aggregate trade id."""
    query = select(func.min(agg_trades.c.agg_trade_id)).where(agg_trades.c.symbol == symbol)
    first: int | None = (await connection.execute(query)).scalar()
    return first


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
