"""Typed records of what the pipeline carries, built from the raw Binance payloads.

The raw payload shapes are described by the JSON Schema files in schemas/json/ (tests check the
parser and the fake exchange against them); these are the cleaned records the consumer writes.
Prices and quantities are Decimal, built from Binance's strings, never float. Times are UTC.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

JSON_SCHEMA_DIR = Path(__file__).parent / "json"


@dataclass(frozen=True, slots=True)
class Trade:
    """One spot trade, from a `<symbol>@trade` payload."""

    symbol: str
    trade_id: int
    price: Decimal
    quantity: Decimal
    trade_time: datetime
    buyer_is_maker: bool
    event_time: datetime
