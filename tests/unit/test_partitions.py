"""The partitioning rules (schemas/partitions.py): periods, names and the retention horizon."""

import itertools
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from maintenance.settings import MaintenanceSettings
from schemas.partitions import (
    PARTITIONED_TABLES,
    Period,
    next_period,
    partition_name,
    period_start,
    periods,
    retention_horizon,
)

moments = st.datetimes(
    min_value=datetime(1971, 1, 1),
    max_value=datetime(9998, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=45)), timezone(timedelta(hours=-11))]),
)
period_kinds = st.sampled_from(list(Period))


@given(moments, period_kinds)
def test_a_moment_lies_in_the_period_that_starts_before_it_and_ends_after(moment: datetime, period: Period) -> None:
    start = period_start(moment, period)
    assert start.tzinfo is UTC and start.hour == start.minute == start.second == start.microsecond == 0
    assert start <= moment < next_period(start, period)
    if period is Period.MONTH:
        assert start.day == 1


@given(moments, moments, period_kinds)
def test_partition_names_sort_as_their_periods(first: datetime, second: datetime, period: Period) -> None:
    table = next(t for t in PARTITIONED_TABLES if t.period is period)
    a, b = period_start(first, period), period_start(second, period)
    assert (partition_name(table, a) < partition_name(table, b)) == (a < b)


@given(moments, st.integers(min_value=0, max_value=40), period_kinds)
def test_periods_cover_the_span_without_gaps(first: datetime, days: int, period: Period) -> None:
    starts = periods(first, first + timedelta(days=days), period)
    assert starts[0] == period_start(first, period)
    assert all(next_period(a, period) == b for a, b in itertools.pairwise(starts))


@given(moments, st.integers(min_value=1, max_value=3650), period_kinds)
def test_the_horizon_keeps_at_least_the_retention(now: datetime, days: int, period: Period) -> None:
    horizon = retention_horizon(now, days, period)
    # Every period starting before the horizon has ended by now minus the retention: dropped whole.
    assert horizon <= now - timedelta(days=days)
    assert next_period(horizon, period) > now - timedelta(days=days)


def test_every_partitioned_table_has_a_retention_setting() -> None:
    settings = MaintenanceSettings()
    assert {table.name: settings.retention_days(table.name) for table in PARTITIONED_TABLES} == {
        "trades": 7,
        "agg_trades": 7,
        "trade_candles_1s": 7,
        "book_tickers": 7,
        "trade_candles_1m": 365,
        "klines": 365,
        "dead_letters": 30,
    }
