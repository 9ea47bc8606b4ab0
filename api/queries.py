"""One function per question, as SQLAlchemy Core over the tables in schemas/tables.py."""

from sqlalchemy import Connection, RowMapping, select

from schemas.tables import trades

_LATEST_COLUMNS = (trades.c.symbol, trades.c.price, trades.c.quantity, trades.c.trade_id, trades.c.trade_time)


def latest_trade(connection: Connection, symbol: str) -> RowMapping | None:
    """The newest trade of a symbol. Trade ids grow with time per symbol, so the primary key
    index answers this with one backward step."""
    query = select(*_LATEST_COLUMNS).where(trades.c.symbol == symbol).order_by(trades.c.trade_id.desc()).limit(1)
    return connection.execute(query).mappings().first()


def latest_trades(connection: Connection) -> list[RowMapping]:
    """The newest trade of every symbol, by symbol."""
    query = select(*_LATEST_COLUMNS).distinct(trades.c.symbol).order_by(trades.c.symbol, trades.c.trade_id.desc())
    return list(connection.execute(query).mappings())
