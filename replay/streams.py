"""The stream names a replay serves, in Binance's spelling. Pure."""

import re
from dataclasses import dataclass
from enum import Enum

from schemas.kline_intervals import KLINE_INTERVALS


class StreamKind(Enum):
    TRADE = "trade"
    AGG_TRADE = "aggTrade"
    BOOK_TICKER = "bookTicker"
    KLINE = "kline"


_INTERVAL = "|".join(re.escape(interval) for interval in sorted(KLINE_INTERVALS))
# Binance's stream names are the symbol in lower case, '@', the stream type; interval names are
# case-sensitive ("1m" a minute, "1M" a month).
_NAME = re.compile(rf"(?P<symbol>[a-z0-9]{{2,20}})@(?P<kind>trade|aggTrade|bookTicker|kline_(?:{_INTERVAL}))")


@dataclass(frozen=True, slots=True)
class StreamName:
    name: str  # as the client wrote it, and as combined frames name it
    symbol: str  # upper case, as stored and as payloads carry it
    kind: StreamKind
    interval: str | None = None  # klines only


def parse_stream(name: object) -> StreamName | None:
    """The stream, or None if the name is not one a replay serves."""
    if not isinstance(name, str):
        return None
    match = _NAME.fullmatch(name)
    if match is None:
        return None
    kind_text = match["kind"]
    if kind_text.startswith("kline_"):
        return StreamName(name, match["symbol"].upper(), StreamKind.KLINE, kind_text.removeprefix("kline_"))
    return StreamName(name, match["symbol"].upper(), StreamKind(kind_text))
