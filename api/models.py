"""Response bodies. Decimals are serialised as JSON strings, so no price passes through a float."""

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field


class LatestPrice(BaseModel):
    symbol: str = Field(examples=["BTCUSDT"])
    price: Decimal = Field(description="price of the newest trade, exactly as Binance sent it")
    quantity: Decimal
    trade_id: int
    trade_time: datetime = Field(description="UTC")


class LatestPrices(BaseModel):
    prices: list[LatestPrice]


class Problem(BaseModel):
    detail: str
