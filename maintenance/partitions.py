"""One maintenance pass over the partitioned tables (schemas/partitions.py): partitions created
ahead, rows waiting in a DEFAULT partition moved into their own, and partitions past retention
dropped whole.

Our own small job rather than pg_partman: the same Python runs in the local stack, in compose and
in the tests on a stock PostgreSQL (no extension to package into every image), and it handles the
DEFAULT partition's rows itself (pg_partman 4.7 leaves moving them to a manual
partition_data_proc call, and until then its maintenance cannot create the child they belong to:
PostgreSQL refuses a partition whose rows the default holds).

Every table is its own transaction under a transaction-scoped advisory lock, so two consumers
running the job at once (a scaled-out group) take turns instead of racing, and under a lock
timeout, so DDL waiting behind a long reader gives up and the next pass tries again.
"""

import logging
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg2
from psycopg2 import sql

from schemas.partitions import (
    PARTITIONED_TABLES,
    PartitionedTable,
    default_partition_name,
    next_period,
    partition_name,
    period_start,
    periods,
    retention_horizon,
)

log = logging.getLogger(__name__)


@dataclass
class PassReport:
    """What one pass did, per table: partitions created, rows moved out of DEFAULT, partitions dropped."""

    created: dict[str, list[str]] = field(default_factory=dict)
    moved_rows: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, list[str]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    compacted: list[str] = field(default_factory=list)


def existing_partitions(cursor: Any, table: PartitionedTable) -> set[str]:
    cursor.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(%s)",
        (table.name,),
    )
    return {row[0] for row in cursor.fetchall()}


def _attach(cursor: Any, table: PartitionedTable, start: datetime) -> int:
    """Creates the partition of the period from `start`, moving into it the rows of that period
    waiting in the DEFAULT partition (which would otherwise make the ATTACH fail: PostgreSQL
    refuses a partition whose rows the default already holds). Returns the rows moved.

    CREATE TABLE ... PARTITION OF would lock the parent table against every reader and writer;
    a plain table ATTACHed afterwards takes only a SHARE UPDATE EXCLUSIVE lock on the parent, so
    the consumer keeps writing other partitions meanwhile. The default partition is locked first
    (the ATTACH needs that lock anyway), so no row of the period can arrive between the move
    and the ATTACH."""
    name = sql.Identifier(partition_name(table, start))
    parent = sql.Identifier(table.name)
    default = sql.Identifier(default_partition_name(table))
    column = sql.Identifier(table.column)
    bounds = (start, next_period(start, table.period))
    cursor.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(default))
    cursor.execute(sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)").format(name, parent))
    # Named columns: a partition may lay its columns out in another order than its parent.
    columns = sql.SQL(", ").join(map(sql.Identifier, _columns(cursor, table)))
    cursor.execute(
        sql.SQL(
            "WITH moved AS (DELETE FROM {default} WHERE {column} >= %s AND {column} < %s RETURNING {columns})"
            " INSERT INTO {name} ({columns}) SELECT {columns} FROM moved"
        ).format(default=default, column=column, name=name, columns=columns),
        bounds,
    )
    moved: int = cursor.rowcount
    cursor.execute(
        sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM (%s) TO (%s)").format(parent, name), bounds
    )
    return moved


def _columns(cursor: Any, table: PartitionedTable) -> list[str]:
    cursor.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped"
        " ORDER BY attnum",
        (table.name,),
    )
    return [row[0] for row in cursor.fetchall()]


def _periods_in_default(cursor: Any, table: PartitionedTable) -> list[datetime]:
    # Truncated in UTC whatever the session's time zone: the periods are UTC days and months.
    cursor.execute(
        sql.SQL("SELECT DISTINCT date_trunc({unit}, {column}, 'UTC') FROM {default} ORDER BY 1").format(
            unit=sql.Literal(table.period.value),
            column=sql.Identifier(table.column),
            default=sql.Identifier(default_partition_name(table)),
        )
    )
    return [row[0] for row in cursor.fetchall()]


def _wanted_periods(table: PartitionedTable, now: datetime, retention_days: int, ahead_days: int) -> list[datetime]:
    """The periods from the oldest kept (retention) or the current one (keep forever) to `ahead_days` on."""
    first = retention_horizon(now, retention_days, table.period) if retention_days else period_start(now, table.period)
    return periods(first, now + timedelta(days=ahead_days), table.period)


def maintain_table(
    cursor: Any, table: PartitionedTable, now: datetime, retention_days: int, ahead_days: int, report: PassReport
) -> None:
    present = existing_partitions(cursor, table)
    wanted = set(_wanted_periods(table, now, retention_days, ahead_days)) | set(_periods_in_default(cursor, table))
    for start in sorted(wanted):
        if partition_name(table, start) not in present:
            moved = _attach(cursor, table, start)
            report.created.setdefault(table.name, []).append(partition_name(table, start))
            report.moved_rows[table.name] = report.moved_rows.get(table.name, 0) + moved
    if not retention_days:
        _record_horizon(cursor, table, None, None)
        return
    horizon = retention_horizon(now, retention_days, table.period)
    for name in sorted(existing_partitions(cursor, table)):
        if name != default_partition_name(table) and name < partition_name(table, horizon):
            # Dropping a partition: no DELETE, no dead rows, no VACUUM; the disk is free at commit.
            cursor.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
            report.dropped.setdefault(table.name, []).append(name)
    _record_horizon(cursor, table, horizon, retention_days)


def _record_horizon(cursor: Any, table: PartitionedTable, horizon: datetime | None, retention_days: int | None) -> None:
    cursor.execute(
        "INSERT INTO storage_horizons (table_name, kept_since, retention_days, updated_at) VALUES (%s, %s, %s, now())"
        " ON CONFLICT (table_name) DO UPDATE SET kept_since = excluded.kept_since,"
        " retention_days = excluded.retention_days, updated_at = now()",
        (table.name, horizon, retention_days),
    )


# A partition is rebuilt once its period has been over this long: late rows (a backfill) may still
# come, but the bulk of a period's inserts is done.
COMPACT_AFTER = timedelta(hours=1)
_COMPACTED = "indexes rebuilt after its period ended"
_COMPACT_LOCK = zlib.crc32(b"partition maintenance: compaction")


def compact_closed(connection: Any, table: PartitionedTable, now: datetime, report: PassReport) -> None:
    """Rebuilds the indexes of the partitions whose period is over, once each. Rows arrive for
    hundreds of symbols at once, so every symbol's end of the primary key takes inserts and B-tree
    pages split half full: a day's primary key is about twice the size of a freshly built one
    (docs/benchmarks.md). A closed period takes few writes more (a late backfill at most), so its
    indexes are set to fillfactor 100 first and the rebuild packs every leaf full (the default 90
    leaves room for inserts, which the live partition keeps). REINDEX CONCURRENTLY builds the new
    index beside the old one and takes no lock that stops reads or writes (nor does setting the
    fillfactor); it runs outside a transaction, so `connection` must be in autocommit mode. The
    partition's comment marks it done."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = to_regclass(%s) AND obj_description(c.oid, 'pg_class') IS DISTINCT FROM %s",
            (table.name, _COMPACTED),
        )
        names = sorted(row[0] for row in cursor.fetchall())
        for name in names:
            if name == default_partition_name(table):
                continue
            start = period_start(_parse_suffix(name.removeprefix(f"{table.name}_p"), table), table.period)
            if next_period(start, table.period) + COMPACT_AFTER > now:
                continue
            cursor.execute(
                "SELECT c.relname FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid"
                " WHERE x.indrelid = to_regclass(%s) ORDER BY 1",
                (name,),
            )
            for (index,) in cursor.fetchall():
                cursor.execute(sql.SQL("ALTER INDEX {} SET (fillfactor = 100)").format(sql.Identifier(index)))
            cursor.execute(sql.SQL("REINDEX TABLE CONCURRENTLY {}").format(sql.Identifier(name)))
            cursor.execute(sql.SQL("COMMENT ON TABLE {} IS %s").format(sql.Identifier(name)), (_COMPACTED,))
            report.compacted.append(name)


def _parse_suffix(suffix: str, table: PartitionedTable) -> datetime:
    return datetime.strptime(suffix, "%Y%m%d" if table.period.value == "day" else "%Y%m").replace(tzinfo=UTC)


def run_pass(
    connection: Any,
    now: datetime,
    retention_days: dict[str, int],
    ahead_days: int,
    lock_timeout_ms: int,
    compact: bool = True,
) -> PassReport:
    """One pass over every partitioned table, each in its own transaction. A table whose locks
    are not had within the timeout, or whose turn another process holds, is left to the next pass.
    Then, with `compact`, the indexes of partitions whose period is over are rebuilt (once each)."""
    report = PassReport()
    for table in PARTITIONED_TABLES:
        try:
            with connection, connection.cursor() as cursor:
                cursor.execute("SELECT set_config('lock_timeout', %s, true)", (f"{lock_timeout_ms}ms",))
                cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", (_lock_key(table),))
                if not cursor.fetchone()[0]:
                    report.skipped.append(table.name)
                    continue
                maintain_table(cursor, table, now, retention_days[table.name], ahead_days, report)
        except psycopg2.errors.LockNotAvailable:
            report.skipped.append(table.name)
            log.warning("maintenance waited too long for a lock", extra={"table": table.name})
    if compact:
        _compact_all(connection, now, report)
    return report


def _compact_all(connection: Any, now: datetime, report: PassReport) -> None:
    # A session advisory lock: one process rebuilds at a time, the others leave it to it.
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", (_COMPACT_LOCK,))
            if not cursor.fetchone()[0]:
                return
        try:
            for table in PARTITIONED_TABLES:
                compact_closed(connection, table, now, report)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", (_COMPACT_LOCK,))
    finally:
        connection.autocommit = False


def _lock_key(table: PartitionedTable) -> int:
    # A stable 32-bit key per table, the same in every process (Python's hash() is salted).
    return zlib.crc32(f"partition maintenance {table.name}".encode())
