"""Response bodies of the /v1 API. Decimals are serialised as JSON strings, so no price passes
through a float; times are UTC, ISO 8601 with a Z."""

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, Field, PlainSerializer, WithJsonSchema

from api.intervals import Interval
from schemas.decimals import plain

# Every decimal an answer carries, as fixed-point text (schemas/decimals.py): pydantic's own
# str() would print 0.00000099 as "9.9E-7".
DECIMAL_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"
DecimalText = Annotated[
    Decimal,
    PlainSerializer(plain, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": DECIMAL_PATTERN}, mode="serialization"),
]


class LatestPrice(BaseModel):
    symbol: str = Field(examples=["BTCUSDT"])
    price: DecimalText = Field(description="price of the newest trade, exactly as Binance sent it")
    quantity: DecimalText
    trade_id: int
    trade_time: datetime = Field(description="UTC")


class LatestPrices(BaseModel):
    prices: list[LatestPrice]


class SymbolSummary(BaseModel):
    symbol: str
    first_trade_id: int
    first_trade_time: datetime
    last_trade_id: int
    last_trade_time: datetime
    trade_count: int = Field(description="trades stored (not necessarily every trade Binance made)")
    status: str | None = Field(None, description="from the stored exchangeInfo entry, if any")
    base_asset: str | None = None
    quote_asset: str | None = None


class Symbols(BaseModel):
    symbols: list[SymbolSummary]


class PriceAt(BaseModel):
    symbol: str
    timestamp: datetime = Field(description="the second asked about (its start)")
    price: DecimalText = Field(description="price of the last trade at or before the end of that second")
    quantity: DecimalText | None = Field(description="that trade's quantity; null when a 1s kline answered")
    trade_id: int | None = Field(description="that trade's id; a 1s kline's last trade id, if it has one")
    actual_timestamp: datetime = Field(description="time of that trade (a 1s kline's: the start of its second)")
    source: Literal["trades", "klines"] = Field(
        description="trades: the last stored trade; klines: the close of the last stored 1s kline with trades,"
        " where it is newer than every stored trade before the second"
    )


class MinuteRange(BaseModel):
    symbol: str
    minute: datetime
    high: DecimalText | None = Field(description="null when the minute had no trades")
    low: DecimalText | None
    open: DecimalText | None
    close: DecimalText | None
    volume: DecimalText
    quote_volume: DecimalText
    trade_count: int
    source: Literal["trades", "klines"] = Field(
        description="trades: from the stored trades; klines: Binance's 1m kline as stored, where no trade of the"
        " minute is stored"
    )


class CoveragePeriod(BaseModel):
    start: datetime = Field(description="UTC, inclusive")
    end: datetime = Field(description="UTC, exclusive")
    origin: str = Field(description="what vouched for it last: ws (live capture), rest, history or archive")
    detail: str = Field(description="why, for a hole (e.g. 'producer down; REST answered 429'); empty when held")


class CandleOut(BaseModel):
    """A Binance kline: the same boundaries and fields as GET /api/v3/klines."""

    open_time: datetime
    open: DecimalText
    high: DecimalText
    low: DecimalText
    close: DecimalText
    volume: DecimalText
    close_time: datetime = Field(description="the next candle's open time minus 1 ms, as Binance's")
    quote_volume: DecimalText
    trade_count: int
    taker_buy_base_volume: DecimalText
    taker_buy_quote_volume: DecimalText
    first_trade_id: int | None = Field(description="null for an interval without trades (flat at the last close)")
    last_trade_id: int | None
    source: Literal["trades", "klines"] = Field(
        description="trades: computed from the stored trades; klines: Binance's kline as stored, where no trade"
        " of the interval is stored (e.g. a kline-only import); a flat candle names where its close came from"
    )


class Candles(BaseModel):
    symbol: str
    interval: Interval
    candles: list[CandleOut]
    next_start: datetime | None = Field(
        description="open time of the next candle when more exist before `end`: pass it as `start`"
    )
    holes: list[CoveragePeriod] = Field(
        description="known holes of the trade stream the answer touches (see /v1/coverage): an interval without"
        " stored trades there has no candle, and a candle touching one may lack trades"
    )


class Stats(BaseModel):
    symbol: str
    start: datetime
    end: datetime
    trade_count: int
    mean_price: DecimalText | None = Field(description="arithmetic mean of trade prices; null without trades")
    vwap: DecimalText | None = Field(description="volume-weighted average price: quote volume / volume")
    high: DecimalText | None
    low: DecimalText | None
    volume: DecimalText
    quote_volume: DecimalText
    first_trade_time: datetime | None
    last_trade_time: datetime | None
    holes: list[CoveragePeriod] = Field(
        description="known holes of the trade stream in the range (see /v1/coverage): its trades there are not"
        " all stored, so the figures cover the stored trades only"
    )


class SmaPoint(BaseModel):
    open_time: datetime
    close: DecimalText
    sma: dict[str, DecimalText | None] = Field(
        description="window length -> mean of the last that many closes; null until that many exist"
    )


class Sma(BaseModel):
    symbol: str
    interval: Interval
    windows: list[int]
    points: list[SmaPoint]


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class TradeOut(BaseModel):
    trade_id: int
    trade_time: datetime
    price: DecimalText
    quantity: DecimalText
    side: Side = Field(description="the taker's side: sell when the buyer was the maker")


class TradesPage(BaseModel):
    symbol: str
    trades: list[TradeOut]
    next_from_id: int | None = Field(description="pass as from_id for the next page; null on the last page")


class Agreement(StrEnum):
    MATCH = "match"
    CLOSE_DIFFERS = "close_differs"
    MISSING_REST = "missing_rest"
    MISSING_WS = "missing_ws"


class SecondComparison(BaseModel):
    second: datetime
    ws_close: DecimalText | None = Field(description="price of the last WebSocket trade at or before the second's end")
    rest_close: DecimalText | None = Field(description="close of the 1s kline fetched over REST")
    difference: DecimalText | None = Field(description="ws_close - rest_close")
    ws_trade_count: int
    rest_trade_count: int | None
    agreement: Agreement


class Reconciliation(BaseModel):
    symbol: str
    start: datetime
    end: datetime
    seconds_compared: int
    matching: int
    differences: list[SecondComparison] = Field(description="every second that is not a match")
    seconds: list[SecondComparison] = Field(description="every second with a WS trade or a REST kline")


class StreamCoverage(BaseModel):
    stream: str = Field(examples=["trade", "kline_1m"])
    held: list[CoveragePeriod] = Field(description="periods the store holds complete, oldest first")
    holes: list[CoveragePeriod] = Field(description="periods the store knows it lacks, oldest first")


class Coverage(BaseModel):
    symbol: str
    streams: list[StreamCoverage] = Field(
        description="one entry per stream with recorded coverage (or the one asked for); a period that is in"
        " neither list is unknown: nothing vouches for it either way"
    )
