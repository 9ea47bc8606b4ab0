"""Time-partitioned storage: the time-series tables become RANGE-partitioned by their time column.

Each table is renamed aside, a partitioned table of the same columns (LIKE) takes its name with a
primary key that now holds the partition key (PostgreSQL's rule), a DEFAULT partition and one
partition per period the old rows span are created, the rows are copied in primary key order
and the old table is dropped: no row is lost, and on a fresh database the same steps create the
partitioned layout directly (there is nothing to copy). Partitions for today and ahead are the
maintenance job's (maintenance/, run by bootstrap right after migrating).

Also: stored_id_ranges (per symbol, the id range stored of trades and aggregate trades, filled
from the rows here), which lets the consumer keep trade ids unique across partitions cheaply,
and storage_horizons (what retention keeps, for the api's answers).

The table list, periods and partition names are frozen here as schemas/partitions.py has them
today, so this revision keeps doing what it did when that module changes.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence
from typing import NamedTuple

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


class _Table(NamedTuple):
    name: str
    column: str
    period: str  # 'day' or 'month'
    old_key: tuple[str, ...]
    new_key: tuple[str, ...]
    indexes: tuple[tuple[str, tuple[str, ...]], ...] = ()


_TABLES = (
    _Table("trades", "trade_time", "day", ("symbol", "trade_id"), ("symbol", "trade_id", "trade_time")),
    _Table(
        "agg_trades",
        "trade_time",
        "day",
        ("symbol", "agg_trade_id"),
        ("symbol", "agg_trade_id", "trade_time"),
        (("agg_trades_symbol_trade_time_idx", ("symbol", "trade_time")),),
    ),
    _Table("trade_candles_1s", "open_time", "day", ("symbol", "open_time"), ("symbol", "open_time")),
    _Table("book_tickers", "received_at", "day", ("symbol", "update_id"), ("symbol", "received_at", "update_id")),
    _Table("trade_candles_1m", "open_time", "month", ("symbol", "open_time"), ("symbol", "open_time")),
    _Table("klines", "open_time", "month", ("symbol", "interval", "open_time"), ("symbol", "interval", "open_time")),
    _Table(
        "dead_letters",
        "recorded_at",
        "month",
        ("source_topic", "source_partition", "source_offset"),
        ("source_topic", "source_partition", "source_offset", "recorded_at"),
        (("dead_letters_recorded_at_idx", ("recorded_at",)),),
    ),
)


def _columns(names: tuple[str, ...]) -> str:
    return ", ".join(names)


def _partition_suffix(period: str) -> str:
    return "YYYYMMDD" if period == "day" else "YYYYMM"


def _to_partitioned(table: _Table) -> None:
    # Constant names of this module throughout: nothing here comes from input.
    old = f"{table.name}_unpartitioned"
    op.execute(f"ALTER TABLE {table.name} RENAME TO {old}")
    op.execute(f"ALTER INDEX {table.name}_pkey RENAME TO {old}_pkey")
    for index, _ in table.indexes:
        op.execute(f"DROP INDEX {index}")
    op.execute(
        f"CREATE TABLE {table.name} (LIKE {old} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        f" PARTITION BY RANGE ({table.column})"
    )
    op.execute(f"ALTER TABLE {table.name} ADD CONSTRAINT {table.name}_pkey PRIMARY KEY ({_columns(table.new_key)})")
    for index, columns in table.indexes:
        op.execute(f"CREATE INDEX {index} ON {table.name} ({_columns(columns)})")
    op.execute(f"CREATE TABLE {table.name}_default PARTITION OF {table.name} DEFAULT")
    # One partition per period the rows span, so none of them waits in the default. Periods in UTC.
    op.execute(
        f"""
        DO $$
        DECLARE start timestamptz;
        BEGIN
            FOR start IN SELECT DISTINCT date_trunc('{table.period}', {table.column}, 'UTC') FROM {old} LOOP
                EXECUTE format(
                    'CREATE TABLE %I PARTITION OF {table.name} FOR VALUES FROM (%L) TO (%L)',
                    '{table.name}_p' || to_char(start AT TIME ZONE 'UTC', '{_partition_suffix(table.period)}'),
                    start, ((start AT TIME ZONE 'UTC') + interval '1 {table.period}') AT TIME ZONE 'UTC');
            END LOOP;
        END $$
        """
    )
    op.execute(f"INSERT INTO {table.name} SELECT * FROM {old} ORDER BY {_columns(table.old_key)}")
    op.execute(f"DROP TABLE {old}")


def upgrade() -> None:
    # Migrations run in UTC, whatever the server's default: date_trunc above is given it anyway.
    for table in _TABLES:
        _to_partitioned(table)
    op.create_table(
        "stored_id_ranges",
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("symbol", sa.Text(), nullable=False),
        sa.Column("first_id", sa.BigInteger(), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "symbol", name="stored_id_ranges_pkey"),
    )
    op.execute(
        "INSERT INTO stored_id_ranges SELECT 'trades', symbol, min(trade_id), max(trade_id) FROM trades GROUP BY symbol"
    )
    op.execute(
        "INSERT INTO stored_id_ranges SELECT 'agg_trades', symbol, min(agg_trade_id), max(agg_trade_id)"
        " FROM agg_trades GROUP BY symbol"
    )
    op.create_table(
        "storage_horizons",
        sa.Column("table_name", sa.Text(), nullable=False),
        sa.Column("kept_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retention_days", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("table_name"),
    )


def _to_plain(table: _Table) -> None:
    partitioned = f"{table.name}_partitioned"
    op.execute(f"ALTER TABLE {table.name} RENAME TO {partitioned}")
    op.execute(f"ALTER INDEX {table.name}_pkey RENAME TO {partitioned}_pkey")
    for index, _ in table.indexes:
        op.execute(f"DROP INDEX {index}")
    op.execute(f"CREATE TABLE {table.name} (LIKE {partitioned} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    op.execute(f"ALTER TABLE {table.name} ADD CONSTRAINT {table.name}_pkey PRIMARY KEY ({_columns(table.old_key)})")
    for index, columns in table.indexes:
        op.execute(f"CREATE INDEX {index} ON {table.name} ({_columns(columns)})")
    op.execute(f"INSERT INTO {table.name} SELECT * FROM {partitioned} ORDER BY {_columns(table.old_key)}")
    op.execute(f"DROP TABLE {partitioned}")  # its partitions with it


def downgrade() -> None:
    op.drop_table("storage_horizons")
    op.drop_table("stored_id_ranges")
    for table in _TABLES:
        _to_plain(table)
