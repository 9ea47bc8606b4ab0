"""Rows of data.binance.vision's CSV files (source `archive`) -> the rows live and REST records make. Pure.

A message holds one CSV row exactly as the file has it, without its line end; the stream header
names the file's kind and `time_unit: MICROSECOND` marks the files in microseconds (2025 on).
Columns, as the archive documents them (github.com/binance/binance-public-data):
  trades:    id,price,qty,quoteQty,time,isBuyerMaker,isBestMatch
  aggTrades: a,p,q,f,l,T,m,M
  klines:    open time,open,high,low,close,volume,close time,quote volume,trades,
             taker buy base volume,taker buy quote volume,ignore       (the 12 of /api/v3/klines)
Booleans are Python's `True`/`False` (some files write `true`/`false`). A row that is not of this
form is an `invalid_csv_row`; the other checks (positive prices, consistent klines, times within
the calendar) are the general parser's own, with its reasons.
"""

import re

from consumer import parse as general
from consumer.parse import AggTradeRow, KlineRow, Row, TradeRow
from schemas.messages import DECIMAL_TEXT_PATTERN, MAX_TIME_MS
from schemas.topics import Source

_INTEGER = re.compile(r"0|[1-9][0-9]{0,18}")
_DECIMAL = re.compile(DECIMAL_TEXT_PATTERN)
_BOOLEANS = {"True": True, "False": False, "true": True, "false": False}
_MAX_ID = 2**63 - 1
_COLUMNS = {"trade": 7, "aggTrade": 8, "kline": 12}


def parse_archive_row(value: bytes, symbol: str, kind: str, unit_us: int) -> Row:
    """Raises parse._Reject (via its helpers) with the reason."""
    try:
        text = value.decode("ascii")
    except UnicodeDecodeError:
        raise general._Reject("invalid_csv_row", "an archive row is not ASCII text") from None
    fields = text.split(",")
    expected = _COLUMNS["kline" if kind.startswith("kline_") else kind] if _known(kind) else None
    if expected is None:
        raise general._Reject("unsupported_stream", f"archive rows of type {kind!r} are not stored")
    if len(fields) != expected:
        raise general._Reject("invalid_csv_row", f"a {kind} archive row has {expected} columns, not {len(fields)}")
    if kind == "trade":
        return _trade(symbol, fields, unit_us)
    if kind == "aggTrade":
        return _agg_trade(symbol, fields, unit_us)
    return _kline(symbol, kind.removeprefix("kline_"), fields, unit_us)


def _known(kind: str) -> bool:
    return kind in ("trade", "aggTrade") or kind.startswith("kline_")


def _trade(symbol: str, fields: list[str], unit_us: int) -> TradeRow:
    trade_id, price, qty, quote_qty, trade_time, buyer_is_maker, best_match = fields
    _decimal(quote_qty, "quoteQty")
    _boolean(best_match, "isBestMatch")
    return TradeRow(
        symbol=symbol,
        trade_id=_id(trade_id, "id"),
        price=general._positive(_decimal(price, "price"), "price"),
        quantity=general._positive(_decimal(qty, "qty"), "quantity"),
        trade_time_us=_time_us(trade_time, unit_us, "time"),
        buyer_is_maker=_boolean(buyer_is_maker, "isBuyerMaker"),
        event_time_us=None,
    )


def _agg_trade(symbol: str, fields: list[str], unit_us: int) -> AggTradeRow:
    agg_id, price, qty, first, last, trade_time, buyer_is_maker, best_match = fields
    _boolean(best_match, "M")
    first_id, last_id = general._trade_id_range(_id(first, "f"), _id(last, "l"))
    return AggTradeRow(
        symbol=symbol,
        agg_trade_id=_id(agg_id, "a"),
        price=general._positive(_decimal(price, "p"), "price"),
        quantity=general._positive(_decimal(qty, "q"), "quantity"),
        first_trade_id=first_id,
        last_trade_id=last_id,
        trade_time_us=_time_us(trade_time, unit_us, "T"),
        buyer_is_maker=_boolean(buyer_is_maker, "m"),
        event_time_us=None,
    )


def _kline(symbol: str, interval: str, fields: list[str], unit_us: int) -> KlineRow:
    open_time, open_, high, low, close, volume, close_time, quote_volume, trades, taker_base, taker_quote, _ = fields
    row = KlineRow(
        symbol=symbol,
        interval=general._interval(interval),
        open_time_us=_time_us(open_time, unit_us, "open time"),
        close_time_us=_time_us(close_time, unit_us, "close time"),
        open=general._positive(_decimal(open_, "open"), "open"),
        high=general._positive(_decimal(high, "high"), "high"),
        low=general._positive(_decimal(low, "low"), "low"),
        close=general._positive(_decimal(close, "close"), "close"),
        volume=_decimal(volume, "volume"),
        quote_volume=_decimal(quote_volume, "quote volume"),
        trade_count=_id(trades, "number of trades"),
        taker_buy_base_volume=_decimal(taker_base, "taker buy base volume"),
        taker_buy_quote_volume=_decimal(taker_quote, "taker buy quote volume"),
        first_trade_id=None,
        last_trade_id=None,
        is_closed=True,  # the archive publishes a period once it is over
        event_time_us=None,
        source=Source.ARCHIVE,
    )
    general._consistent_kline(interval, int(open_time), int(close_time), unit_us, open_, high, low, close)
    return row


def _id(text: str, name: str) -> int:
    if not _INTEGER.fullmatch(text) or int(text) > _MAX_ID:
        raise general._Reject("invalid_csv_row", f"column {name!r} is not an integer below 2^63: {text[:40]!r}")
    return int(text)


def _decimal(text: str, name: str) -> str:
    if not _DECIMAL.fullmatch(text):
        raise general._Reject("invalid_csv_row", f"column {name!r} is not a plain decimal: {text[:40]!r}")
    return text


def _boolean(text: str, name: str) -> bool:
    value = _BOOLEANS.get(text)
    if value is None:
        raise general._Reject("invalid_csv_row", f"column {name!r} is not True or False: {text[:40]!r}")
    return value


def _time_us(text: str, unit_us: int, name: str) -> int:
    value = _id(text, name)
    limit = MAX_TIME_MS if unit_us != 1 else MAX_TIME_MS * 1000 + 999
    if value > limit:
        raise general._Reject("invalid_time", f"column {name!r} is past year 9999: {value}")
    return value * unit_us
