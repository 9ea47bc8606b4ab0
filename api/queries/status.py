"""The pipeline's own state, as the consumer records it: lag per partition, dead letters, and how
fresh each symbol's data is."""

from datetime import timedelta

from sqlalchemy import RowMapping, func, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from api.queries.edge_trades import edge_trade, rollup_symbols
from schemas.tables import consumer_lag, dead_letters, stored_id_ranges, trades

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
    """Each symbol's newest trade (latest time; the largest id among equal times): its id and its
    time on the exchange; and when the consumer last stored trades of the symbol (`ingested_at`:
    stored_id_ranges.updated_at, stamped by every batch that stores some, in their transaction).

    A loose index scan of the 1-second rollup, then each symbol's newest second and its latest
    trade (see edge_trades), then its id range row: a few index probes per symbol instead of
    reading every trade."""
    seen = rollup_symbols()
    second, newest = edge_trade(seen.c.symbol, (trades.c.trade_id, trades.c.trade_time), newest=True, name="newest")
    ranges = stored_id_ranges
    query = (
        select(seen.c.symbol, newest, ranges.c.updated_at.label("ingested_at"))
        .select_from(
            seen.join(second, true())
            .join(newest, true())
            .join(ranges, (ranges.c.kind == "trades") & (ranges.c.symbol == seen.c.symbol))
        )
        .order_by(seen.c.symbol)
    )
    return list((await connection.execute(query)).mappings().all())
