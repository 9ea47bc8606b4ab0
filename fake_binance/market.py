"""The pure market model: a seeded random walk of trades on a symbol's tick and lot grid.

No I/O and no clock: the caller passes the time of every fill. Prices and quantities are
Decimal throughout, always whole multiples of the symbol's tickSize and stepSize.
"""

from __future__ import annotations

import itertools
import random
from array import array
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from fake_binance.exchange_info import SymbolRules

# Rough prices of 2021-10-12 (the date of the recorded exchangeInfo), so the fake's numbers
# look like that day's market. Symbols missing here start at 10,000 ticks.
REFERENCE_PRICES: dict[str, str] = {
    "BTCUSDT": "56000.00",
    "ETHUSDT": "3500.00",
    "BNBUSDT": "410.0",
    "BNBBTC": "0.007300",
    "ETHBTC": "0.062500",
    "LTCBTC": "0.003100",
    "LTCUSDT": "175.0",
    "XRPUSDT": "1.1500",
    "XRPBTC": "0.00002050",
    "ADAUSDT": "2.180",
    "ADABTC": "0.00003900",
    "ADABNB": "0.0053000",
    "SOLUSDT": "150.00",
    "DOTUSDT": "32.00",
    "DOGEUSDT": "0.2300",
    "LINKUSDT": "25.00",
    "MATICUSDT": "1.400",
    "AVAXUSDT": "57.00",
    "TRXUSDT": "0.09500",
    "BCHUSDT": "620.0",
    "ETCUSDT": "54.00",
    "XLMUSDT": "0.3400",
    "ATOMUSDT": "37.00",
    "UNIUSDT": "24.00",
    "FILUSDT": "64.00",
    "SHIBUSDT": "0.00002500",
    "BTCBUSD": "56000.00",
    "ETHBUSD": "3500.00",
    "BNBBUSD": "410.0",
    "BTCEUR": "48400.00",
    "ETHEUR": "3030.00",
    "BTCGBP": "41100.00",
    "USDCUSDT": "1.0000",
    "BUSDUSDT": "1.0000",
    "BTCUSDC": "56000.00",
    "ETHUSDC": "3500.00",
    "NKNUSDT": "0.3528",
    "BLZETH": "0.00006550",
    "LRCBTC": "0.00000638",
    "RUNEEUR": "8.900",
}

# How many trades one taker order fills at one price level, and how often.
_FILL_SIZES = (1, 2, 3, 4, 5)
FILL_WEIGHTS = (60, 22, 10, 5, 3)


@dataclass(frozen=True, slots=True)
class Trade:
    symbol: str
    trade_id: int
    price: Decimal
    qty: Decimal
    trade_time: int  # ms since the epoch, UTC
    event_time: int  # ms since the epoch, UTC
    buyer_is_maker: bool

    @property
    def quote_qty(self) -> Decimal:
        return self.price * self.qty


@dataclass(frozen=True, slots=True)
class AggTrade:
    """Trades of one taker order at one price: Binance's aggregate trade."""

    symbol: str
    agg_id: int
    price: Decimal
    qty: Decimal
    first_trade_id: int
    last_trade_id: int
    trade_time: int
    event_time: int
    buyer_is_maker: bool


@dataclass(frozen=True, slots=True)
class BookTop:
    symbol: str
    update_id: int
    bid_price: Decimal
    bid_qty: Decimal
    ask_price: Decimal
    ask_qty: Decimal


@dataclass(frozen=True, slots=True)
class Fill:
    """One taker order hitting one price level: its trades, their aggregate, the new top of book."""

    trades: tuple[Trade, ...]
    agg_trade: AggTrade
    book: BookTop


@dataclass(frozen=True, slots=True)
class WalkState:
    """Where a market's trades stand: enough to go on from there (the past's checkpoints). The
    generator's 625 words packed: 2.5 kB, not the 20 kB of its state as a tuple of ints."""

    words: array[int]
    gauss_next: float | None
    price_ticks: int
    next_trade_id: int
    next_agg_id: int
    next_update_id: int


def reference_price(rules: SymbolRules) -> Decimal:
    """Where a symbol's random walk starts, on its tick grid."""
    text = REFERENCE_PRICES.get(rules.symbol)
    price = Decimal(text) if text is not None else rules.tick_size * 10_000
    ticks = max(1, int(price / rules.tick_size))
    return rules.tick_size * ticks


class RandomWalkMarket:
    """One symbol's trades: deterministic for (seed, symbol), times supplied by the caller."""

    def __init__(
        self,
        rules: SymbolRules,
        seed: int | str,
        first_trade_id: int = 1,
        first_agg_id: int = 1,
        first_update_id: int = 1,
        start_price: Decimal | None = None,
        fill_weights: tuple[int, ...] = FILL_WEIGHTS,
    ) -> None:
        self.rules = rules
        # A string seed is hashed the same way on every platform and Python run.
        self._rng = random.Random(f"{seed}:{rules.symbol}")
        # Quotes that move without a trade draw from their own generator, so the trades stay the
        # same for a seed however many quotes came between them.
        self._quote_rng = random.Random(f"{seed}:{rules.symbol}:quotes")
        # Cumulative, once: choices() with cum_weights draws exactly what it draws with weights.
        self._fill_cum_weights = list(itertools.accumulate(fill_weights))
        self._next_trade_id = first_trade_id
        self._next_agg_id = first_agg_id
        self._next_update_id = first_update_id
        price = start_price if start_price is not None else reference_price(rules)
        self._price_ticks = max(1, int(price / rules.tick_size))
        self._max_ticks = max(1, int(rules.max_price / rules.tick_size)) if rules.max_price > 0 else None
        self._min_ticks = max(1, int(rules.min_price / rules.tick_size))
        self._min_steps = max(1, int(rules.min_qty / rules.step_size)) if rules.step_size > 0 else 1

    @property
    def last_price(self) -> Decimal:
        return self.rules.tick_size * self._price_ticks

    @property
    def next_trade_id(self) -> int:
        return self._next_trade_id

    def walk_state(self) -> WalkState:
        """The trades' state now (not the quotes': the past has no book of its own)."""
        version, words, gauss_next = self._rng.getstate()
        assert version == 3
        return WalkState(
            array("I", words),
            gauss_next,
            self._price_ticks,
            self._next_trade_id,
            self._next_agg_id,
            self._next_update_id,
        )

    def resume(self, state: WalkState) -> None:
        """Go on from `state`: the fills that follow are those that followed it."""
        self._rng.setstate((3, tuple(state.words), state.gauss_next))
        self._price_ticks = state.price_ticks
        self._next_trade_id = state.next_trade_id
        self._next_agg_id = state.next_agg_id
        self._next_update_id = state.next_update_id

    def next_fill(self, time_ms: int, max_trades: int | None = None) -> Fill:
        """The next taker order: 1 to 5 trades at one new price, all at `time_ms`."""
        rng = self._rng
        count = rng.choices(_FILL_SIZES, cum_weights=self._fill_cum_weights)[0]
        if max_trades is not None:
            count = max(1, min(count, max_trades))
        self._step_price()
        price = self.last_price
        buyer_is_maker = rng.random() < 0.5
        trades = tuple(
            Trade(
                symbol=self.rules.symbol,
                trade_id=self._next_trade_id + i,
                price=price,
                qty=self._random_qty(price),
                trade_time=time_ms,
                event_time=time_ms,
                buyer_is_maker=buyer_is_maker,
            )
            for i in range(count)
        )
        self._next_trade_id += count
        agg = AggTrade(
            symbol=self.rules.symbol,
            agg_id=self._next_agg_id,
            price=price,
            qty=sum((t.qty for t in trades), Decimal(0)),
            first_trade_id=trades[0].trade_id,
            last_trade_id=trades[-1].trade_id,
            trade_time=time_ms,
            event_time=time_ms,
            buyer_is_maker=buyer_is_maker,
        )
        self._next_agg_id += 1
        return Fill(trades=trades, agg_trade=agg, book=self._book_after(price, buyer_is_maker))

    def next_quote(self) -> BookTop:
        """The top of the book moving without a trade: a new spread and new sizes around the last price."""
        rng = self._quote_rng
        tick = self.rules.tick_size
        price = self.last_price
        bid = max(tick, price - tick * rng.randint(0, 2))
        ask = max(bid + tick, price + tick * rng.randint(0, 2))
        self._next_update_id += rng.randint(1, 5)
        return BookTop(
            symbol=self.rules.symbol,
            update_id=self._next_update_id,
            bid_price=bid,
            bid_qty=self._quote_qty(price, rng),
            ask_price=ask,
            ask_qty=self._quote_qty(price, rng),
        )

    def _quote_qty(self, price: Decimal, rng: random.Random) -> Decimal:
        rules = self.rules
        notional = rules.min_notional * rng.randint(1, 10 ** rng.randint(0, 3))
        steps = int((notional / price / rules.step_size).to_integral_value(rounding=ROUND_DOWN))
        return rules.step_size * max(steps, self._min_steps)

    def _step_price(self) -> None:
        # Moves scale with the price (about 0.005 % at most) so that a 0.01 tick on BTCUSDT
        # and a 0.00000001 tick on SHIBUSDT both wander visibly but slowly.
        reach = max(1, self._price_ticks // 20_000)
        ticks = self._price_ticks + self._rng.randint(-reach, reach)
        ticks = max(ticks, self._min_ticks)
        if self._max_ticks is not None:
            ticks = min(ticks, self._max_ticks)
        self._price_ticks = ticks

    def _random_qty(self, price: Decimal) -> Decimal:
        # Order values from the symbol's minimum notional up to 1,000 times it, so that
        # quantities look alike across BTC-, USDT- and EUR-quoted symbols.
        rules = self.rules
        multiple = self._rng.randint(1, 10 ** self._rng.randint(0, 3))
        notional = rules.min_notional * multiple
        steps = int((notional / price / rules.step_size).to_integral_value(rounding=ROUND_DOWN))
        return rules.step_size * max(steps, self._min_steps)

    def _book_after(self, price: Decimal, buyer_is_maker: bool) -> BookTop:
        rng = self._rng
        tick = self.rules.tick_size
        spread = tick * rng.randint(1, 3)
        # A taker sell (buyer is maker) trades at the bid; a taker buy at the ask.
        if buyer_is_maker:
            bid, ask = price, price + spread
        else:
            bid, ask = max(tick, price - spread), price
        self._next_update_id += rng.randint(1, 5)
        return BookTop(
            symbol=self.rules.symbol,
            update_id=self._next_update_id,
            bid_price=bid,
            bid_qty=self._random_qty(price),
            ask_price=ask,
            ask_qty=self._random_qty(price),
        )
