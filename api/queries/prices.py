"""Prices: the newest trade, the trade in effect at a time, a minute's range."""

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    DateTime,
    RowMapping,
    Select,
    Text,
    bindparam,
    exists,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from api.queries.edge_trades import ONE_SECOND, rollup_symbols
from schemas.tables import klines, symbols, trade_candles_1m, trade_candles_1s, trades

_TRADE_COLUMNS = (trades.c.symbol, trades.c.price, trades.c.quantity, trades.c.trade_id, trades.c.trade_time)


# Trade ids and times are not assumed to agree: a stream whose times were sent in the wrong unit
# (milliseconds under a microsecond header) has times that go backwards as ids grow. "Newest" and
# "last before" mean the latest trade time, the largest id among equal times. The 1-second
# rollup maps each second to the id range its trades lie in (other seconds' trades may lie in
# that range too, and the time condition leaves them out): a question reads the trades of one or
# two seconds, never a symbol's whole history.


def _latest_in_second(symbol: ColumnElement[str], rollup: Any, until: ColumnElement[datetime] | None) -> Any:
    """LATERAL: the latest (time, id) trade of rollup row `rollup`'s second, before `until` if
    given. LATERAL makes the id range an index condition."""
    conditions = [
        trades.c.symbol == symbol,
        trades.c.trade_id.between(rollup.c.first_trade_id, rollup.c.last_trade_id),
        # The second's own bounds: what it holds lies in them, and they let PostgreSQL read only
        # the time partition holding that second (the id range alone would probe every one).
        trades.c.trade_time >= rollup.c.open_time,
        trades.c.trade_time < rollup.c.open_time + ONE_SECOND,
    ]
    if until is not None:
        conditions.append(trades.c.trade_time < until)
    return (
        select(*_TRADE_COLUMNS)
        .where(*conditions)
        .order_by(trades.c.trade_time.desc(), trades.c.trade_id.desc())
        .limit(1)
        .lateral("latest_in_second")
    )


def _latest_trade_query() -> Select[*tuple[Any, ...]]:
    """The newest trade of :symbol: its newest rollup second (one backward step of the rollup's
    primary key), then the latest trade of that second; no trade lies after it."""
    symbol = bindparam("symbol", type_=Text)
    newest = (
        select(trade_candles_1s.c.open_time, trade_candles_1s.c.first_trade_id, trade_candles_1s.c.last_trade_id)
        .where(trade_candles_1s.c.symbol == symbol)
        .order_by(trade_candles_1s.c.open_time.desc())
        .limit(1)
        .subquery("newest_second")
    )
    latest = _latest_in_second(symbol, newest, None)
    return select(latest).select_from(newest.join(latest, true()))


_LATEST_TRADE = _latest_trade_query()


async def latest_trade(connection: AsyncConnection, symbol: str) -> RowMapping | None:
    """The newest trade of a symbol (latest time; the largest id among equal times)."""
    return (await connection.execute(_LATEST_TRADE, {"symbol": symbol})).mappings().first()


def _latest_trades_query() -> Select[*tuple[Any, ...]]:
    """The newest trade of every symbol, by symbol.

    The symbols come from edge_trades.rollup_symbols (one 1-second rollup primary key probe per
    symbol); then each symbol's newest second, and its latest trade."""
    rollup = trade_candles_1s
    seen = rollup_symbols()
    newest = (
        select(rollup.c.open_time, rollup.c.first_trade_id, rollup.c.last_trade_id)
        .where(rollup.c.symbol == seen.c.symbol)
        .order_by(rollup.c.open_time.desc())
        .limit(1)
        .lateral("newest_second")
    )
    latest = _latest_in_second(seen.c.symbol, newest, None)
    return select(latest).select_from(seen.join(newest, true()).join(latest, true())).order_by(latest.c.symbol)


_LATEST_TRADES = _latest_trades_query()


async def latest_trades(connection: AsyncConnection) -> list[RowMapping]:
    """The newest trade of every symbol with trades, by symbol."""
    return list((await connection.execute(_LATEST_TRADES)).mappings().all())


async def symbol_is_known(connection: AsyncConnection, symbol: str) -> bool:
    """A symbol with stored trades or a stored exchangeInfo entry."""
    query = select(
        or_(
            exists().where(trades.c.symbol == symbol),
            exists().where(symbols.c.symbol == symbol),
        )
    )
    return bool((await connection.execute(query)).scalar())


def _trade_before_query() -> Select[*tuple[Any, ...]]:
    """The last trade strictly before :before (latest time, largest id among equal times);
    :second is :before truncated to the second.

    Its trades before :before if :before's own second has any; else the latest trade of the
    latest rollup second before it (one backward step of the rollup's primary key, however long
    ago that was). The rollups commit with the trades, so they are never behind them."""
    rollup = trade_candles_1s
    symbol = bindparam("symbol", type_=Text)
    second, before = (
        bindparam("second", type_=DateTime(timezone=True)),
        bindparam("before", type_=DateTime(timezone=True)),
    )
    own_second = (
        select(rollup.c.open_time, rollup.c.first_trade_id, rollup.c.last_trade_id)
        # On a whole second, a condition on parameters alone: PostgreSQL skips this part unread.
        .where(rollup.c.symbol == symbol, rollup.c.open_time == second, second < before)
        .subquery("own_second")
    )
    within = _latest_in_second(symbol, own_second, before)
    earlier_second = (
        select(rollup.c.open_time, rollup.c.first_trade_id, rollup.c.last_trade_id)
        .where(rollup.c.symbol == symbol, rollup.c.open_time < second)
        .order_by(rollup.c.open_time.desc())
        .limit(1)
        .subquery("earlier_second")
    )
    # No trade lies between that second and :second, so :second bounds its trades.
    earlier = _latest_in_second(symbol, earlier_second, second)
    found_within = select(within).select_from(own_second.join(within, true()))
    found_earlier = select(earlier).select_from(earlier_second.join(earlier, true()))
    # The earlier second is only looked at when nothing of :before's own second precedes it:
    # the first branch's row, if any, comes first and LIMIT 1 stops there.
    return union_all(found_within, found_earlier).limit(1)  # type: ignore[return-value]


# Built once: one constant statement, compiled once and planned once by PostgreSQL.
_TRADE_BEFORE = _trade_before_query()


async def trade_at_or_before(connection: AsyncConnection, symbol: str, before: datetime) -> RowMapping | None:
    """The last trade strictly before `before` (the trade whose price is in effect just before it),
    exact to the microsecond, through primary keys only."""
    parameters = {"symbol": symbol, "second": before.replace(microsecond=0), "before": before}
    return (await connection.execute(_TRADE_BEFORE, parameters)).mappings().first()


async def minute_candle(connection: AsyncConnection, symbol: str, minute: datetime) -> RowMapping | None:
    """The 1-minute rollup row of that minute: one primary key lookup, whatever the trade count."""
    query = select(trade_candles_1m).where(trade_candles_1m.c.symbol == symbol, trade_candles_1m.c.open_time == minute)
    return (await connection.execute(query)).mappings().first()


async def closed_kline(
    connection: AsyncConnection, symbol: str, interval: str, open_time: datetime
) -> RowMapping | None:
    """The stored closed kline of that interval opening then, as Binance sent it: one primary key lookup."""
    query = select(klines).where(
        klines.c.symbol == symbol, klines.c.interval == interval, klines.c.open_time == open_time, klines.c.is_closed
    )
    return (await connection.execute(query)).mappings().first()


async def last_traded_second_kline(connection: AsyncConnection, symbol: str, second: datetime) -> RowMapping | None:
    """The newest stored closed 1s kline with trades opening at or before `second`: the klines
    primary key walked backwards from it."""
    query = (
        select(klines.c.open_time, klines.c.close, klines.c.last_trade_id)
        .where(
            klines.c.symbol == symbol,
            klines.c.interval == "1s",
            klines.c.open_time <= second,
            klines.c.is_closed,
            klines.c.trade_count > 0,
        )
        .order_by(klines.c.open_time.desc())
        .limit(1)
    )
    return (await connection.execute(query)).mappings().first()
