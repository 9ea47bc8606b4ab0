"""Every poison message the fault suite and the chaos soak produce straight into binance.raw, with
the outcome each must have: the one table to adjust when the consumer's rules change.

A poison message is either dead-lettered (with one of the listed reasons; None: any reason) or,
for input that looks odd but is valid Binance data, stored. The classes issue 14 adds are listed in
ISSUE_14_CLASSES; only those in LANDED are produced, so a class the consumer does not handle yet is
left out (and reported as left out) rather than stalling the pipeline.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count

from tests.faults.truth import Rules, Trade

# The classes of issue 14 whose consumer behaviour has landed (see ISSUE_14_CLASSES): all of them,
# as of branch `consumer` at f826562.
LANDED: frozenset[str] = frozenset(
    {
        "conflicting_duplicate",
        "nul_in_stream_header",
        "headers_near_the_message_limit",
        "header_name_not_utf8",
        "bare_payload_without_stream_header",
        "envelope_with_other_whitespace_and_key_order",
        "duplicate_key",
        "kline_high_below_low",
        "kline_wrong_close_time",
        "agg_trade_first_id_after_last",
        "crossed_book",
    }
)

OVERSIZED_BYTES = 999_800  # a value as large as a Kafka producer sends by default, with key and headers
NESTED = 1000  # deeper than Python's recursion limit: once crashed the consumer (consumer/parse.py)
STORED = None  # `reasons` of a message that must be stored, not dead-lettered


@dataclass(frozen=True)
class Poison:
    value: bytes | None
    stream: str  # the `stream` header ("" for none)
    source: str  # the `source` header
    # Reasons it may be dead-lettered with (None: any); ignored when `stored`.
    reasons: frozenset[str] | None
    stored: Trade | None = None  # valid after all: this trade must be stored
    extra_headers: tuple[tuple[bytes, bytes], ...] = ()
    omit_stream_header: bool = False
    raw: bool = False  # produced over Kafka's protocol (tests/support/raw_records.py), to partition 0

    def raw_headers(self, case: str, received_at_ns: int) -> list[tuple[bytes, bytes | None]]:
        headers = [] if self.omit_stream_header else [(b"stream", self.stream.encode())]
        headers += [(b"source", self.source.encode()), (b"received_at_ns", str(received_at_ns).encode())]
        return [*headers, *self.extra_headers, (b"test_case", case.encode())]

    def headers(self, case: str, received_at_ns: int) -> list[tuple[str, str | bytes | None]]:
        """As confluent-kafka takes them (names as text: only a raw class has a name that isn't)."""
        return [(name.decode(), value) for name, value in self.raw_headers(case, received_at_ns)]


def frame(stream: str, payload: object) -> bytes:
    return json.dumps({"stream": stream, "data": payload}, separators=(",", ":")).encode()


def ws_payload(trade: Trade) -> dict[str, object]:
    return {
        "e": "trade",
        "E": trade.time_ms + 1,
        "s": trade.symbol,
        "t": trade.trade_id,
        "p": trade.price,
        "q": trade.quantity,
        "T": trade.time_ms,
        "m": trade.buyer_is_maker,
        "M": True,
    }


def rest_record(trade: Trade) -> dict[str, object]:
    return {
        "id": trade.trade_id,
        "price": trade.price,
        "qty": trade.quantity,
        "time": trade.time_ms,
        "isBuyerMaker": trade.buyer_is_maker,
        "isBestMatch": True,
    }


def one(reason: str) -> frozenset[str]:
    return frozenset({reason})


def todays_classes(template: Trade) -> dict[str, Poison]:
    """The invalid messages the consumer has dead-lettered since the fault suite began."""
    good = ws_payload(template)
    stream = f"{template.symbol.lower()}@trade"
    other_symbol = "ETHUSDT" if template.symbol != "ETHUSDT" else "BTCUSDT"

    def changed(**fields: object) -> bytes:
        return frame(stream, {**good, **fields})

    def rest(**fields: object) -> bytes:
        return json.dumps({**rest_record(template), **fields}).encode()

    def ws(value: bytes | None, reasons: frozenset[str] | None, stream_header: str = stream) -> Poison:
        return Poison(value, stream_header, "ws", reasons)

    def over_rest(value: bytes, reasons: frozenset[str]) -> Poison:
        return Poison(value, stream, "rest", reasons)

    zero_price_padded = changed(p="0.00000000", padding="")
    return {
        "zero_price": ws(changed(p="0.00000000"), one("non_positive_price")),
        "zero_quantity": ws(changed(q="0.00000000"), one("non_positive_quantity")),
        "negative_price": ws(changed(p="-" + template.price), one("invalid_field")),
        "negative_quantity": ws(changed(q="-0.00100000"), one("invalid_field")),
        "zero_price_rest": over_rest(rest(price="0.00000000"), one("non_positive_price")),
        "negative_quantity_rest": over_rest(rest(qty="-1.00000000"), one("invalid_field")),
        "zero_quantity_rest": over_rest(rest(qty="0"), one("non_positive_quantity")),
        "exponent_price": ws(changed(p="1e5"), one("invalid_field")),
        "nan_price": ws(changed(p="NaN"), one("invalid_field")),
        "price_as_number": ws(changed(p=84000.5), one("invalid_field")),
        "maker_as_number": ws(changed(m=1), one("invalid_field")),
        "lowercase_symbol": ws(changed(s=template.symbol.lower()), one("invalid_field")),
        "missing_trade_id": ws(frame(stream, {k: v for k, v in good.items() if k != "t"}), one("missing_field")),
        "trade_id_past_bigint": ws(changed(t=2**63), one("invalid_field")),
        "negative_trade_id": ws(changed(t=-1), one("invalid_field")),
        "time_past_year_9999": ws(changed(T=10**15), one("invalid_time")),
        "unknown_symbol": ws(
            frame("nosuchcoin@trade", {**good, "s": "NOSUCHCOIN"}), one("unknown_symbol"), "nosuchcoin@trade"
        ),
        "stream_symbol_mismatch": ws(changed(s=other_symbol), one("stream_symbol_mismatch")),
        "event_type_mismatch": ws(changed(e="aggTrade"), one("event_stream_mismatch")),
        "unsupported_stream": ws(
            frame(f"{template.symbol.lower()}@depth", {"e": "depthUpdate"}), one("unsupported_stream"), ""
        ),
        "error_reply": ws(b'{"code":2,"msg":"Invalid request: hand-made"}', one("unsupported_stream"), ""),
        "truncated": ws(changed()[:60], one("invalid_json")),
        "not_json": ws(b"\x00\xffthis is not json", one("invalid_json")),
        "invalid_utf8": ws(changed(s="X").replace(b'"X"', b'"\xff\xfe"'), one("invalid_json")),
        # Not an object, so it names no stream (before issue 14: invalid_field).
        "json_null": ws(b"null", one("unsupported_stream")),
        "json_array": ws(b"[]", one("unsupported_stream")),
        "empty": ws(b"", one("empty_message")),
        "tombstone": ws(None, one("empty_message")),
        "deeply_nested": ws(
            b'{"stream":"' + stream.encode() + b'","data":' + b"[" * NESTED + b"]" * NESTED + b"}",
            one("invalid_json"),
        ),
        "rest_missing_id": over_rest(json.dumps({"price": template.price}).encode(), one("missing_field")),
        # As large as a Kafka producer sends by default (1,000,000 bytes with key and headers).
        "oversized_zero_price": ws(
            changed(p="0.00000000", padding="x" * (OVERSIZED_BYTES - len(zero_price_padded))),
            one("non_positive_price"),
        ),
    }


def issue_14_classes(template: Trade, fresh: Iterator[Trade]) -> dict[str, Poison]:
    """The classes issue 14 adds. `template` is a trade already stored; `fresh` yields new valid
    trades (of a symbol the market does not trade), for the classes that must be stored."""
    stream = f"{template.symbol.lower()}@trade"
    zero_price = frame(stream, {**ws_payload(template), "p": "0.00000000"})
    bare, reordered = next(fresh), next(fresh)
    reordered_stream = f"{reordered.symbol.lower()}@trade"
    symbol = template.symbol
    duplicate_key = frame(stream, ws_payload(template)).replace(
        f'"s":"{symbol}"'.encode(), f'"s":"{symbol}","s":"{symbol}"'.encode(), 1
    )
    kline = {
        "t": 1_700_000_000_000,
        "T": 1_700_000_059_999,
        "s": symbol,
        "i": "1m",
        "f": 1,
        "L": 2,
        "o": "10.0",
        "c": "10.5",
        "h": "11.0",
        "l": "9.0",
        "v": "1.0",
        "n": 2,
        "x": True,
        "q": "10.0",
        "V": "0.5",
        "Q": "5.0",
    }
    kline_stream = f"{symbol.lower()}@kline_1m"

    def kline_event(**changes: object) -> bytes:
        return frame(kline_stream, {"e": "kline", "E": 1_700_000_000_001, "s": symbol, "k": {**kline, **changes}})

    agg = {"e": "aggTrade", "E": 1_700_000_000_001, "s": symbol, "a": 5, "p": "10.0", "q": "1.0"}
    book = {"u": 7, "s": symbol, "b": "10.5", "B": "1.0", "a": "10.0", "A": "1.0"}
    return {
        # A rejected message whose stream header PostgreSQL text cannot hold.
        "nul_in_stream_header": Poison(zero_price, stream + "\x00", "ws", one("non_positive_price")),
        # Headers alone near Kafka's 1 MB limit: the dead letter's own headers must still fit.
        "headers_near_the_message_limit": Poison(
            zero_price, stream, "ws", one("non_positive_price"), extra_headers=((b"padding", b"h" * 990_000),)
        ),
        # A header name confluent-kafka's headers() cannot decode.
        # No client library writes such a name: produced over Kafka's protocol (raw=True).
        "header_name_not_utf8": Poison(
            zero_price, stream, "ws", one("invalid_header"), extra_headers=((b"\xff\xfename", b"v"),), raw=True
        ),
        # What kcat or a replay script writes: the payload names itself.
        "bare_payload_without_stream_header": Poison(
            json.dumps(ws_payload(bare)).encode(), "", "ws", STORED, stored=bare, omit_stream_header=True
        ),
        "envelope_with_other_whitespace_and_key_order": Poison(
            json.dumps({"data": ws_payload(reordered), "stream": reordered_stream}, indent=1).encode(),
            reordered_stream,
            "ws",
            STORED,
            stored=reordered,
        ),
        "conflicting_duplicate": Poison(
            frame(stream, {**ws_payload(template), "q": str(template.quantity) + "1"}),
            stream,
            "ws",
            one("conflicting_duplicate"),
        ),
        "duplicate_key": Poison(duplicate_key, stream, "ws", one("duplicate_key")),
        "kline_high_below_low": Poison(
            kline_event(h="8.0"),
            kline_stream,
            "ws",
            one("inconsistent_kline"),
        ),
        "kline_wrong_close_time": Poison(
            frame(
                kline_stream,
                {"e": "kline", "E": 1_700_000_000_001, "s": symbol, "k": {**kline, "T": 1_700_000_030_000}},
            ),
            kline_stream,
            "ws",
            one("inconsistent_kline"),
        ),
        "agg_trade_first_id_after_last": Poison(
            frame(f"{symbol.lower()}@aggTrade", {**agg, "f": 9, "l": 3, "T": 1_700_000_000_000, "m": True}),
            f"{symbol.lower()}@aggTrade",
            "ws",
            one("inconsistent_agg_trade"),
        ),
        "crossed_book": Poison(
            frame(f"{symbol.lower()}@bookTicker", book), f"{symbol.lower()}@bookTicker", "ws", one("crossed_book")
        ),
    }


ISSUE_14_CLASSES = tuple(
    issue_14_classes(
        Trade("BTCUSDT", 1, "1.0", "1.0", 1, True), iter([Trade("BNBUSDT", i, "1.0", "1.0", 1, True) for i in (1, 2)])
    )
)


def rules() -> Rules:
    """The classifier's rules that follow from what has landed."""
    return Rules(
        bare_payloads="bare_payload_without_stream_header" in LANDED,
        any_envelope_layout="envelope_with_other_whitespace_and_key_order" in LANDED,
        duplicate_keys="duplicate_key" in LANDED,
        conflicting_duplicates="conflicting_duplicate" in LANDED,
    )


def poison_messages(template: Trade, fresh: Iterator[Trade]) -> dict[str, Poison]:
    """Today's classes and the landed ones of issue 14."""
    new = {name: poison for name, poison in issue_14_classes(template, fresh).items() if name in LANDED}
    return {**todays_classes(template), **new}


def fresh_trades(symbol: str, first_id: int, start_ms: int) -> Iterator[Trade]:
    """Valid trades of a symbol the market does not trade, ids and times growing."""
    for trade_id in count(first_id):
        price = f"{600 + trade_id % 2000 / 100:.8f}"
        yield Trade(
            symbol, trade_id, price, f"{(trade_id % 499 + 1) / 1000:.8f}", start_ms + trade_id, trade_id % 3 == 0
        )
