"""Binance's REST wire format for what this service stores. Pure: no I/O.

Binance prints every price with the symbol's `quotePrecision` decimals, every base quantity with
`baseAssetPrecision` and every quote amount with `quoteAssetPrecision` ("0.35280000"); those
come from the stored exchangeInfo entry, or are 8 (Binance's usual precision) for a symbol
without one.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from api.candles import Candle
from api.params import to_ms
from schemas import decimals

DEFAULT_PRECISION = 8


@dataclass(frozen=True, slots=True)
class Precision:
    price: int = DEFAULT_PRECISION
    quantity: int = DEFAULT_PRECISION
    quote: int = DEFAULT_PRECISION


def precision_from_info(info: Mapping[str, Any] | None) -> Precision:
    if not info:
        return Precision()

    def places(key: str) -> int:
        value = info.get(key)
        return value if isinstance(value, int) and 0 <= value <= 18 else DEFAULT_PRECISION

    return Precision(places("quotePrecision"), places("baseAssetPrecision"), places("quoteAssetPrecision"))


def format_decimal(value: Decimal, places: int) -> str:
    return decimals.plain(value.quantize(Decimal(1).scaleb(-places), context=decimals.EXACT))


def format_decimal_text(text: str, places: int) -> str:
    """`format_decimal` of a NUMERIC's text; most already have exactly `places` decimals."""
    dot = text.find(".")
    if dot >= 0 and len(text) - dot - 1 == places:
        return text
    return format_decimal(Decimal(text), places)


def kline_row(candle: Candle, precision: Precision) -> list[Any]:
    """GET /api/v3/klines row: the 12 fields in Binance's order, the last one "0" (unused)."""
    price, quantity, quote = precision.price, precision.quantity, precision.quote
    return [
        candle.open_time,
        format_decimal_text(candle.open, price),
        format_decimal_text(candle.high, price),
        format_decimal_text(candle.low, price),
        format_decimal_text(candle.close, price),
        format_decimal_text(candle.volume, quantity),
        candle.close_time,
        format_decimal_text(candle.quote_volume, quote),
        candle.trade_count,
        format_decimal_text(candle.taker_buy_base_volume, quantity),
        format_decimal_text(candle.taker_buy_quote_volume, quote),
        "0",
    ]


def trade_object(row: Mapping[Any, Any], precision: Precision) -> dict[str, Any]:
    """GET /api/v3/trades item. Every stored trade was matched at the best price (Binance
    spot's `isBestMatch` has been true for years)."""
    price: Decimal = row["price"]
    quantity: Decimal = row["quantity"]
    return {
        "id": row["trade_id"],
        "price": format_decimal(price, precision.price),
        "qty": format_decimal(quantity, precision.quantity),
        "quoteQty": format_decimal(decimals.multiply(price, quantity), precision.quote),
        "time": to_ms(row["trade_time"]),
        "isBuyerMaker": row["buyer_is_maker"],
        "isBestMatch": True,
    }


def agg_trade_object(row: Mapping[Any, Any], precision: Precision) -> dict[str, Any]:
    """GET /api/v3/aggTrades item."""
    return {
        "a": row["agg_trade_id"],
        "p": format_decimal(row["price"], precision.price),
        "q": format_decimal(row["quantity"], precision.quantity),
        "f": row["first_trade_id"],
        "l": row["last_trade_id"],
        "T": to_ms(row["trade_time"]),
        "m": row["buyer_is_maker"],
        "M": True,
    }
