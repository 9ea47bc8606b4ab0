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

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Bounds of accepted times: after the epoch (Binance has no earlier data, and its times are
# unsigned), and far enough below Python's year 9999 that interval arithmetic cannot overflow.
MAX_TIME = datetime(9000, 1, 1, tzinfo=UTC)
MAX_EPOCH_MS = int((MAX_TIME - EPOCH).total_seconds() * 1000)
MAX_INT64 = 2**63 - 1
# The last millisecond Python's datetime (and so a stored trade's time, as the consumer accepts
# it) can hold: a candle after a trade dated 9999-12-31 opens beyond it.
LAST_DATETIME_MS = (datetime.max.replace(tzinfo=UTC) - EPOCH) // timedelta(milliseconds=1)

# fullmatch, not match with $: "$" also matches before a trailing newline ("BTCUSDT\n").
_SYMBOL = re.compile(r"[A-Za-z0-9]{2,20}")
_EPOCH_MS = re.compile(r"[0-9]{1,16}")
# Eight digits read as ISO 8601's basic date (YYYYMMDD) and as epoch milliseconds alike: refused
# (epoch milliseconds of that length are 1970-01-01T02:46 to 1970-01-02T03:46, before any trade).
_EIGHT_DIGITS = re.compile(r"[0-9]{8}")


def to_ms(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1)


def from_ms(milliseconds: int) -> datetime:
    # Positional (days, seconds, microseconds, milliseconds): keyword parsing made this a third
    # slower, and a day of 1m candles calls it 2,880 times.
    return EPOCH + timedelta(0, 0, 0, milliseconds)


# The Gregorian calendar repeats every 400 years, which are 146,097 days.
_GREGORIAN_CYCLE_MS = 146_097 * 86_400_000


def time_after_ms(milliseconds: int) -> datetime | str:
    """from_ms, and past year 9999 (the close time of a candle opened on 9999-12-30) ISO 8601's
    expanded year, e.g. "+10000-01-01T23:59:59.999000Z", rather than a time that is not its own."""
    if milliseconds <= LAST_DATETIME_MS:
        return from_ms(milliseconds)
    earlier = from_ms(milliseconds - _GREGORIAN_CYCLE_MS)
    return f"+{earlier.year + 400:05d}{earlier:-%m-%dT%H:%M:%S.%f}Z"


def parse_timestamp(value: object) -> datetime:
    """ISO 8601 (no zone means UTC) or epoch milliseconds -> an aware UTC datetime."""
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value).strip()
        if _EIGHT_DIGITS.fullmatch(text):
            raise ValueError(
                f"ambiguous: {text} reads as an ISO 8601 basic date and as epoch milliseconds alike; write a"
                f" date as {text[:4]}-{text[4:6]}-{text[6:]} (epoch milliseconds of a trade have 13 digits)"
            )
        if _EPOCH_MS.fullmatch(text):
            milliseconds = int(text)
            if milliseconds >= MAX_EPOCH_MS:
                raise ValueError(f"epoch milliseconds must be below {MAX_EPOCH_MS} (year 9000)")
            return from_ms(milliseconds)
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                "not a time: expected ISO 8601 (e.g. 2025-07-03T08:30:36, UTC unless a zone is given)"
                " or epoch milliseconds (e.g. 1751531436000)"
            ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("time out of range") from None
    if not EPOCH <= moment < MAX_TIME:
        raise ValueError("time must be between 1970-01-01 and 9000-01-01 UTC")
    return moment


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
