"""PRODUCER_SYMBOLS=ALL as pure logic: the setting, exchangeInfo's TRADING symbols, how streams are
spread over connections within Binance's 1024, and the SUBSCRIBE messages of a live change."""

import asyncio
import json

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from producer.binance_ws import Shard
from producer.limits import (
    STREAMS_PER_CONTROL_MESSAGE,
    AttemptBudget,
    control_messages,
    place_streams,
    shard_streams,
)
from producer.market_follow import trading_symbols
from producer.settings import MAX_STREAMS_PER_CONNECTION, ProducerSettings

WHOLE_MARKET_TYPES = "trade,aggTrade,kline_1m,bookTicker"


def recorded_exchange_info() -> dict[str, object]:
    with open("tests/fixtures/binance/recorded-exchangeInfo-2021-10-12.json", encoding="utf-8") as file:
        info: dict[str, object] = json.load(file)
    return info


def test_all_means_the_whole_market() -> None:
    settings = ProducerSettings.model_validate({"symbols": "all", "stream_types": WHOLE_MARKET_TYPES})
    assert settings.whole_market and settings.symbols == ["ALL"]
    assert not ProducerSettings.model_validate({"symbols": "BTCUSDT"}).whole_market


@pytest.mark.parametrize("symbols", ["ALL,BTCUSDT", "btcusdt,all"])
def test_all_stands_alone(symbols: str) -> None:
    with pytest.raises(ValidationError, match="ALL stands alone"):
        ProducerSettings.model_validate({"symbols": symbols})


def test_the_trading_symbols_of_the_recording() -> None:
    symbols = trading_symbols(recorded_exchange_info())
    assert len(symbols) == 1262 and "BTCUSDT" in symbols and len(set(symbols)) == len(symbols)


@given(st.lists(st.one_of(st.none(), st.integers(), st.text(), st.dictionaries(st.text(), st.text())), max_size=20))
def test_malformed_exchange_info_entries_are_no_symbols(entries: list[object]) -> None:
    assert all(isinstance(symbol, str) for symbol in trading_symbols({"symbols": entries}))


def test_the_whole_recorded_market_fits_in_five_connections_within_the_limits() -> None:
    settings = ProducerSettings.model_validate({"symbols": "ALL", "stream_types": WHOLE_MARKET_TYPES})
    names = settings.stream_names(trading_symbols(recorded_exchange_info()))
    shards = shard_streams(names, settings.max_streams_per_connection)
    assert len(names) == 5048 and len(shards) == 5
    assert max(len(shard) for shard in shards) == MAX_STREAMS_PER_CONNECTION
    # Each connection is one attempt: a start uses 5 of the 300 Binance allows in 5 minutes.
    budget = AttemptBudget(settings.max_connection_attempts_per_5min)
    for _ in shards:
        assert budget.wait_s(0.0) == 0
        budget.record(0.0)


groups = st.lists(st.integers(min_value=1, max_value=6), max_size=60).map(
    lambda sizes: [[f"s{index}@{kind}" for kind in range(size)] for index, size in enumerate(sizes)]
)


@given(st.lists(st.integers(min_value=0, max_value=20), max_size=5), groups, st.integers(min_value=1, max_value=20))
def test_placed_streams_respect_the_limit_and_land_once(
    loads: list[int], new: list[list[str]], per_connection: int
) -> None:
    loads = [min(load, per_connection) for load in loads]
    added, opened = place_streams(loads, new, per_connection)
    assert all(load + len(more) <= per_connection for load, more in zip(loads, added, strict=True))
    assert all(1 <= len(shard) <= per_connection for shard in opened)
    placed = [name for part in [*added, *opened] for name in part]
    assert sorted(placed) == sorted(name for group in new for name in group)


def test_a_symbol_s_streams_stay_on_one_connection() -> None:
    group = ["newusdt@trade", "newusdt@aggTrade", "newusdt@kline_1m", "newusdt@bookTicker"]
    added, opened = place_streams([1022, 1020], [group], MAX_STREAMS_PER_CONNECTION)
    assert added == [[], group] and opened == []
    added, opened = place_streams([1022, 1023], [group], MAX_STREAMS_PER_CONNECTION)
    assert added == [[], []] and opened == [group]


def test_control_messages_name_at_most_their_share_of_streams() -> None:
    names = [f"s{i}usdt@trade" for i in range(450)]
    messages = control_messages("SUBSCRIBE", names, 7)
    bodies = [orjson.loads(message) for _, message in messages]
    assert [request_id for request_id, _ in messages] == [7, 8, 9]
    assert [len(body["params"]) for body in bodies] == [STREAMS_PER_CONTROL_MESSAGE, STREAMS_PER_CONTROL_MESSAGE, 50]
    assert [name for body in bodies for name in body["params"]] == names
    assert {body["method"] for body in bodies} == {"SUBSCRIBE"}


def test_a_shard_s_url_follows_its_changed_streams() -> None:
    settings = ProducerSettings.model_validate({"symbols": "ALL", "ws_base_url": "ws://127.0.0.1:1"})
    shard = Shard(0, ["btcusdt@trade", "ethusdt@trade"], settings, lambda *_: None, AttemptBudget(300), lambda _: None)
    asyncio.run(shard.change(add=["newusdt@trade"], remove=["ethusdt@trade"]))
    assert shard.streams == ["btcusdt@trade", "newusdt@trade"]
    assert shard.url == "ws://127.0.0.1:1/stream?streams=btcusdt@trade/newusdt@trade"
