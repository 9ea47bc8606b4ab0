"""The REST side of a history import: pages of klines, aggTrades and trades over a period.

Through the live producer's Backfiller.call, so every request keeps within the share of the
weight limit exchangeInfo announces, waits out a 429's Retry-After and stops for a 418's ban.
Each page says which period it vouches for: every record of the stream in [start_ms, end_ms),
each of them final (producer/held_ends.py). A page that ends inside a millisecond vouches only up
to that millisecond (the next page, from the next id, may still hold trades of it); klines are
held up to the first one still open; trades near now up to the newest one's time.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from producer.backfill import PAGE_LIMIT, Backfiller
from producer.held_ends import first_open_kline, klines_held_end, trades_held_end
from schemas.kline_intervals import FIXED_INTERVAL_MS

HOUR_MS = 3_600_000  # Binance's longest aggTrades startTime..endTime window
_MONTH_MS = 31 * 86_400_000  # the longest 1M kline


@dataclass(frozen=True, slots=True)
class Page:
    records: list[Any]
    start_ms: int
    end_ms: int
    request: str  # what was asked, for the log
    # When the answer came: its records' receipt time, by which the consumer tells a kline closed.
    received_at_ns: int = 0


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
            page, received_at_ns = await self.backfiller.call_received(
                what,
                lambda cursor=cursor: self.rest.klines(symbol, interval, cursor, end_ms - 1, PAGE_LIMIT),  # type: ignore[misc]
            )
            received_ms = received_at_ns // 1_000_000
            inside = [k for k in page if int(k[0]) < end_ms]
            following = int(page[-1][6]) + 1 if page else end_ms
            asked_to = end_ms if len(page) < PAGE_LIMIT or following >= end_ms else following
            held_to = klines_held_end(inside, asked_to, received_ms, FIXED_INTERVAL_MS.get(interval, _MONTH_MS))
            yield Page(inside, cursor, max(cursor, held_to), what, received_at_ns)
            if held_to < asked_to or first_open_kline(inside, received_ms) is not None:
                return  # reached the kline open now: nothing after it is final yet
            cursor = held_to

    async def _first_in_window(
        self, symbol: str, cursor: int, window_end: int
    ) -> tuple[list[dict[str, Any]], str, int]:
        """The window's aggTrades page, what was asked, and when the answer came."""
        what = f"aggTrades {symbol} startTime={cursor} endTime={window_end - 1}"
        page, received_at_ns = await self.backfiller.call_received(
            what,
            lambda: self.rest.agg_trades(symbol, PAGE_LIMIT, start_time=cursor, end_time=window_end - 1),
        )
        return page, what, received_at_ns

    async def _next_page(self, symbol: str, stream: str, from_id: int) -> tuple[list[dict[str, Any]], str, int]:
        """The page of `stream` from `from_id` on, what was asked, and when the answer came."""
        if stream == "aggTrade":
            what = f"aggTrades {symbol} fromId={from_id}"
            page, received_at_ns = await self.backfiller.call_received(
                what, lambda: self.rest.agg_trades(symbol, PAGE_LIMIT, from_id=from_id)
            )
        else:
            what = f"historicalTrades {symbol} fromId={from_id}"
            page, received_at_ns = await self.backfiller.call_received(
                what, lambda: self.rest.historical_trades(symbol, from_id, PAGE_LIMIT)
            )
        return page, what, received_at_ns

    async def _trades(self, symbol: str, stream: str, start_ms: int, end_ms: int) -> AsyncIterator[Page]:
        """By time window to the first aggregate trade at or after the start, then by id.

        A window runs an hour from its start even past end_ms: a record after the end proves the
        period over. An empty window vouches for nothing by itself; the first record after it does.
        """
        time_field, id_field = ("T", "a") if stream == "aggTrade" else ("time", "id")
        held_from = cursor = start_ms
        from_id: int | None = None
        while True:
            if from_id is None:
                if cursor >= end_ms:
                    return  # no record at or after the end: the empty windows stay unvouched
                window_end = cursor + HOUR_MS
                window, what, received_at_ns = await self._first_in_window(symbol, cursor, window_end)
                if not window:
                    yield Page([], held_from, held_from, what, received_at_ns)
                    cursor = window_end
                    continue
                if int(window[0]["T"]) >= end_ms:
                    yield Page([], held_from, end_ms, what, received_at_ns)
                    return
                # An aggregate trade names its first trade: the first trade id at the cursor.
                from_id = int(window[0]["a"]) if stream == "aggTrade" else int(window[0]["f"])
            page, what, received_at_ns = await self._next_page(symbol, stream, from_id)
            inside = [record for record in page if int(record[time_field]) < end_ms]
            newest_ms = int(inside[-1][time_field]) if inside else None
            held_to = trades_held_end(newest_ms, end_ms, later_record_seen=len(inside) < len(page))
            if held_to is not None:
                held_to = max(held_from, held_to)
                yield Page(inside, held_from, held_to, what, received_at_ns)
                held_from = held_to
            if len(inside) < len(page) or not page:
                return  # past the end, or the newest trade Binance has
            from_id = int(page[-1][id_field]) + 1
