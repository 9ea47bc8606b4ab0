"""Query parameters of the /v1 API: parsing (pure) and the annotated types routes declare.

Every parse error is a `ValueError` whose message says why; FastAPI turns it into a 422 whose
body names the parameter (api/errors.py).
"""

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Query
from pydantic import AfterValidator, BeforeValidator, WithJsonSchema

from api.errors import ParameterError
from schemas.times import EPOCH, MAX_EPOCH_MS, MAX_TIME, from_ms, parse_timestamp, to_ms

__all__ = ["EPOCH", "MAX_EPOCH_MS", "MAX_TIME", "from_ms", "parse_timestamp", "to_ms"]

MAX_INT64 = 2**63 - 1
# The last millisecond Python's datetime (and so a stored trade's time, as the consumer accepts
# it) can hold: a candle after a trade dated 9999-12-31 opens beyond it.
LAST_DATETIME_MS = (datetime.max.replace(tzinfo=UTC) - EPOCH) // timedelta(milliseconds=1)

# fullmatch, not match with $: "$" also matches before a trailing newline ("BTCUSDT\n").
_SYMBOL = re.compile(r"[A-Za-z0-9]{2,20}")


# The Gregorian calendar repeats every 400 years, which are 146,097 days.
_GREGORIAN_CYCLE_MS = 146_097 * 86_400_000


def time_after_ms(milliseconds: int) -> datetime | str:
    """from_ms, and past year 9999 (the close time of a candle opened on 9999-12-30) ISO 8601's
    expanded year, e.g. "+10000-01-01T23:59:59.999000Z", rather than a time that is not its own."""
    if milliseconds <= LAST_DATETIME_MS:
        return from_ms(milliseconds)
    earlier = from_ms(milliseconds - _GREGORIAN_CYCLE_MS)
    return f"+{earlier.year + 400:05d}{earlier:-%m-%dT%H:%M:%S.%f}Z"


def parse_symbol(value: object) -> str:
    text = str(value)
    if not _SYMBOL.fullmatch(text):
        raise ValueError("a Binance symbol is 2 to 20 letters and digits, e.g. BTCUSDT")
    return text.upper()


def parse_windows(value: object) -> list[int]:
    """Distinct window lengths of a moving average, from "10,20"."""
    # FastAPI hands a list-typed query parameter over as the list of its occurrences.
    if isinstance(value, list):
        if len(value) != 1:
            raise ValueError("give the windows once, comma-separated, e.g. 10,20")
        value = value[0]
    parts = [part.strip() for part in str(value).split(",")]
    if not parts or len(parts) > 5 or not all(part.isdigit() and len(part) <= 4 for part in parts):
        raise ValueError("one to five comma-separated whole numbers, e.g. 10,20")
    windows = [int(part) for part in parts]
    if any(not 2 <= window <= 1000 for window in windows):
        raise ValueError("each window must be between 2 and 1000")
    # A window given twice is the same average: asked once.
    return list(dict.fromkeys(windows))


# The accepted times as OpenAPI can state them: ISO 8601 from year 1970 to 8999, or epoch
# milliseconds below year 9000 but for eight digits (ambiguous with a basic date, refused).
_TIME_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "format": "date-time", "pattern": "^(19[7-9][0-9]|[2-8][0-9]{3})-"},
        {"type": "integer", "minimum": 0, "maximum": 9_999_999},
        {"type": "integer", "minimum": 100_000_000, "maximum": MAX_EPOCH_MS - 1},
    ],
}
_WINDOW = "(1000|[1-9][0-9]{1,2}|[2-9])"

TimeValue = Annotated[datetime, BeforeValidator(parse_timestamp), WithJsonSchema(_TIME_SCHEMA)]
SymbolValue = Annotated[
    str,
    AfterValidator(parse_symbol),
    WithJsonSchema({"type": "string", "pattern": "^[A-Za-z0-9]{2,20}$", "examples": ["BTCUSDT"]}),
]
WindowsValue = Annotated[
    list[int],
    BeforeValidator(parse_windows),
    WithJsonSchema({"type": "string", "pattern": f"^{_WINDOW}(,{_WINDOW}){{0,4}}$", "examples": ["10,20"]}),
]

TIME_HELP = "ISO 8601 (no zone means UTC) or epoch milliseconds"

Symbol = Annotated[SymbolValue, Query(description="Binance symbol, case-insensitive, e.g. BTCUSDT")]
OptionalSymbol = Annotated[
    SymbolValue | None,
    Query(description="Binance symbol, case-insensitive, e.g. BTCUSDT. Omit it for every symbol."),
]
Start = Annotated[TimeValue, Query(description=f"inclusive start: {TIME_HELP}")]
End = Annotated[TimeValue, Query(description=f"exclusive end: {TIME_HELP}")]
OptionalStart = Annotated[TimeValue | None, Query(description=f"inclusive start: {TIME_HELP}")]
OptionalEnd = Annotated[TimeValue | None, Query(description=f"exclusive end: {TIME_HELP}")]
Windows = Annotated[WindowsValue, Query(description="moving average lengths in candles, comma-separated")]


def check_range(start: datetime, end: datetime, max_span: timedelta | None = None) -> None:
    """End after start, and the span within the endpoint's limit; a ParameterError names `end`."""
    if end <= start:
        raise ParameterError("end", "must be after start")
    if max_span is not None and end - start > max_span:
        raise ParameterError("end", f"range too large: at most {_span_text(max_span)} from start in one request")


def _span_text(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds % 86400 == 0:
        return f"{seconds // 86400} days"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} hours"
    return f"{seconds} seconds"
