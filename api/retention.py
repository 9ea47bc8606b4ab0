"""Questions about a period past retention get a 4xx saying what is kept and since when, instead
of an answer that would leave out the dropped rows (answers never pretend): a 422 under /v1, and
under /api/v3 Binance's -1130 naming the parameter (api/errors.py renders a ParameterError so
there).

A period is refused only when no source of the answer holds it: where Binance's klines are stored
for a period whose trades (or rollups) retention dropped, the answer comes from the klines and
says so."""

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from api.errors import ParameterError
from api.intervals import Interval
from api.queries import candles as candle_queries
from api.queries.retention import Horizon, latest_horizon

ONE_SECOND = timedelta(seconds=1)

# What each table holds, as a person reads it; the tables an answer reads, per kind of answer.
_WHAT = {
    "trades": "individual trades",
    "agg_trades": "aggregate trades",
    "trade_candles_1s": "1-second rollups",
    "trade_candles_1m": "1-minute rollups (candles of 1m and longer)",
    "klines": "Binance's klines",
}
TRADES = ("trades", "trade_candles_1s")
# Lists by trade id read the trades alone.
TRADE_ROWS = ("trades",)
AGG_TRADES = ("agg_trades",)
SECONDS = ("trade_candles_1s",)
MINUTES = ("trade_candles_1m",)
# /v1/reconcile sets the 1-second rollup beside Binance's 1s klines: both must be kept.
RECONCILE = ("trade_candles_1s", "klines")


async def past_retention(connection: AsyncConnection, tables: tuple[str, ...], moment: datetime) -> Horizon | None:
    """The horizon `moment` lies before, of the tables an answer reads all of; None if it is kept."""
    horizon = await latest_horizon(connection, tables)
    return horizon if horizon is not None and moment < horizon.kept_since else None


def refusal(parameter: str, horizon: Horizon, also: str = "") -> ParameterError:
    """The 4xx naming `parameter`, what is kept and since when (and `also`, what else was looked at)."""
    return ParameterError(
        parameter,
        f"before what is kept: {_WHAT[horizon.table]} are kept for {horizon.retention_days} days, from"
        f" {horizon.kept_since:%Y-%m-%dT%H:%M:%S}Z on{also}",
    )


async def require_kept(connection: AsyncConnection, tables: tuple[str, ...], parameter: str, moment: datetime) -> None:
    horizon = await past_retention(connection, tables, moment)
    if horizon is not None:
        raise refusal(parameter, horizon)


async def require_id_kept(
    connection: AsyncConnection,
    tables: tuple[str, ...],
    parameter: str,
    symbol: str,
    from_id: int,
    first_stored: Callable[[AsyncConnection, str], Awaitable[int | None]],
) -> None:
    """A list from an id before the symbol's first stored one, once retention has dropped rows of
    `tables`: the ids in between may be the dropped ones, and a list starting later would pretend
    they never were."""
    horizon = await latest_horizon(connection, tables)
    if horizon is None:
        return
    first = await first_stored(connection, symbol)
    if first is not None and from_id < first:
        raise refusal(parameter, horizon, f"; the first stored id of {symbol} is {first}")


async def require_candles_kept(
    connection: AsyncConnection,
    symbol: str,
    interval: Interval,
    parameter: str,
    start: datetime,
    stop: datetime | None,
    with_klines: bool = True,
) -> None:
    """Candles from `start` (up to `stop`, exclusive, if given) come from the interval's rollup
    (1s: the 1-second one; longer: the 1-minute one) or, `with_klines`, from Binance's klines of
    the interval stored there: refused only when the rollup dropped `start` and no stored kline
    opens between it and what the rollup keeps (api/queries/candles.py leaves the dropped part
    a hole, so that nothing is carried into it)."""
    horizon = await past_retention(connection, _rollup(interval), start)
    if horizon is None:
        return
    until = horizon.kept_since if stop is None else min(stop, horizon.kept_since)
    if with_klines and await candle_queries.kline_opens_in(connection, symbol, interval, start, until):
        return
    also = f", and no {interval.value} kline of {symbol} is stored between {parameter} and then" if with_klines else ""
    raise refusal(parameter, horizon, also)


async def require_candles_up_to_kept(
    connection: AsyncConnection, interval: Interval, parameter: str, end: datetime, answered: bool
) -> None:
    """The newest candles up to `end` (no start): an empty answer for an end before what the
    interval's rollup keeps would say nothing traded then. Refused; any candle (from stored
    klines) is an answer."""
    if answered:
        return
    horizon = await past_retention(connection, _rollup(interval), end)
    if horizon is not None:
        raise refusal(parameter, horizon)


def _rollup(interval: Interval) -> tuple[str, ...]:
    # 1s candles are the 1-second rollup's rows; every longer interval groups 1-minute rows.
    return SECONDS if interval is Interval.S1 else MINUTES


async def require_kline_price_kept(
    connection: AsyncConnection, symbol: str, parameter: str, second: datetime, kline_open: datetime
) -> None:
    """The price at `second` from the stored 1s kline opening at `kline_open`, the last with trades
    at or before it: where retention dropped the trades after that kline, a dropped trade may have
    set a later price, unless Binance's 1s klines are stored on over what was dropped (they say
    nothing traded after it). Refused when they are not."""
    horizon = await latest_horizon(connection, TRADES)
    if horizon is None or kline_open + ONE_SECOND >= horizon.kept_since:
        return
    # A 1s kline from the last dropped second (or `second`, if earlier) on: the klines reach it.
    reach = min(second, horizon.kept_since - ONE_SECOND)
    if await candle_queries.kline_opens_in(connection, symbol, Interval.S1, reach, second + ONE_SECOND):
        return
    raise refusal(parameter, horizon, f", and the stored 1s klines of {symbol} do not reach {parameter} over it")
