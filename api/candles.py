"""Candles from rollup rows, Binance's way, and indicators over them. Pure: no I/O.

A Binance kline exists for every interval from a symbol's first trade on, traded or not: an
interval without trades is flat at the previous close, with zero volume and no trade ids. Not
inside a known hole (the coverage table's, for the trade stream): there the store does not know
that nothing traded, so an interval without stored trades that touches a hole has no candle, and
after a hole no flat candle follows until a traded one gives a close again.

Prices and volumes stay the text PostgreSQL prints for NUMERIC (exact, never an exponent): a
day of 1m candles is 13,000 values that are only ever printed, and making each a Decimal first
would cost more than everything else the request does.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from api import intervals
from api.intervals import Interval
from schemas import decimals

ZERO = "0"


# Not frozen: a frozen dataclass sets each field through object.__setattr__, six times slower,
# and a day of 1m candles makes 1,440 of them. The fields are in the order of a rollup row
# (RollupRow), close time last, so that a row becomes a candle in one call.
@dataclass(slots=True)
class Candle:
    open_time: int  # epoch ms, like every time in this module
    # Exact decimals as text.
    open: str
    high: str
    low: str
    close: str
    volume: str
    quote_volume: str
    trade_count: int
    taker_buy_base_volume: str
    taker_buy_quote_volume: str
    first_trade_id: int | None
    last_trade_id: int | None
    close_time: int
    # What it was computed from: "trades" (the rollups), or "klines" (Binance's klines as stored,
    # where no trade of the interval is); a flat candle says where its close came from.
    source: str = "trades"


# A traded interval as api/queries/candles.py selects it: Candle's fields but the close time, in
# Candle's order. Positional, because a day of 1m candles is 17,000 values.
RollupRow = tuple[int, str, str, str, str, str, str, int, str, str, int, int]


def flat_candle(open_time: int, close_time: int, price: str, source: str = "trades") -> Candle:
    return Candle(open_time, price, price, price, price, ZERO, ZERO, 0, ZERO, ZERO, None, None, close_time, source)


def assemble(
    interval: Interval,
    opens: Sequence[int],
    rows: Mapping[int, RollupRow],
    previous_close: str | None,
    offset_ms: int = 0,
    holes: Sequence[tuple[int, int]] = (),
    klines: Mapping[int, RollupRow] | None = None,
) -> list[Candle]:
    """One candle per open time: the aggregated row if the interval traded, else the stored
    kline of that interval from `klines` if any, else flat at the previous close. Open times
    before any trade (no previous close) have no candle, nor those without trades or a kline
    that touch one of `holes` ([start, end) in ms, oldest first)."""
    candles: list[Candle] = []
    hole = 0
    previous_source = "trades"
    for open_time, close_time in zip(opens, intervals.close_times(interval, opens, offset_ms), strict=True):
        row = rows.get(open_time)
        in_hole = False
        if holes:
            while hole < len(holes) and holes[hole][1] <= open_time:
                hole += 1
            in_hole = hole < len(holes) and holes[hole][0] <= close_time
        kline = klines.get(open_time) if row is None and klines else None
        if row is not None:
            candle = Candle(*row, close_time)
        elif kline is not None:
            # Binance's own candle of the interval: whole, whatever the store lacks of its trades.
            candle = Candle(*kline, close_time, "klines")
            in_hole = False
        elif previous_close is not None and not in_hole:
            candle = flat_candle(open_time, close_time, previous_close, previous_source)
        else:
            previous_close = None  # the price after a hole is unknown until the next trade
            continue
        candles.append(candle)
        # A traded candle touching a hole may lack its last trades: its close is no price to carry on.
        previous_close = None if in_hole else candle.close
        previous_source = candle.source
    return candles


def cap_by_rollup_rows(
    interval: Interval, opens: Sequence[int], max_rows: int, keep_oldest: bool, offset_ms: int = 0
) -> list[int]:
    """The longest run of `opens` (oldest first if `keep_oldest`, else newest) whose candles are
    built from at most `max_rows` rollup rows: the bound on what one request may scan."""
    row_ms = intervals.rollup_ms(interval)
    ordered = list(opens) if keep_oldest else list(reversed(opens))
    kept: list[int] = []
    rows = 0
    for open_time in ordered:
        rows += (intervals.next_open_time(interval, open_time, offset_ms) - open_time) // row_ms
        if rows > max_rows and kept:
            break
        kept.append(open_time)
    return kept if keep_oldest else kept[::-1]


def moving_average(values: Sequence[Decimal], window: int) -> list[Decimal | None]:
    """Simple moving average: None until `window` values exist (like pandas' rolling mean). The
    running sum is exact, so is every mean that terminates (schemas/decimals.py)."""
    averages: list[Decimal | None] = []
    running = Decimal(0)
    for index, value in enumerate(values):
        running = decimals.add(running, value)
        if index >= window:
            running = decimals.subtract(running, values[index - window])
        averages.append(decimals.divide(running, window) if index >= window - 1 else None)
    return averages
