"""Raw Kafka message bytes -> a typed Trade, or a Rejection that says why. Pure: no I/O.

Cleaning rules, from what the reference notebooks filtered by hand and what Binance documents:
a trade needs every field with Binance's types, a positive price and quantity, and a symbol that
agrees with the stream it came on. Anything else is rejected with a reason, never dropped silently.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

from schemas.messages import Trade
from schemas.topics import symbol_from_stream

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Binance sends plain decimal strings; exponents, signs, NaN and Infinity are not prices.
_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")
_SYMBOL = re.compile(r"[A-Z0-9]{2,20}")
# Limits of the columns these values go into: a value past them would fail the whole batch's
# COPY, so it is rejected here, alone.
_MAX_BIGINT = 2**63 - 1
_MAX_TIME_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
_MAX_DECIMAL_CHARS = 64


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str  # machine-readable code, the DLQ header value
    detail: str  # what a person needs to see why


class _Reject(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.rejection = Rejection(reason, detail)


def parse_message(value: bytes | None) -> Trade | Rejection:
    """Parses one message of the raw topic: a combined-stream frame or a bare trade payload."""
    if not value:
        return Rejection("empty_message", "message has no value")
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError as error:
        return Rejection("invalid_json", f"not valid JSON: {error}")
    try:
        return _parse_document(document)
    except _Reject as rejected:
        return rejected.rejection


def _parse_document(document: Any) -> Trade:
    if not isinstance(document, dict):
        raise _Reject("not_an_object", f"expected a JSON object, got {type(document).__name__}")
    stream: str | None = None
    payload = document
    if "stream" in document and "data" in document:
        stream = document["stream"]
        payload = document["data"]
        if not isinstance(stream, str) or not isinstance(payload, dict):
            raise _Reject("invalid_wrapper", "combined frame needs a string 'stream' and an object 'data'")
    event_type = payload.get("e")
    if event_type != "trade":
        raise _Reject("unsupported_event", f"event type {event_type!r} is not handled")
    trade = _parse_trade(payload)
    if stream is not None and symbol_from_stream(stream) != trade.symbol:
        raise _Reject("stream_symbol_mismatch", f"stream {stream!r} carried symbol {trade.symbol!r}")
    return trade


def _parse_trade(payload: dict[str, Any]) -> Trade:
    symbol = payload.get("s")
    if not isinstance(symbol, str) or not _SYMBOL.fullmatch(symbol):
        raise _Reject("invalid_symbol", f"field 's' must be an upper-case symbol, got {symbol!r}")
    return Trade(
        symbol=symbol,
        trade_id=_integer(payload, "t"),
        price=_positive_decimal(payload, "p", "price"),
        quantity=_positive_decimal(payload, "q", "quantity"),
        trade_time=_time_ms(payload, "T"),
        buyer_is_maker=_boolean(payload, "m"),
        event_time=_time_ms(payload, "E"),
    )


def _integer(payload: dict[str, Any], field: str) -> int:
    value = payload.get(field)
    # bool is a subclass of int in Python; JSON true is not an id.
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _MAX_BIGINT:
        raise _Reject(f"invalid_{field}", f"field {field!r} must be an integer in [0, 2^63), got {value!r}")
    return value


def _boolean(payload: dict[str, Any], field: str) -> bool:
    value = payload.get(field)
    if not isinstance(value, bool):
        raise _Reject(f"invalid_{field}", f"field {field!r} must be true or false, got {value!r}")
    return value


def _positive_decimal(payload: dict[str, Any], field: str, name: str) -> Decimal:
    text = payload.get(field)
    if not isinstance(text, str) or len(text) > _MAX_DECIMAL_CHARS or not _DECIMAL.fullmatch(text):
        raise _Reject(f"invalid_{name}", f"field {field!r} ({name}) must be a decimal string, got {text!r}")
    value = Decimal(text)
    if value <= 0:
        # The zero-price, zero-quantity messages the reference notebook filtered out.
        raise _Reject(f"non_positive_{name}", f"{name} must be positive, got {text!r}")
    return value


def _time_ms(payload: dict[str, Any], field: str) -> datetime:
    milliseconds = _integer(payload, field)
    if milliseconds > _MAX_TIME_MS:
        raise _Reject(f"invalid_{field}", f"field {field!r} is past year 9999: {milliseconds}")
    # Integer arithmetic keeps milliseconds exact (a float division could round them).
    return _EPOCH + timedelta(milliseconds=milliseconds)
