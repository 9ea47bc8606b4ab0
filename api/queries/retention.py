"""What retention keeps, as the maintenance job last recorded it (schemas/tables.storage_horizons)."""

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.tables import storage_horizons


class Horizon(NamedTuple):
    table: str
    kept_since: datetime
    retention_days: int


async def latest_horizon(connection: AsyncConnection, tables: tuple[str, ...]) -> Horizon | None:
    """Of `tables`, the one whose kept rows begin latest (an answer reading them all holds from
    then on), or None if none of them has dropped anything."""
    query = (
        select(storage_horizons.c.table_name, storage_horizons.c.kept_since, storage_horizons.c.retention_days)
        .where(storage_horizons.c.table_name.in_(tables), storage_horizons.c.kept_since.is_not(None))
        .order_by(storage_horizons.c.kept_since.desc())
        .limit(1)
    )
    row = (await connection.execute(query)).first()
    return Horizon(row[0], row[1], row[2]) if row is not None else None
