"""Price questions: the newest trade, the price at a second, a minute's high and low."""

from datetime import timedelta
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query

from api import retention
from api.deps import DbConnection, require_known_symbol, unknown_symbol
from api.errors import NotFoundError, Problem
from api.models import LatestPrice, LatestPrices, MinuteRange, PriceAt
from api.params import OptionalSymbol, Symbol, TimeValue
from api.queries import prices
from api.retention import require_kept

router = APIRouter(prefix="/v1/prices", tags=["prices"])

_ERRORS: dict[int | str, dict[str, object]] = {
    404: {"model": Problem, "description": "nothing stored for that symbol (or time)"},
    422: {"model": Problem, "description": "a parameter is invalid; the body names it and says why"},
}


@router.get("/latest", response_model=LatestPrice | LatestPrices, responses=_ERRORS)
async def latest_price(connection: DbConnection, symbol: OptionalSymbol = None) -> LatestPrice | LatestPrices:
    """The newest trade's price: for one symbol, or for every symbol with data."""
    if symbol is None:
        rows = await prices.latest_trades(connection)
        return LatestPrices(prices=[LatestPrice.model_validate(dict(row)) for row in rows])
    row = await prices.latest_trade(connection, symbol)
    if row is None:
        raise NotFoundError("symbol", f"no trades stored for {symbol!r}")
    return LatestPrice.model_validate(dict(row))


@router.get("/at", response_model=PriceAt, responses=_ERRORS)
async def price_at(
    connection: DbConnection,
    symbol: Symbol,
    timestamp: Annotated[
        TimeValue,
        Query(description="the second: ISO 8601 (no zone means UTC) or epoch milliseconds; finer parts are ignored"),
    ],
) -> PriceAt:
    """The price in effect at the end of that second: the last trade at or before it."""
    second = timestamp.replace(microsecond=0)
    await require_kept(connection, retention.TRADES, "timestamp", second)
    row = await prices.trade_at_or_before(connection, symbol, second + timedelta(seconds=1))
    if row is None:
        await require_known_symbol(connection, symbol)
        raise NotFoundError("timestamp", f"no {symbol} trade stored at or before {second:%Y-%m-%dT%H:%M:%S}Z")
    return PriceAt(
        symbol=symbol,
        timestamp=second,
        price=row["price"],
        quantity=row["quantity"],
        trade_id=row["trade_id"],
        actual_timestamp=row["trade_time"],
    )


@router.get("/minmax", response_model=MinuteRange, responses=_ERRORS)
async def minute_range(
    connection: DbConnection,
    symbol: Symbol,
    minute: Annotated[
        TimeValue,
        Query(description="the minute: ISO 8601 (no zone means UTC) or epoch milliseconds; seconds are ignored"),
    ],
) -> MinuteRange:
    """High and low (and open, close, volume, trade count) of one minute; high and low are null
    when the minute had no trades."""
    start = minute.replace(second=0, microsecond=0)
    await require_kept(connection, retention.MINUTES, "minute", start)
    row = await prices.minute_candle(connection, symbol, start)
    if row is None:
        if not await prices.symbol_is_known(connection, symbol):
            raise unknown_symbol(symbol)
        return MinuteRange(
            symbol=symbol,
            minute=start,
            high=None,
            low=None,
            open=None,
            close=None,
            volume=Decimal(0),
            quote_volume=Decimal(0),
            trade_count=0,
        )
    return MinuteRange(
        symbol=symbol,
        minute=start,
        high=row["high"],
        low=row["low"],
        open=row["open"],
        close=row["close"],
        volume=row["volume"],
        quote_volume=row["quote_volume"],
        trade_count=row["trade_count"],
    )
