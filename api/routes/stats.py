"""Statistics over a time range."""

from datetime import timedelta

from fastapi import APIRouter

from api import retention
from api.deps import DbConnection, Settings, require_known_symbol
from api.errors import Problem
from api.models import CoveragePeriod, Stats
from api.params import End, Start, Symbol, check_range
from api.queries import coverage, stats
from api.retention import require_kept

router = APIRouter(prefix="/v1", tags=["stats"])

_ERRORS: dict[int | str, dict[str, object]] = {
    404: {"model": Problem, "description": "nothing stored for that symbol"},
    422: {"model": Problem, "description": "a parameter is invalid; the body names it and says why"},
}


@router.get("/stats", response_model=Stats, responses=_ERRORS)
async def trade_stats(connection: DbConnection, settings: Settings, symbol: Symbol, start: Start, end: End) -> Stats:
    """Trade count, mean price, VWAP, high, low and volume of the stored trades in [start, end)
    (at most 366 days by default), and the known holes in the range, where trades are missing."""
    check_range(start, end, timedelta(days=settings.stats_max_range_days))
    await require_kept(connection, retention.TRADES, "start", start)
    row = await stats.trade_stats(connection, symbol, start, end)
    if row["trade_count"] == 0:
        await require_known_symbol(connection, symbol)
    holes = await coverage.holes_overlapping(connection, symbol, "trade", start, end)
    periods = [
        CoveragePeriod(start=hole["start_time"], end=hole["end_time"], origin=hole["origin"], detail=hole["detail"])
        for hole in holes
    ]
    return Stats(symbol=symbol, start=start, end=end, holes=periods, **row)
