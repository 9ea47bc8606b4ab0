"""Questions about a period past retention get a 422 saying what is kept and since when, instead
of an answer that would leave out the dropped rows (answers never pretend)."""

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from api.errors import ParameterError
from api.queries.retention import latest_horizon

# What each table holds, as a person reads it; the tables an answer reads, per kind of answer.
_WHAT = {
    "trades": "individual trades",
    "trade_candles_1s": "1-second rollups",
    "trade_candles_1m": "1-minute rollups (candles of 1m and longer)",
}
TRADES = ("trades", "trade_candles_1s")
SECONDS = ("trade_candles_1s",)
MINUTES = ("trade_candles_1m",)


async def require_kept(connection: AsyncConnection, tables: tuple[str, ...], parameter: str, moment: datetime) -> None:
    horizon = await latest_horizon(connection, tables)
    if horizon is not None and moment < horizon.kept_since:
        raise ParameterError(
            parameter,
            f"before what is kept: {_WHAT[horizon.table]} are kept for {horizon.retention_days} days, from"
            f" {horizon.kept_since:%Y-%m-%dT%H:%M:%S}Z on",
        )
