"""The fake's whole-market mode as pure logic: the rate law, its determinism, history agreeing with
the streams, listing and halting, the limits of connections and streams."""

import asyncio
import contextlib
import time
from collections import Counter

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fake_binance.exchange import Clock, Event, Exchange
from fake_binance.exchange_info import load_exchange_info
from fake_binance.settings import FakeBinanceSettings
from fake_binance.whole_market import BurstSchedule, trade_rates, zipf_exponent
from fake_binance.ws_server import MAX_STREAMS, AttemptWindow, handle_control
from schemas.shards import shard_of

NOW_MS = 1_763_800_000_000
FULL_INFO = load_exchange_info(full=True)


class Recorder:
    """A subscriber that keeps every payload it is sent."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, object]] = []

    def deliver(self, event: Event) -> None:
        self.payloads.append(orjson.loads(event.text(1, False)))


def whole_market(seed: int = 1, **overrides: object) -> Exchange:
    settings = FakeBinanceSettings.model_validate({"market": "all", "seed": seed, **overrides})
    return Exchange(settings, load_exchange_info(full=True))


def watch(exchange: Exchange, kinds: tuple[str, ...] = ("trade", "aggTrade", "bookTicker")) -> Recorder:
    recorder = Recorder()
    exchange.subscribe(recorder, [f"{s.lower()}@{k}" for s in exchange.info.symbols for k in kinds])
    return recorder


def run_ticks(exchange: Exchange, seconds: int, tick_s: float = 0.5) -> None:
    for step in range(int(seconds / tick_s)):
        exchange._trade_tick(tick_s, 1.0, NOW_MS + int(step * tick_s * 1000))


def test_the_full_recording_lists_every_symbol() -> None:
    assert len(FULL_INFO.symbols) == 1695 and len(FULL_INFO.trading()) == 1262


@pytest.mark.parametrize(("total", "top"), [(1000, 50), (100, 5), (20_000, 1000), (50, 49)])
def test_rates_sum_to_the_total_with_the_busiest_at_the_top_rate(total: float, top: float) -> None:
    rates = trade_rates(FULL_INFO.trading(), 1, total, top)
    assert sum(rates.values()) == pytest.approx(total)
    assert max(rates.values()) == pytest.approx(top, rel=1e-6)
    assert rates["BTCUSDT"] == max(rates.values())


def test_rates_are_heavy_tailed() -> None:
    ordered = sorted(trade_rates(FULL_INFO.trading(), 1, 1000, 50).values(), reverse=True)
    # A tenth of the symbols carries about half the trades; the quietest still trade.
    assert 0.4 < sum(ordered[:126]) / 1000 < 0.6
    assert 0 < ordered[-1] < 0.5


@given(st.integers(min_value=2, max_value=3000), st.floats(min_value=1, max_value=1e5))
def test_a_top_rate_at_or_below_the_even_share_is_an_even_market(count: int, total: float) -> None:
    assert zipf_exponent(count, total, total / count) == pytest.approx(0.0, abs=1e-9)


def test_same_seed_same_market() -> None:
    first, second = (
        whole_market(7, market_book_tickers_per_second=500),
        whole_market(7, market_book_tickers_per_second=500),
    )
    seen = [watch(first), watch(second)]
    run_ticks(first, 3)
    run_ticks(second, 3)
    assert seen[0].payloads == seen[1].payloads and len(seen[0].payloads) > 4000


def test_another_seed_another_market() -> None:
    first, second = whole_market(7, market_book_tickers_per_second=0), whole_market(8, market_book_tickers_per_second=0)
    seen = [watch(first), watch(second)]
    run_ticks(first, 2)
    run_ticks(second, 2)
    assert seen[0].payloads != seen[1].payloads


def test_rates_of_trades_aggregates_and_quotes() -> None:
    exchange = whole_market()
    recorder = watch(exchange)
    run_ticks(exchange, 10)
    kinds = Counter(str(p.get("e", "bookTicker")) for p in recorder.payloads)
    assert 900 < kinds["trade"] / 10 < 1100
    assert 0.65 < kinds["aggTrade"] / kinds["trade"] < 0.76
    assert 4500 < kinds["bookTicker"] / 10 < 5500
    busiest = Counter(str(p["s"]) for p in recorder.payloads if p.get("e") == "trade").most_common(1)[0]
    assert busiest[0] == "BTCUSDT" and 40 < busiest[1] / 10 < 60


def test_rest_history_holds_exactly_the_streamed_trades() -> None:
    exchange = whole_market()
    recorder = watch(exchange, ("trade",))
    run_ticks(exchange, 3)
    streamed: dict[str, list[int]] = {}
    for payload in recorder.payloads:
        streamed.setdefault(str(payload["s"]), []).append(int(str(payload["t"])))
    assert len(streamed) > 100
    for symbol, ids in streamed.items():
        history = exchange.histories[symbol].trades_from_id(ids[0], 10_000)
        assert [t.trade_id for t in history] == ids


def test_a_halted_symbol_stops_and_a_resumed_one_goes_on() -> None:
    exchange = whole_market(market_trades_per_second=100, market_top_trades_per_second=20)
    exchange.set_symbol_status("BTCUSDT", "BREAK")
    run_ticks(exchange, 5)
    assert exchange.trades_emitted["BTCUSDT"] == 0 and exchange.trades_emitted["ETHUSDT"] > 0
    exchange.set_symbol_status("BTCUSDT", "TRADING")
    run_ticks(exchange, 5)
    assert exchange.trades_emitted["BTCUSDT"] > 0


def test_a_listed_symbol_trades_with_the_rules_it_copied() -> None:
    exchange = whole_market()
    exchange.list_symbol("NEWCOINUSDT", like="NKNUSDT", trades_per_second=10)
    assert exchange.info.rules["NEWCOINUSDT"].tick_size == exchange.info.rules["NKNUSDT"].tick_size
    entry = exchange.info.document(NOW_MS, ["NEWCOINUSDT"])["symbols"][0]
    assert (entry["status"], entry["baseAsset"], entry["quoteAsset"]) == ("TRADING", "NEWCOIN", "USDT")
    run_ticks(exchange, 5)
    assert 40 <= exchange.trades_emitted["NEWCOINUSDT"] <= 60


@pytest.mark.parametrize("status", ["HALTED", "trading!", ""])
def test_an_unknown_status_is_refused(status: str) -> None:
    with pytest.raises(ValueError, match="status must be one of"):
        whole_market().set_symbol_status("BTCUSDT", status)


def test_history_forgets_what_is_older_than_its_window() -> None:
    exchange = whole_market(market_book_tickers_per_second=0)
    run_ticks(exchange, 10)
    history = exchange.histories["BTCUSDT"]
    cutoff = NOW_MS + 5000
    kept = [t.trade_id for t in history.trades if t.trade_time >= cutoff]
    history.forget_before(cutoff)
    assert [t.trade_id for t in history.trades] == kept and history.trade_ids == kept
    assert all(time >= cutoff for time in history.agg_times)


def test_bursts_come_on_schedule() -> None:
    bursts = BurstSchedule(factor=20, length_s=60, every_s=600, first_s=300)
    assert [bursts.factor_at(t) for t in (0, 299.9, 300, 359.9, 360, 899, 900, 960)] == [1, 1, 20, 20, 1, 1, 20, 1]


def test_the_301st_connection_attempt_in_five_minutes_is_refused() -> None:
    window = AttemptWindow(300)
    assert all(window.allow("127.0.0.1", i * 0.5) == 0 for i in range(300))
    assert window.allow("127.0.0.1", 150.0) == pytest.approx(150.0)
    assert window.allow("127.0.0.2", 150.0) == 0  # per IP
    assert window.allow("127.0.0.1", 300.0) == 0  # the first attempt has left the window


def test_a_subscription_past_1024_streams_is_refused() -> None:
    subscribed = [f"s{i}usdt@trade" for i in range(MAX_STREAMS - 1)]
    request = '{"method":"SUBSCRIBE","params":["a1usdt@trade","a2usdt@trade"],"id":1}'
    outcome = handle_control(request, subscribed, True)
    assert orjson.loads(outcome.reply) == {"error": {"code": 2, "msg": "Invalid request: too many streams"}, "id": 1}
    assert outcome.subscribe == []


def test_a_kline_stream_resubscribed_goes_on_without_a_pass_over_the_history(monkeypatch: pytest.MonkeyPatch) -> None:
    # After a burst a reconnecting client resubscribes every kline stream; rebuilding each open
    # kline from the history blocked the fake's loop for seconds (handshakes timed out, retried).
    settings = FakeBinanceSettings.model_validate({"market": "all", "seed": 1})
    exchange = Exchange(settings, FULL_INFO, Clock(lambda: NOW_MS / 1000))
    stream = "btcusdt@kline_1m"
    first, second = Recorder(), Recorder()
    exchange.subscribe(first, [stream])
    run_ticks(exchange, 4)
    exchange.unsubscribe(first, [stream])
    run_ticks(exchange, 4)  # trades while nobody watches still count in the open kline

    def no_history_pass(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the open kline was rebuilt from the history")

    monkeypatch.setattr("fake_binance.klines.klines_between", no_history_pass)
    exchange.subscribe(second, [stream])
    exchange.push_klines(NOW_MS + 4000)
    kline = second.payloads[-1]["k"]
    assert isinstance(kline, dict)
    history = exchange.histories["BTCUSDT"]
    in_interval = [t for t in history.trades if kline["t"] <= t.trade_time <= kline["T"]]
    assert in_interval and kline["n"] == len(in_interval)
    assert (kline["f"], kline["L"]) == (in_interval[0].trade_id, in_interval[-1].trade_id)


def test_a_stalled_market_loop_skips_the_stall_instead_of_trading_it_all_at_once() -> None:
    # Short of CPU, the loop used to trade everything due in one go: its sockets starved.
    exchange = whole_market(market_trades_per_second=20_000, market_burst_s=0, market_tick_s=0.05)

    async def stall_once() -> float:
        task = asyncio.create_task(exchange._trade_whole_market())
        await asyncio.sleep(0.2)
        time.sleep(1.0)  # the event loop blocked: a starved process
        await asyncio.sleep(0.2)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return exchange.market_seconds_skipped

    started = time.monotonic()
    skipped = asyncio.run(stall_once())
    wall_s = time.monotonic() - started
    assert skipped >= 1.0 - 10 * 0.05
    traded = sum(exchange.trades_emitted.values())
    # Trades for the time traded (plus each symbol's starting fraction and a fill's rounding), not
    # for the stall too: that would be 20,000 a second of the whole wall time.
    assert 0 < traded <= 20_000 * (wall_s - skipped) + 2 * len(exchange.trade_pacers) < 20_000 * wall_s


def test_sharded_fakes_make_the_one_market_between_them() -> None:
    # FAKE_BINANCE_MARKET_SHARD: n fakes, each trading the symbols of producer shard i of n.
    whole = whole_market(seed=3)
    halves = [whole_market(seed=3, market_shard=f"{index}/2") for index in (0, 1)]
    for index, half in enumerate(halves):
        assert half.trade_pacers and all(shard_of(symbol, 2) == index for symbol in half.trade_pacers)
        assert set(half.book_pacers) == set(half.trade_pacers)
        assert half.info.trading() == whole.info.trading()  # exchangeInfo lists them all
    assert set(halves[0].trade_pacers) | set(halves[1].trade_pacers) == set(whole.trade_pacers)
    assert not set(halves[0].trade_pacers) & set(halves[1].trade_pacers)
    for half in halves:
        for symbol, pacer in half.trade_pacers.items():
            assert pacer.rate == whole.trade_pacers[symbol].rate
            assert half.book_pacers[symbol].rate == whole.book_pacers[symbol].rate
    # And the same trades: a symbol's market does not depend on where it is made.
    run_ticks(whole, 2)
    for half in halves:
        run_ticks(half, 2)
        for symbol in half.trade_pacers:
            assert half.histories[symbol].trade_ids == whole.histories[symbol].trade_ids
            assert [t.price for t in half.histories[symbol].trades] == [t.price for t in whole.histories[symbol].trades]


@pytest.mark.parametrize("value", ["2/2", "0/0", "1", "a/b", "-1/2", "0/2/3"])
def test_an_impossible_market_shard_is_refused_by_name(value: str) -> None:
    with pytest.raises(ValueError, match="shard"):
        FakeBinanceSettings.model_validate({"market": "all", "market_shard": value})
