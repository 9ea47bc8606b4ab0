"""How the time-series tables are partitioned: one home for the tables, their periods and the
partition names. Pure: no I/O (maintenance/ applies it, the migration and the tests read it).

Each table is partitioned by RANGE of one timestamptz column into periods of a day or a month (UTC),
plus a DEFAULT partition, so that a row of a period nobody created a partition for (an old
backfill, a clock far off) never fails its batch: it waits in the DEFAULT partition until the
maintenance job moves it into its own partition.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum


class Period(StrEnum):
    DAY = "day"
    MONTH = "month"


@dataclass(frozen=True)
class PartitionedTable:
    name: str
    column: str
    period: Period


# Per-table period by volume: a partition is what retention drops in one piece, so the busy tables
# (one row per trade, aggregate trade, stored book ticker or traded second) are daily: at the
# whole market's ~1,000 trades/s a day of trades is a few GB, and retention is counted in days.
# Klines and the 1-minute rollup hold a row per symbol-minute at most and are kept for months:
# daily partitions would mean hundreds of tables (and a history import of years of 1d klines,
# thousands), so monthly. Dead letters are rare: monthly.
PARTITIONED_TABLES = (
    PartitionedTable("trades", "trade_time", Period.DAY),
    PartitionedTable("agg_trades", "trade_time", Period.DAY),
    PartitionedTable("trade_candles_1s", "open_time", Period.DAY),
    PartitionedTable("book_tickers", "received_at", Period.DAY),
    PartitionedTable("trade_candles_1m", "open_time", Period.MONTH),
    PartitionedTable("klines", "open_time", Period.MONTH),
    PartitionedTable("dead_letters", "recorded_at", Period.MONTH),
)
BY_NAME = {table.name: table for table in PARTITIONED_TABLES}


def period_start(moment: datetime, period: Period) -> datetime:
    """The start (UTC) of the period holding `moment`."""
    moment = moment.astimezone(UTC)
    day = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    return day if period is Period.DAY else day.replace(day=1)


def next_period(start: datetime, period: Period) -> datetime:
    if period is Period.DAY:
        return start + timedelta(days=1)
    return start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)


def periods(first: datetime, last: datetime, period: Period) -> list[datetime]:
    """The starts of every period from the one holding `first` to the one holding `last`."""
    start, end = period_start(first, period), period_start(last, period)
    starts = []
    while start <= end:
        starts.append(start)
        start = next_period(start, period)
    return starts


def partition_name(table: PartitionedTable, start: datetime) -> str:
    """trades_p20261202 for a day, klines_p202612 for a month: sorts by time, names its period."""
    suffix = start.strftime("%Y%m%d" if table.period is Period.DAY else "%Y%m")
    return f"{table.name}_p{suffix}"


def default_partition_name(table: PartitionedTable) -> str:
    return f"{table.name}_default"


def retention_horizon(now: datetime, retention_days: int, period: Period) -> datetime:
    """The start of the oldest period kept: every period that ends at or before `now` minus the
    retention is dropped whole, so at least `retention_days` of rows are always kept."""
    return period_start(now - timedelta(days=retention_days), period)
