"""Batched, idempotent writes of trades to PostgreSQL: COPY into a staging table, then one upsert."""

import io
import logging
from collections.abc import Sequence

from sqlalchemy import Engine, create_engine

from schemas.messages import Trade

log = logging.getLogger(__name__)

_COLUMNS = "symbol, trade_id, price, quantity, trade_time, buyer_is_maker, event_time"

# A session-local staging table: COPY is PostgreSQL's fastest way in, but it cannot skip
# conflicting rows, so rows land here first and are moved with ON CONFLICT DO NOTHING.
# ON COMMIT DELETE ROWS empties it with every transaction.
_CREATE_STAGING = """
CREATE TEMPORARY TABLE IF NOT EXISTS trades_staging
    (LIKE trades INCLUDING DEFAULTS) ON COMMIT DELETE ROWS
"""
_COPY_TO_STAGING = f"COPY trades_staging ({_COLUMNS}) FROM STDIN"
# The primary key (symbol, trade_id) makes a redelivered or replayed trade a no-op.
_MOVE_TO_TRADES = f"""
INSERT INTO trades ({_COLUMNS})
SELECT {_COLUMNS} FROM trades_staging
ON CONFLICT (symbol, trade_id) DO NOTHING
"""


def copy_rows(trades: Sequence[Trade]) -> io.StringIO:
    """Trades in COPY's text format. Symbols are validated upper-case alphanumerics and the other
    values are numbers, times and booleans, so none needs escaping."""
    buffer = io.StringIO()
    write = buffer.write
    for trade in trades:
        write(
            f"{trade.symbol}\t{trade.trade_id}\t{trade.price}\t{trade.quantity}\t"
            f"{trade.trade_time.isoformat()}\t{'t' if trade.buyer_is_maker else 'f'}\t"
            f"{trade.event_time.isoformat()}\n"
        )
    buffer.seek(0)
    return buffer


class TradeSink:
    def __init__(self, database_url: str) -> None:
        self._engine: Engine = create_engine(database_url, pool_pre_ping=True, pool_size=1)

    def write(self, trades: Sequence[Trade]) -> int:
        """Writes the batch in one transaction; returns how many rows were new. Raises on any
        database error with nothing committed, so the caller can retry the same batch."""
        if not trades:
            return 0
        connection = self._engine.raw_connection()
        try:
            # The psycopg2 connection itself: COPY is a driver feature outside the DB-API.
            with connection.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
                cursor.execute(_CREATE_STAGING)
                cursor.copy_expert(_COPY_TO_STAGING, copy_rows(trades))
                cursor.execute(_MOVE_TO_TRADES)
                inserted: int = cursor.rowcount
            connection.commit()
            return inserted
        except BaseException:
            connection.rollback()
            raise
        finally:
            connection.close()

    def dispose(self) -> None:
        """Drops pooled connections, e.g. after the database went away."""
        self._engine.dispose()
