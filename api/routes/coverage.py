"""Coverage: the periods the store holds complete, and the holes it knows of."""

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import DbConnection, require_known_symbol
from api.errors import ParameterError, Problem
from api.models import Coverage, CoveragePeriod, StreamCoverage
from api.params import OptionalEnd, OptionalStart, Symbol
from api.queries import coverage as coverage_queries
from schemas.coverage import STREAM_TYPES

router = APIRouter(prefix="/v1", tags=["coverage"])

_ERRORS: dict[int | str, dict[str, object]] = {
    404: {"model": Problem, "description": "nothing stored for that symbol"},
    422: {"model": Problem, "description": "a parameter is invalid; the body names it and says why"},
}
_STREAM_PATTERN = "^(trade|aggTrade|bookTicker|kline_(1s|1m|3m|5m|15m|30m|1h|2h|4h|6h|8h|12h|1d|3d|1w|1M))$"

StreamQuery = Annotated[
    str | None,
    Query(
        description="the stream type, as after '@' in a Binance stream name: trade, aggTrade, bookTicker,"
        " kline_<interval>; all of the symbol's streams when absent",
        pattern=_STREAM_PATTERN,
    ),
]


@router.get("/coverage", response_model=Coverage, responses=_ERRORS)
async def coverage(
    connection: DbConnection,
    symbol: Symbol,
    stream: StreamQuery = None,
    start: OptionalStart = None,
    end: OptionalEnd = None,
) -> Coverage:
    """Which periods of the symbol's streams the store holds complete (live capture connected and
    gap-free, filled gaps, imports) and which it knows it lacks (the producer down and REST
    refusing, a bookTicker drop, an archive day missing), overlapping [start, end) if given."""
    if stream is not None and stream not in STREAM_TYPES:  # the pattern's twin, for callers past OpenAPI
        raise ParameterError("stream", f"not a stored stream type: {stream!r}")
    if start is not None and end is not None and end <= start:
        raise ParameterError("end", "must be after start")
    rows = await coverage_queries.coverage_periods(connection, symbol, stream, start, end)
    if not rows:
        await require_known_symbol(connection, symbol)
    by_stream: dict[str, StreamCoverage] = {}
    if stream is not None:
        by_stream[stream] = StreamCoverage(stream=stream, held=[], holes=[])
    for row in rows:
        entry = by_stream.setdefault(row["stream"], StreamCoverage(stream=row["stream"], held=[], holes=[]))
        period = CoveragePeriod(
            start=row["start_time"], end=row["end_time"], origin=row["origin"], detail=row["detail"]
        )
        (entry.held if row["kind"] == "held" else entry.holes).append(period)
    return Coverage(symbol=symbol, streams=list(by_stream.values()))
