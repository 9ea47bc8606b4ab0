"""Coverage: which periods of a symbol's streams the store holds complete, and its known holes."""

from datetime import datetime

from sqlalchemy import RowMapping, select
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.tables import coverage


async def coverage_periods(
    connection: AsyncConnection,
    symbol: str,
    stream: str | None,
    start: datetime | None,
    end: datetime | None,
) -> list[RowMapping]:
    """The symbol's periods (of one stream, or all) that overlap [start, end), by stream, kind and
    start: the primary key's order, so the read is one index range."""
    query = select(
        coverage.c.stream,
        coverage.c.kind,
        coverage.c.start_time,
        coverage.c.end_time,
        coverage.c.origin,
        coverage.c.detail,
    ).where(coverage.c.symbol == symbol)
    if stream is not None:
        query = query.where(coverage.c.stream == stream)
    if start is not None:
        query = query.where(coverage.c.end_time > start)
    if end is not None:
        query = query.where(coverage.c.start_time < end)
    query = query.order_by(coverage.c.stream, coverage.c.kind, coverage.c.start_time)
    return list((await connection.execute(query)).mappings().all())


async def holes_overlapping(
    connection: AsyncConnection, symbol: str, stream: str, start: datetime, end: datetime
) -> list[RowMapping]:
    """The known holes of one stream that overlap [start, end), oldest first."""
    query = (
        select(coverage.c.start_time, coverage.c.end_time, coverage.c.origin, coverage.c.detail)
        .where(
            coverage.c.symbol == symbol,
            coverage.c.stream == stream,
            coverage.c.kind == "hole",
            coverage.c.end_time > start,
            coverage.c.start_time < end,
        )
        .order_by(coverage.c.start_time)
    )
    return list((await connection.execute(query)).mappings().all())
