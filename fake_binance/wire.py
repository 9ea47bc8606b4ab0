"""Binance's wire format, and the only module that knows it: key names, key order, number formats.

Frames are compact JSON (no spaces) with keys in Binance's order; prices and quantities are
strings with the symbol's full precision ("0.00100000"), ids and times are integers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any

import orjson

from fake_binance.exchange_info import SymbolRules
from fake_binance.klines import Kline
from fake_binance.market import AggTrade, BookTop, Trade

MILLISECONDS = 1
MICROSECONDS = 1000  # `timeUnit=MICROSECOND`: every time field is multiplied by 1000

_DECIMAL_CONTEXT = Context(prec=60, rounding=ROUND_HALF_EVEN)
_QUANTUMS = {places: Decimal(1).scaleb(-places) for places in range(0, 19)}


def format_decimal(value: Decimal, places: int) -> str:
    """`value` with exactly `places` decimals, as Binance prints prices and quantities."""
    quantum = _QUANTUMS.get(places) or Decimal(1).scaleb(-places)
    return f"{value.quantize(quantum, context=_DECIMAL_CONTEXT):f}"


def encode(obj: Any) -> str:
    """Compact JSON text, keys in insertion order, non-ASCII as UTF-8 (as Binance sends it)."""
    return orjson.dumps(obj).decode()


# --- stream payloads -------------------------------------------------------------------------


def trade_payload(trade: Trade, rules: SymbolRules, time_scale: int = MILLISECONDS) -> dict[str, Any]:
    return {
        "e": "trade",
        "E": trade.event_time * time_scale,
        "s": trade.symbol,
        "t": trade.trade_id,
        "p": format_decimal(trade.price, rules.price_decimals),
        "q": format_decimal(trade.qty, rules.qty_decimals),
        "T": trade.trade_time * time_scale,
        "m": trade.buyer_is_maker,
        # "Ignore" in the docs; always true on Spot since the best-match flag was retired.
        "M": True,
    }


def agg_trade_payload(agg: AggTrade, rules: SymbolRules, time_scale: int = MILLISECONDS) -> dict[str, Any]:
    return {
        "e": "aggTrade",
        "E": agg.event_time * time_scale,
        "s": agg.symbol,
        "a": agg.agg_id,
        "p": format_decimal(agg.price, rules.price_decimals),
        "q": format_decimal(agg.qty, rules.qty_decimals),
        "f": agg.first_trade_id,
        "l": agg.last_trade_id,
        "T": agg.trade_time * time_scale,
        "m": agg.buyer_is_maker,
        "M": True,
    }


def kline_payload(
    kline: Kline, rules: SymbolRules, event_time: int, closed: bool, time_scale: int = MILLISECONDS
) -> dict[str, Any]:
    return {
        "e": "kline",
        "E": event_time * time_scale,
        "s": kline.symbol,
        "k": {
            "t": kline.open_time * time_scale,
            "T": kline.close_time * time_scale,
            "s": kline.symbol,
            "i": kline.interval,
            "f": kline.first_trade_id,
            "L": kline.last_trade_id,
            "o": format_decimal(kline.open, rules.price_decimals),
            "c": format_decimal(kline.close, rules.price_decimals),
            "h": format_decimal(kline.high, rules.price_decimals),
            "l": format_decimal(kline.low, rules.price_decimals),
            "v": format_decimal(kline.volume, rules.qty_decimals),
            "n": kline.trade_count,
            "x": closed,
            "q": format_decimal(kline.quote_volume, rules.quote_decimals),
            "V": format_decimal(kline.taker_buy_volume, rules.qty_decimals),
            "Q": format_decimal(kline.taker_buy_quote_volume, rules.quote_decimals),
            "B": "0",
        },
    }


def book_ticker_payload(book: BookTop, rules: SymbolRules) -> dict[str, Any]:
    # No event type and no times in Spot bookTicker payloads.
    return {
        "u": book.update_id,
        "s": book.symbol,
        "b": format_decimal(book.bid_price, rules.price_decimals),
        "B": format_decimal(book.bid_qty, rules.qty_decimals),
        "a": format_decimal(book.ask_price, rules.price_decimals),
        "A": format_decimal(book.ask_qty, rules.qty_decimals),
    }


def server_shutdown_payload(event_time: int, time_scale: int = MILLISECONDS) -> dict[str, Any]:
    return {"e": "serverShutdown", "E": event_time * time_scale}


SERVER_SHUTDOWN_STREAM = "!serverShutdown"


def combined_frame(stream: str, payload_text: str) -> str:
    """`{"stream":"<name>","data":<payload>}` around an already encoded payload."""
    return '{"stream":' + encode(stream) + ',"data":' + payload_text + "}"


def scale_times(payload: Mapping[str, Any], time_scale: int) -> dict[str, Any]:
    """A recorded payload with its time fields (E, T and a kline's t/T) in another unit."""
    scaled = dict(payload)
    if time_scale == MILLISECONDS:
        return scaled
    for key in ("E", "T"):
        if isinstance(scaled.get(key), int):
            scaled[key] = scaled[key] * time_scale
    kline = scaled.get("k")
    if isinstance(kline, Mapping):
        inner = dict(kline)
        for key in ("t", "T"):
            if isinstance(inner.get(key), int):
                inner[key] = inner[key] * time_scale
        scaled["k"] = inner
    return scaled


# --- live control messages on the stream connection ------------------------------------------


def control_error(code: int, msg: str, request_id: Any = None, *, with_id: bool = True) -> str:
    """A refused control message: the documented {"code","msg"} object, nested as Binance sends it."""
    body: dict[str, Any] = {"error": {"code": code, "msg": msg}}
    if with_id:
        body["id"] = request_id
    return encode(body)


# --- REST bodies -------------------------------------------------------------------------------


def rest_error(code: int, msg: str) -> dict[str, Any]:
    return {"code": code, "msg": msg}


def rest_trade(trade: Trade, rules: SymbolRules, time_scale: int = MILLISECONDS) -> dict[str, Any]:
    return {
        "id": trade.trade_id,
        "price": format_decimal(trade.price, rules.price_decimals),
        "qty": format_decimal(trade.qty, rules.qty_decimals),
        "quoteQty": format_decimal(trade.quote_qty, rules.quote_decimals),
        "time": trade.trade_time * time_scale,
        "isBuyerMaker": trade.buyer_is_maker,
        "isBestMatch": True,
    }


def rest_agg_trade(agg: AggTrade, rules: SymbolRules, time_scale: int = MILLISECONDS) -> dict[str, Any]:
    return {
        "a": agg.agg_id,
        "p": format_decimal(agg.price, rules.price_decimals),
        "q": format_decimal(agg.qty, rules.qty_decimals),
        "f": agg.first_trade_id,
        "l": agg.last_trade_id,
        "T": agg.trade_time * time_scale,
        "m": agg.buyer_is_maker,
        "M": True,
    }


def rest_kline_row(kline: Kline, rules: SymbolRules, time_scale: int = MILLISECONDS) -> list[Any]:
    return [
        kline.open_time * time_scale,
        format_decimal(kline.open, rules.price_decimals),
        format_decimal(kline.high, rules.price_decimals),
        format_decimal(kline.low, rules.price_decimals),
        format_decimal(kline.close, rules.price_decimals),
        format_decimal(kline.volume, rules.qty_decimals),
        kline.close_time * time_scale,
        format_decimal(kline.quote_volume, rules.quote_decimals),
        kline.trade_count,
        format_decimal(kline.taker_buy_volume, rules.qty_decimals),
        format_decimal(kline.taker_buy_quote_volume, rules.quote_decimals),
        "0",
    ]


def rest_ticker_price(symbol: str, price: Decimal, rules: SymbolRules) -> dict[str, Any]:
    return {"symbol": symbol, "price": format_decimal(price, rules.price_decimals)}


# --- reading recorded traffic (replay) ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordedFrame:
    stream: str | None  # from the combined wrapper, if there was one
    payload: dict[str, Any]
    received_at: float | None  # seconds, from the recorder


def parse_recorded_line(line: str) -> RecordedFrame | None:
    """One line of a recording: `{"received_at","frame"}`, a combined frame or a bare payload."""
    line = line.strip()
    if not line:
        return None
    outer = json.loads(line)
    received_at: float | None = None
    if isinstance(outer, dict) and isinstance(outer.get("frame"), str):
        received_at = float(outer["received_at"]) if outer.get("received_at") is not None else None
        outer = json.loads(outer["frame"])
    if not isinstance(outer, dict):
        return None
    if isinstance(outer.get("stream"), str) and isinstance(outer.get("data"), dict):
        return RecordedFrame(stream=outer["stream"], payload=outer["data"], received_at=received_at)
    return RecordedFrame(stream=None, payload=outer, received_at=received_at)


def stream_of_payload(payload: Mapping[str, Any]) -> str | None:
    """The stream a bare payload was sent on, where its content says so unambiguously."""
    symbol = payload.get("s")
    if not isinstance(symbol, str):
        return None
    event = payload.get("e")
    if event in ("trade", "aggTrade"):
        return f"{symbol.lower()}@{event}"
    if event == "kline" and isinstance(payload.get("k"), Mapping):
        return f"{symbol.lower()}@kline_{payload['k'].get('i')}"
    if event == "24hrTicker":
        return f"{symbol.lower()}@ticker"
    if event == "24hrMiniTicker":
        return f"{symbol.lower()}@miniTicker"
    if event is None and {"u", "b", "B", "a", "A"} <= payload.keys():
        return f"{symbol.lower()}@bookTicker"
    if event == "depthUpdate":
        return f"{symbol.lower()}@depth"
    return None


def trade_from_payload(payload: Mapping[str, Any]) -> Trade:
    return Trade(
        symbol=payload["s"],
        trade_id=int(payload["t"]),
        price=Decimal(payload["p"]),
        qty=Decimal(payload["q"]),
        trade_time=int(payload["T"]),
        event_time=int(payload["E"]),
        buyer_is_maker=bool(payload["m"]),
    )


def agg_trade_from_payload(payload: Mapping[str, Any]) -> AggTrade:
    return AggTrade(
        symbol=payload["s"],
        agg_id=int(payload["a"]),
        price=Decimal(payload["p"]),
        qty=Decimal(payload["q"]),
        first_trade_id=int(payload["f"]),
        last_trade_id=int(payload["l"]),
        trade_time=int(payload["T"]),
        event_time=int(payload["E"]),
        buyer_is_maker=bool(payload["m"]),
    )
