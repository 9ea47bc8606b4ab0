"""Symbols: which have data, and their stored exchangeInfo entries."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import BigInteger, RowMapping, cast, func, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from api.queries.edge_trades import edge_trade, rollup_symbols
from schemas.tables import symbols, trade_candles_1m, trades


async def symbol_summaries(connection: AsyncConnection) -> list[RowMapping]:
    """Every symbol with stored trades: its first and last trade in time (the smallest and the
    largest id among equal times), and how many trades are stored.

    Symbols come from a loose index scan of the 1-second rollup; first and last trade are read
    along the oldest and newest rollup second's id range (see edge_trades); the count sums the
    1-minute rollup (one row per minute with trades, not one per trade)."""
    seen = rollup_symbols()
    first_second, first = edge_trade(
        seen.c.symbol,
        (trades.c.trade_id.label("first_trade_id"), trades.c.trade_time.label("first_trade_time")),
        newest=False,
        name="first",
    )
    last_second, last = edge_trade(
        seen.c.symbol,
        (trades.c.trade_id.label("last_trade_id"), trades.c.trade_time.label("last_trade_time")),
        newest=True,
        name="last",
    )
    count = (
        select(cast(func.coalesce(func.sum(trade_candles_1m.c.trade_count), 0), BigInteger).label("trade_count"))
        .where(trade_candles_1m.c.symbol == seen.c.symbol)
        .lateral("count")
    )
    query = (
        select(
            seen.c.symbol,
            first.c.first_trade_id,
            first.c.first_trade_time,
            last.c.last_trade_id,
            last.c.last_trade_time,
            count.c.trade_count,
            symbols.c.status,
            symbols.c.base_asset,
            symbols.c.quote_asset,
        )
        .select_from(
            seen.join(first_second, true())
            .join(first, true())
            .join(last_second, true())
            .join(last, true())
            .join(count, true())
            .outerjoin(symbols, symbols.c.symbol == seen.c.symbol)
        )
        .order_by(seen.c.symbol)
    )
    return list((await connection.execute(query)).mappings().all())


async def exchange_info_entries(
    connection: AsyncConnection, names: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Stored exchangeInfo entries (exactly as Binance sent them), by symbol; all when `names` is None."""
    query = select(symbols.c.info).order_by(symbols.c.symbol)
    if names is not None:
        query = query.where(symbols.c.symbol.in_(list(names)))
    return [dict(info) for info in (await connection.execute(query)).scalars()]


async def exchange_info_entry(connection: AsyncConnection, symbol: str) -> dict[str, Any] | None:
    info = (await connection.execute(select(symbols.c.info).where(symbols.c.symbol == symbol))).scalar()
    return dict(info) if info is not None else None


async def known_symbols(connection: AsyncConnection, names: Sequence[str]) -> set[str]:
    """Which of `names` have stored trades or a stored exchangeInfo entry."""
    if not names:
        return set()
    listed = set(
        (await connection.execute(select(symbols.c.symbol).where(symbols.c.symbol.in_(list(names))))).scalars()
    )
    missing = [name for name in names if name not in listed]
    traded = set()
    for name in missing:
        if (await connection.execute(select(true()).where(trades.c.symbol == name).limit(1))).first() is not None:
            traded.add(name)
    return listed | traded
