"""Which of n processes handles a symbol: the producer's PRODUCER_SHARD and the fake exchange's
FAKE_BINANCE_MARKET_SHARD split the market by the same rule, so producer i and fake i hold the
same symbols. Pure."""

import re
import zlib

_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*", re.ASCII)


def shard_of(symbol: str, count: int) -> int:
    """The shard (0 to count-1) of `symbol`: a hash of its name, so every process agrees without
    talking to the others, a symbol listed later has its owner too, and all of a symbol's streams
    are in one place. CRC-32, not hash(): the same in every process and every run."""
    if count < 1:
        raise ValueError("count must be at least 1")
    return zlib.crc32(symbol.upper().encode()) % count


def parse_shard(value: str) -> tuple[int, int]:
    """'i/n' -> (i, n), with 0 <= i < n; a ValueError naming what is wrong otherwise."""
    match = _SHARD.fullmatch(value)
    if match is None:
        raise ValueError(f"a shard is i/n, e.g. 0/2, not {value!r}")
    index, count = int(match[1]), int(match[2])
    if count < 1 or index >= count:
        raise ValueError(f"shard {value!r}: n must be at least 1 and i from 0 to n-1")
    return index, count
