"""Query parameters of the Binance-compatible /api/v3 routes, checked Binance's way.

Binance answers a bad parameter with its own code and message (errors.md), and clients such as
python-binance and ccxt decide what went wrong from them, so these are parsed by hand rather
than by FastAPI's validation. Pure: works on the query string's values.
"""

import json
import re
from collections.abc import Mapping, Sequence

from api.errors import BinanceError
from api.intervals import Interval
from api.params import MAX_EPOCH_MS, MAX_INT64

_SYMBOL = re.compile(r"^[A-Za-z0-9-_.]{1,20}$")
_SYMBOL_RANGE = "^[A-Z0-9-_.]{1,20}$"
_SYMBOLS = re.compile(r'^\[("[A-Za-z0-9-_.]{1,20}"(,"[A-Za-z0-9-_.]{1,20}")*)?\]$')
_SYMBOLS_RANGE = '^\\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\\]$'
_UNSIGNED = re.compile(r"^[0-9]{1,20}$")
_UNSIGNED_RANGE = "^[0-9]{1,20}$"
_TIME_ZONE = re.compile(r"^([+-]?)([0-9]{1,2})(?::([0-9]{2}))?$")
# Binance accepts times in microseconds too; they are 1000 times larger than any time in ms.
_MICROSECONDS_FROM = 10**14
MAX_SYMBOLS = 100


def mandatory(name: str) -> BinanceError:
    return BinanceError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def illegal(name: str, legal_range: str) -> BinanceError:
    return BinanceError(-1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal_range}'.")


def not_valid(name: str) -> BinanceError:
    return BinanceError(-1130, f"Data sent for parameter '{name}' is not valid.")


def invalid_symbol() -> BinanceError:
    return BinanceError(-1121, "Invalid symbol.")


def bad_combination() -> BinanceError:
    return BinanceError(-1128, "Combination of optional parameters invalid.")


class BinanceParams:
    """The query string, read with Binance's rules. Symbols are upper-cased (this service takes
    symbols case-insensitively everywhere; Binance itself would reject lower case)."""

    def __init__(self, query: Mapping[str, Sequence[str]]) -> None:
        self._query = query

    def text(self, name: str) -> str | None:
        values = self._query.get(name, ())
        if len(values) > 1:
            raise BinanceError(-1101, "Duplicate values for a parameter detected.")
        return values[0] if values else None

    def symbol(self, required: bool = True) -> str | None:
        value = self.text("symbol")
        if not value:
            if required:
                raise mandatory("symbol")
            return None
        if not _SYMBOL.fullmatch(value):
            raise illegal("symbol", _SYMBOL_RANGE)
        return value.upper()

    def symbols(self) -> list[str] | None:
        value = self.text("symbols")
        if not value:
            return None
        if not _SYMBOLS.fullmatch(value):
            raise illegal("symbols", _SYMBOLS_RANGE)
        names = [str(name).upper() for name in json.loads(value)]
        if len(set(names)) != len(names):
            raise BinanceError(-1151, "Symbol is present multiple times in the list.")
        if len(names) > MAX_SYMBOLS:
            raise not_valid("symbols")
        return names

    def unsigned(self, name: str) -> int | None:
        value = self.text(name)
        if value is None or value == "":
            return None
        if not _UNSIGNED.fullmatch(value) or int(value) > MAX_INT64:
            raise illegal(name, _UNSIGNED_RANGE)
        return int(value)

    def limit(self, default: int = 500, maximum: int = 1000) -> int:
        value = self.unsigned("limit")
        if value is None:
            return default
        if not 1 <= value <= maximum:
            raise not_valid("limit")
        return value

    def start_time(self) -> int | None:
        """Inclusive start in ms (from microseconds: the first whole ms at or after it)."""
        value = self.unsigned("startTime")
        if value is None:
            return None
        milliseconds = -(-value // 1000) if value >= _MICROSECONDS_FROM else value
        return min(milliseconds, MAX_EPOCH_MS - 1)

    def end_time(self) -> int | None:
        """Inclusive end in ms."""
        value = self.unsigned("endTime")
        if value is None:
            return None
        milliseconds = value // 1000 if value >= _MICROSECONDS_FROM else value
        return min(milliseconds, MAX_EPOCH_MS - 1)

    def interval(self) -> Interval:
        value = self.text("interval")
        if not value:
            raise mandatory("interval")
        try:
            return Interval(value)
        except ValueError:
            raise BinanceError(-1120, "Invalid interval.") from None

    def time_zone_offset_ms(self) -> int:
        """Binance's timeZone: hours or hours:minutes, from -12:00 to +14:00 inclusive."""
        value = self.text("timeZone")
        if value is None or value == "":
            return 0
        match = _TIME_ZONE.fullmatch(value)
        if match is None:
            raise not_valid("timeZone")
        sign = -1 if match[1] == "-" else 1
        hours, minutes = int(match[2]), int(match[3] or 0)
        offset_minutes = sign * (hours * 60 + minutes)
        if minutes >= 60 or not -12 * 60 <= offset_minutes <= 14 * 60:
            raise not_valid("timeZone")
        return offset_minutes * 60_000
