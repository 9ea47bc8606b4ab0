"""The fake exchange's misbehaviours (fake_binance.faults): pure logic, no sockets."""

import orjson

from fake_binance import wire
from fake_binance.exchange_info import load_exchange_info
from fake_binance.faults import GARBAGE, Faults
from fake_binance.market import RandomWalkMarket
from fake_binance.settings import FakeBinanceSettings


def trade_frame(trade_id: int) -> str:
    info = load_exchange_info()
    trade = RandomWalkMarket(info.rules["BTCUSDT"], seed=1, first_trade_id=trade_id).next_fill(1_700_000_000_000)
    return wire.combined_frame("btcusdt@trade", wire.encode(wire.trade_payload(trade.trades[0], info.rules["BTCUSDT"])))


def test_one_off_gaps_skip_that_many_trades() -> None:
    faults = Faults(skip_trades=2)
    assert [faults.skip_trade() for _ in range(4)] == [True, True, False, False]
    assert faults.trades_skipped == 2


def test_standing_gaps_skip_one_in_n_and_its_aggregate() -> None:
    faults = Faults(skip_every=3)
    skipped = [faults.skip_trade() for _ in range(9)]
    assert skipped == [False, False, True] * 3
    assert faults.skip_agg_trade(trades_skipped_in_fill=True)
    assert not faults.skip_agg_trade(trades_skipped_in_fill=False)


def test_truncated_frames_cut_the_trade_id() -> None:
    faults = Faults(malformed=1)
    text = trade_frame(123456)
    [cut] = faults.corrupt("btcusdt@trade", text)
    assert text.startswith(cut) and len(cut) < len(text)
    assert cut.endswith('"t":123')
    assert faults.corrupt("btcusdt@trade", text) == [text], "only as many as asked"


def test_garbage_comes_before_the_intact_frame_and_only_on_trade_streams() -> None:
    faults = Faults(malformed=1, malformed_mode=GARBAGE)
    assert faults.corrupt("btcusdt@aggTrade", "{}") == ["{}"]
    garbage, intact = faults.corrupt("btcusdt@trade", trade_frame(7))
    assert intact == trade_frame(7)
    try:
        orjson.loads(garbage)
    except orjson.JSONDecodeError:
        pass
    else:
        raise AssertionError("garbage must not parse")


def test_oversized_frames_are_the_same_trade_padded_to_the_size_asked() -> None:
    faults = Faults(oversize=1, oversize_bytes=2**21)
    text = trade_frame(42)
    assert faults.corrupt("btcusdt@aggTrade", "{}") == ["{}"], "trade streams only"
    [padded] = faults.corrupt("btcusdt@trade", text)
    assert len(padded) == 2**21 and padded.endswith("}}")
    assert orjson.loads(padded) == orjson.loads(text), "valid JSON of the same trade"
    assert faults.corrupt("btcusdt@trade", text) == [text], "only as many as asked, the rest byte for byte"
    standing = Faults(oversize_every=3, oversize_bytes=5000)
    sizes = [len(standing.corrupt("btcusdt@trade", text)[0]) for _ in range(6)]
    assert sizes == [len(text), len(text), 5000] * 2
    assert standing.frames_oversized == 2


def test_forced_rest_refusals_then_the_standing_rate() -> None:
    faults = Faults(forced_status=418, forced_count=1, forced_retry_after_s=30, rest_429_every=3)
    assert faults.rest_override() == (418, 30)
    assert [faults.rest_override() for _ in range(3)] == [None, (429, 30), None]


def test_settings_carry_the_standing_faults() -> None:
    settings = FakeBinanceSettings.model_validate(
        {
            "gap_every": 5,
            "malformed_every": 7,
            "rest_429_every": 11,
            "rest_page_cap": 100,
            "oversize_every": 13,
            "oversize_bytes": 3_000_000,
        }
    )
    faults = Faults.from_settings(settings)
    assert (faults.skip_every, faults.malformed_every, faults.rest_429_every, faults.page_cap) == (5, 7, 11, 100)
    assert (faults.oversize_every, faults.oversize_bytes) == (13, 3_000_000)
