"""Each symbol's first and last trade in time, for the listings (/v1/symbols, /v1/status).

Trade ids and times need not agree (milliseconds sent under a microsecond header put trades in
1970 among later ids): the first trade is the oldest (trade_time, trade_id), the last the newest,
as prices.latest_trade has it. There is no (symbol, trade_time) index; the 1-second rollup's
primary key finds a symbol's oldest or newest second in one index step, and that second's
first/last trade ids bound the trades to read (by the trades primary key) to that second's id
range, never the symbol's whole history."""

from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, Interval, Select, literal, select
from sqlalchemy.sql.selectable import CTE, LateralFromClause

from schemas.tables import trade_candles_1s, trades

SECOND = trade_candles_1s
ONE_SECOND = literal(timedelta(seconds=1), Interval())


def rollup_symbols() -> CTE:
    """Every symbol with trades, one 1-second rollup primary key probe per symbol.

    PostgreSQL has no skip scan (DISTINCT would read every row): a recursive CTE steps from one
    symbol to the next (a "loose index scan"). The rollups commit with their trades, so the
    symbols with rollup rows are the symbols with trades."""
    following = SECOND.alias("following")
    seen = select(SECOND.c.symbol).order_by(SECOND.c.symbol).limit(1).cte("seen", recursive=True)
    next_symbol = (
        select(following.c.symbol)
        .where(following.c.symbol > seen.c.symbol)
        .order_by(following.c.symbol)
        .limit(1)
        .scalar_subquery()
    )
    return seen.union_all(select(next_symbol).where(seen.c.symbol.is_not(None)))


def edge_trade(
    symbol: ColumnElement[str], columns: tuple[ColumnElement[Any], ...], *, newest: bool, name: str
) -> tuple[LateralFromClause, LateralFromClause]:
    """Two LATERAL subqueries, to be joined in this order after the one giving `symbol`: the
    symbol's oldest (or newest) rollup second, then the oldest (or newest) trade of that second,
    selecting `columns` of trades. No trade of the symbol lies before its oldest second (after
    its newest), so that trade is the symbol's first (last)."""
    order = SECOND.c.open_time.desc() if newest else SECOND.c.open_time
    second = (
        select(SECOND.c.open_time, SECOND.c.first_trade_id, SECOND.c.last_trade_id)
        .where(SECOND.c.symbol == symbol)
        .order_by(order)
        .limit(1)
        .lateral(f"{name}_second")
    )
    # Other seconds' trades may lie in this second's id range too, but none of them is older
    # (newer) than this second's own trades: the first (last) by time among them is this second's.
    trade_order = (
        (trades.c.trade_time.desc(), trades.c.trade_id.desc()) if newest else (trades.c.trade_time, trades.c.trade_id)
    )
    trade: Select[Any] = (
        select(*columns)
        .where(
            trades.c.symbol == symbol,
            trades.c.trade_id.between(second.c.first_trade_id, second.c.last_trade_id),
            # The second's own trades lie in it: the bounds let PostgreSQL read only the time
            # partition holding it, where the id range alone would probe every partition.
            trades.c.trade_time >= second.c.open_time,
            trades.c.trade_time < second.c.open_time + ONE_SECOND,
        )
        .order_by(*trade_order)
        .limit(1)
    )
    return second, trade.lateral(name)
