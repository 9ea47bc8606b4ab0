"""The rows a replay reads, as SQLAlchemy Core statements compiled once for asyncpg.

Each stream is read in the order it was stored: trades by trade id (the matching engine's order,
in which Binance sent them), aggTrades by trade time then agg id (their time index), book tickers
by update id. Every statement selects the event time in epoch milliseconds and the stream's id
first, then the payload's fields in replay/frames.py's order, prices and quantities as the text
PostgreSQL prints for the stored NUMERIC (exact, trailing zeros kept).
"""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, DateTime, Select, Text, bindparam, cast, func, literal_column, select
from sqlalchemy.dialects.postgresql import asyncpg

from replay.streams import StreamKind
from schemas.coverage import CoverageKind
from schemas.tables import agg_trades, book_tickers, coverage, symbols, trades

_DIALECT = asyncpg.dialect()  # type: ignore[no-untyped-call]
_SYMBOL = bindparam("symbol", type_=Text)
_START = bindparam("start", type_=DateTime(timezone=True))
_END = bindparam("end", type_=DateTime(timezone=True))
_FIRST = bindparam("first_id", type_=BigInteger)
_LAST = bindparam("last_id", type_=BigInteger)
_AFTER = bindparam("after_id", type_=BigInteger)
_LIMIT = bindparam("row_limit", type_=BigInteger)
_COVERAGE_STREAM = bindparam("coverage_stream", type_=Text)


def epoch_ms(moment: ColumnElement[Any]) -> ColumnElement[int]:
    # extract() is an exact NUMERIC (PostgreSQL 14+): floor() keeps a microsecond time in its millisecond.
    return cast(func.floor(func.extract("epoch", moment) * literal_column("1000")), BigInteger)


@dataclass(frozen=True, slots=True)
class Statement:
    sql: str
    parameters: tuple[str, ...]

    def arguments(self, values: dict[str, object]) -> list[object]:
        return [values[name] for name in self.parameters]


def _compile(query: Select[Any]) -> Statement:
    compiled = query.compile(dialect=_DIALECT)
    return Statement(str(compiled), tuple(compiled.positiontup or ()))


def _trade_columns() -> Select[Any]:
    return select(
        epoch_ms(func.coalesce(trades.c.event_time, trades.c.trade_time)),
        trades.c.trade_id,
        cast(trades.c.price, Text),
        cast(trades.c.quantity, Text),
        epoch_ms(trades.c.trade_time),
        trades.c.buyer_is_maker,
    )


def _agg_columns() -> Select[Any]:
    return select(
        epoch_ms(func.coalesce(agg_trades.c.event_time, agg_trades.c.trade_time)),
        agg_trades.c.agg_trade_id,
        cast(agg_trades.c.price, Text),
        cast(agg_trades.c.quantity, Text),
        agg_trades.c.first_trade_id,
        agg_trades.c.last_trade_id,
        epoch_ms(agg_trades.c.trade_time),
        agg_trades.c.buyer_is_maker,
    )


def _book_columns() -> Select[Any]:
    return select(
        epoch_ms(book_tickers.c.received_at),
        book_tickers.c.update_id,
        cast(book_tickers.c.bid_price, Text),
        cast(book_tickers.c.bid_quantity, Text),
        cast(book_tickers.c.ask_price, Text),
        cast(book_tickers.c.ask_quantity, Text),
    )


# The stored range: a trade range is read along the primary key between the ids the rollups
# give for [start, end) (api/queries/stats.py), its times checked row by row.
HISTORY: dict[StreamKind, Statement] = {
    StreamKind.TRADE: _compile(
        _trade_columns()
        .where(
            trades.c.symbol == _SYMBOL,
            trades.c.trade_id.between(_FIRST, _LAST),
            trades.c.trade_time >= _START,
            trades.c.trade_time < _END,
        )
        .order_by(trades.c.trade_id)
    ),
    StreamKind.AGG_TRADE: _compile(
        _agg_columns()
        .where(agg_trades.c.symbol == _SYMBOL, agg_trades.c.trade_time >= _START, agg_trades.c.trade_time < _END)
        .order_by(agg_trades.c.trade_time, agg_trades.c.agg_trade_id)
    ),
    # No time index on book tickers: the symbol's rows are read along the primary key.
    StreamKind.BOOK_TICKER: _compile(
        _book_columns()
        .where(
            book_tickers.c.symbol == _SYMBOL,
            book_tickers.c.received_at >= _START,
            book_tickers.c.received_at < _END,
        )
        .order_by(book_tickers.c.update_id)
    ),
}

# live=true: rows stored since, by id after the last one the replay knows of.
NEWER: dict[StreamKind, Statement] = {
    StreamKind.TRADE: _compile(
        _trade_columns()
        .where(
            trades.c.symbol == _SYMBOL,
            trades.c.trade_id > _AFTER,
            trades.c.trade_time >= _START,
            trades.c.trade_time < _END,
        )
        .order_by(trades.c.trade_id)
        .limit(_LIMIT)
    ),
    StreamKind.AGG_TRADE: _compile(
        _agg_columns()
        .where(
            agg_trades.c.symbol == _SYMBOL,
            agg_trades.c.agg_trade_id > _AFTER,
            agg_trades.c.trade_time >= _START,
            agg_trades.c.trade_time < _END,
        )
        .order_by(agg_trades.c.agg_trade_id)
        .limit(_LIMIT)
    ),
    StreamKind.BOOK_TICKER: _compile(
        _book_columns()
        .where(
            book_tickers.c.symbol == _SYMBOL,
            book_tickers.c.update_id > _AFTER,
            book_tickers.c.received_at >= _START,
            book_tickers.c.received_at < _END,
        )
        .order_by(book_tickers.c.update_id)
        .limit(_LIMIT)
    ),
}

# The newest id in the replay's snapshot: where live=true goes on from.
NEWEST_ID: dict[StreamKind, Statement] = {
    StreamKind.TRADE: _compile(select(func.max(trades.c.trade_id)).where(trades.c.symbol == _SYMBOL)),
    StreamKind.AGG_TRADE: _compile(select(func.max(agg_trades.c.agg_trade_id)).where(agg_trades.c.symbol == _SYMBOL)),
    StreamKind.BOOK_TICKER: _compile(
        select(func.max(book_tickers.c.update_id)).where(book_tickers.c.symbol == _SYMBOL)
    ),
}

# The symbol's exchangeInfo entry, for the precisions klines are printed with.
SYMBOL_INFO = _compile(select(symbols.c.info).where(symbols.c.symbol == _SYMBOL))

# The known holes of one stream (the coverage table's stream type) that overlap [start, end),
# oldest first: (start ms, end ms, origin, detail), one index range of the primary key.
HOLES = _compile(
    select(epoch_ms(coverage.c.start_time), epoch_ms(coverage.c.end_time), coverage.c.origin, coverage.c.detail)
    .where(
        coverage.c.symbol == _SYMBOL,
        coverage.c.stream == _COVERAGE_STREAM,
        # A literal, not a parameter: the statement's parameters are only the named ones above.
        coverage.c.kind == literal_column(f"'{CoverageKind.HOLE.value}'"),
        coverage.c.end_time > _START,
        coverage.c.start_time < _END,
    )
    .order_by(coverage.c.start_time)
)
