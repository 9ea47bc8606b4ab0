"""Trades of a time range: streamed CSV in constant memory, or JSON pages by trade id."""

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.types import Receive, Scope, Send

from api import retention
from api.deps import DbEngine, Settings, check_limit, require_known_symbol
from api.errors import Problem, busy
from api.export_slots import ExportSlots
from api.json_body import json_response
from api.models import Side, TradesPage
from api.params import MAX_INT64, End, Start, Symbol, check_range
from api.queries import trades
from api.retention import require_kept
from api.settings import ApiSettings

router = APIRouter(prefix="/v1", tags=["trades"])


class ExportFormat(StrEnum):
    CSV = "csv"
    JSON = "json"


@router.get(
    "/trades",
    response_model=TradesPage,
    response_class=JSONResponse,
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "format=json: a page of trades by trade id; format=csv: every trade of the range",
        },
        404: {"model": Problem, "description": "nothing stored for that symbol"},
        503: {"model": Problem, "description": "too many exports at once, or no database connection free: retry"},
        422: {"model": Problem, "description": "a parameter is invalid; the body names it and says why"},
    },
)
async def export_trades(
    request: Request,
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
    price, quantity, symbol, trade_id, side (the taker's: buy or sell). A CSV export streams
    completely, or is refused with a 503 and Retry-After before anything is sent."""
    check_range(start, end, timedelta(days=settings.export_max_range_days))
    if format is ExportFormat.CSV:
        return await _csv_export(request, engine, settings, symbol, start, end)
    check_limit(limit, settings.export_json_max_limit)
    async with engine.connect() as connection:
        await require_kept(connection, retention.TRADES, "start", start)
        bounds = await trades.trade_id_bounds(connection, symbol, start, end)
        if bounds is None:
            await require_known_symbol(connection, symbol)
            return json_response({"symbol": symbol, "trades": [], "next_from_id": None})
        first_id = max(bounds[0], from_id or 0)
        rows = await trades.trades_page(connection, symbol, first_id, bounds[1], limit)
    # Written straight to JSON in the layout of models.TradesPage, as candle lists are.
    # The id range may hold trades of other times (times that go backwards as ids grow): a page
    # lists those of [start, end) among `limit` ids read, so it may hold fewer than `limit`.
    page = [
        {
            "trade_id": row["trade_id"],
            "trade_time": row["trade_time"],
            "price": row["price"],
            "quantity": row["quantity"],
            "side": Side.SELL if row["buyer_is_maker"] else Side.BUY,
        }
        for row in rows
        if start <= row["trade_time"] < end
    ]
    more = len(rows) == limit and rows[-1]["trade_id"] < bounds[1]
    next_from_id = rows[-1]["trade_id"] + 1 if more else None
    return json_response({"symbol": symbol, "trades": page, "next_from_id": next_from_id})


class _ExportResponse(StreamingResponse):
    """A streamed export that gives its database connection and export slot back however the
    response ends: sent whole, the client gone, or the COPY failed."""

    def __init__(self, body: AsyncIterator[bytes], release: Callable[[], Awaitable[None]], filename: str) -> None:
        super().__init__(
            body,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._release()


async def _csv_export(
    request: Request, engine: AsyncEngine, settings: ApiSettings, symbol: str, start: datetime, end: datetime
) -> Response:
    """Everything an export can fail on before its first byte happens here, before the status
    line: a free export slot (else 503 at once), its one database connection (checked out within
    the pool timeout, else 503), retention, the trade id bounds and the symbol check. The COPY then runs on
    that same connection, so a started export never waits on the pool."""
    slots: ExportSlots = request.app.state.export_slots
    if not slots.try_acquire():
        return busy(request, "too many CSV exports at once, retry later")
    connection: AsyncConnection | None = None
    try:
        connection = await engine.connect()
        snapshot = await trades.begin_export(connection)
        await require_kept(snapshot, retention.TRADES, "start", start)
        bounds = await trades.trade_id_bounds(snapshot, symbol, start, end)
        if bounds is None:
            await require_known_symbol(snapshot, symbol)
    except BaseException:
        if connection is not None:
            await connection.close()
        slots.release()
        raise

    async def release() -> None:
        try:
            await connection.close()
        finally:
            slots.release()

    async def body() -> AsyncIterator[bytes]:
        yield trades.CSV_HEADER
        if bounds is not None:
            async for chunk in trades.csv_chunks(
                snapshot, symbol, bounds[0], bounds[1], start, end, settings.export_timeout_ms
            ):
                yield chunk

    filename = f"{symbol}-trades-{start:%Y%m%dT%H%M%S}-{end:%Y%m%dT%H%M%S}.csv"
    return _ExportResponse(body(), release, filename)
