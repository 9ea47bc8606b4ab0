"""price_sum in the trade rollups, and no (symbol, trade_time) index on trades.

Every time-based question is answered through the 1-second rollup's primary key (a second maps to
its first and last trade id) and then the trades primary key, so the secondary index only cost
the consumer a second B-tree insert per trade. price_sum lets /v1/stats take the mean price from
the rollups instead of reading every trade of the range.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    "symbol, open_time, open, high, low, close, volume, quote_volume, trade_count, taker_buy_base_volume,"
    " taker_buy_quote_volume, first_trade_id, last_trade_id"
)


def _refill(table: str, sums: str) -> None:
    """Gives `table` its price_sum from `sums` (symbol, open_time, price_sum) by copying it aside,
    emptying it and writing it back in key order. An UPDATE of every row would leave the table
    twice its size and its rows scattered in join order (range reads over the rollups pay for
    both), and even CLUSTER keeps the dead rows of its own transaction."""
    # Constant table names and SQL of this module: nothing here comes from input.
    op.execute(
        f"""
        CREATE TEMPORARY TABLE {table}_copy ON COMMIT DROP AS
        SELECT {_COLUMNS}, s.price_sum
        FROM {table} LEFT JOIN ({sums}) AS s USING (symbol, open_time)
        """
    )
    op.execute(f"TRUNCATE {table}")
    # Added to an empty table: NOT NULL needs no default. A rollup row without trades has no sum,
    # so the INSERT below fails, as it should: the two are always written together.
    op.execute(f"ALTER TABLE {table} ADD COLUMN price_sum numeric NOT NULL")
    op.execute(
        f"INSERT INTO {table} ({_COLUMNS}, price_sum)"
        f" SELECT {_COLUMNS}, price_sum FROM {table}_copy ORDER BY symbol, open_time"
    )


def upgrade() -> None:
    # Truncated in UTC whatever the session's zone: a zone with a sub-minute offset (historic
    # local mean times) would otherwise shift the buckets away from the rollups' own.
    _refill(
        "trade_candles_1s",
        "SELECT symbol, date_trunc('second', trade_time, 'UTC') AS open_time, sum(price) AS price_sum"
        " FROM trades GROUP BY 1, 2",
    )
    # A minute's sum is its seconds' sums: one pass over the trades is enough.
    _refill(
        "trade_candles_1m",
        "SELECT symbol, date_trunc('minute', open_time, 'UTC') AS open_time, sum(price_sum) AS price_sum"
        " FROM trade_candles_1s GROUP BY 1, 2",
    )
    op.drop_index("trades_symbol_trade_time_idx", table_name="trades")


def downgrade() -> None:
    op.create_index("trades_symbol_trade_time_idx", "trades", ["symbol", "trade_time"])
    for table in ("trade_candles_1m", "trade_candles_1s"):
        op.drop_column(table, "price_sum")
