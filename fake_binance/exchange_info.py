"""The exchange's symbol rules, taken from a real recorded `GET /api/v3/exchangeInfo` response."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

DEFAULT_MIN_NOTIONAL = Decimal("10")


@dataclass(frozen=True, slots=True)
class SymbolRules:
    """What the market model and the wire format need to know about one symbol."""

    symbol: str
    status: str
    base_asset: str
    quote_asset: str
    tick_size: Decimal
    min_price: Decimal
    max_price: Decimal
    step_size: Decimal
    min_qty: Decimal
    min_notional: Decimal
    # Binance prints prices with the symbol's quotePrecision decimals, quantities with
    # baseAssetPrecision and quote amounts with quoteAssetPrecision: "0.35280000", "58.00000000".
    price_decimals: int
    qty_decimals: int
    quote_decimals: int


def _filters(entry: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {f["filterType"]: f for f in entry.get("filters", [])}


def rules_from_entry(entry: Mapping[str, Any]) -> SymbolRules:
    """Read the rules of one `symbols[]` entry of an exchangeInfo document."""
    filters = _filters(entry)
    price_filter = filters["PRICE_FILTER"]
    lot_size = filters["LOT_SIZE"]
    # MIN_NOTIONAL in 2021 recordings, NOTIONAL since 2023: either bounds an order's value.
    notional = filters.get("MIN_NOTIONAL") or filters.get("NOTIONAL") or {}
    return SymbolRules(
        symbol=entry["symbol"],
        status=entry["status"],
        base_asset=entry["baseAsset"],
        quote_asset=entry["quoteAsset"],
        tick_size=Decimal(price_filter["tickSize"]),
        min_price=Decimal(price_filter["minPrice"]),
        max_price=Decimal(price_filter["maxPrice"]),
        step_size=Decimal(lot_size["stepSize"]),
        min_qty=Decimal(lot_size["minQty"]),
        min_notional=Decimal(notional.get("minNotional", DEFAULT_MIN_NOTIONAL)),
        price_decimals=int(entry["quotePrecision"]),
        qty_decimals=int(entry["baseAssetPrecision"]),
        quote_decimals=int(entry["quoteAssetPrecision"]),
    )


class ExchangeInfo:
    """A recorded exchangeInfo document and the rules of its symbols."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self._top_level = {key: value for key, value in document.items() if key != "symbols"}
        self._entries: dict[str, Mapping[str, Any]] = {e["symbol"]: e for e in document["symbols"]}
        self.rules: dict[str, SymbolRules] = {name: rules_from_entry(entry) for name, entry in self._entries.items()}

    def set_status(self, symbol: str, status: str) -> None:
        """List `symbol` with another status (e.g. BREAK), as Binance does for a halted market."""
        if symbol not in self._entries:
            raise ValueError(f"symbol not in exchangeInfo: {symbol}")
        entry = {**self._entries[symbol], "status": status}
        self._entries[symbol] = entry
        self.rules[symbol] = rules_from_entry(entry)

    def add_symbol(self, symbol: str, like: str, status: str = "TRADING") -> None:
        """List a new symbol with the rules of an existing one, as Binance lists a new market."""
        if symbol in self._entries:
            raise ValueError(f"symbol already in exchangeInfo: {symbol}")
        if like not in self._entries:
            raise ValueError(f"symbol to copy the rules of is not in exchangeInfo: {like}")
        template = self._entries[like]
        quote = template["quoteAsset"]
        base = symbol.removesuffix(quote) if symbol.endswith(quote) and symbol != quote else symbol
        entry = {**template, "symbol": symbol, "status": status, "baseAsset": base}
        self._entries[symbol] = entry
        self.rules[symbol] = rules_from_entry(entry)

    def trading(self) -> list[str]:
        """The symbols listed TRADING now, in the document's order."""
        return [name for name, rules in self.rules.items() if rules.status == "TRADING"]

    @property
    def symbols(self) -> Sequence[str]:
        return list(self._entries)

    def request_weight_limit(self) -> int:
        """The REQUEST_WEIGHT per minute limit the document announces (what 429s are based on)."""
        for limit in self._top_level.get("rateLimits", []):
            if limit.get("rateLimitType") == "REQUEST_WEIGHT" and limit.get("interval") == "MINUTE":
                return int(limit["limit"]) // int(limit.get("intervalNum", 1))
        return 6000

    def document(self, server_time_ms: int, symbols: Iterable[str] | None = None) -> dict[str, Any]:
        """The response body: recorded top-level fields, the current serverTime, the chosen symbols."""
        names = list(self._entries) if symbols is None else list(symbols)
        body = dict(self._top_level)
        body["serverTime"] = server_time_ms
        body["symbols"] = [self._entries[name] for name in names]
        return body


FULL_EXCHANGE_INFO = "data/exchangeInfo-full-2021-10-12.json.gz"


def load_exchange_info(path: Path | None = None, *, full: bool = False) -> ExchangeInfo:
    """Load the shipped trimmed copy, the whole recorded document (`full`: 1,695 symbols, 1,262 of
    them TRADING), or another exchangeInfo document."""
    if path is not None:
        text = path.read_text("utf-8")
    elif full:
        packed = resources.files("fake_binance").joinpath(FULL_EXCHANGE_INFO).read_bytes()
        text = gzip.decompress(packed).decode("utf-8")
    else:
        text = resources.files("fake_binance").joinpath("data/exchangeInfo.json").read_text("utf-8")
    return ExchangeInfo(json.loads(text))
