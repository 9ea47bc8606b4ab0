"""Kline pushes computed from stored trades, as Binance pushes them. Pure: no I/O, no clock.

The replay's clock ticks at every whole second of the stored time. At a tick, every kline that
closed before it is pushed once with "x":true (an interval without trades flat at the previous
close, as on Binance); then the open kline is shown if Binance shows it at that second
(schemas/kline_intervals.py: every 2 s, and a 1s kline only at its close). A push's event time is
the tick. Interval boundaries are the api's (api/intervals.py), prices are printed with the
symbol's precisions as the api's /api/v3/klines prints them (api/binance_format.py).
"""

from dataclasses import dataclass, replace
from decimal import Decimal

from api import intervals
from api.binance_format import Precision, format_decimal
from api.intervals import Interval
from schemas import decimals
from schemas.kline_intervals import pushes_open_kline

ZERO = Decimal(0)
# Binance's trade ids of a kline without trades.
NO_TRADE = -1


@dataclass(frozen=True, slots=True)
class Kline:
    open_time: int
    close_time: int
    first_trade_id: int
    last_trade_id: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal = ZERO
    quote_volume: Decimal = ZERO
    trade_count: int = 0
    taker_buy_volume: Decimal = ZERO
    taker_buy_quote_volume: Decimal = ZERO


def flat_kline(interval: Interval, open_ms: int, price: Decimal) -> Kline:
    close_ms = intervals.close_time(interval, open_ms)
    return Kline(open_ms, close_ms, NO_TRADE, NO_TRADE, price, price, price, price)


def with_trade(kline: Kline, trade_id: int, price: Decimal, quantity: Decimal, buyer_is_maker: bool) -> Kline:
    """The kline with one more trade; open and close are its first and last trade by id."""
    quote = decimals.multiply(price, quantity)
    # The taker bought when the buyer was not the maker.
    taker_buy = not buyer_is_maker
    if kline.trade_count == 0:
        return replace(
            kline,
            first_trade_id=trade_id,
            last_trade_id=trade_id,
            open=price,
            high=price,
            low=price,
            close=price,
            volume=quantity,
            quote_volume=quote,
            trade_count=1,
            taker_buy_volume=quantity if taker_buy else ZERO,
            taker_buy_quote_volume=quote if taker_buy else ZERO,
        )
    return replace(
        kline,
        last_trade_id=trade_id,
        high=max(kline.high, price),
        low=min(kline.low, price),
        close=price,
        volume=decimals.add(kline.volume, quantity),
        quote_volume=decimals.add(kline.quote_volume, quote),
        trade_count=kline.trade_count + 1,
        taker_buy_volume=decimals.add(kline.taker_buy_volume, quantity) if taker_buy else kline.taker_buy_volume,
        taker_buy_quote_volume=(
            decimals.add(kline.taker_buy_quote_volume, quote) if taker_buy else kline.taker_buy_quote_volume
        ),
    )


def kline_payload(symbol: str, interval: Interval, kline: Kline, event_ms: int, closed: bool, p: Precision) -> str:
    """`{"e":"kline","E":…,"s":…,"k":{"t","T","s","i","f","L","o","c","h","l","v","n","x","q","V","Q","B"}}`."""
    return (
        f'{{"e":"kline","E":{event_ms},"s":"{symbol}","k":{{"t":{kline.open_time},"T":{kline.close_time},'
        f'"s":"{symbol}","i":"{interval.value}","f":{kline.first_trade_id},"L":{kline.last_trade_id},'
        f'"o":"{format_decimal(kline.open, p.price)}","c":"{format_decimal(kline.close, p.price)}",'
        f'"h":"{format_decimal(kline.high, p.price)}","l":"{format_decimal(kline.low, p.price)}",'
        f'"v":"{format_decimal(kline.volume, p.quantity)}","n":{kline.trade_count},'
        f'"x":{"true" if closed else "false"},"q":"{format_decimal(kline.quote_volume, p.quote)}",'
        f'"V":"{format_decimal(kline.taker_buy_volume, p.quantity)}",'
        f'"Q":"{format_decimal(kline.taker_buy_quote_volume, p.quote)}","B":"0"}}}}'
    )


class KlinePushes:
    """One (symbol, interval) stream: fed the symbol's trades in id order and the ticks between them."""

    def __init__(self, symbol: str, interval: Interval, precision: Precision) -> None:
        self.symbol = symbol
        self.interval = interval
        self.precision = precision
        self.current: Kline | None = None  # none before the symbol's first trade, as on Binance

    def add_trade(self, trade_ms: int, trade_id: int, price: Decimal, quantity: Decimal, buyer_is_maker: bool) -> None:
        """A trade before the next tick. One whose time runs back before the open kline (ids and
        times disagree) is counted in the open kline: what was pushed is not taken back."""
        if self.current is None:
            self.current = flat_kline(self.interval, intervals.open_time(self.interval, trade_ms), price)
        self.current = with_trade(self.current, trade_id, price, quantity, buyer_is_maker)

    def tick(self, tick_ms: int) -> list[str]:
        """The payloads Binance pushes at the whole second `tick_ms`."""
        pushes: list[str] = []
        if self.current is None:
            return pushes
        while self.current.close_time < tick_ms:
            pushes.append(self._payload(self.current, tick_ms, closed=True))
            following = intervals.next_open_time(self.interval, self.current.open_time)
            self.current = flat_kline(self.interval, following, self.current.close)
        if pushes_open_kline(self.interval.value, tick_ms):
            pushes.append(self._payload(self.current, tick_ms, closed=False))
        return pushes

    def _payload(self, kline: Kline, event_ms: int, closed: bool) -> str:
        return kline_payload(self.symbol, self.interval, kline, event_ms, closed, self.precision)
