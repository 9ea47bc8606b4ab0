"""The Alembic migrations create exactly the tables of schemas/tables.py, and undo cleanly."""

import re
import subprocess
import sys
from contextlib import closing
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from tests.conftest import libpq_dsn

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def alembic(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(REPO / "schemas/alembic.ini"), *args],
        env={"DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )


def tables(database_url: str) -> set[str]:
    """The tables, leaving out partitions (the maintenance job's, not schemas/tables.py's)."""
    with closing(psycopg2.connect(libpq_dsn(database_url))) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p')"
            " AND NOT relispartition"
        )
        return {row[0] for row in cursor.fetchall()}


def test_migrations_match_the_table_definitions_and_downgrade(database: dict[str, str]) -> None:
    from schemas.tables import metadata

    upgraded = alembic(database["owner"], "upgrade", "head")
    assert upgraded.returncode == 0, upgraded.stderr
    assert tables(database["owner"]) == {*metadata.tables, "alembic_version"}
    # `alembic check` compares the migrated database with schemas/tables.py: no drift allowed.
    checked = alembic(database["owner"], "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    downgraded = alembic(database["owner"], "downgrade", "base")
    assert downgraded.returncode == 0, downgraded.stderr
    assert tables(database["owner"]) == {"alembic_version"}


def indexes(database_url: str, table: str) -> set[str]:
    with closing(psycopg2.connect(libpq_dsn(database_url))) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND tablename = %s", (table,))
        return {row[0] for row in cursor.fetchall()}


def test_0004_fills_price_sum_from_the_trades_drops_the_time_index_and_undoes_both(
    database: dict[str, str],
) -> None:
    from tests.integration.api_helpers import TradeRow, ms_time, rollup_rows

    t0 = 1_751_531_400_000  # 2025-07-03T08:30:00Z
    trades = [
        TradeRow("BTCUSDT", 1, Decimal("61928.31000000"), Decimal("0.01"), t0 + 35_984, False),
        TradeRow("BTCUSDT", 2, Decimal("61930.5"), Decimal("0.5"), t0 + 35_999, True),
        TradeRow("BTCUSDT", 3, Decimal("61925.123"), Decimal("1"), t0 + 36_000, False),
        TradeRow("BTCUSDT", 4, Decimal("61940"), Decimal("0.3"), t0 + 61_000, True),
        TradeRow("ETHUSDT", 9, Decimal("2611.82"), Decimal("1"), t0 + 35_500, False),
    ]
    owner = database["owner"]
    assert alembic(owner, "upgrade", "0003").returncode == 0
    with closing(psycopg2.connect(libpq_dsn(owner))) as connection, connection, connection.cursor() as cursor:
        for t in trades:
            cursor.execute(
                "INSERT INTO trades (symbol, trade_id, price, quantity, trade_time, buyer_is_maker)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (t.symbol, t.trade_id, t.price, t.quantity, ms_time(t.trade_time_ms), t.buyer_is_maker),
            )
        for table, unit_ms in (("trade_candles_1s", 1000), ("trade_candles_1m", 60_000)):
            for row in rollup_rows(trades, unit_ms):
                # The rows as revision 0003 held them: without price_sum, the last value.
                cursor.execute(f"INSERT INTO {table} VALUES ({', '.join(['%s'] * 13)})", row[:13])  # constant names

    def price_sums(table: str) -> list[tuple[object, ...]]:
        with closing(psycopg2.connect(libpq_dsn(owner))) as connection, connection.cursor() as cursor:
            cursor.execute(f"SELECT symbol, open_time, price_sum::text FROM {table} ORDER BY 1, 2")  # constant names
            return list(cursor.fetchall())

    for _ in range(2):  # upgrade, downgrade, and again: the round trip loses nothing
        upgraded = alembic(owner, "upgrade", "head")
        assert upgraded.returncode == 0, upgraded.stderr
        assert "trades_symbol_trade_time_idx" not in indexes(owner, "trades")
        for table, unit_ms in (("trade_candles_1s", 1000), ("trade_candles_1m", 60_000)):
            # Exact sums, their scale included (the largest of the summed prices').
            expected = [(row[0], row[1], str(row[13])) for row in rollup_rows(trades, unit_ms)]
            assert price_sums(table) == expected
        assert ("BTCUSDT", ms_time(t0 + 35_000), "123858.81000000") in price_sums("trade_candles_1s")
        downgraded = alembic(owner, "downgrade", "0003")
        assert downgraded.returncode == 0, downgraded.stderr
        assert "trades_symbol_trade_time_idx" in indexes(owner, "trades")
        with closing(psycopg2.connect(libpq_dsn(owner))) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM trade_candles_1s WHERE trade_count > 0")
            assert cursor.fetchone() == (4,)


def dump(database_url: str, table: str) -> list[tuple[object, ...]]:
    """Every row of `table` as text, in a fixed order: equal dumps are equal tables."""
    with closing(psycopg2.connect(libpq_dsn(database_url))) as connection, connection.cursor() as cursor:
        cursor.execute(f"SELECT t::text FROM {table} t ORDER BY 1")  # constant names of the test
        return list(cursor.fetchall())


def partitions_holding_rows(database_url: str, table: str) -> set[str]:
    with closing(psycopg2.connect(libpq_dsn(database_url))) as connection, connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT tableoid::regclass::text FROM {table}")  # constant names
        return {row[0] for row in cursor.fetchall()}


def fill_0004_layout(owner: str) -> None:
    """Rows in every time-series table as revision 0004 stores them, over days and months."""
    from tests.integration.api_helpers import TradeRow, ms_time, rollup_rows

    t0 = 1_764_460_800_000  # 2025-11-30T00:00:00Z: the trades span Nov 29 to Dec 2, two months
    trades = [
        TradeRow(
            symbol, trade_id, Decimal(f"{100 + trade_id}.{trade_id:03d}0"), Decimal("0.5"), t0 + offset, bool(i % 2)
        )
        for i, (symbol, trade_id, offset) in enumerate(
            (s, n, (n - 3) * 30_000_000 + 17) for s in ("BTCUSDT", "ETHUSDT") for n in range(1, 10)
        )
    ]
    with closing(psycopg2.connect(libpq_dsn(owner))) as connection, connection, connection.cursor() as cursor:
        for offset, t in enumerate(trades):
            time = ms_time(t.trade_time_ms)
            cursor.execute(
                "INSERT INTO trades (symbol, trade_id, price, quantity, trade_time, buyer_is_maker, event_time)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (t.symbol, t.trade_id, t.price, t.quantity, time, t.buyer_is_maker, time),
            )
            cursor.execute(
                "INSERT INTO agg_trades (symbol, agg_trade_id, price, quantity, first_trade_id, last_trade_id,"
                " trade_time, buyer_is_maker) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (t.symbol, t.trade_id, t.price, t.quantity, t.trade_id, t.trade_id, time, t.buyer_is_maker),
            )
            cursor.execute(
                "INSERT INTO book_tickers VALUES (%s, %s, %s, 1, %s, 2, %s)",
                (t.symbol, t.trade_id, t.price, t.price + 1, time),
            )
            cursor.execute(
                "INSERT INTO klines VALUES (%s, '1d', %s, %s, 1, 2, 0.5, 1.5, 10, 15, 3, 4, 6, 1, 3, true, NULL,"
                " 'rest', %s)",
                (t.symbol, time, time, time),
            )
            cursor.execute(
                "INSERT INTO dead_letters VALUES ('binance.raw', 0, %s, 'invalid_json', 'not JSON', NULL, %s)",
                (offset, time),
            )
        for table, unit_ms in (("trade_candles_1s", 1000), ("trade_candles_1m", 60_000)):
            for row in rollup_rows(trades, unit_ms):
                cursor.execute(f"INSERT INTO {table} VALUES ({', '.join(['%s'] * 14)})", row)  # constant names


def test_0005_moves_every_row_into_time_partitions_and_back(database: dict[str, str]) -> None:
    from schemas.partitions import PARTITIONED_TABLES

    owner = database["owner"]
    assert alembic(owner, "upgrade", "0004").returncode == 0
    fill_0004_layout(owner)
    before = {table.name: dump(owner, table.name) for table in PARTITIONED_TABLES}
    assert all(len(rows) == 18 for name, rows in before.items() if name != "trade_candles_1m")

    # Up to 0006 only: 0007 lays the rows out anew (its own test below).
    upgraded = alembic(owner, "upgrade", "0006")
    assert upgraded.returncode == 0, upgraded.stderr
    for table in PARTITIONED_TABLES:
        assert dump(owner, table.name) == before[table.name], table.name
    # Each row in the partition of its period, none waiting in DEFAULT.
    assert partitions_holding_rows(owner, "trades") == {f"trades_p202511{d}" for d in (29, 30)} | {
        f"trades_p202512{d:02d}" for d in (1, 2)
    }
    assert partitions_holding_rows(owner, "klines") == {"klines_p202511", "klines_p202512"}
    assert partitions_holding_rows(owner, "dead_letters") == {"dead_letters_p202511", "dead_letters_p202512"}
    with closing(psycopg2.connect(libpq_dsn(owner))) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT kind, symbol, first_id, last_id FROM stored_id_ranges ORDER BY 1, 2")
        assert cursor.fetchall() == [
            ("agg_trades", "BTCUSDT", 1, 9),
            ("agg_trades", "ETHUSDT", 1, 9),
            ("trades", "BTCUSDT", 1, 9),
            ("trades", "ETHUSDT", 1, 9),
        ]

    downgraded = alembic(owner, "downgrade", "0004")
    assert downgraded.returncode == 0, downgraded.stderr
    for table in PARTITIONED_TABLES:
        assert dump(owner, table.name) == before[table.name], table.name


def rows_by_name(database_url: str, table: str) -> list[str]:
    """Every row of `table` as JSON keyed by column name, without ingested_at, in a fixed order:
    equal whatever the columns' order. Numerics keep their digits, times their microseconds."""
    with closing(psycopg2.connect(libpq_dsn(database_url))) as connection, connection.cursor() as cursor:
        cursor.execute(f"SELECT (to_jsonb(t) - 'ingested_at')::text FROM {table} t ORDER BY 1")  # constant names
        return [row[0] for row in cursor.fetchall()]


def layout(database_url: str, table: str) -> dict[str, Any]:
    """The columns in order, and per partition its bounds, comment, and indexes with their
    definitions, constraint names and storage options."""
    with closing(psycopg2.connect(libpq_dsn(database_url))) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute"
            " WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            (table,),
        )
        columns = cursor.fetchall()
        cursor.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), obj_description(c.oid, 'pg_class')"
            " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(%s)"
            " ORDER BY 1",
            (table,),
        )
        partitions = cursor.fetchall()
        indexes = {}
        for relation in [table, *(name for name, _, _ in partitions)]:
            cursor.execute(
                "SELECT c.relname, pg_get_indexdef(c.oid), c.reloptions, k.conname FROM pg_index x"
                " JOIN pg_class c ON c.oid = x.indexrelid LEFT JOIN pg_constraint k ON k.conindid = c.oid"
                " WHERE x.indrelid = to_regclass(%s) ORDER BY 1",
                (relation,),
            )
            indexes[relation] = cursor.fetchall()
        return {"columns": columns, "partitions": partitions, "indexes": indexes}


def without_storage_options(shape: dict[str, Any]) -> dict[str, Any]:
    """The layout but for the indexes' fillfactor (in the definition's WITH and the options)."""
    return {
        **shape,
        "indexes": {
            relation: [
                (name, re.sub(r" WITH \(.*\)$", "", definition), None, constraint)
                for name, definition, _, constraint in v
            ]
            for relation, v in shape["indexes"].items()
        },
    }


def test_0007_lays_every_row_out_anew_without_losing_one_and_back(database: dict[str, str]) -> None:
    """Rows over days and months, one waiting in a DEFAULT partition, a compacted partition and a
    grant: after 0007 every row is there (by column name), in the partitions it was in, under the
    same index and constraint names, the columns in schemas/tables.py's order; when each symbol's
    trades were last stored moved to stored_id_ranges; and the downgrade brings back 0006 exactly."""
    from schemas.tables import metadata

    slimmed = ("trades", "agg_trades", "trade_candles_1s", "trade_candles_1m", "book_tickers", "klines")
    owner = database["owner"]
    assert alembic(owner, "upgrade", "0004").returncode == 0
    fill_0004_layout(owner)
    assert alembic(owner, "upgrade", "0006").returncode == 0
    with closing(psycopg2.connect(libpq_dsn(owner))) as connection, connection, connection.cursor() as cursor:
        # A row of a period without its partition (DEFAULT), stored later than the others.
        cursor.execute(
            "INSERT INTO trades (symbol, trade_id, price, quantity, trade_time, buyer_is_maker, event_time,"
            " ingested_at) VALUES ('ETHUSDT', 99, 1.10, 2, '2027-01-05T00:00:00.000001Z', true, NULL,"
            " '2027-01-05T00:00:01Z')"
        )
        cursor.execute("UPDATE trades SET ingested_at = trade_time + interval '3 ms' WHERE trade_id < 99")
        cursor.execute("UPDATE agg_trades SET ingested_at = trade_time + interval '5 ms'")
        cursor.execute("COMMENT ON TABLE trades_p20251130 IS 'indexes rebuilt after its period ended'")
        cursor.execute("GRANT SELECT ON trades, klines TO binance_api")
        cursor.execute(
            "SELECT kind, symbol, max(at) FROM (SELECT 'trades' AS kind, symbol, ingested_at AS at"
            " FROM trades UNION ALL SELECT 'agg_trades', symbol, ingested_at FROM agg_trades) s"
            " GROUP BY 1, 2 ORDER BY 1, 2"
        )
        newest_stored = cursor.fetchall()
    assert partitions_holding_rows(owner, "trades") >= {"trades_default"}
    before = {table: (rows_by_name(owner, table), layout(owner, table)) for table in slimmed}
    assert len(before["trades"][0]) == 19

    upgraded = alembic(owner, "upgrade", "0007")
    assert upgraded.returncode == 0, upgraded.stderr
    for table in slimmed:
        rows, shape = before[table]
        assert rows_by_name(owner, table) == rows, table
        after = layout(owner, table)
        assert [c[0] for c in after["columns"]] == [c.name for c in metadata.tables[table].columns], table
        assert after["partitions"] == shape["partitions"], table
        assert without_storage_options(after)["indexes"] == without_storage_options(shape)["indexes"], table
    # The compacted day's key is packed full, as maintenance/ rebuilds a closed day's now.
    packed = {name: options for name, _, options, _ in layout(owner, "trades")["indexes"]["trades_p20251130"]}
    assert packed == {"trades_p20251130_pkey": ["fillfactor=100"]}
    assert all(
        options is None
        for partition, indexes in layout(owner, "trades")["indexes"].items()
        if partition != "trades_p20251130"
        for _, _, options, _ in indexes
    )
    assert partitions_holding_rows(owner, "trades") == before_partitions(owner)
    with closing(psycopg2.connect(libpq_dsn(owner))) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT kind, symbol, updated_at FROM stored_id_ranges ORDER BY 1, 2")
        assert cursor.fetchall() == newest_stored
        cursor.execute("SELECT has_table_privilege('binance_api', 'trades', 'SELECT')")
        assert cursor.fetchone() == (True,)
    checked = alembic(owner, "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr

    downgraded = alembic(owner, "downgrade", "0006")
    assert downgraded.returncode == 0, downgraded.stderr
    for table in slimmed:
        rows, shape = before[table]
        assert rows_by_name(owner, table) == rows, table
        assert without_storage_options(layout(owner, table)) == without_storage_options(shape), table
    with closing(psycopg2.connect(libpq_dsn(owner))) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM trades WHERE ingested_at IS NOT NULL")
        assert cursor.fetchone() == (19,)
        cursor.execute(
            "SELECT count(*) FROM pg_attribute WHERE attrelid = 'stored_id_ranges'::regclass"
            " AND attname = 'updated_at' AND NOT attisdropped"
        )
        assert cursor.fetchone() == (0,)


def before_partitions(owner: str) -> set[str]:
    """The trades partitions fill_0004_layout's rows and the DEFAULT row are in."""
    return {f"trades_p202511{d}" for d in (29, 30)} | {f"trades_p202512{d:02d}" for d in (1, 2)} | {"trades_default"}
