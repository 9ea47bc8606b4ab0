"""A Binance-compatible read API over the stored history: GET /api/v3/... with Binance's
parameters, limits, response layout and error format, so that python-binance and ccxt, pointed
at this service, read stored history unmodified.

Only market data that is stored is served: klines (computed from the stored trades, as
/v1/candles), aggregate trades, trades, the newest price per symbol and the stored
exchangeInfo entries, which are served exactly as Binance sent them.
"""

import time
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from api import retention
from api.binance_format import (
    Precision,
    agg_trade_object,
    format_decimal,
    kline_row,
    precision_from_info,
    trade_object,
)
from api.binance_params import BinanceParams, bad_combination, invalid_symbol
from api.candles import Candle
from api.deps import DbConnection, Settings
from api.errors import BinanceError, BinanceErrorBody
from api.params import from_ms
from api.queries import candles as candle_queries
from api.queries import prices, symbols
from api.queries import trades as trade_queries

router = APIRouter(prefix="/api/v3", tags=["binance-compatible"])

MEDIA_TYPE = "application/json;charset=UTF-8"


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type=MEDIA_TYPE)


def _params(request: Request) -> BinanceParams:
    query = request.query_params
    return BinanceParams({name: query.getlist(name) for name in query})


async def _symbol_precision(connection: AsyncConnection, symbol: str) -> Precision:
    """The symbol's print precision from its stored exchangeInfo entry; -1121 if nothing at all
    is stored for it."""
    info = await symbols.exchange_info_entry(connection, symbol)
    if info is None and not await prices.symbol_is_known(connection, symbol):
        raise invalid_symbol()
    return precision_from_info(info)


def _parameter(name: str, description: str, required: bool = False, pattern: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if pattern:
        schema["pattern"] = pattern
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema}


_SYMBOL = _parameter("symbol", "e.g. BTCUSDT", required=True, pattern="^[A-Za-z0-9-_.]{1,20}$")
# An empty optional parameter counts as not sent, as on Binance.
_OPTIONAL_SYMBOL = {**_SYMBOL, "required": False, "schema": {"type": "string", "pattern": "^([A-Za-z0-9-_.]{1,20})?$"}}
_SYMBOLS = _parameter("symbols", 'JSON array, e.g. ["BTCUSDT","ETHUSDT"]')
_LIMIT = _parameter("limit", "default 500, at most 1000", pattern="^[0-9]{1,20}$")
_START = _parameter("startTime", "epoch ms, inclusive", pattern="^[0-9]{1,20}$")
_END = _parameter("endTime", "epoch ms, inclusive", pattern="^[0-9]{1,20}$")
_FROM_ID = _parameter("fromId", "id to start from, inclusive", pattern="^[0-9]{1,20}$")
_INTERVAL = _parameter("interval", "1s 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d 1w 1M", required=True)
_TIME_ZONE = _parameter("timeZone", "offset of the intervals' boundaries, -12:00 to +14:00; default 0 (UTC)")

_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {
        "model": BinanceErrorBody,
        "description": 'Binance\'s error layout, e.g. {"code":-1121,"msg":"Invalid symbol."}',
    },
    404: {"model": BinanceErrorBody, "description": "unknown path"},
}


def _route(
    path: str,
    summary: str,
    parameters: list[dict[str, Any]],
    schema: dict[str, Any],
    headers: dict[str, Any] | None = None,
) -> Callable[..., Any]:
    ok: dict[str, Any] = {"content": {"application/json": {"schema": schema}}}
    if headers:
        ok["headers"] = headers
    return router.get(
        path,
        summary=summary,
        response_class=Response,
        responses={200: ok, **_ERROR_RESPONSES},
        openapi_extra={"parameters": parameters},
    )


_DECIMAL = {"type": "string"}
_INTEGER = {"type": "integer"}


@_route("/ping", "Test connectivity", [], {"type": "object"})
async def ping() -> Response:
    return _json({})


@_route("/time", "Server time", [], {"type": "object", "properties": {"serverTime": _INTEGER}})
async def server_time() -> Response:
    return _json({"serverTime": time.time_ns() // 1_000_000})


@_route(
    "/exchangeInfo",
    "The stored exchangeInfo entries (exactly as Binance sent them)",
    [_OPTIONAL_SYMBOL, _SYMBOLS, _parameter("symbolStatus", "TRADING, HALT or BREAK")],
    {"type": "object", "properties": {"symbols": {"type": "array", "items": {"type": "object"}}}},
)
async def exchange_info(request: Request, connection: DbConnection) -> Response:
    params = _params(request)
    symbol, names, status = params.symbol(required=False), params.symbols(), params.text("symbolStatus")
    if symbol is not None and names is not None:
        raise bad_combination()
    if status and (symbol is not None or names is not None):
        raise bad_combination()
    if status and status not in ("TRADING", "HALT", "BREAK"):
        raise BinanceError(-1122, "Invalid symbolStatus.")
    chosen = [symbol] if symbol is not None else names
    entries = await symbols.exchange_info_entries(connection, chosen)
    if chosen is not None and len(entries) != len(chosen):
        raise invalid_symbol()
    if status:
        entries = [entry for entry in entries if entry.get("status") == status]
    return _json(
        {
            "timezone": "UTC",
            "serverTime": time.time_ns() // 1_000_000,
            # No request weight is counted here, so no limit is announced.
            "rateLimits": [],
            "exchangeFilters": [],
            "symbols": entries,
        }
    )


_KLINE_SCHEMA = {
    "type": "array",
    "items": {"type": "array", "minItems": 12, "maxItems": 12, "items": {"anyOf": [_DECIMAL, _INTEGER]}},
}


async def _klines(request: Request, connection: AsyncConnection, settings: Settings) -> Response:
    params = _params(request)
    symbol = params.symbol()
    assert symbol is not None
    interval = params.interval()
    start, end = params.start_time(), params.end_time()
    offset = params.time_zone_offset_ms()
    limit = params.limit()
    precision = await _symbol_precision(connection, symbol)
    if start is not None and end is not None and start > end:
        return _json([])
    if start is not None:
        # Binance's klines open on UTC boundaries: with an offset they are not the candles asked for.
        stop = from_ms(end + 1) if end is not None else None
        await retention.require_candles_kept(
            connection, symbol, interval, "startTime", from_ms(start), stop, with_klines=offset == 0
        )
    window = await candle_queries.candles(
        connection, symbol, interval, start, end, limit, settings.candles_max_rollup_rows, offset
    )
    if start is None and end is not None:
        await retention.require_candles_up_to_kept(connection, interval, "endTime", from_ms(end), bool(window.candles))
    response = _json([kline_row(candle, precision) for candle in window.candles])
    response.headers[KLINE_SOURCE_HEADER] = kline_source(window.candles)
    return response


# Binance's kline array has no room for where a candle came from (/v1/candles names it per candle).
KLINE_SOURCE_HEADER = "X-Kline-Source"


def kline_source(candles: list[Candle]) -> str:
    """`trades` or `klines` when every candle came from that source, `mixed` when both did, `none`
    for no candle."""
    sources = {candle.source for candle in candles}
    if not sources:
        return "none"
    return sources.pop() if len(sources) == 1 else "mixed"


_KLINE_PARAMETERS = [_SYMBOL, _INTERVAL, _START, _END, _TIME_ZONE, _LIMIT]
_KLINE_HEADERS = {
    KLINE_SOURCE_HEADER: {
        "description": "where the candles came from: trades (the stored trades), klines (Binance's klines as"
        " stored, where no trade of the interval is), mixed (both), none (no candle)",
        "schema": {"type": "string", "enum": ["trades", "klines", "mixed", "none"]},
    }
}


@_route("/klines", "Klines, computed from the stored trades", _KLINE_PARAMETERS, _KLINE_SCHEMA, _KLINE_HEADERS)
async def klines(request: Request, connection: DbConnection, settings: Settings) -> Response:
    return await _klines(request, connection, settings)


@_route("/uiKlines", "Klines (the same as /klines here)", _KLINE_PARAMETERS, _KLINE_SCHEMA, _KLINE_HEADERS)
async def ui_klines(request: Request, connection: DbConnection, settings: Settings) -> Response:
    return await _klines(request, connection, settings)


_TRADE_SCHEMA = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "id": _INTEGER,
            "price": _DECIMAL,
            "qty": _DECIMAL,
            "quoteQty": _DECIMAL,
            "time": _INTEGER,
            "isBuyerMaker": {"type": "boolean"},
            "isBestMatch": {"type": "boolean"},
        },
    },
}


@_route("/trades", "The newest stored trades", [_SYMBOL, _LIMIT], _TRADE_SCHEMA)
async def recent_trades(request: Request, connection: DbConnection) -> Response:
    params = _params(request)
    symbol = params.symbol()
    assert symbol is not None
    limit = params.limit()
    precision = await _symbol_precision(connection, symbol)
    return _json([trade_object(row, precision) for row in await trade_queries.recent_trades(connection, symbol, limit)])


@_route("/historicalTrades", "Stored trades from a trade id", [_SYMBOL, _LIMIT, _FROM_ID], _TRADE_SCHEMA)
async def historical_trades(request: Request, connection: DbConnection) -> Response:
    params = _params(request)
    symbol = params.symbol()
    assert symbol is not None
    limit = params.limit()
    from_id = params.unsigned("fromId")
    precision = await _symbol_precision(connection, symbol)
    if from_id is not None:
        await retention.require_id_kept(
            connection, retention.TRADE_ROWS, "fromId", symbol, from_id, trade_queries.first_trade_id
        )
    if from_id is None:
        rows = await trade_queries.recent_trades(connection, symbol, limit)
    else:
        rows = await trade_queries.trades_from_id(connection, symbol, from_id, limit)
    return _json([trade_object(row, precision) for row in rows])


@_route(
    "/aggTrades",
    "Stored aggregate trades",
    [_SYMBOL, _FROM_ID, _START, _END, _LIMIT],
    {"type": "array", "items": {"type": "object"}},
)
async def aggregate_trades(request: Request, connection: DbConnection) -> Response:
    params = _params(request)
    symbol = params.symbol()
    assert symbol is not None
    limit = params.limit()
    from_id = params.unsigned("fromId")
    start, end = params.start_time(), params.end_time()
    # fromId cannot be combined with a time range.
    if from_id is not None and (start is not None or end is not None):
        raise bad_combination()
    precision = await _symbol_precision(connection, symbol)
    if from_id is not None:
        await retention.require_id_kept(
            connection, retention.AGG_TRADES, "fromId", symbol, from_id, trade_queries.first_agg_trade_id
        )
    elif start is not None:
        await retention.require_kept(connection, retention.AGG_TRADES, "startTime", from_ms(start))
    elif end is not None:
        # The newest up to endTime: none of them is kept if endTime is not.
        await retention.require_kept(connection, retention.AGG_TRADES, "endTime", from_ms(end))
    rows = await trade_queries.agg_trades_list(
        connection,
        symbol,
        from_id,
        from_ms(start) if start is not None else None,
        from_ms(end) if end is not None else None,
        limit,
    )
    return _json([agg_trade_object(row, precision) for row in rows])


_TICKER = {"type": "object", "properties": {"symbol": {"type": "string"}, "price": _DECIMAL}}


@_route(
    "/ticker/price",
    "The newest stored trade's price",
    [_OPTIONAL_SYMBOL, _SYMBOLS],
    {"anyOf": [_TICKER, {"type": "array", "items": _TICKER}]},
)
async def ticker_price(request: Request, connection: DbConnection) -> Response:
    params = _params(request)
    symbol, names = params.symbol(required=False), params.symbols()
    if symbol is not None and names is not None:
        raise bad_combination()
    if symbol is not None:
        row = await prices.latest_trade(connection, symbol)
        if row is None:
            raise invalid_symbol()
        precision = precision_from_info(await symbols.exchange_info_entry(connection, symbol))
        return _json({"symbol": symbol, "price": format_decimal(row["price"], precision.price)})
    rows = {row["symbol"]: row for row in await prices.latest_trades(connection)}
    if names is not None:
        if any(name not in rows for name in names):
            raise invalid_symbol()
        rows = {name: rows[name] for name in names}
    precisions = {
        str(entry["symbol"]): precision_from_info(entry)
        for entry in await symbols.exchange_info_entries(connection, list(rows))
    }
    tickers = [
        {"symbol": name, "price": format_decimal(row["price"], precisions.get(name, Precision()).price)}
        for name, row in rows.items()
    ]
    return _json(tickers)
