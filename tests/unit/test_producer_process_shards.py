"""PRODUCER_SHARD=i/n: which producer process streams which symbol. Pure logic."""

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from fake_binance.exchange_info import load_exchange_info
from producer.market_follow import MarketFollower
from producer.settings import ProducerSettings
from schemas.shards import shard_of

SYMBOL = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=20)
WHOLE_MARKET = load_exchange_info(full=True).trading()
# Settings are read from the environment at each construction: made once per shard.
SHARDS: dict[str, ProducerSettings] = {}


@settings(deadline=None)
@given(st.lists(SYMBOL, unique=True, max_size=200), st.integers(min_value=1, max_value=16))
def test_the_shards_together_own_every_symbol_exactly_once(symbols: list[str], count: int) -> None:
    shards = [
        SHARDS.setdefault(f"{index}/{count}", ProducerSettings(shard=f"{index}/{count}")) for index in range(count)
    ]
    owners = [[shard.shard for shard in shards if shard.owns(symbol)] for symbol in symbols]
    assert all(len(found) == 1 for found in owners)


@given(SYMBOL, st.integers(min_value=1, max_value=64))
def test_the_owner_is_the_same_in_every_process_and_in_any_case(symbol: str, count: int) -> None:
    # A fixed hash (CRC-32), not Python's per-process salted hash(): every process agrees.
    assert shard_of(symbol, count) == shard_of(symbol.lower(), count)
    assert 0 <= shard_of(symbol, count) < count
    assert shard_of("BTCUSDT", 2) == 1 and shard_of("ETHUSDT", 2) == 0


def test_the_whole_market_is_spread_evenly_enough() -> None:
    for count in (2, 3, 4):
        sizes = [sum(1 for s in WHOLE_MARKET if shard_of(s, count) == i) for i in range(count)]
        even = len(WHOLE_MARKET) / count
        assert all(abs(size - even) < 0.15 * even for size in sizes), sizes


def test_one_shard_is_the_default_and_owns_everything() -> None:
    single = ProducerSettings()
    assert (single.shard, single.shard_index, single.shard_count) == ("0/1", 0, 1)
    assert all(single.owns(symbol) for symbol in WHOLE_MARKET)


def test_spaces_around_the_numbers_are_allowed() -> None:
    spaced = ProducerSettings(shard=" 1 / 3 ")
    assert (spaced.shard, spaced.shard_index, spaced.shard_count) == ("1/3", 1, 3)


@settings(deadline=None)
@given(
    st.one_of(
        st.integers(min_value=1, max_value=50).flatmap(
            lambda n: st.integers(min_value=n, max_value=n + 50).map(lambda i: f"{i}/{n}")
        ),
        st.integers(min_value=0, max_value=50).map(lambda i: f"{i}/0"),
        st.text(max_size=12).filter(lambda text: "/" not in text),
        st.from_regex(r"-?\d+/-\d+|\d+/\d+/\d+|[a-z]+/\d+|\d+\.\d+/\d+", fullmatch=True),
    )
)
def test_a_malformed_or_impossible_shard_is_refused_by_name(value: str) -> None:
    with pytest.raises(ValidationError, match="shard"):
        ProducerSettings(shard=value)


class FakeShard:
    def __init__(self, index: int, streams: list[str]) -> None:
        self.index = index
        self.streams = streams


def test_a_listed_symbol_is_followed_only_by_its_owner() -> None:
    listed = ["BTCUSDT", "ETHUSDT", "BNBUSDT", "ADABTC"]
    followed: dict[str, list[str]] = {}
    for index in (0, 1):
        producer = ProducerSettings(symbols=["ALL"], stream_types=["trade"], shard=f"{index}/2")
        added: list[str] = []
        follower = MarketFollower(producer, [], FakeShard, _no_info, added.extend)  # type: ignore[arg-type]
        follower._start = lambda shard: None  # type: ignore[method-assign]
        asyncio.run(follower.follow(listed))
        followed[producer.shard] = sorted(follower.symbols)
    assert followed == {
        "0/2": sorted(s for s in listed if shard_of(s, 2) == 0),
        "1/2": sorted(s for s in listed if shard_of(s, 2) == 1),
    }
    assert followed["0/2"] and followed["1/2"]


async def _no_info() -> dict[str, object]:
    return {}
