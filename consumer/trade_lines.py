"""Trades as lines of COPY text, and the hot path that makes them straight from Binance's bytes.

Nearly every message is a trade frame exactly as Binance sends it: the same keys in the same order,
no spaces, no escapes. One regular expression, run by re's C engine, checks such a frame against
every rule the general parser (consumer/parse.py) applies and captures its fields, and one bytes
format turns them into the batch's COPY line: no JSON decoding and no Python object per field, at
about a third of the general parser's cost per trade. Anything else (another key order, spacing,
escapes, another event, a message of another source than ws, microsecond times, an unknown symbol) returns None and goes
to the general parser, which accepts it or rejects it with its reason. tests/unit/test_trade_lines.py
holds the two to the same decisions and the same rows.
"""

import re
from collections.abc import Container, Iterable, Mapping, Sequence

from consumer.parse import TradeRow
from schemas.messages import DECIMAL_TEXT_PATTERN, SYMBOL_PATTERN
from schemas.topics import Header, Source

# The staging table's columns in the order a trade frame carries them, so captured fields need no
# reordering. Times are microseconds: the frame's milliseconds with "000" appended, exact.
COPY_COLUMNS = "event_time_us, symbol, trade_id, price, quantity, trade_time_us, buyer_is_maker"

# JSON integers as msgspec reads them (no sign, no leading zero), short enough to be in range:
# ids below 10^18 fit bigint (the rule is < 2^63); times below 10^14 ms are before year 5138
# (the rule is the end of year 9999). Longer ones are rare and left to the general parser.
_ID = rb"(0|[1-9][0-9]{0,17})"
_TIME_MS = rb"(0|[1-9][0-9]{0,13})"
# A decimal string with a non-zero digit somewhere: positive. The look-ahead stays inside the
# quotes ([0-9.] can't match one).
_POSITIVE = rb"((?=[0-9.]*[1-9])" + DECIMAL_TEXT_PATTERN.encode() + rb")"
_SYMBOL = SYMBOL_PATTERN.encode()
_TRADE_FRAME = re.compile(
    # The stream's symbol in lower case; the payload's symbol must be the same in upper case
    # (the back-reference ignores case, the look-ahead requires upper case).
    rb'\{"stream":"(' + _SYMBOL.lower() + rb')@trade","data":\{"e":"trade",'
    rb'"E":' + _TIME_MS + rb',"s":"(?=' + _SYMBOL + rb'")((?i:\1))","t":' + _ID + rb","
    rb'"p":"' + _POSITIVE + rb'","q":"' + _POSITIVE + rb'","T":' + _TIME_MS + rb","
    rb'"m":(true|false),"M":(?:true|false)\}\}'
)
# E, s, t, p, q, T, m as COPY_COLUMNS orders them.
_LINE = b"%b000\t%b\t%b\t%b\t%b\t%b000\t%b\n"
_FIELDS = (2, 3, 4, 5, 6, 7, 8)
_WS, _ARCHIVE = Source.WS.encode(), Source.ARCHIVE.encode()
_TIME_UNIT, _SOURCE, _STREAM = Header.TIME_UNIT, Header.SOURCE, Header.STREAM

# A data.binance.vision trades row (consumer/archive_rows.py): id,price,qty,quoteQty,time,
# isBuyerMaker,isBestMatch. Times are ms (below 10^14, as above) or, in files marked MICROSECOND,
# us (below 10^17: before year 5138).
_BOOLEAN = rb"(?:True|False|true|false)"
_ARCHIVE_ROW = (
    rb"(0|[1-9][0-9]{0,17})," + _POSITIVE + rb"," + _POSITIVE + rb",(?:" + DECIMAL_TEXT_PATTERN.encode() + rb"),"
)
_ARCHIVE_TRADE_MS = re.compile(_ARCHIVE_ROW + _TIME_MS + rb",(" + _BOOLEAN + rb")," + _BOOLEAN)
_ARCHIVE_TRADE_US = re.compile(_ARCHIVE_ROW + rb"(0|[1-9][0-9]{0,16}),(" + _BOOLEAN + rb")," + _BOOLEAN)
_ARCHIVE_STREAM = re.compile(rb"(" + _SYMBOL.lower() + rb"|" + _SYMBOL + rb")@trade")
# No event time; symbol, id, price, qty, time (with the unit's zeros), maker.
_ARCHIVE_LINE = b"\\N\t%b\t%b\t%b\t%b\t%b%b\t%b\n"
_MAKER = {b"True": b"true", b"true": b"true", b"False": b"false", b"false": b"false"}
# Stream header -> its symbol in upper case, or b"" when it names no trades stream.
_ARCHIVE_SYMBOLS: dict[bytes, bytes] = {}
_ARCHIVE_SYMBOLS_KEPT = 4096


def from_frame(
    value: bytes,
    headers: Sequence[tuple[str, object]] | Mapping[str, object] | None,
    known_symbols: Container[bytes] | None,
) -> bytes | None:
    """The COPY line of a trade frame the general parser would accept as it is, else None.
    `headers` are the message's (name, value) pairs as confluent-kafka gives them (or a mapping);
    `known_symbols` the exchange's symbols as bytes (None: not checked)."""
    # A loop over the pairs costs half of making them a dict, and the hot path needs no dict.
    if isinstance(headers, list):  # what a consumed message has: checked first, it is the cheapest
        pairs: Iterable[tuple[str, object]] = headers
    elif isinstance(headers, Mapping):
        pairs = headers.items()
    else:
        pairs = headers or ()
    for name, data in pairs:
        if name == _SOURCE and data == _ARCHIVE:
            return _from_archive_row(value, pairs, known_symbols)
        # Another source (a REST record, an import's, a coverage marker) is never a trade frame.
        if name == _TIME_UNIT or (name == _SOURCE and data is not None and data != _WS):
            return None
    match = _TRADE_FRAME.fullmatch(value)
    if match is None:
        return None
    fields = match.group(*_FIELDS)
    if known_symbols is not None and fields[1] not in known_symbols:
        return None
    return _LINE % fields


def _from_archive_row(
    value: bytes, pairs: Iterable[tuple[str, object]], known_symbols: Container[bytes] | None
) -> bytes | None:
    """The COPY line of an archive trades row the general parser would accept, else None."""
    stream: object = None
    microseconds = False
    for name, data in pairs:
        if name == _STREAM:
            stream = data
        elif name == _TIME_UNIT:
            if data != b"MICROSECOND":
                return None
            microseconds = True
    if not isinstance(stream, bytes):
        return None
    symbol = _ARCHIVE_SYMBOLS.get(stream)
    if symbol is None:
        symbol = _archive_symbol(stream)
    if not symbol or (known_symbols is not None and symbol not in known_symbols):
        return None
    match = (_ARCHIVE_TRADE_US if microseconds else _ARCHIVE_TRADE_MS).fullmatch(value)
    if match is None:
        return None
    trade_id, price, quantity, trade_time, maker = match.groups()
    return _ARCHIVE_LINE % (
        symbol,
        trade_id,
        price,
        quantity,
        trade_time,
        b"" if microseconds else b"000",
        _MAKER[maker],
    )


def _archive_symbol(stream: bytes) -> bytes:
    """The symbol an archive row's stream header names (b"" if it names none), remembered: an
    import sends millions of rows under a handful of stream names, and the dictionary look-up costs
    a fifth of the regular expression and upper-casing it saves."""
    named = _ARCHIVE_STREAM.fullmatch(stream)
    symbol = named[1].upper() if named is not None else b""
    if len(_ARCHIVE_SYMBOLS) >= _ARCHIVE_SYMBOLS_KEPT:  # any header is accepted here: stay bounded
        _ARCHIVE_SYMBOLS.clear()
    _ARCHIVE_SYMBOLS[stream] = symbol
    return symbol


def from_row(row: TradeRow) -> bytes:
    """The COPY line of a trade the general parser made."""
    event = "\\N" if row.event_time_us is None else row.event_time_us
    maker = "true" if row.buyer_is_maker else "false"
    return (
        f"{event}\t{row.symbol}\t{row.trade_id}\t{row.price}\t{row.quantity}\t{row.trade_time_us}\t{maker}\n".encode()
    )
