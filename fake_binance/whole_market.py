"""The whole market's shape: which symbol trades how often, and when the bursts come. Pure.

Trading activity across an exchange's symbols is heavy-tailed: a few symbols carry most trades and
most symbols trade rarely. Rates here follow Zipf's law, rate(rank) = c / rank**s, with the exponent
s solved so that the busiest symbol gets the top rate asked for and all of them the total asked for.
Which symbol gets which rank is fixed by the seed, the best-known symbols (market.REFERENCE_PRICES)
first, so the same seed always gives the same market.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from fake_binance.market import REFERENCE_PRICES

# Trades per taker order at one price in whole-market mode: 1.4 trades per order on average, so
# about 0.7 aggregate trades per trade, as Binance's spot market shows.
WHOLE_MARKET_FILL_WEIGHTS = (75, 15, 6, 3, 1)


def fills_per_trade(weights: Sequence[int]) -> float:
    """Taker orders (so aggregate trades) per trade when an order fills 1, 2, ... trades with these weights."""
    return sum(weights) / sum(size * weight for size, weight in enumerate(weights, start=1))


def zipf_exponent(count: int, total: float, top: float) -> float:
    """The s for which c / rank**s over `count` ranks sums to `total` with c = `top`.

    The share of rank 1 falls as s falls (s = 0 spreads the total evenly), so bisection finds it.
    A top rate at or below the even share gives 0; one at or above the total, a very steep law.
    """
    if count <= 1 or top * count <= total:
        return 0.0
    wanted = top / total

    def top_share(s: float) -> float:
        return 1.0 / math.fsum(float(rank) ** -s for rank in range(1, count + 1))

    low, high = 0.0, 8.0
    if top_share(high) < wanted:
        return high
    for _ in range(60):
        middle = (low + high) / 2
        if top_share(middle) < wanted:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def ranked_symbols(symbols: Sequence[str], seed: int) -> list[str]:
    """The symbols busiest first: the reference symbols in their order, the rest shuffled by the seed."""
    known = [name for name in REFERENCE_PRICES if name in set(symbols)]
    rest = sorted(set(symbols) - set(known))
    random.Random(f"{seed}:ranks").shuffle(rest)
    return known + rest


def trade_rates(symbols: Sequence[str], seed: int, total: float, top: float) -> dict[str, float]:
    """Trades per second of every symbol, summing to `total`, the busiest at `top` (or less)."""
    ranked = ranked_symbols(symbols, seed)
    if not ranked:
        return {}
    exponent = zipf_exponent(len(ranked), total, top)
    weights = [rank**-exponent for rank in range(1, len(ranked) + 1)]
    scale = total / math.fsum(weights)
    return {name: weight * scale for name, weight in zip(ranked, weights, strict=True)}


def book_rates(trades: dict[str, float], total: float) -> dict[str, float]:
    """bookTicker updates per second of every symbol: `total` shared in proportion to the trades
    (quotes move most where trading is busiest)."""
    trade_total = math.fsum(trades.values())
    if trade_total <= 0:
        return dict.fromkeys(trades, 0.0)
    return {name: total * rate / trade_total for name, rate in trades.items()}


@dataclass(frozen=True, slots=True)
class BurstSchedule:
    """Bursts of `factor` times the trade rate, `length_s` long, every `every_s`, the first at `first_s`."""

    factor: float
    length_s: float
    every_s: float
    first_s: float

    def factor_at(self, elapsed_s: float) -> float:
        """The trade rate multiplier `elapsed_s` after the market opened."""
        if self.length_s <= 0 or elapsed_s < self.first_s:
            return 1.0
        return self.factor if (elapsed_s - self.first_s) % self.every_s < self.length_s else 1.0

    def start_of(self, index: int) -> float:
        """When the burst number `index` (from 0) starts, in seconds after the open."""
        return self.first_s + index * self.every_s


class Pacer:
    """Turns a rate into whole events per tick, the fractions carried, so the long-run rate is exact.

    The starting fraction is drawn from the seed so that symbols of the same rate do not all fire in
    the same tick.
    """

    __slots__ = ("credit", "rate")

    def __init__(self, rate: float, phase: float) -> None:
        self.rate = rate
        self.credit = phase

    def due(self, elapsed_s: float, factor: float = 1.0) -> int:
        """Events due after another `elapsed_s` seconds at `factor` times the rate."""
        self.credit += self.rate * factor * elapsed_s
        return int(self.credit)

    def spend(self, count: int) -> None:
        self.credit -= count
