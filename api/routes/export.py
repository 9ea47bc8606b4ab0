"""Trades of a time range: streamed CSV in constant memory, or JSON pages by trade id."""

from collections.abc import AsyncIterator
from datetime import timedelta
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response, StreamingResponse
from sqlalchemy.ext.asyncio import AsyncEngine

from api.deps import DbConnection, DbEngine, Settings, check_limit, require_known_symbol
from api.errors import Problem
from api.json_body import json_response
from api.models import Side, TradesPage
from api.params import MAX_INT64, End, Start, Symbol, check_range
from api.queries import trades

router = APIRouter(prefix="/v1", tags=["trades"])


class ExportFormat(StrEnum):
    CSV = "csv"
    JSON = "json"


@router.get(
    "/trades",
    response_model=TradesPage,
    response_class=Response,
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "format=json: a page of trades by trade id; format=csv: every trade of the range",
        },
        404: {"model": Problem, "description": "nothing stored for that symbol"},
        422: {"model": Problem, "description": "a parameter is invalid; the body names it and says why"},
    },
)
async def export_trades(
    connection: DbConnection,
    engine: DbEngine,
    settings: Settings,
    symbol: Symbol,
    start: Start,
    end: End,
    format: Annotated[ExportFormat, Query(description="csv: the whole range, streamed; json: one page")] = (
        ExportFormat.CSV
    ),
    from_id: Annotated[
        int | None, Query(ge=0, le=MAX_INT64, description="json: first trade id of the page (from next_from_id)")
    ] = None,
    limit: Annotated[int, Query(ge=1, description="json: trades per page, default 1000, at most 10000")] = 1000,
) -> Response:
    """The stored trades of [start, end) (at most 31 days by default). CSV columns: trade_time,
    price, quantity, symbol, trade_id, side (the taker's: buy or sell)."""
    check_range(start, end, timedelta(days=settings.export_max_range_days))
    bounds = await trades.trade_id_bounds(connection, symbol, start, end)
    if bounds is None:
        await require_known_symbol(connection, symbol)
    if format is ExportFormat.CSV:
        filename = f"{symbol}-trades-{start:%Y%m%dT%H%M%S}-{end:%Y%m%dT%H%M%S}.csv"
        return StreamingResponse(
            _csv(engine, symbol, bounds, settings.export_timeout_ms),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    check_limit(limit, settings.export_json_max_limit)
    if bounds is None:
        return json_response({"symbol": symbol, "trades": [], "next_from_id": None})
    first_id = max(bounds[0], from_id or 0)
    rows = await trades.trades_page(connection, symbol, first_id, bounds[1], limit)
    # Written straight to JSON in the layout of models.TradesPage, as candle lists are.
    page = [
        {
            "trade_id": row["trade_id"],
            "trade_time": row["trade_time"],
            "price": row["price"],
            "quantity": row["quantity"],
            "side": Side.SELL if row["buyer_is_maker"] else Side.BUY,
        }
        for row in rows
    ]
    more = len(rows) == limit and rows[-1]["trade_id"] < bounds[1]
    next_from_id = rows[-1]["trade_id"] + 1 if more else None
    return json_response({"symbol": symbol, "trades": page, "next_from_id": next_from_id})


async def _csv(
    engine: AsyncEngine, symbol: str, bounds: tuple[int, int] | None, timeout_ms: int
) -> AsyncIterator[bytes]:
    yield trades.CSV_HEADER
    if bounds is not None:
        async for chunk in trades.csv_chunks(engine, symbol, bounds[0], bounds[1], timeout_ms):
            yield chunk
