"""PRODUCER_SYMBOLS=ALL: every TRADING symbol of exchangeInfo, followed while the producer runs.

exchangeInfo is read again every PRODUCER_EXCHANGE_INFO_REFRESH_S. A symbol newly TRADING (listed,
or back from a halt) has its streams added to a connection with room for all of them (SUBSCRIBE on
the live connection), else to a new connection; a symbol no longer TRADING (HALT, BREAK, delisted)
has its streams removed (UNSUBSCRIBE). What a newly TRADING symbol traded before its subscription
(at most a refresh period) is fetched over REST. Live changes rather than reconnecting: a connection's other
streams go on without a gap, and no connection attempts are spent (Binance allows 300 in 5 minutes).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from producer.binance_ws import Shard
from producer.limits import place_streams
from producer.settings import ProducerSettings

log = logging.getLogger(__name__)

TRADING = "TRADING"


def trading_symbols(exchange_info: Mapping[str, Any]) -> list[str]:
    """The symbols exchangeInfo lists as TRADING, in its order."""
    return [
        str(entry["symbol"])
        for entry in exchange_info.get("symbols", [])
        if isinstance(entry, Mapping) and entry.get("status") == TRADING and isinstance(entry.get("symbol"), str)
    ]


class MarketFollower:
    """Owns which symbols are streamed, and on which shard each symbol's streams are."""

    def __init__(
        self,
        settings: ProducerSettings,
        shards: list[Shard],
        new_shard: Callable[[int, list[str]], Shard],
        read_exchange_info: Callable[[], Awaitable[Mapping[str, Any]]],
        on_streams_added: Callable[[list[str]], None],
        on_listed: Callable[[list[str]], None] = lambda _symbols: None,
    ) -> None:
        self.settings = settings
        # Shared with the stats line and the metrics, which read it: shards are only ever appended.
        self.shards = shards
        self.new_shard = new_shard
        self.read_exchange_info = read_exchange_info
        self.on_streams_added = on_streams_added
        self.on_listed = on_listed
        self.symbols: dict[str, Shard] = {}
        for shard in shards:
            for stream in shard.streams:
                self.symbols[stream.partition("@")[0].upper()] = shard
        self.listed = 0
        self.halted = 0
        self.refreshes_failed = 0
        self._group: asyncio.TaskGroup | None = None

    async def run(self) -> None:
        """Forever: wait a refresh period, read exchangeInfo, follow it. New shards run in here."""
        async with asyncio.TaskGroup() as group:
            self._group = group
            while True:
                await asyncio.sleep(self.settings.exchange_info_refresh_s)
                try:
                    info = await self.read_exchange_info()
                except Exception as error:
                    # The symbols streamed so far go on; the next period asks again.
                    self.refreshes_failed += 1
                    log.warning("exchangeInfo refresh failed", extra={"error": repr(error)})
                    continue
                await self.follow(trading_symbols(info))

    async def follow(self, trading: list[str]) -> None:
        """Stream exactly the symbols of `trading` this process owns (PRODUCER_SHARD) from now on: a
        symbol listed later is streamed by the one process its name hashes to."""
        trading = [symbol for symbol in trading if self.settings.owns(symbol)]
        wanted = set(trading)
        gone = [symbol for symbol in self.symbols if symbol not in wanted]
        new = [symbol for symbol in trading if symbol not in self.symbols]
        if not gone and not new:
            return
        log.info(
            "symbols changed on exchangeInfo",
            extra={"listed": new[:50], "halted": gone[:50], "symbols": len(wanted)},
        )
        await self._remove(gone)
        await self._add(new)

    async def _remove(self, symbols: list[str]) -> None:
        self.halted += len(symbols)
        by_shard: dict[Shard, list[str]] = {}
        for symbol in symbols:
            by_shard.setdefault(self.symbols.pop(symbol), []).extend(self.settings.symbol_streams(symbol))
        for shard, streams in by_shard.items():
            await shard.change(add=[], remove=streams)

    async def _add(self, symbols: list[str]) -> None:
        if not symbols:
            return
        groups = [self.settings.symbol_streams(symbol) for symbol in symbols]
        self.on_streams_added([name for group in groups for name in group])
        additions, new_shards = place_streams(
            [len(shard.streams) for shard in self.shards], groups, self.settings.max_streams_per_connection
        )
        for shard, streams in zip(self.shards, additions, strict=True):
            if streams:
                self._note(shard, streams)
                await shard.change(add=streams, remove=[])
        for streams in new_shards:
            shard = self.new_shard(len(self.shards), streams)
            self.shards.append(shard)
            self._note(shard, streams)
            self._start(shard)
        self.listed += len(symbols)
        # Its first trades may be older than our subscription (up to a refresh period): fetched over REST.
        self.on_listed(symbols)

    def _note(self, shard: Shard, streams: list[str]) -> None:
        for stream in streams:
            self.symbols[stream.partition("@")[0].upper()] = shard

    def _start(self, shard: Shard) -> None:
        if self._group is None:
            raise RuntimeError("MarketFollower.run() is not running")
        self._group.create_task(shard.run(), name=f"shard-{shard.index}")
