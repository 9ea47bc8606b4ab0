"""Raw Kafka messages -> rows for one table, or a Rejection that says why. Pure: no I/O.

Cleaning rules, from what the reference notebooks filtered by hand and what Binance documents:
every field present with Binance's type, prices and quantities plain decimal strings, positive
where a zero is meaningless, a known symbol that agrees with its stream, times within the calendar.
Anything else is rejected with a reason, never dropped silently. Control events (serverShutdown)
are recognised and skipped, not dead-lettered: they are not data.
"""

from collections.abc import Container, Mapping
from dataclasses import dataclass
from typing import NamedTuple

import msgspec

from schemas.messages import (
    MAX_TIME_MS,
    AggTradeEvent,
    BookTickerEvent,
    Envelope,
    KlineEvent,
    RestAggTrade,
    RestKline,
    RestTrade,
    ServerShutdown,
    TradeEvent,
)
from schemas.topics import Header, Source


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


Row = TradeRow | AggTradeRow | KlineRow | BookTickerRow


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str  # machine-readable code, the DLQ header value
    detail: str  # what a person needs to see why


@dataclass(frozen=True, slots=True)
class Skipped:
    """A message that is not data and not an error (a control event)."""

    reason: str


KLINE_INTERVALS = frozenset(
    ("1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M")
)

_ENVELOPE = msgspec.json.Decoder(Envelope)
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
) -> Row | Rejection | Skipped:
    """Parses one message of the raw topic. `known_symbols` (None: not checked) are the symbols
    the exchange lists; a symbol outside them is rejected."""
    if not value:
        return Rejection("empty_message", "message has no value")
    try:
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


def _parse(value: bytes, headers: Mapping[str, bytes]) -> Row | Skipped:
    unit_us = 1 if headers.get(Header.TIME_UNIT, b"").upper() == b"MICROSECOND" else 1000
    rest = headers.get(Header.SOURCE) == Source.REST.encode()
    stream_header = headers.get(Header.STREAM, b"").decode(errors="replace")
    if rest:
        return _parse_rest(value, stream_header, unit_us, headers)
    if value.startswith(b'{"stream"'):
        envelope = _ENVELOPE.decode(value)
        stream, payload = envelope.stream, bytes(envelope.data)
    else:
        # A bare payload (a raw /ws/<stream> frame): the stream comes from the header.
        stream, payload = stream_header, value
    return _parse_ws(payload, stream, unit_us, headers)


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
            agg.f,
            agg.l,
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
    elif kind == "bookTicker":
        book = _BOOK_TICKER.decode(payload)
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
            agg.f,
            agg.l,
            _micros(agg.T, unit_us, "T"),
            agg.m,
            None,
        )
    if kind.startswith("kline_"):
        k = _REST_KLINE.decode(value)
        close_time_us = _micros(k[6], unit_us, "close time")
        return KlineRow(
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
            Source.REST,
        )
    raise _Reject("unsupported_stream", f"REST records of type {kind!r} are not stored")


def _expect_event(actual: str, expected: str) -> None:
    if actual != expected:
        raise _Reject("event_stream_mismatch", f"a {expected} stream carried event type {actual!r}")


def _same_symbol(expected: str, actual: str) -> str:
    if expected != actual:
        raise _Reject("stream_symbol_mismatch", f"stream symbol {expected!r} carried symbol {actual!r}")
    return actual


def _positive(text: str, name: str) -> str:
    # The pattern already guarantees digits with at most one dot, so stripping zeros and the dot
    # leaves nothing exactly when the value is zero.
    if not text.strip("0."):
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
