"""The pipeline's own state, as the consumer records it: lag per partition, dead letters, and how
fresh each symbol's data is."""

from datetime import timedelta

from sqlalchemy import RowMapping, func, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.tables import consumer_lag, dead_letters, trades

RECENT = timedelta(hours=24)


async def consumer_lag_rows(connection: AsyncConnection) -> list[RowMapping]:
    """Every (group, topic, partition) the consumers reported, with its offsets and lag."""
    query = select(consumer_lag).order_by(consumer_lag.c.group_id, consumer_lag.c.topic, consumer_lag.c.partition)
    return list((await connection.execute(query)).mappings().all())


async def dead_letter_counts(connection: AsyncConnection) -> list[RowMapping]:
    """Dead letters by reason: all of them, those of the last 24 hours (by the database's clock,
    the one that stamped recorded_at), and the newest one's time. The table holds one row per
    rejected message, so it stays small while the pipeline is healthy."""
    recent = dead_letters.c.recorded_at >= func.now() - RECENT
    query = (
        select(
            dead_letters.c.reason,
            func.count().label("total"),
            func.count().filter(recent).label("last_24h"),
            func.max(dead_letters.c.recorded_at).label("newest_at"),
        )
        .group_by(dead_letters.c.reason)
        .order_by(dead_letters.c.reason)
    )
    return list((await connection.execute(query)).mappings().all())


async def newest_trade_per_symbol(connection: AsyncConnection) -> list[RowMapping]:
    """Each symbol's newest trade: its id, its time on the exchange, and when it was stored.

    The same loose index scan as prices.latest_trades (one primary key probe per symbol instead
    of reading every trade), selecting the times instead of the price."""
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
        select(trades.c.symbol, trades.c.trade_id, trades.c.trade_time, trades.c.ingested_at)
        .where(trades.c.symbol == seen.c.symbol)
        .order_by(trades.c.trade_id.desc())
        .limit(1)
        .lateral("newest")
    )
    query = select(newest).select_from(seen.join(newest, true())).order_by(newest.c.symbol)
    return list((await connection.execute(query)).mappings().all())
