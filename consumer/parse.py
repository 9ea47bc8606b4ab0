"""Raw Kafka messages -> rows for one table, or a Rejection that says why. Pure: no I/O.

Cleaning rules, from what the reference notebooks filtered by hand and what Binance documents:
every field present with Binance's type, prices and quantities plain decimal strings, positive
where a zero is meaningless, a known symbol that agrees with its stream, times within the calendar.
Anything else is rejected with a reason, never dropped silently. Control events (serverShutdown)
are recognised and skipped, not dead-lettered: they are not data.
"""

import json
import re
from collections.abc import Container, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

import msgspec

from schemas.coverage import STREAM_TYPES, CoverageMarker, decode_marker
from schemas.kline_intervals import KLINE_INTERVALS, kline_close_time
from schemas.messages import (
    MAX_TIME_MS,
    SYMBOL_PATTERN,
    AggTradeEvent,
    BookTickerEvent,
    Envelope,
    KlineEvent,
    PayloadProbe,
    RestAggTrade,
    RestKline,
    RestTrade,
    ServerShutdown,
    TradeEvent,
)
from schemas.topics import Header, Source, message_key


class TradeRow(NamedTuple):
    symbol: str
    trade_id: int
    price: str
    quantity: str
    trade_time_us: int
    buyer_is_maker: bool
    event_time_us: int | None


class AggTradeRow(NamedTuple):
    symbol: str
    agg_trade_id: int
    price: str
    quantity: str
    first_trade_id: int
    last_trade_id: int
    trade_time_us: int
    buyer_is_maker: bool
    event_time_us: int | None


class KlineRow(NamedTuple):
    symbol: str
    interval: str
    open_time_us: int
    close_time_us: int
    open: str
    high: str
    low: str
    close: str
    volume: str
    quote_volume: str
    trade_count: int
    taker_buy_base_volume: str
    taker_buy_quote_volume: str
    first_trade_id: int | None
    last_trade_id: int | None
    is_closed: bool
    event_time_us: int | None
    source: str


class BookTickerRow(NamedTuple):
    symbol: str
    update_id: int
    bid_price: str
    bid_quantity: str
    ask_price: str
    ask_quantity: str
    received_at_us: int


class CoverageRow(NamedTuple):
    """A coverage marker (schemas/coverage.py) of one stream, e.g. ("BTCUSDT", "trade", "held", ...)."""

    symbol: str
    stream: str
    kind: str
    start_ms: int
    end_ms: int
    origin: str
    detail: str


Row = TradeRow | AggTradeRow | KlineRow | BookTickerRow | CoverageRow


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str  # machine-readable code, the DLQ header value
    detail: str  # what a person needs to see why


@dataclass(frozen=True, slots=True)
class Skipped:
    """A message that is not data and not an error (a control event)."""

    reason: str


_ENVELOPE = msgspec.json.Decoder(Envelope)
_PROBE = msgspec.json.Decoder(PayloadProbe)
_TRADE = msgspec.json.Decoder(TradeEvent)
_AGG_TRADE = msgspec.json.Decoder(AggTradeEvent)
_KLINE = msgspec.json.Decoder(KlineEvent)
_BOOK_TICKER = msgspec.json.Decoder(BookTickerEvent)
_SERVER_SHUTDOWN = msgspec.json.Decoder(ServerShutdown)
_REST_TRADE = msgspec.json.Decoder(RestTrade)
_REST_AGG_TRADE = msgspec.json.Decoder(RestAggTrade)
_REST_KLINE = msgspec.json.Decoder(RestKline)


class _Reject(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.rejection = Rejection(reason, detail)


def parse_message(
    value: bytes | None,
    headers: Mapping[str, bytes],
    known_symbols: Container[str] | None = None,
    key: bytes | None = None,
) -> Row | Rejection | Skipped:
    """Parses one message of the raw topic. `known_symbols` (None: not checked) are the symbols
    the exchange lists; a symbol outside them is rejected. `key` is the message's Kafka key, which
    a coverage marker must have right (None: not checked)."""
    if not value:
        return Rejection("empty_message", "message has no value")
    if _has_duplicate_keys(value):
        # Binance never repeats a key; msgspec, like most decoders, would keep the last one.
        return Rejection("duplicate_key", "a JSON object names the same key twice")
    try:
        if headers.get(Header.SOURCE) == _COVERAGE:
            row: Row | Skipped = _parse_coverage(value, headers, key)
        else:
            row = _parse(value, headers)
    except _Reject as rejected:
        return rejected.rejection
    except msgspec.ValidationError as error:  # a subclass of DecodeError: must come first
        reason = "missing_field" if "missing required field" in str(error) else "invalid_field"
        return Rejection(reason, str(error))
    except msgspec.DecodeError as error:
        return Rejection("invalid_json", f"not valid JSON: {error}")
    # Neither is a msgspec.DecodeError, and either would crash the consumer, and crash it again on
    # every restart (the message is never committed): msgspec raises UnicodeDecodeError for
    # invalid UTF-8 inside a string, and recurses once per nesting level (a 2 KB message nested
    # 1,000 deep exceeds Python's recursion limit).
    except UnicodeDecodeError as error:
        return Rejection("invalid_json", f"not valid UTF-8: {error}")
    except RecursionError:
        return Rejection("invalid_json", "not valid JSON: nested too deeply")
    if isinstance(row, Skipped):
        return row
    if known_symbols is not None and row.symbol not in known_symbols:
        return Rejection("unknown_symbol", f"symbol {row.symbol!r} is not listed by the exchange")
    return row


_REST_SOURCES = (Source.REST.encode(), Source.HISTORY.encode())
_ARCHIVE_SOURCE = Source.ARCHIVE.encode()
_COVERAGE = Source.COVERAGE.encode()
# What a coverage marker's origin may name: the sources of market data.
_ORIGINS = frozenset((Source.WS, Source.REST, Source.HISTORY, Source.ARCHIVE))
MAX_COVERAGE_DETAIL_CHARS = 1000


def _parse_coverage(value: bytes, headers: Mapping[str, bytes], key: bytes | None) -> CoverageRow:
    """A coverage marker: `{"kind":"held","start_ms":…,"end_ms":…,"origin":"ws","detail":""}`, its
    stream in the stream header. It vouches for records that came before it on its partition, so
    it must be keyed by its symbol like them: on another key it may have overtaken them."""
    stream = headers.get(Header.STREAM, b"").decode(errors="replace")
    symbol, kind = _stream_kind(stream)
    if kind not in STREAM_TYPES or not re.fullmatch(SYMBOL_PATTERN, symbol) or stream != f"{symbol.lower()}@{kind}":
        raise _Reject("unsupported_stream", f"a coverage marker for stream {stream!r}, which is not stored")
    if key is not None and key != message_key(symbol):
        raise _Reject("stream_symbol_mismatch", f"a coverage marker for {stream!r} keyed {key!r}, not {symbol!r}")
    try:
        marker = decode_marker(value)
    except msgspec.ValidationError as error:
        if "coverage period" in str(error):
            raise _Reject("invalid_coverage_period", str(error)) from None
        raise
    _plausible(marker)
    return CoverageRow(symbol, kind, marker.kind.value, marker.start_ms, marker.end_ms, marker.origin, marker.detail)


def _plausible(marker: CoverageMarker) -> None:
    if marker.end_ms > MAX_TIME_MS + 1:
        raise _Reject("invalid_time", f"coverage period ends past year 9999: {marker.end_ms}")
    if marker.origin not in _ORIGINS:
        raise _Reject("invalid_field", f"coverage origin {marker.origin!r} is not one of {sorted(_ORIGINS)}")
    # PostgreSQL text holds no NUL; a detail is a sentence, not a payload.
    if "\x00" in marker.detail or len(marker.detail) > MAX_COVERAGE_DETAIL_CHARS:
        detail = f"coverage detail holds a NUL or is over {MAX_COVERAGE_DETAIL_CHARS} characters"
        raise _Reject("invalid_field", detail)


def _parse(value: bytes, headers: Mapping[str, bytes]) -> Row | Skipped:
    unit_us = 1 if headers.get(Header.TIME_UNIT, b"").upper() == b"MICROSECOND" else 1000
    source = headers.get(Header.SOURCE)
    stream_header = headers.get(Header.STREAM, b"").decode(errors="replace")
    if source in _REST_SOURCES:
        return _parse_rest(value, stream_header, unit_us, headers)
    if source == _ARCHIVE_SOURCE:
        return parse_archive_row(value, *_stream_kind(stream_header), unit_us)
    if value.startswith(b'{"stream"'):  # a combined-stream frame as Binance lays it out
        envelope = _ENVELOPE.decode(value)
        return _parse_ws(bytes(envelope.data), envelope.stream, unit_us, headers)
    probe = _probe(value)
    if probe.stream is not None:  # the same frame in another key order or spacing
        if not probe.data:
            raise _Reject("missing_field", "a combined-stream frame without `data`")
        return _parse_ws(bytes(probe.data), probe.stream, unit_us, headers)
    # A bare payload (a raw /ws/<stream> frame, or one replayed by kcat or a script): the stream
    # header names it, or else the payload itself; the payload must agree with the header.
    return _parse_ws(value, stream_header or _stream_named_by(probe), unit_us, headers)


def _probe(value: bytes) -> PayloadProbe:
    try:
        return _PROBE.decode(value)
    except msgspec.ValidationError as error:
        if "Expected `object`" in str(error):
            raise _Reject("unsupported_stream", "the message is not a JSON object: it names no stream") from None
        raise


def _stream_named_by(probe: PayloadProbe) -> str:
    """The stream a bare payload names by its own fields: the event type `e` (and a kline's
    interval `k.i`) and the symbol `s`; a bookTicker has no `e` but its fields u,s,b,B,a,A."""
    if probe.e == "serverShutdown":
        return "!serverShutdown"
    if probe.e is None:
        if not all((probe.u, probe.b, probe.B, probe.a, probe.A)):
            raise _Reject("unsupported_stream", "no stream header, and the payload names no stream (no `e`)")
        kind = "bookTicker"
    elif probe.e == "kline":
        if probe.k is None or probe.k.i is None:
            raise _Reject("missing_field", "a kline payload without its interval `k.i`")
        kind = f"kline_{probe.k.i}"
    else:
        kind = probe.e
    if probe.s is None:
        raise _Reject("missing_field", "no stream header, and the payload has no symbol `s`")
    return f"{probe.s.lower()}@{kind}"


def _stream_kind(stream: str) -> tuple[str, str]:
    """'btcusdt@kline_1m' -> ('BTCUSDT', 'kline_1m')."""
    if "@" not in stream:
        raise _Reject("unsupported_stream", f"stream {stream!r} is not <symbol>@<type>")
    symbol, kind = stream.split("@", 1)
    return symbol.upper(), kind


def _parse_ws(payload: bytes, stream: str, unit_us: int, headers: Mapping[str, bytes]) -> Row | Skipped:
    if b'"serverShutdown"' in payload and _SERVER_SHUTDOWN.decode(payload).e == "serverShutdown":
        return Skipped("server_shutdown")
    stream_symbol, kind = _stream_kind(stream)
    if kind == "trade":
        trade = _TRADE.decode(payload)
        _expect_event(trade.e, "trade")
        row: Row = TradeRow(
            _same_symbol(stream_symbol, trade.s),
            trade.t,
            _positive(trade.p, "price"),
            _positive(trade.q, "quantity"),
            _micros(trade.T, unit_us, "T"),
            trade.m,
            _micros(trade.E, unit_us, "E"),
        )
    elif kind == "aggTrade":
        agg = _AGG_TRADE.decode(payload)
        _expect_event(agg.e, "aggTrade")
        row = AggTradeRow(
            _same_symbol(stream_symbol, agg.s),
            agg.a,
            _positive(agg.p, "price"),
            _positive(agg.q, "quantity"),
            *_trade_id_range(agg.f, agg.l),
            _micros(agg.T, unit_us, "T"),
            agg.m,
            _micros(agg.E, unit_us, "E"),
        )
    elif kind.startswith("kline_"):
        event = _KLINE.decode(payload)
        _expect_event(event.e, "kline")
        k = event.k
        if k.i != kind[len("kline_") :]:
            raise _Reject("stream_interval_mismatch", f"stream {stream!r} carried interval {k.i!r}")
        row = KlineRow(
            _same_symbol(stream_symbol, _same_symbol(event.s, k.s)),
            _interval(k.i),
            _micros(k.t, unit_us, "k.t"),
            _micros(k.T, unit_us, "k.T"),
            _positive(k.o, "open"),
            _positive(k.h, "high"),
            _positive(k.l, "low"),
            _positive(k.c, "close"),
            k.v,
            k.q,
            k.n,
            k.V,
            k.Q,
            None if k.f < 0 else k.f,
            None if k.L < 0 else k.L,
            k.x,
            _micros(event.E, unit_us, "E"),
            Source.WS,
        )
        # After the row, whose fields checked the times are in the calendar.
        _consistent_kline(k.i, k.t, k.T, unit_us, k.o, k.h, k.l, k.c)
    elif kind == "bookTicker":
        book = _BOOK_TICKER.decode(payload)
        _uncrossed(book.b, book.a)
        row = BookTickerRow(
            _same_symbol(stream_symbol, book.s),
            book.u,
            book.b,
            book.B,
            book.a,
            book.A,
            _received_at_us(headers),
        )
    else:
        raise _Reject("unsupported_stream", f"stream type {kind!r} is not stored")
    return row


def _parse_rest(value: bytes, stream: str, unit_us: int, headers: Mapping[str, bytes]) -> Row:
    symbol, kind = _stream_kind(stream)
    if kind == "trade":
        trade = _REST_TRADE.decode(value)
        return TradeRow(
            symbol,
            trade.id,
            _positive(trade.price, "price"),
            _positive(trade.qty, "quantity"),
            _micros(trade.time, unit_us, "time"),
            trade.isBuyerMaker,
            None,
        )
    if kind == "aggTrade":
        agg = _REST_AGG_TRADE.decode(value)
        return AggTradeRow(
            symbol,
            agg.a,
            _positive(agg.p, "price"),
            _positive(agg.q, "quantity"),
            *_trade_id_range(agg.f, agg.l),
            _micros(agg.T, unit_us, "T"),
            agg.m,
            None,
        )
    if kind.startswith("kline_"):
        k = _REST_KLINE.decode(value)
        close_time_us = _micros(k[6], unit_us, "close time")
        row = KlineRow(
            symbol,
            _interval(kind[len("kline_") :]),
            _micros(k[0], unit_us, "open time"),
            close_time_us,
            _positive(k[1], "open"),
            _positive(k[2], "high"),
            _positive(k[3], "low"),
            _positive(k[4], "close"),
            k[5],
            k[7],
            k[8],
            k[9],
            k[10],
            None,
            None,
            # REST also returns the kline still open; it is final only once its close time passed.
            close_time_us < _received_at_us(headers),
            None,
            Source.HISTORY if headers.get(Header.SOURCE) == _REST_SOURCES[1] else Source.REST,
        )
        _consistent_kline(row.interval, k[0], k[6], unit_us, k[1], k[2], k[3], k[4])
        return row
    raise _Reject("unsupported_stream", f"REST records of type {kind!r} are not stored")


def _trade_id_range(first: int, last: int) -> tuple[int, int]:
    if first > last:
        raise _Reject("inconsistent_agg_trade", f"first trade id {first} is after last trade id {last}")
    return first, last


def _consistent_kline(
    interval: str, open_time: int, close_time: int, unit_us: int, open_: str, high: str, low: str, close: str
) -> None:
    """A kline's prices lie within its low and high, and it closes at its interval's end."""
    low_, high_ = Decimal(low), Decimal(high)
    if high_ < low_ or not (low_ <= Decimal(open_) <= high_ and low_ <= Decimal(close) <= high_):
        detail = f"open {open_}, high {high}, low {low}, close {close}: not low <= open, close <= high"
        raise _Reject("inconsistent_kline", detail)
    expected = kline_close_time(interval, open_time, 1 if unit_us == 1000 else 1000)
    # In microseconds the last unit before the next open is ...999999, or ...999000 when the
    # millisecond close time was scaled: either is the interval's end.
    slack = 0 if unit_us == 1000 else 999
    if expected is None or not expected - slack <= close_time <= expected:
        detail = f"a {interval} kline opening at {open_time} closes at {expected}, not {close_time}"
        if expected is None:
            detail = f"a {interval} kline must open at the start of a month, not at {open_time}"
        raise _Reject("inconsistent_kline", detail)


def _uncrossed(bid: str, ask: str) -> None:
    # A side with no orders is sent as zero: only two real prices can cross.
    if _is_positive(bid) and _is_positive(ask) and Decimal(bid) > Decimal(ask):
        raise _Reject("crossed_book", f"best bid {bid} is above best ask {ask}")


# In compact JSON without backslashes a string is "[^"]*" and opens after one of , { [ :, so every
# key is found by _KEY from its opening quote, unless a string begins with a colon: only then can a
# match start at a closing quote. _plain rules out what the scan can't read (whitespace, escapes,
# empty strings, a string opening with a colon), in C passes over the bytes.
_KEY = re.compile(rb'"([^"]*)":')
_WHITESPACE_AND_ESCAPES = b" \n\t\r\\"


def _plain(value: bytes) -> bool:
    if len(value.translate(None, _WHITESPACE_AND_ESCAPES)) != len(value):
        return False
    return not (b'""' in value or b',":' in value or b'{":' in value or b'[":' in value or b':":' in value)


def _has_duplicate_keys(value: bytes) -> bool:
    """Whether any JSON object in `value` names a key twice. The scan above settles the usual
    case, no key text repeated anywhere in the message; a repeated one (kline's "s", in the event
    and in "k"), or a message it can't scan, is checked object by object."""
    if _plain(value):
        keys = _KEY.findall(value)
        if len(set(keys)) == len(keys):
            return False
    try:
        json.loads(value, object_pairs_hook=_unique_pairs, parse_int=_ignore, parse_float=_ignore)
    except _DuplicateKey:
        return True
    except (ValueError, RecursionError):  # not JSON (or too deep): msgspec will say what is wrong
        return False
    return False


class _DuplicateKey(Exception):
    pass


def _unique_pairs(pairs: list[tuple[str, object]]) -> None:
    if len({key for key, _ in pairs}) != len(pairs):
        raise _DuplicateKey


def _ignore(text: str) -> None:
    """Numbers are not needed to find keys, and a 5,000-digit integer would exceed Python's limit."""


def _expect_event(actual: str, expected: str) -> None:
    if actual != expected:
        raise _Reject("event_stream_mismatch", f"a {expected} stream carried event type {actual!r}")


def _same_symbol(expected: str, actual: str) -> str:
    if expected != actual:
        raise _Reject("stream_symbol_mismatch", f"stream symbol {expected!r} carried symbol {actual!r}")
    return actual


def _is_positive(text: str) -> bool:
    # The pattern already guarantees digits with at most one dot, so stripping zeros and the dot
    # leaves nothing exactly when the value is zero.
    return bool(text.strip("0."))


def _positive(text: str, name: str) -> str:
    if not _is_positive(text):
        # The zero-price, zero-quantity messages the reference notebook filtered out.
        raise _Reject(f"non_positive_{name}", f"{name} must be positive, got {text!r}")
    return text


def _micros(value: int, unit_us: int, field: str) -> int:
    if unit_us != 1 and value > MAX_TIME_MS:
        raise _Reject("invalid_time", f"field {field!r} is past year 9999: {value}")
    return value * unit_us


def _interval(interval: str) -> str:
    if interval not in KLINE_INTERVALS:
        raise _Reject("invalid_interval", f"kline interval {interval!r} is not a Binance interval")
    return interval


def _received_at_us(headers: Mapping[str, bytes]) -> int:
    try:
        return int(headers[Header.RECEIVED_AT_NS]) // 1000
    except (KeyError, ValueError):
        raise _Reject("missing_received_at", f"header {Header.RECEIVED_AT_NS!r} is missing or not an integer") from None


# Last: archive rows build on this module's rows and rules.
from consumer.archive_rows import parse_archive_row  # noqa: E402
