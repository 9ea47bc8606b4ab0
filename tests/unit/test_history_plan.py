"""The history import's pure parts: which file or REST window holds each part of a period, the
archive's layout, the state file's periods, and the fake archive's paths."""

import calendar

import pytest

from fake_binance.archive import parse_path
from producer.history.plan import DAY_MS, plan_stream, unplanned
from producer.history.state import merge, subtract


def ms(year: int, month: int, day: int, hour: int = 0) -> int:
    return calendar.timegm((year, month, day, hour, 0, 0)) * 1000


NOW = ms(2026, 12, 2, 1)


def test_a_day_of_the_past_is_its_daily_file() -> None:
    [unit] = plan_stream("ADABNB", "kline_5m", ms(2021, 5, 22), ms(2021, 5, 23), NOW, "auto")
    assert (unit.source, unit.period, unit.start_ms, unit.end_ms) == (
        "archive",
        "daily",
        ms(2021, 5, 22),
        ms(2021, 5, 23),
    )
    assert unit.path == "data/spot/daily/klines/ADABNB/5m/ADABNB-5m-2021-05-22.zip"
    assert unit.whole_file and not unit.microseconds


def test_whole_months_are_monthly_files_and_the_rest_days() -> None:
    units = plan_stream("BTCUSDT", "trade", ms(2021, 4, 30), ms(2021, 6, 2), NOW, "auto")
    assert [u.file_name for u in units] == [
        "BTCUSDT-trades-2021-04-30",
        "BTCUSDT-trades-2021-05",
        "BTCUSDT-trades-2021-06-01",
    ]
    assert units[1].path == "data/spot/monthly/trades/BTCUSDT/BTCUSDT-trades-2021-05.zip"
    assert not unplanned(units, ms(2021, 4, 30), ms(2021, 6, 2))


def test_a_month_of_monthly_klines_is_named_1mo() -> None:
    [unit] = plan_stream("BTCUSDT", "kline_1M", ms(2025, 1, 1), ms(2025, 2, 1), NOW, "auto")
    assert unit.path == "data/spot/monthly/klines/BTCUSDT/1mo/BTCUSDT-1mo-2025-01.zip"
    assert unit.microseconds  # spot files from 2025-01-01 on


def test_today_goes_to_rest_under_auto_and_is_left_out_under_archive() -> None:
    start, end = ms(2026, 12, 1, 12), NOW
    auto = plan_stream("BTCUSDT", "aggTrade", start, end, NOW, "auto")
    assert [(u.source, u.start_ms, u.end_ms) for u in auto] == [
        ("archive", start, ms(2026, 12, 2)),
        ("rest", ms(2026, 12, 2), end),
    ]
    assert not auto[0].whole_file  # half a day: rows outside the period are not published
    archive_only = plan_stream("BTCUSDT", "aggTrade", start, end, NOW, "archive")
    assert unplanned(archive_only, start, end) == [(ms(2026, 12, 2), end)]


def test_rest_source_is_one_window() -> None:
    [unit] = plan_stream("BTCUSDT", "trade", ms(2021, 5, 22), ms(2021, 5, 24), NOW, "rest")
    assert (unit.source, unit.start_ms, unit.end_ms) == ("rest", ms(2021, 5, 22), ms(2021, 5, 24))


def test_weekly_klines_outside_whole_months_come_from_rest() -> None:
    units = plan_stream("BTCUSDT", "kline_1w", ms(2021, 5, 3), ms(2021, 7, 1), NOW, "auto")
    assert [u.source for u in units] == ["rest"]


@pytest.mark.parametrize(
    ("periods", "merged"),
    [
        ([(5, 10), (0, 5)], [(0, 10)]),
        ([(0, 3), (5, 8), (2, 6)], [(0, 8)]),
        ([(0, 1), (2, 3)], [(0, 1), (2, 3)]),
    ],
)
def test_delivered_periods_merge(periods: list[tuple[int, int]], merged: list[tuple[int, int]]) -> None:
    assert merge(periods) == merged


def test_what_is_left_of_a_period_after_what_was_delivered() -> None:
    assert subtract(0, 100, [(10, 20), (50, 60)]) == [(0, 10), (20, 50), (60, 100)]
    assert subtract(0, 100, [(0, 100)]) == []
    assert subtract(30, 40, [(0, 35)]) == [(35, 40)]


@pytest.mark.parametrize(
    "path",
    [
        "/data/spot/daily/trades/BTCUSDT/BTCUSDT-trades-2021-05-22.zip",
        "/data/spot/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2021-05-22.zip.CHECKSUM",
        "/data/spot/daily/klines/ADABNB/5m/ADABNB-5m-2021-05-22.zip",
        "/data/spot/monthly/klines/ADABNB/1mo/ADABNB-1mo-2021-05.zip",
        "/data/spot/monthly/trades/BTCUSDT/BTCUSDT-trades-2021-05.zip",
    ],
)
def test_the_fake_archive_knows_the_importers_paths(path: str) -> None:
    parsed = parse_path(path)
    assert parsed is not None
    file, checksum = parsed
    assert checksum == path.endswith(".CHECKSUM")
    assert file.end_ms - file.start_ms in (DAY_MS, 31 * DAY_MS)


@pytest.mark.parametrize(
    "path",
    [
        "/data/spot/daily/trades/BTCUSDT/ETHUSDT-trades-2021-05-22.zip",  # another symbol's name
        "/data/spot/daily/klines/BTCUSDT/5m/BTCUSDT-1m-2021-05-22.zip",  # another interval's name
        "/data/spot/daily/klines/BTCUSDT/1M/BTCUSDT-1M-2021-05-22.zip",  # months are 1mo, and monthly
        "/data/spot/daily/trades/BTCUSDT/BTCUSDT-trades-2021-02-30.zip",  # no such day
        "/data/spot/monthly/trades/BTCUSDT/BTCUSDT-trades-2021-13.zip",
        "/data/futures/um/daily/trades/BTCUSDT/BTCUSDT-trades-2021-05-22.zip",
    ],
)
def test_the_fake_archive_has_no_other_paths(path: str) -> None:
    assert parse_path(path) is None
