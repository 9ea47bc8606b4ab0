"""Binance's kline boundaries (api/intervals.py), against the fake exchange's separate
implementation and against dates worked out by hand."""

import random
from datetime import UTC, datetime

import pytest

from api import intervals
from api.intervals import Interval
from fake_binance import klines as reference
from schemas.kline_intervals import FIXED_INTERVAL_MS, KLINE_INTERVALS


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize("interval", list(Interval))
@pytest.mark.parametrize("offset_ms", [0, 8 * 3_600_000, -(3 * 60 + 30) * 60_000, (5 * 60 + 45) * 60_000])
def test_boundaries_agree_with_the_fake_exchange(interval: Interval, offset_ms: int) -> None:
    rng = random.Random(f"{interval}{offset_ms}")
    for _ in range(300):
        time_ms = rng.randrange(ms("2017-01-01T00:00:00"), ms("2031-01-01T00:00:00"))
        opened = intervals.open_time(interval, time_ms, offset_ms)
        assert opened == reference.open_time(interval.value, time_ms, offset_ms)
        assert opened <= time_ms <= intervals.close_time(interval, opened, offset_ms)
        assert intervals.close_time(interval, opened, offset_ms) == reference.close_time(
            interval.value, opened, offset_ms
        )
        assert intervals.previous_open_time(interval, opened, offset_ms) == reference.previous_open_time(
            interval.value, opened, offset_ms
        )
    # The batch form, as assemble() uses it, over consecutive klines (a month's lengths vary).
    opens = [intervals.open_time(interval, ms("2024-01-15T12:34:56.789"), offset_ms)]
    for _ in range(40):
        opens.append(intervals.next_open_time(interval, opens[-1], offset_ms))
    assert intervals.close_times(interval, opens, offset_ms) == [
        reference.close_time(interval.value, opened, offset_ms) for opened in opens
    ]


def test_weeks_open_on_monday_and_months_on_the_first() -> None:
    assert intervals.open_time(Interval.W1, ms("2026-01-04T23:59:59.999")) == ms("2025-12-29T00:00:00")
    assert intervals.open_time(Interval.W1, ms("2026-01-05T00:00:00")) == ms("2026-01-05T00:00:00")
    assert intervals.open_time(Interval.MONTH1, ms("2024-02-29T12:00:00")) == ms("2024-02-01T00:00:00")
    assert intervals.close_time(Interval.MONTH1, ms("2024-02-01T00:00:00")) == ms("2024-02-29T23:59:59.999")
    assert intervals.next_open_time(Interval.MONTH1, ms("2025-12-01T00:00:00")) == ms("2026-01-01T00:00:00")
    # 3-day klines count from the epoch: 1970-01-01, 01-04, ...
    assert intervals.open_time(Interval.D3, ms("1970-01-06T10:00:00")) == ms("1970-01-04T00:00:00")
    # UTC+8: a day opens at 16:00 UTC the day before.
    assert intervals.open_time(Interval.D1, ms("2025-07-03T15:00:00"), 8 * 3_600_000) == ms("2025-07-02T16:00:00")


def test_kline_opens_follow_binance_selection() -> None:
    first, last = ms("2025-07-03T08:30:10"), ms("2025-07-03T08:40:05")
    minute = Interval.M1
    # No range: the newest `limit`, ending with the kline of the last trade.
    assert intervals.kline_opens(minute, first, last, None, None, 3) == [
        ms("2025-07-03T08:38:00"),
        ms("2025-07-03T08:39:00"),
        ms("2025-07-03T08:40:00"),
    ]
    # A start inside a kline selects from the next one (open time >= startTime).
    assert intervals.kline_opens(minute, first, last, ms("2025-07-03T08:31:30"), None, 2) == [
        ms("2025-07-03T08:32:00"),
        ms("2025-07-03T08:33:00"),
    ]
    # startTime=0 (python-binance's probe): the kline of the first trade.
    assert intervals.kline_opens(minute, first, last, 0, None, 1) == [ms("2025-07-03T08:30:00")]
    # An end inside a kline includes it; before the first trade there is nothing.
    assert intervals.kline_opens(minute, first, last, None, ms("2025-07-03T08:31:00.001"), 5) == [
        ms("2025-07-03T08:30:00"),
        ms("2025-07-03T08:31:00"),
    ]
    assert intervals.kline_opens(minute, first, last, None, ms("2025-07-03T08:29:59"), 5) == []
    assert intervals.kline_opens(minute, first, last, ms("2025-07-03T09:00:00"), None, 5) == []
    assert intervals.earlier_opens(Interval.MONTH1, ms("2026-01-01T00:00:00"), 2) == [
        ms("2025-11-01T00:00:00"),
        ms("2025-12-01T00:00:00"),
    ]


def test_the_api_names_the_intervals_the_consumer_stores() -> None:
    # Interval is FastAPI's parameter type; the list itself lives in schemas/kline_intervals.py.
    assert {interval.value for interval in Interval} == KLINE_INTERVALS
    assert {interval.value: ms for interval, ms in intervals.FIXED_MS.items()} == FIXED_INTERVAL_MS
