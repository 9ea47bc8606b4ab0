"""Binance stream names: which are well formed, and which of them the fake serves. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass

from fake_binance.klines import INTERVALS

_INTERVAL = "|".join(re.escape(i) for i in INTERVALS)
_SYMBOL = r"[A-Za-z0-9]{1,20}"
# Streams the fake produces data for.
_SERVED = re.compile(rf"^(?P<symbol>{_SYMBOL})@(?P<kind>trade|aggTrade|bookTicker|kline_(?:{_INTERVAL}))$")
# Other stream names Binance accepts: the fake acknowledges them and never sends on them.
_KNOWN = re.compile(
    rf"^(?:{_SYMBOL}@(?:"
    rf"depth(?:5|10|20)?(?:@100ms|@1000ms)?"
    r"|miniTicker|ticker|avgPrice|referencePrice|blockTrade"
    r"|ticker_(?:1h|4h|1d)"
    rf"|kline_(?:{_INTERVAL})@\+08:00"
    r")"
    r"|!miniTicker@arr|!ticker@arr|!ticker_(?:1h|4h|1d)@arr)$"
)


@dataclass(frozen=True, slots=True)
class StreamName:
    name: str
    symbol: str  # upper case, as in payloads
    kind: str  # "trade", "aggTrade", "bookTicker" or "kline"
    interval: str | None  # for klines


def parse_served(name: str) -> StreamName | None:
    """The parsed name if the fake produces data for this stream, else None."""
    match = _SERVED.match(name)
    if match is None:
        return None
    kind = match["kind"]
    interval = None
    if kind.startswith("kline_"):
        kind, interval = "kline", kind.removeprefix("kline_")
    return StreamName(name=name, symbol=match["symbol"].upper(), kind=kind, interval=interval)


def is_valid_stream(name: str) -> bool:
    """Whether Binance would accept this stream name in a SUBSCRIBE."""
    return _SERVED.match(name) is not None or _KNOWN.match(name) is not None


def is_lowercase_symbol(name: str) -> bool:
    # All symbols in stream names are lowercase on Binance; "BTCUSDT@trade" carries no data.
    symbol = name.split("@", 1)[0]
    return symbol == symbol.lower()


def stream_name(symbol: str, kind: str, interval: str | None = None) -> str:
    """The stream a payload of `kind` for `symbol` is published on."""
    suffix = f"kline_{interval}" if kind == "kline" else kind
    return f"{symbol.lower()}@{suffix}"
