"""Slimmer rows: the time-series tables' columns in alignment order, and no `ingested_at`.

PostgreSQL lays a row's columns out in their table order, each aligned to its type: a bigint or
timestamptz after a text pads to the next 8 bytes. So the 8-byte columns (ids, times, counts) come
first, then the booleans, then the variable-width ones (symbol text, numerics: 1-byte headers, no
padding): 4 to 8 bytes less per row. And `trades` and `agg_trades` lose `ingested_at` (8 bytes a
row): what /v1/status answered with it, when a symbol's trades were last stored, is
`stored_id_ranges.updated_at` now, which the consumer upserts with every batch anyway (it is
filled here from the rows' newest `ingested_at`).

PostgreSQL cannot reorder columns in place, so each table is rebuilt: its indexes are dropped and
the old parent and partitions renamed aside, a new parent of the new column order is created
with the same partitions (names, bounds, the DEFAULT one, comments), every partition's rows are
copied into its namesake, the indexes are built after the copy (a sorted build, not one insert at a
time) under the partitions' former index names and the parent's constraint names, the parent's
grants are given again, and the old tables are dropped: all in the migration's transaction, so
either every row is in the new layout or nothing changed. A partition the maintenance job had
compacted (its period is over) gets its indexes at fillfactor 100, as maintenance/ builds them now.
The downgrade is the same rebuild back to 0006's order, `ingested_at` back (set to the
downgrade's time: when each row was stored is not kept) and `stored_id_ranges.updated_at` dropped.

One transaction holds every table's old and new rows until it commits, so it needs free disk
about the size of these six tables, and their locks stop writers meanwhile (the consumers wait;
Kafka keeps their messages): 18 s for a million trades and their rollups on the 2-core box
(docs/benchmarks.md).

The column lists and the compaction mark are frozen here as this revision knows them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from collections.abc import Sequence
from typing import Any, NamedTuple

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# maintenance/partitions.py's comment on a partition whose indexes it rebuilt after its period.
_COMPACTED = "indexes rebuilt after its period ended"

_NUM = "numeric NOT NULL"
_TIME = "timestamptz NOT NULL"
_ID = "bigint NOT NULL"
_INGESTED = ("ingested_at", "timestamptz NOT NULL DEFAULT now()")


class _Table(NamedTuple):
    name: str
    partition_column: str
    key: tuple[str, ...]
    old: tuple[tuple[str, str], ...]  # 0006's columns, in order, with their SQL types
    new: tuple[tuple[str, str], ...]
    indexes: tuple[tuple[str, tuple[str, ...]], ...] = ()


def _candles(name: str) -> _Table:
    old = (
        ("symbol", "text NOT NULL"),
        ("open_time", _TIME),
        *((column, _NUM) for column in ("open", "high", "low", "close", "volume", "quote_volume")),
        ("trade_count", _ID),
        ("taker_buy_base_volume", _NUM),
        ("taker_buy_quote_volume", _NUM),
        ("first_trade_id", _ID),
        ("last_trade_id", _ID),
        ("price_sum", _NUM),
    )
    order = (
        "open_time",
        "trade_count",
        "first_trade_id",
        "last_trade_id",
        "symbol",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "quote_volume",
        "taker_buy_base_volume",
        "taker_buy_quote_volume",
        "price_sum",
    )
    return _Table(name, "open_time", ("symbol", "open_time"), old, _reordered(old, order))


def _reordered(columns: tuple[tuple[str, str], ...], order: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    types = dict(columns)
    return tuple((name, types[name]) for name in order)


_TRADES_OLD = (
    ("symbol", "text NOT NULL"),
    ("trade_id", _ID),
    ("price", _NUM),
    ("quantity", _NUM),
    ("trade_time", _TIME),
    ("buyer_is_maker", "boolean NOT NULL"),
    ("event_time", "timestamptz"),
    _INGESTED,
)
_AGG_TRADES_OLD = (
    ("symbol", "text NOT NULL"),
    ("agg_trade_id", _ID),
    ("price", _NUM),
    ("quantity", _NUM),
    ("first_trade_id", _ID),
    ("last_trade_id", _ID),
    ("trade_time", _TIME),
    ("buyer_is_maker", "boolean NOT NULL"),
    ("event_time", "timestamptz"),
    _INGESTED,
)
_KLINES_OLD = (
    ("symbol", "text NOT NULL"),
    ("interval", "text NOT NULL"),
    ("open_time", _TIME),
    ("close_time", _TIME),
    *((column, _NUM) for column in ("open", "high", "low", "close", "volume", "quote_volume")),
    ("trade_count", _ID),
    ("taker_buy_base_volume", _NUM),
    ("taker_buy_quote_volume", _NUM),
    ("first_trade_id", "bigint"),
    ("last_trade_id", "bigint"),
    ("is_closed", "boolean NOT NULL"),
    ("event_time", "timestamptz"),
    ("source", "text NOT NULL"),
    ("updated_at", "timestamptz NOT NULL DEFAULT now()"),
)
_BOOK_TICKERS_OLD = (
    ("symbol", "text NOT NULL"),
    ("update_id", _ID),
    *((column, _NUM) for column in ("bid_price", "bid_quantity", "ask_price", "ask_quantity")),
    ("received_at", _TIME),
)

_TABLES = (
    _Table(
        "trades",
        "trade_time",
        ("symbol", "trade_id", "trade_time"),
        _TRADES_OLD,
        _reordered(
            _TRADES_OLD,
            ("trade_id", "trade_time", "event_time", "buyer_is_maker", "symbol", "price", "quantity"),
        ),
    ),
    _Table(
        "agg_trades",
        "trade_time",
        ("symbol", "agg_trade_id", "trade_time"),
        _AGG_TRADES_OLD,
        _reordered(
            _AGG_TRADES_OLD,
            (
                "agg_trade_id",
                "first_trade_id",
                "last_trade_id",
                "trade_time",
                "event_time",
                "buyer_is_maker",
                "symbol",
                "price",
                "quantity",
            ),
        ),
        (("agg_trades_symbol_trade_time_idx", ("symbol", "trade_time")),),
    ),
    _candles("trade_candles_1s"),
    _candles("trade_candles_1m"),
    _Table(
        "book_tickers",
        "received_at",
        ("symbol", "received_at", "update_id"),
        _BOOK_TICKERS_OLD,
        _reordered(
            _BOOK_TICKERS_OLD,
            ("update_id", "received_at", "symbol", "bid_price", "bid_quantity", "ask_price", "ask_quantity"),
        ),
    ),
    _Table(
        "klines",
        "open_time",
        ("symbol", "interval", "open_time"),
        _KLINES_OLD,
        _reordered(
            _KLINES_OLD,
            (
                "open_time",
                "close_time",
                "trade_count",
                "first_trade_id",
                "last_trade_id",
                "event_time",
                "updated_at",
                "is_closed",
                "symbol",
                "interval",
                "source",
                "open",
                "high",
                "low",
                "close",
                "volume",
                "quote_volume",
                "taker_buy_base_volume",
                "taker_buy_quote_volume",
            ),
        ),
    ),
)


def _rows(query: str, parameters: dict[str, Any]) -> list[Any]:
    return list(op.get_bind().exec_driver_sql(query, parameters).fetchall())


def _rebuild(table: _Table, columns: tuple[tuple[str, str], ...], packed_when_compacted: bool) -> None:
    """Rebuilds `table` with `columns`, keeping its partitions, their rows, index and constraint
    names, comments and the parent's grants. Names come from this module and the catalog only."""
    name = table.name
    partitions = _rows(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), obj_description(c.oid, 'pg_class')"
        " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(%(name)s)"
        # The DEFAULT partition last: while it exists, creating any other partition scans it.
        " ORDER BY pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT', c.relname",
        {"name": name},
    )
    # Each partition's own name for its part of every parent index (the key first).
    child_indexes = {
        (partition, parent): child
        for partition, parent, child in _rows(
            "SELECT t.relname, p.relname, c.relname FROM pg_index x"
            " JOIN pg_class p ON p.oid = x.indexrelid"
            " JOIN pg_inherits i ON i.inhparent = p.oid JOIN pg_class c ON c.oid = i.inhrelid"
            " JOIN pg_index cx ON cx.indexrelid = c.oid JOIN pg_class t ON t.oid = cx.indrelid"
            " WHERE x.indrelid = to_regclass(%(name)s)",
            {"name": name},
        )
    }
    existing = {
        row[0]
        for row in _rows(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%(name)s) AND attnum > 0"
            " AND NOT attisdropped",
            {"name": name},
        )
    }
    grants = _rows(
        "SELECT grantee, privilege_type FROM information_schema.role_table_grants"
        " WHERE table_schema = 'public' AND table_name = %(name)s AND grantee <> current_user",
        {"name": name},
    )
    for index, _ in table.indexes:
        op.execute(f"DROP INDEX {index}")
    op.execute(f"ALTER TABLE {name} DROP CONSTRAINT {name}_pkey")
    # Aside under short names of their own, so no new name collides with an old one.
    aside = {partition: f"{partition}_before_0007" for partition, _, _ in partitions}
    op.execute(f"ALTER TABLE {name} RENAME TO {name}_before_0007")
    for partition, moved in aside.items():
        op.execute(f'ALTER TABLE "{partition}" RENAME TO "{moved}"')

    # The columns both layouts have, named on both sides (a column only the new one has, the
    # downgrade's ingested_at, takes its default).
    copied = ", ".join(column for column, _ in columns if column in existing)
    definitions = ", ".join(f"{column} {kind}" for column, kind in columns)
    op.execute(f"CREATE TABLE {name} ({definitions}) PARTITION BY RANGE ({table.partition_column})")
    key = ", ".join(table.key)
    for partition, bound, comment in partitions:
        op.get_bind().exec_driver_sql(f'CREATE TABLE "{partition}" PARTITION OF {name} {bound}')
        op.execute(f'INSERT INTO "{partition}" ({copied}) SELECT {copied} FROM "{aside[partition]}"')
        if comment is not None:
            op.get_bind().exec_driver_sql(f'COMMENT ON TABLE "{partition}" IS %(comment)s', {"comment": comment})
        packed = " WITH (fillfactor = 100)" if packed_when_compacted and comment == _COMPACTED else ""
        key_name = child_indexes.get((partition, f"{name}_pkey"), f"{partition}_pkey")
        op.execute(f'ALTER TABLE "{partition}" ADD CONSTRAINT "{key_name}" PRIMARY KEY ({key}){packed}')
        for index, index_columns in table.indexes:
            if (partition, index) in child_indexes:
                child = child_indexes[(partition, index)]
                op.execute(f'CREATE INDEX "{child}" ON "{partition}" ({", ".join(index_columns)}){packed}')
    # The parent's key and indexes take the partitions' ones as their parts (same definitions).
    op.execute(f"ALTER TABLE {name} ADD CONSTRAINT {name}_pkey PRIMARY KEY ({key})")
    for index, index_columns in table.indexes:
        op.execute(f"CREATE INDEX {index} ON {name} ({', '.join(index_columns)})")
    for grantee, privilege in grants:
        op.execute(f'GRANT {privilege} ON {name} TO "{grantee}"')
    op.execute(f"DROP TABLE {name}_before_0007")  # its partitions with it


def upgrade() -> None:
    op.execute("ALTER TABLE stored_id_ranges ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now()")
    for kind in ("trades", "agg_trades"):
        # Constant names: when each symbol's rows were last stored, before that column goes.
        op.execute(
            f"UPDATE stored_id_ranges r SET updated_at = s.newest FROM"
            f" (SELECT symbol, max(ingested_at) AS newest FROM {kind} GROUP BY symbol) s"
            f" WHERE r.kind = '{kind}' AND r.symbol = s.symbol"
        )
    for table in _TABLES:
        _rebuild(table, table.new, packed_when_compacted=True)


def downgrade() -> None:
    for table in _TABLES:
        _rebuild(table, table.old, packed_when_compacted=False)
    op.execute("ALTER TABLE stored_id_ranges DROP COLUMN updated_at")
