"""The REST side of a history import: pages of klines, aggTrades and trades over a period.

Through the live producer's Backfiller.call, so every request keeps within the share of the
weight limit exchangeInfo announces, waits out a 429's Retry-After and stops for a 418's ban.
Each page says which period it vouches for: every record of the stream in [start_ms, end_ms).
A page that ends inside a millisecond vouches only up to that millisecond (the next page, from
the next id, may still hold trades of it).
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from producer.backfill import PAGE_LIMIT, Backfiller

HOUR_MS = 3_600_000  # Binance's longest aggTrades startTime..endTime window


@dataclass(frozen=True, slots=True)
class Page:
    records: list[Any]
    start_ms: int
    end_ms: int
    request: str  # what was asked, for the log


class RestHistory:
    def __init__(self, backfiller: Backfiller) -> None:
        self.backfiller = backfiller
        self.rest = backfiller.rest

    def pages(self, symbol: str, stream: str, start_ms: int, end_ms: int) -> AsyncIterator[Page]:
        if stream.startswith("kline_"):
            return self._klines(symbol, stream.removeprefix("kline_"), start_ms, end_ms)
        return self._trades(symbol, stream, start_ms, end_ms)

    async def _klines(self, symbol: str, interval: str, start_ms: int, end_ms: int) -> AsyncIterator[Page]:
        cursor = start_ms
        while cursor < end_ms:
            what = f"klines {symbol} {interval} startTime={cursor}"
            page: list[list[Any]] = await self.backfiller.call(
                what,
                lambda cursor=cursor: self.rest.klines(symbol, interval, cursor, end_ms - 1, PAGE_LIMIT),  # type: ignore[misc]
            )
            following = int(page[-1][6]) + 1 if page else end_ms
            covered_to = end_ms if len(page) < PAGE_LIMIT or following >= end_ms else following
            yield Page([k for k in page if int(k[0]) < end_ms], cursor, covered_to, what)
            cursor = covered_to

    async def _first_in_window(self, symbol: str, cursor: int, window_end: int) -> tuple[list[dict[str, Any]], str]:
        what = f"aggTrades {symbol} startTime={cursor} endTime={window_end - 1}"
        page: list[dict[str, Any]] = await self.backfiller.call(
            what,
            lambda: self.rest.agg_trades(symbol, PAGE_LIMIT, start_time=cursor, end_time=window_end - 1),
        )
        return page, what

    async def _next_page(self, symbol: str, stream: str, from_id: int) -> tuple[list[dict[str, Any]], str]:
        if stream == "aggTrade":
            what = f"aggTrades {symbol} fromId={from_id}"
            page: list[dict[str, Any]] = await self.backfiller.call(
                what, lambda: self.rest.agg_trades(symbol, PAGE_LIMIT, from_id=from_id)
            )
        else:
            what = f"historicalTrades {symbol} fromId={from_id}"
            page = await self.backfiller.call(what, lambda: self.rest.historical_trades(symbol, from_id, PAGE_LIMIT))
        return page, what

    async def _trades(self, symbol: str, stream: str, start_ms: int, end_ms: int) -> AsyncIterator[Page]:
        """By time window to the first aggregate trade at or after the start, then by id."""
        time_field, id_field = ("T", "a") if stream == "aggTrade" else ("time", "id")
        cursor = start_ms
        from_id: int | None = None
        while cursor < end_ms:
            if from_id is None:
                window_end = min(cursor + HOUR_MS, end_ms)
                window, what = await self._first_in_window(symbol, cursor, window_end)
                if not window:
                    yield Page([], cursor, window_end, what)
                    cursor = window_end
                    continue
                # An aggregate trade names its first trade: the first trade id at the cursor.
                from_id = int(window[0]["a"]) if stream == "aggTrade" else int(window[0]["f"])
            page, what = await self._next_page(symbol, stream, from_id)
            inside = [record for record in page if int(record[time_field]) < end_ms]
            if len(inside) < len(page) or not page:
                yield Page(inside, cursor, end_ms, what)  # reached the end (or the newest trade)
                return
            last_time = int(page[-1][time_field])
            yield Page(inside, cursor, max(cursor, last_time), what)
            cursor = max(cursor, last_time)
            from_id = int(page[-1][id_field]) + 1
