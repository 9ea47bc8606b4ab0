"""Input parsing of the /v1 API: times, symbols, windows; and Binance's parameter rules."""

from datetime import UTC, datetime

import pytest

from api.binance_params import BinanceParams
from api.errors import BinanceError
from api.intervals import Interval
from api.params import parse_symbol, parse_timestamp, parse_windows


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-07-03T08:30:36", datetime(2025, 7, 3, 8, 30, 36, tzinfo=UTC)),  # no zone: UTC
        ("2025-07-03T08:30:36Z", datetime(2025, 7, 3, 8, 30, 36, tzinfo=UTC)),
        ("2025-07-03T10:30:36.250+02:00", datetime(2025, 7, 3, 8, 30, 36, 250_000, tzinfo=UTC)),
        ("2025-07-03", datetime(2025, 7, 3, tzinfo=UTC)),
        ("2025-07-03T08:30", datetime(2025, 7, 3, 8, 30, tzinfo=UTC)),
        ("1751531436000", datetime(2025, 7, 3, 8, 30, 36, tzinfo=UTC)),  # epoch milliseconds
        ("0", datetime(1970, 1, 1, tzinfo=UTC)),
    ],
)
def test_times_are_iso_8601_or_epoch_milliseconds(text: str, expected: datetime) -> None:
    assert parse_timestamp(text) == expected


@pytest.mark.parametrize(
    "text", ["yesterday", "", "-1", "1.5", "2025-13-01", "1969-12-31T23:59:59Z", "9999-12-31T23:59:59", "9" * 16]
)
def test_bad_times_say_why(text: str) -> None:
    with pytest.raises(ValueError, match=r"time|milliseconds"):
        parse_timestamp(text)


def test_symbols_are_case_insensitive_and_windows_once_each() -> None:
    assert parse_symbol("btcUSDT") == "BTCUSDT"
    for bad in ("BTC-USDT", "B", "A" * 21, "BTC USDT", "ÄBC"):
        with pytest.raises(ValueError, match="letters and digits"):
            parse_symbol(bad)
    assert parse_windows("10,20") == [10, 20]
    assert parse_windows(["5"]) == [5]
    assert parse_windows("10,20,10") == [10, 20]
    for bad in ("", "10,", "1", "1,2,3,4,5,6", "x", "10000"):
        with pytest.raises(ValueError):
            parse_windows(bad)


def params(**values: str | list[str]) -> BinanceParams:
    return BinanceParams({name: value if isinstance(value, list) else [value] for name, value in values.items()})


def binance_code(action: object) -> int:
    with pytest.raises(BinanceError) as error:
        action() if callable(action) else None
    return error.value.code


def test_binance_parameters_give_binance_error_codes() -> None:
    assert params(symbol="btcusdt").symbol() == "BTCUSDT"
    assert binance_code(lambda: params().symbol()) == -1102
    assert binance_code(lambda: params(symbol="BTC USDT").symbol()) == -1100
    assert binance_code(lambda: params(symbol=["A", "B"]).symbol()) == -1101
    assert params(interval="1M").interval() is Interval.MONTH1
    assert binance_code(lambda: params(interval="2m").interval()) == -1120
    assert params().limit() == 500
    assert binance_code(lambda: params(limit="1001").limit()) == -1130
    assert binance_code(lambda: params(limit="0").limit()) == -1130
    assert binance_code(lambda: params(limit="-5").limit()) == -1100
    assert binance_code(lambda: params(startTime="99999999999999999999").start_time()) == -1100
    # Microseconds are recognised by size; times beyond year 9000 are clamped, not errors.
    assert params(startTime="1751531436000001").start_time() == 1751531436001
    assert params(endTime="1751531436000999").end_time() == 1751531436000
    assert params(symbols='["BTCUSDT","ethusdt"]').symbols() == ["BTCUSDT", "ETHUSDT"]
    assert binance_code(lambda: params(symbols='["BTCUSDT","BTCUSDT"]').symbols()) == -1151
    assert binance_code(lambda: params(symbols="BTCUSDT").symbols()) == -1100
    assert params(timeZone="5:45").time_zone_offset_ms() == (5 * 60 + 45) * 60_000
    assert params(timeZone="-12").time_zone_offset_ms() == -12 * 3_600_000
    for bad in ("15", "-13", "1:60", "x"):
        assert binance_code(lambda bad=bad: params(timeZone=bad).time_zone_offset_ms()) == -1130
