"""Ground truth and the answers it implies, computed here in plain Python with Decimal.

Nothing in this module imports project code: the point is a second, independent implementation
of what the pipeline must produce. The fake exchange appends every trade it emits to its record
file (FAKE_BINANCE_RECORD_PATH), whether or not the WebSocket delivered it; the tests add the
valid trades they produce by hand. From that list follow the rows PostgreSQL must hold, the
candles (Binance's rules: open and close are the first and last trade by id, an interval without
trades is flat at the previous close) and the API's answers.

The raw-message classifier decides, from the bytes alone, whether a message on the raw topic is
a valid trade, a control event, or invalid (and so must be dead-lettered). Its rules are
Binance's documented wire format: plain decimal strings for prices and quantities, positive;
integer ids and times within PostgreSQL's range; the stream's symbol equal to the payload's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

# Binance prints prices and quantities as plain decimals: no sign, exponent, NaN or Infinity.
DECIMAL_TEXT = re.compile(r"^[0-9]{1,40}(\.[0-9]{1,30})?$")
SYMBOL_TEXT = re.compile(r"^[A-Z0-9]{2,20}$")
MAX_BIGINT = 2**63 - 1
MAX_TIME_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the end of PostgreSQL's calendar
SECOND_MS = 1_000
MINUTE_MS = 60_000


@dataclass(frozen=True, slots=True)
class Trade:
    symbol: str
    trade_id: int
    price: str  # exact text, as the exchange sent it
    quantity: str
    time_ms: int
    buyer_is_maker: bool

    @property
    def key(self) -> tuple[str, int]:
        return self.symbol, self.trade_id


def trade_from_payload(payload: dict[str, Any]) -> Trade:
    """A `<symbol>@trade` payload (Binance's field names) as a Trade."""
    return Trade(payload["s"], payload["t"], payload["p"], payload["q"], payload["T"], payload["m"])


def read_record(path: Path) -> list[Trade]:
    """Every trade the fake exchange emitted, from its record file (one payload a line)."""
    if not path.exists():
        return []
    trades = []
    for line in path.read_text().splitlines():
        payload = json.loads(line)
        payload = payload.get("data", payload)
        if payload.get("e") == "trade":
            trades.append(trade_from_payload(payload))
    return trades


# --- candles ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Candle:
    open_ms: int
    open: str
    high: str
    low: str
    close: str
    volume: Decimal
    quote_volume: Decimal
    trade_count: int
    taker_buy_volume: Decimal
    taker_buy_quote_volume: Decimal
    first_trade_id: int | None
    last_trade_id: int | None


def _exact_sum(values: Iterable[Decimal]) -> Decimal:
    # Decimal's default 28 digits would round a long sum of price * quantity products.
    with localcontext() as context:
        context.prec = 200
        return sum(values, Decimal(0))


def _exact_product(price: str, quantity: str) -> Decimal:
    with localcontext() as context:
        context.prec = 200
        return Decimal(price) * Decimal(quantity)


def candle_of(open_ms: int, trades: list[Trade]) -> Candle:
    by_id = sorted(trades, key=lambda t: t.trade_id)
    prices = [Decimal(t.price) for t in by_id]
    high = by_id[prices.index(max(prices))].price
    low = by_id[prices.index(min(prices))].price
    taker_buys = [t for t in by_id if not t.buyer_is_maker]  # the buyer took liquidity
    return Candle(
        open_ms=open_ms,
        open=by_id[0].price,
        high=high,
        low=low,
        close=by_id[-1].price,
        volume=_exact_sum(Decimal(t.quantity) for t in by_id),
        quote_volume=_exact_sum(_exact_product(t.price, t.quantity) for t in by_id),
        trade_count=len(by_id),
        taker_buy_volume=_exact_sum(Decimal(t.quantity) for t in taker_buys),
        taker_buy_quote_volume=_exact_sum(_exact_product(t.price, t.quantity) for t in taker_buys),
        first_trade_id=by_id[0].trade_id,
        last_trade_id=by_id[-1].trade_id,
    )


def flat_candle(open_ms: int, price: str) -> Candle:
    zero = Decimal(0)
    return Candle(open_ms, price, price, price, price, zero, zero, 0, zero, zero, None, None)


class Truth:
    """Every valid trade that entered the pipeline, by (symbol, trade id).

    The derived views (a symbol's trades, buckets, rollups) are cached until the next `add`: a
    soak asks for them thousands of times over a million trades."""

    def __init__(self) -> None:
        self.trades: dict[tuple[str, int], Trade] = {}
        self._by_symbol: dict[str, list[Trade]] | None = None
        self._cache: dict[tuple[object, ...], Any] = {}

    def add(self, trades: Iterable[Trade]) -> None:
        for trade in trades:
            known = self.trades.setdefault(trade.key, trade)
            assert known == trade, f"two different trades with one id: {known} and {trade}"
        self._by_symbol = None
        self._cache.clear()

    def __len__(self) -> int:
        return len(self.trades)

    def _symbol_index(self) -> dict[str, list[Trade]]:
        if self._by_symbol is None:
            index: dict[str, list[Trade]] = {}
            for trade in self.trades.values():
                index.setdefault(trade.symbol, []).append(trade)
            for trades in index.values():
                trades.sort(key=lambda t: t.trade_id)
            self._by_symbol = index
        return self._by_symbol

    def symbols(self) -> list[str]:
        return sorted(self._symbol_index())

    def of(self, symbol: str) -> list[Trade]:
        return list(self._symbol_index().get(symbol, []))

    def latest(self, symbol: str) -> Trade:
        """The newest trade: the largest id (Binance's ids grow with time per symbol)."""
        return self.of(symbol)[-1]

    def price_at(self, symbol: str, second_ms: int) -> Trade | None:
        """The trade in effect at the end of that second: the last one before the next second."""
        before = [t for t in self.of(symbol) if t.time_ms < second_ms + SECOND_MS]
        return max(before, key=lambda t: (t.time_ms, t.trade_id)) if before else None

    def buckets(self, symbol: str, interval_ms: int) -> dict[int, list[Trade]]:
        key = ("buckets", symbol, interval_ms)
        if key not in self._cache:
            buckets: dict[int, list[Trade]] = {}
            for trade in self._symbol_index().get(symbol, []):
                buckets.setdefault(trade.time_ms // interval_ms * interval_ms, []).append(trade)
            self._cache[key] = buckets
        return dict(self._cache[key])

    def rollup(self, interval_ms: int) -> dict[tuple[str, int], Candle]:
        """What the 1-second or 1-minute rollup table must hold: one row per traded interval."""
        key = ("rollup", interval_ms)
        if key not in self._cache:
            rows: dict[tuple[str, int], Candle] = {}
            for symbol in self.symbols():
                for open_ms, members in self.buckets(symbol, interval_ms).items():
                    rows[(symbol, open_ms)] = candle_of(open_ms, members)
            self._cache[key] = rows
        return dict(self._cache[key])

    def candles(self, symbol: str, interval_ms: int, start_ms: int, end_ms: int) -> list[Candle]:
        """Candles with open time in [start_ms, end_ms), from the symbol's first trade to its last
        (none before the first trade, none invented after the last), flat where nothing traded."""
        buckets = self.buckets(symbol, interval_ms)
        first, last = min(buckets), max(buckets)
        candles: list[Candle] = []
        previous_close: str | None = None
        for open_ms in range(first, last + interval_ms, interval_ms):
            members = buckets.get(open_ms)
            candle = candle_of(open_ms, members) if members else flat_candle(open_ms, previous_close or "")
            previous_close = candle.close
            if start_ms <= open_ms < end_ms:
                candles.append(candle)
        return candles


# --- what a raw message is ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Invalid:
    why: str


@dataclass(frozen=True, slots=True)
class Control:
    """Not data and not an error: Binance's serverShutdown announcement."""


def _is_int(value: object, low: int, high: int) -> bool:
    return type(value) is int and low <= value <= high


def _positive_decimal(value: object) -> bool:
    return isinstance(value, str) and DECIMAL_TEXT.match(value) is not None and Decimal(value) > 0


def _ws_trade(payload: object, stream_symbol: str) -> Trade | Invalid:
    if not isinstance(payload, dict):
        return Invalid("payload is not an object")
    if payload.get("e") != "trade":
        return Invalid("event type is not trade")
    symbol = payload.get("s")
    if not isinstance(symbol, str) or not SYMBOL_TEXT.match(symbol) or symbol != stream_symbol:
        return Invalid("symbol missing, malformed or not the stream's")
    if not _is_int(payload.get("t"), 0, MAX_BIGINT):
        return Invalid("trade id missing or out of range")
    if not (_positive_decimal(payload.get("p")) and _positive_decimal(payload.get("q"))):
        return Invalid("price or quantity not a positive decimal")
    if not (_is_int(payload.get("T"), 0, MAX_TIME_MS) and _is_int(payload.get("E"), 0, MAX_TIME_MS)):
        return Invalid("time missing or out of range")
    if type(payload.get("m")) is not bool:
        return Invalid("maker flag missing")
    return trade_from_payload(payload)


def _rest_trade(record: object, symbol: str) -> Trade | Invalid:
    """A /api/v3/historicalTrades element, published by the producer's REST backfill."""
    if not isinstance(record, dict):
        return Invalid("REST record is not an object")
    if not _is_int(record.get("id"), 0, MAX_BIGINT) or not _is_int(record.get("time"), 0, MAX_TIME_MS):
        return Invalid("REST id or time missing or out of range")
    if not (_positive_decimal(record.get("price")) and _positive_decimal(record.get("qty"))):
        return Invalid("REST price or quantity not a positive decimal")
    if type(record.get("isBuyerMaker")) is not bool:
        return Invalid("REST maker flag missing")
    return Trade(symbol, record["id"], record["price"], record["qty"], record["time"], record["isBuyerMaker"])


@dataclass(frozen=True, slots=True)
class MarketData:
    """Valid data that is not a trade: a kline a lookback backfill fetched over REST."""

    stream: str


@dataclass(frozen=True, slots=True)
class Rules:
    """Which of the consumer's acceptance rules are in force (issue 14 changes some of them).

    bare_payloads: a payload without a `stream` header names itself by its own fields ("e", "s");
    any_envelope_layout: a combined-stream envelope is any JSON object of "stream" and "data",
    whatever its whitespace or key order (not only bytes starting with '{"stream"');
    duplicate_keys: an object with a key twice is invalid (json.loads would keep the last);
    conflicting_duplicates: a trade whose id is stored with other values is invalid (a dead letter,
    the first row stays) rather than silently dropped."""

    bare_payloads: bool = False
    any_envelope_layout: bool = False
    duplicate_keys: bool = False
    conflicting_duplicates: bool = False


TODAY = Rules()


def _rest_kline(record: object) -> MarketData | Invalid:
    """A /api/v3/klines row: [open time, open, high, low, close, volume, close time, ...]."""
    if not isinstance(record, list) or len(record) < 11:
        return Invalid("REST kline is not a row of 11 or more fields")
    if not (_is_int(record[0], 0, MAX_TIME_MS) and _is_int(record[6], 0, MAX_TIME_MS) and record[0] < record[6]):
        return Invalid("REST kline times missing or out of order")
    if not all(_positive_decimal(value) for value in record[1:5]):
        return Invalid("REST kline prices not positive decimals")
    return MarketData("kline")


_MARKER_FIELDS = {"kind", "start_ms", "end_ms", "origin", "detail", "last_id"}


def _coverage_marker(body: object, stream: str, known_symbols: set[str]) -> MarketData | Invalid:
    """A coverage marker of the producer's live capture (schemas/coverage.py), checked here on its own."""
    symbol, _, kind = stream.partition("@")
    if kind not in ("trade", "aggTrade", "bookTicker") and not kind.startswith("kline_"):
        return Invalid("a coverage marker for a stream that is not stored")
    if symbol.upper() not in known_symbols or symbol != symbol.lower():
        return Invalid("a coverage marker for an unknown symbol")
    if not isinstance(body, dict) or not {"kind", "start_ms", "end_ms", "origin"} <= body.keys() <= _MARKER_FIELDS:
        return Invalid("a coverage marker without its fields, or with others")
    start, end = body["start_ms"], body["end_ms"]
    if body["kind"] not in ("held", "hole") or not (
        _is_int(start, 0, MAX_TIME_MS) and _is_int(end, 1, MAX_TIME_MS + 1)
    ):
        return Invalid("a coverage marker of another kind, or times out of range")
    if start >= end or body["origin"] not in ("ws", "rest", "history", "archive"):
        return Invalid("a coverage period that does not end after it starts, or an unknown origin")
    return MarketData("coverage")


class _DuplicateKey(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise _DuplicateKey("a key twice in one object")
    return dict(pairs)


def _loads(value: bytes, rules: Rules) -> Any:
    if rules.duplicate_keys:
        return json.loads(value, object_pairs_hook=_no_duplicate_keys)
    return json.loads(value)


def _is_envelope(value: bytes, body: object, rules: Rules) -> bool:
    if rules.any_envelope_layout:
        return isinstance(body, dict) and "stream" in body and "data" in body
    return value.startswith(b'{"stream"')


def classify(
    value: bytes | None, headers: dict[str, str], known_symbols: set[str], rules: Rules = TODAY
) -> Trade | Control | MarketData | Invalid:
    """What one raw message is. Only trade streams (and, over REST, the klines of a lookback) are
    produced in these tests: anything else that is not a serverShutdown is invalid here."""
    if not value:
        return Invalid("empty")
    try:
        body = _loads(value, rules)
    except _DuplicateKey:
        return Invalid("a key twice in one object")
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return Invalid("not JSON")
    stream = headers.get("stream", "")
    if headers.get("source") == "coverage":
        return _coverage_marker(body, stream, known_symbols)
    if headers.get("source") == "rest":
        symbol, _, kind = stream.partition("@")
        if kind.startswith("kline_"):
            return _rest_kline(body)
        result: Trade | Invalid = (
            _rest_trade(body, symbol.upper()) if kind == "trade" else Invalid("REST record of another kind")
        )
    else:
        # A combined-stream frame names its stream; a bare payload takes it from the header.
        if _is_envelope(value, body, rules):
            if not isinstance(body, dict) or not isinstance(body.get("stream"), str) or "data" not in body:
                return Invalid("malformed envelope")
            stream, body = body["stream"], body["data"]
        if isinstance(body, dict) and body.get("e") == "serverShutdown" and _is_int(body.get("E"), 0, MAX_TIME_MS):
            return Control()
        if not stream and rules.bare_payloads and isinstance(body, dict) and isinstance(body.get("s"), str):
            # No header: the payload names itself ("e" its event type, "s" its symbol).
            stream = f"{body['s'].lower()}@{body.get('e')}"
        symbol, at, kind = stream.partition("@")
        if not at or kind != "trade":
            return Invalid(f"not a trade stream: {stream!r}")
        result = _ws_trade(body, symbol.upper())
    if isinstance(result, Trade) and result.symbol not in known_symbols:
        return Invalid(f"symbol {result.symbol} is not listed by the exchange")
    return result


def listed_symbols(exchange_info_path: Path) -> set[str]:
    """The symbols an exchangeInfo document lists (the fake serves its shipped copy)."""
    return {entry["symbol"] for entry in json.loads(exchange_info_path.read_text())["symbols"]}
