"""Price questions: the newest trade, the price at a second, a minute's high and low."""

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query

from api import retention
from api.deps import DbConnection, require_known_symbol, unknown_symbol
from api.errors import NotFoundError, Problem
from api.models import LatestPrice, LatestPrices, MinuteRange, PriceAt
from api.params import OptionalSymbol, Symbol, TimeValue
from api.queries import coverage, prices
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
    """The price in effect at the end of that second: the last trade at or before it, or the close
    of the last stored 1s kline with trades where that is newer (klines imported without their
    trades; also past the trades' retention, where the 1s klines reach the second). A 404 when a
    known hole (see /v1/coverage) lies between that trade and the second: the price then is
    unknown; a 422 when no source holds the second (retention)."""
    second = timestamp.replace(microsecond=0)
    row = await prices.trade_at_or_before(connection, symbol, second + timedelta(seconds=1))
    kline = await prices.last_traded_second_kline(connection, symbol, second)
    if kline is not None and (row is None or kline["open_time"] > row["trade_time"].replace(microsecond=0)):
        # Imported 1s klines are kept longer than trades: they answer where they are held.
        await retention.require_kline_price_kept(connection, symbol, "timestamp", second, kline["open_time"])
        after_kline = kline["open_time"] + timedelta(seconds=1)
        await _refuse_inside_hole(connection, symbol, "timestamp", after_kline, second + timedelta(seconds=1))
        return PriceAt(
            symbol=symbol,
            timestamp=second,
            price=kline["close"],
            quantity=None,
            trade_id=kline["last_trade_id"],
            actual_timestamp=kline["open_time"],
            source="klines",
        )
    if row is None:
        await require_kept(connection, retention.TRADES, "timestamp", second)
        await require_known_symbol(connection, symbol)
        raise NotFoundError("timestamp", f"no {symbol} trade stored at or before {second:%Y-%m-%dT%H:%M:%S}Z")
    await _refuse_inside_hole(connection, symbol, "timestamp", row["trade_time"], second + timedelta(seconds=1))
    return PriceAt(
        symbol=symbol,
        timestamp=second,
        price=row["price"],
        quantity=row["quantity"],
        trade_id=row["trade_id"],
        actual_timestamp=row["trade_time"],
        source="trades",
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
    when the minute had no trades. Where no trade of the minute is stored, Binance's 1m kline of it
    answers if one is stored (source klines). A 404 when the minute touches a known hole (see
    /v1/coverage) and no kline of it is stored: its trades are not all stored."""
    start = minute.replace(second=0, microsecond=0)
    row = await prices.minute_candle(connection, symbol, start)
    if row is None and (kline := await prices.closed_kline(connection, symbol, "1m", start)) is not None:
        traded = kline["trade_count"] > 0
        return MinuteRange(
            symbol=symbol,
            minute=start,
            high=kline["high"] if traded else None,
            low=kline["low"] if traded else None,
            open=kline["open"] if traded else None,
            close=kline["close"] if traded else None,
            volume=kline["volume"],
            quote_volume=kline["quote_volume"],
            trade_count=kline["trade_count"],
            source="klines",
        )
    # Past the 1-minute rollup's retention, and no kline of the minute kept: no source holds it.
    await require_kept(connection, retention.MINUTES, "minute", start)
    await _refuse_inside_hole(connection, symbol, "minute", start, start + timedelta(minutes=1))
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
            source="trades",
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
        source="trades",
    )


async def _refuse_inside_hole(
    connection: DbConnection, symbol: str, parameter: str, start: datetime, end: datetime
) -> None:
    """404 naming `parameter` when a known hole of the trade stream touches [start, end): an answer
    from what is stored there would be made up (a missing trade may have set the price)."""
    holes = await coverage.holes_overlapping(connection, symbol, "trade", start, end)
    if holes:
        hole = holes[-1]
        raise NotFoundError(
            parameter,
            f"the store knows it lacks {symbol} trades from {hole['start_time']:%Y-%m-%dT%H:%M:%S.%f}Z to"
            f" {hole['end_time']:%Y-%m-%dT%H:%M:%S.%f}Z ({hole['detail'] or 'a hole'}); see /v1/coverage",
        )
