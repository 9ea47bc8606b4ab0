"""Binance's stream payloads rebuilt from stored rows, byte for byte. Pure.

Binance sends compact JSON (no spaces) with keys in a fixed order; prices and quantities are
strings as the exchange prints them, which is how they are stored (NUMERIC keeps "0.00100000"
with its trailing zeros, and PostgreSQL's text of a NUMERIC is plain decimal, never an exponent),
ids and times integers. Symbols and stream names are letters, digits, '@' and '_': nothing in a
frame needs JSON escaping, so frames are formatted directly, which is what lets one process send
them at the rate a cursor reads them.
"""

from collections.abc import Callable
from typing import Any

from replay.streams import StreamKind

Row = tuple[Any, ...]
"""A row as sources.py selects it: the event time in ms and the stream's id first, then the payload's fields."""


def trade_payload(symbol: str, row: Row) -> str:
    """`{"e":"trade","E":…,"s":…,"t":…,"p":…,"q":…,"T":…,"m":…,"M":true}` from
    (event ms, trade id, price, quantity, trade ms, buyer is maker). "M" is "ignore" in Binance's
    documentation and always true on Spot."""
    event_ms, trade_id, price, quantity, trade_ms, buyer_is_maker = row
    return (
        f'{{"e":"trade","E":{event_ms},"s":"{symbol}","t":{trade_id},"p":"{price}","q":"{quantity}",'
        f'"T":{trade_ms},"m":{"true" if buyer_is_maker else "false"},"M":true}}'
    )


def agg_trade_payload(symbol: str, row: Row) -> str:
    """`{"e":"aggTrade","E":…,"s":…,"a":…,"p":…,"q":…,"f":…,"l":…,"T":…,"m":…,"M":true}` from
    (event ms, agg id, price, quantity, first trade id, last trade id, trade ms, buyer is maker)."""
    event_ms, agg_id, price, quantity, first_id, last_id, trade_ms, buyer_is_maker = row
    return (
        f'{{"e":"aggTrade","E":{event_ms},"s":"{symbol}","a":{agg_id},"p":"{price}","q":"{quantity}",'
        f'"f":{first_id},"l":{last_id},"T":{trade_ms},"m":{"true" if buyer_is_maker else "false"},"M":true}}'
    )


def book_ticker_payload(symbol: str, row: Row) -> str:
    """`{"u":…,"s":…,"b":…,"B":…,"a":…,"A":…}` (Spot's bookTicker has no event type and no time)
    from (received ms, update id, bid, bid quantity, ask, ask quantity)."""
    _received_ms, update_id, bid, bid_quantity, ask, ask_quantity = row
    return f'{{"u":{update_id},"s":"{symbol}","b":"{bid}","B":"{bid_quantity}","a":"{ask}","A":"{ask_quantity}"}}'


def computed_payload(_symbol: str, row: Row) -> str:
    """A payload computed while reading (a kline push, replay/klines.py): (event ms, 0, payload)."""
    payload: str = row[2]
    return payload


PAYLOADS: dict[StreamKind, Callable[[str, Row], str]] = {
    StreamKind.KLINE: computed_payload,
    StreamKind.TRADE: trade_payload,
    StreamKind.AGG_TRADE: agg_trade_payload,
    StreamKind.BOOK_TICKER: book_ticker_payload,
}


def combined_frame(stream: str, payload: str) -> str:
    """`{"stream":"<name>","data":<payload>}`, as /stream wraps every payload."""
    return f'{{"stream":"{stream}","data":{payload}}}'
