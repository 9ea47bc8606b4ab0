"""Typed models of the raw Binance payloads on binance.raw, decoded and validated by msgspec.

These are the contract the consumer parses against; the JSON Schema files in schemas/json/ describe
the same shapes for other readers (a test checks the two agree on real and fake frames).
Prices and quantities stay decimal strings, checked against a strict pattern, from the wire to
PostgreSQL NUMERIC: exact, and never a float. Times are integers since the Unix epoch (UTC), in
milliseconds, or microseconds when the time_unit header says MICROSECOND.
"""

from pathlib import Path
from typing import Annotated

import msgspec

JSON_SCHEMA_DIR = Path(__file__).parent / "json"

# Binance sends plain decimal strings: no sign, exponent, NaN or Infinity. \Z, not $: msgspec
# matches with Python's re, where $ also matches before a final newline, and a "1.5\n" let through
# would break the COPY of its whole batch, again on every retry.
# The bare patterns are shared with the consumer's fast path for trade frames (consumer/trade_lines.py).
DECIMAL_TEXT_PATTERN = r"[0-9]{1,40}(?:\.[0-9]{1,30})?"
SYMBOL_PATTERN = r"[A-Z0-9]{2,20}"
DecimalText = Annotated[str, msgspec.Meta(pattern=rf"^{DECIMAL_TEXT_PATTERN}\Z")]
Symbol = Annotated[str, msgspec.Meta(pattern=rf"^{SYMBOL_PATTERN}\Z")]
# Ids must fit PostgreSQL bigint: one out-of-range value would fail a whole batch's COPY.
Id = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
# Kline first/last trade ids are -1 when the kline has no trades.
OptionalId = Annotated[int, msgspec.Meta(ge=-1, le=2**63 - 1)]
# Epoch time in ms or us; the tighter bound of the unit in use is checked when it is known.
EpochTime = Annotated[int, msgspec.Meta(ge=0, le=253_402_300_799_999_999)]
MAX_TIME_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the end of timestamptz's calendar


class Envelope(msgspec.Struct, frozen=True):
    """A combined-stream frame: the payload, wrapped with the name of its stream."""

    stream: str
    data: msgspec.Raw


# A field's raw JSON, or empty when the field is absent (msgspec.Raw takes no None: null is JSON too).
ABSENT = msgspec.Raw()


class KlineProbe(msgspec.Struct, frozen=True):
    i: str | None = None


class PayloadProbe(msgspec.Struct, frozen=True):
    """What names a frame that is not laid out as Binance sends it: a combined-stream envelope in
    another key order or spacing (`stream`, `data`), or a bare payload's own fields (its event type,
    symbol and kline interval; a bookTicker's u,s,b,B,a,A). Anything else is skipped unread."""

    stream: str | None = None
    data: msgspec.Raw = ABSENT
    e: str | None = None
    s: str | None = None
    k: KlineProbe | None = None
    u: msgspec.Raw = ABSENT
    b: msgspec.Raw = ABSENT
    B: msgspec.Raw = ABSENT
    a: msgspec.Raw = ABSENT
    A: msgspec.Raw = ABSENT


class TradeEvent(msgspec.Struct, frozen=True):
    """`<symbol>@trade`"""

    e: str
    E: EpochTime
    s: Symbol
    t: Id
    p: DecimalText
    q: DecimalText
    T: EpochTime
    m: bool


class AggTradeEvent(msgspec.Struct, frozen=True):
    """`<symbol>@aggTrade`"""

    e: str
    E: EpochTime
    s: Symbol
    a: Id
    p: DecimalText
    q: DecimalText
    f: Id
    l: Id  # noqa: E741 - Binance's field name
    T: EpochTime
    m: bool


class Kline(msgspec.Struct, frozen=True):
    t: EpochTime
    T: EpochTime
    s: Symbol
    i: str
    f: OptionalId
    L: OptionalId
    o: DecimalText
    c: DecimalText
    h: DecimalText
    l: DecimalText  # noqa: E741 - Binance's field name
    v: DecimalText
    n: Id
    x: bool
    q: DecimalText
    V: DecimalText
    Q: DecimalText


class KlineEvent(msgspec.Struct, frozen=True):
    """`<symbol>@kline_<interval>`"""

    e: str
    E: EpochTime
    s: Symbol
    k: Kline


class BookTickerEvent(msgspec.Struct, frozen=True):
    """`<symbol>@bookTicker` (no event type field, no time)."""

    u: Id
    s: Symbol
    b: DecimalText
    B: DecimalText
    a: DecimalText
    A: DecimalText


class ServerShutdown(msgspec.Struct, frozen=True):
    """`{"e":"serverShutdown","E":...}`: the server is about to close the connection."""

    e: str
    E: EpochTime


class RestTrade(msgspec.Struct, frozen=True):
    """One element of GET /api/v3/trades or /api/v3/historicalTrades."""

    id: Id
    price: DecimalText
    qty: DecimalText
    time: EpochTime
    isBuyerMaker: bool
    quoteQty: DecimalText | None = None
    isBestMatch: bool | None = None


class RestAggTrade(msgspec.Struct, frozen=True):
    """One element of GET /api/v3/aggTrades."""

    a: Id
    p: DecimalText
    q: DecimalText
    f: Id
    l: Id  # noqa: E741 - Binance's field name
    T: EpochTime
    m: bool
    M: bool | None = None


# One element of GET /api/v3/klines: [open time, open, high, low, close, volume, close time,
# quote volume, trades, taker buy base volume, taker buy quote volume, ignore].
RestKline = tuple[
    EpochTime,
    DecimalText,
    DecimalText,
    DecimalText,
    DecimalText,
    DecimalText,
    EpochTime,
    DecimalText,
    Id,
    DecimalText,
    DecimalText,
    str,
]
