"""Candles (Binance klines) for every Binance interval, and indicators over them."""

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse

from api.candles import Candle, moving_average
from api.deps import DbConnection, Settings, check_limit, require_known_symbol
from api.errors import ParameterError, Problem
from api.intervals import Interval
from api.json_body import json_response
from api.models import Candles, Sma
from api.params import OptionalEnd, OptionalStart, Symbol, Windows, from_ms, time_after_ms, to_ms
from api.queries import candles as candle_queries
from api.retention import require_candles_kept, require_candles_up_to_kept
from schemas import decimals

router = APIRouter(prefix="/v1", tags=["candles"])

_ERRORS: dict[int | str, dict[str, object]] = {
    404: {"model": Problem, "description": "nothing stored for that symbol"},
    422: {"model": Problem, "description": "a parameter is invalid; the body names it and says why"},
}

IntervalQuery = Annotated[
    Interval, Query(description="Binance's kline interval, case-sensitive: 1m is a minute, 1M a month")
]


def candle_json(candle: Candle) -> dict[str, Any]:
    """A candle in the layout of models.CandleOut (see api/json_body.py)."""
    return {
        "open_time": from_ms(candle.open_time),
        "open": candle.open,
        "high": candle.high,
        "low": candle.low,
        "close": candle.close,
        "volume": candle.volume,
        "close_time": time_after_ms(candle.close_time),
        "quote_volume": candle.quote_volume,
        "trade_count": candle.trade_count,
        "taker_buy_base_volume": candle.taker_buy_base_volume,
        "taker_buy_quote_volume": candle.taker_buy_quote_volume,
        "first_trade_id": candle.first_trade_id,
        "last_trade_id": candle.last_trade_id,
        "source": candle.source,
    }


async def _window(
    connection: DbConnection,
    settings: Settings,
    symbol: str,
    interval: Interval,
    start: OptionalStart,
    end: OptionalEnd,
    limit: int,
    history: int = 0,
) -> candle_queries.CandleWindow:
    check_limit(limit, settings.candles_max_limit)
    if start is not None and end is not None and end <= start:
        raise ParameterError("end", "must be after start")
    if start is not None:
        await require_candles_kept(connection, symbol, interval, "start", start, end)
    # /v1 ranges are half-open: candles whose open time is in [start, end).
    end_inclusive = to_ms(end) - 1 if end is not None else None
    window = await candle_queries.candles(
        connection,
        symbol,
        interval,
        to_ms(start) if start is not None else None,
        end_inclusive,
        limit,
        settings.candles_max_rollup_rows,
        history=history,
    )
    if start is None and end is not None:
        await require_candles_up_to_kept(connection, interval, "end", end, bool(window.candles))
    if not window.candles:
        await require_known_symbol(connection, symbol)
    return window


@router.get("/candles", response_model=Candles, response_class=JSONResponse, responses=_ERRORS)
async def candles(
    connection: DbConnection,
    settings: Settings,
    symbol: Symbol,
    interval: IntervalQuery,
    start: OptionalStart = None,
    end: OptionalEnd = None,
    limit: Annotated[int, Query(ge=1, description="candles per response: default 500, at most 5000")] = 500,
) -> Response:
    """OHLCV candles computed from the stored trades, with Binance's boundaries and fields: the
    same as GET /api/v3/klines for the same period. With `start`, the oldest `limit` candles from
    it; without, the newest up to `end`. An interval without trades is flat at the previous close,
    but not where the store knows it lacks trades: an interval without stored trades touching a
    known hole has no candle, and `holes` lists the holes the answer touches."""
    window = await _window(connection, settings, symbol, interval, start, end, limit)
    next_start = from_ms(window.next_open_ms) if window.next_open_ms is not None else None
    return json_response(
        {
            "symbol": symbol,
            "interval": interval.value,
            "candles": [candle_json(candle) for candle in window.candles],
            "next_start": next_start,
            "holes": [hole_json(hole) for hole in window.holes],
        }
    )


def hole_json(hole: Any) -> dict[str, Any]:
    """A known hole in the layout of models.CoveragePeriod."""
    return {"start": hole["start_time"], "end": hole["end_time"], "origin": hole["origin"], "detail": hole["detail"]}


@router.get("/indicators/sma", response_model=Sma, response_class=JSONResponse, responses=_ERRORS)
async def simple_moving_averages(
    connection: DbConnection,
    settings: Settings,
    symbol: Symbol,
    interval: IntervalQuery,
    windows: Windows,
    start: OptionalStart = None,
    end: OptionalEnd = None,
    limit: Annotated[int, Query(ge=1, description="points per response: default 100, at most 5000")] = 100,
) -> Response:
    """Simple moving averages of candle closes (e.g. the 10 and 20 period MAs), one point per
    candle chosen as /v1/candles chooses them; earlier candles feed the first averages."""
    history = max(windows) - 1
    window = await _window(connection, settings, symbol, interval, start, end, limit, history=history)
    closes = [Decimal(candle.close) for candle in window.candles]
    averages = {str(length): moving_average(closes, length) for length in windows}
    # The candles before the requested ones only feed the first averages.
    points = [
        {
            "open_time": from_ms(candle.open_time),
            "close": candle.close,
            "sma": {length: _text(values[index]) for length, values in averages.items()},
        }
        for index, candle in enumerate(window.candles)
        if index >= window.history_count
    ]
    return json_response({"symbol": symbol, "interval": interval.value, "windows": windows, "points": points})


def _text(value: Decimal | None) -> str | None:
    return None if value is None else decimals.plain(value)
