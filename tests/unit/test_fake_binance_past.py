"""The fake's past, regenerated segment by segment from saved states of its walk, is the day a plain
walk through it makes: the same trades, aggregate trades and klines for every query."""

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fake_binance import klines as kl
from fake_binance import past as past_module
from fake_binance.exchange_info import load_exchange_info
from fake_binance.klines import DAY_MS
from fake_binance.market import AggTrade, RandomWalkMarket, Trade
from fake_binance.past import PAST_ID_BASE, PastMarket

INFO = load_exchange_info()
SEED = 7
PER_DAY = 3_000
DAYS = 3
TODAY_MS = (DAYS + 1) * DAY_MS  # days 0..DAYS-1 are past
SYMBOL = "BTCUSDT"


@dataclass
class PlainDays:
    trades: list[Trade]
    aggs: list[AggTrade]


def plain_walk() -> PlainDays:
    """Every past day held whole, as the fake did before it saved states."""
    walked = PlainDays([], [])
    for day_index in range(DAYS):
        first_id = PAST_ID_BASE + day_index * PER_DAY + 1
        market = RandomWalkMarket(INFO.rules[SYMBOL], f"{SEED}:past:{day_index}", first_id, first_id)
        done = 0
        while done < PER_DAY:
            fill = market.next_fill(day_index * DAY_MS + done * DAY_MS // PER_DAY, max_trades=PER_DAY - done)
            done += len(fill.trades)
            walked.trades.extend(fill.trades)
            walked.aggs.append(fill.agg_trade)
    return walked


PLAIN = plain_walk()
TIMES = st.integers(min_value=0, max_value=DAYS * DAY_MS + DAY_MS // 2)
IDS = st.integers(min_value=PAST_ID_BASE - 5, max_value=PAST_ID_BASE + DAYS * PER_DAY + 5)


@pytest.fixture(autouse=True)
def small_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    # Segments of a few hundred trades: queries cross many of them and the days' ends.
    monkeypatch.setattr(past_module, "SEGMENT_TRADES", 250)


def market() -> PastMarket:
    return PastMarket(INFO, SEED, PER_DAY, TODAY_MS)


@settings(max_examples=60, deadline=None)
@given(TIMES, TIMES)
def test_trades_and_aggregates_between_two_times_are_the_plain_walks(start_ms: int, end_ms: int) -> None:
    past = market()
    assert list(past.trades_between(SYMBOL, start_ms, end_ms)) == [
        t for t in PLAIN.trades if start_ms <= t.trade_time < min(end_ms, past.end_ms)
    ]
    assert list(past.agg_trades_between(SYMBOL, start_ms, end_ms)) == [
        a for a in PLAIN.aggs if start_ms <= a.trade_time < min(end_ms, past.end_ms)
    ]


@settings(max_examples=60, deadline=None)
@given(IDS, st.integers(min_value=1, max_value=1_000))
def test_pages_by_id_are_the_plain_walks(from_id: int, limit: int) -> None:
    past = market()
    assert past.trades_from_id(SYMBOL, from_id, limit) == [t for t in PLAIN.trades if t.trade_id >= from_id][:limit]
    assert past.agg_trades_from_id(SYMBOL, from_id, limit) == [a for a in PLAIN.aggs if a.agg_id >= from_id][:limit]


@settings(max_examples=40, deadline=None)
@given(TIMES, st.one_of(st.none(), TIMES), st.integers(min_value=1, max_value=1_000))
def test_aggregates_from_a_start_time_are_the_plain_walks(start_ms: int, end_ms: int | None, limit: int) -> None:
    stop = TODAY_MS if end_ms is None else end_ms + 1
    expected = [a for a in PLAIN.aggs if start_ms <= a.trade_time < min(stop, market().end_ms)][:limit]
    assert market().agg_trades_query(SYMBOL, start_ms, end_ms, limit) == expected


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(["1m", "15m", "1h", "1d"]), st.integers(min_value=0, max_value=DAYS - 1), st.integers(0, 3))
def test_klines_are_the_candles_of_the_plain_walks_trades(interval: str, day_index: int, hours: int) -> None:
    start_ms, end_ms = day_index * DAY_MS + hours * kl.HOUR_MS, (day_index + 1) * DAY_MS
    trades = [t for t in PLAIN.trades if start_ms <= t.trade_time < end_ms]
    last_open = kl.previous_open_time(interval, end_ms)
    expected = kl.klines_between(trades, [t.trade_time for t in trades], SYMBOL, interval, start_ms, last_open)
    assert list(market().klines_between(SYMBOL, interval, start_ms, end_ms)) == expected
    opens = [kl.first_open_at_or_after(interval, start_ms)]
    while len(opens) < 50:
        opens.append(kl.next_open_time(interval, opens[-1]))
    queried = market().klines_query(SYMBOL, interval, start_ms, end_ms - 1, 50)
    # A kline with no trades before it in the period does not exist (klines_between's rule).
    assert queried == [k for k in expected if k.open_time in opens]


def test_a_day_is_held_as_saved_states_not_as_its_trades() -> None:
    day = market().day(SYMBOL, 1)
    assert len(day.states) == len(day.trade_starts) == -(-PER_DAY // past_module.SEGMENT_TRADES)
    assert day.agg_count == sum(1 for a in PLAIN.aggs if DAY_MS <= a.trade_time < 2 * DAY_MS)
