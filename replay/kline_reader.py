"""A kline stream: the symbol's stored trades read in the replay's snapshot and turned into
Binance's kline pushes, one tick per whole second of stored time (replay/klines.py)."""

import json
from collections import deque
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from api import intervals
from api.binance_format import precision_from_info
from api.intervals import Interval
from api.params import from_ms, to_ms
from api.queries.stats import trade_id_bounds
from replay import queries
from replay.klines import KlinePushes
from replay.player import StreamReader
from replay.streams import StreamKind, StreamName

SECOND_MS = 1000
# A tick's rows sort before the trades of the same millisecond: a push shows the trades before it.
TICK_ID = 0


class KlineReader(StreamReader):
    """Rows (tick ms, 0, payload) of one kline stream over [start, end)."""

    def __init__(self, stream: StreamName, order: int) -> None:
        super().__init__(stream, order)
        assert stream.interval is not None
        self.interval = Interval(stream.interval)
        self._pushes: KlinePushes | None = None
        self._out: deque[tuple[int, int, str]] = deque()
        self._trades: list[Any] = []
        self._trade_index = 0
        self._trades_done = False
        self._start_ms = 0
        self._end_ms = 0
        self._tick = 0
        self._first_open = 0
        # The last trade fed to the pushes (live=true goes on after it) and the trades fetched
        # live that are not yet due (at most live_delay_s of them).
        self._last_fed_id = -1
        self._live_trades: deque[Any] = deque()

    async def open(self, connection: AsyncConnection, driver: Any, start: datetime, end: datetime) -> None:
        """Trades from the open time of the kline that holds `start` (so that its first push is
        whole), ticks to `end` or the present less live_delay_s, whichever is first."""
        symbol = self.stream.symbol
        await self._begin(driver, start)
        # The present less the pipeline's delay: a second is pushed once its trades are stored.
        self._end_ms = min(to_ms(end), to_ms(datetime.now(tz=start.tzinfo)) - int(self.live_delay_s * 1000))
        first_open = self._first_open
        values: dict[str, object] = {"symbol": symbol, "start": from_ms(first_open), "end": end}
        bounds = await trade_id_bounds(connection, symbol, from_ms(first_open), end)
        if bounds is None:
            self._trades_done = True
            return
        values["first_id"], values["last_id"] = bounds
        history = queries.HISTORY[StreamKind.TRADE]
        self._cursor = await driver.cursor(history.sql, *history.arguments(values))
        self._fetch_ahead()

    async def _begin(self, driver: Any, start: datetime) -> None:
        symbol = self.stream.symbol
        info = await driver.fetchval(queries.SYMBOL_INFO.sql, *queries.SYMBOL_INFO.arguments({"symbol": symbol}))
        precision = precision_from_info(json.loads(info) if isinstance(info, str) else info)
        self._pushes = KlinePushes(symbol, self.interval, precision)
        self._start_ms = to_ms(start)
        self._first_open = intervals.open_time(self.interval, self._start_ms)
        self._tick = self._first_open // SECOND_MS * SECOND_MS + SECOND_MS

    def _feed(self, trade: Any) -> None:
        assert self._pushes is not None
        _event_ms, trade_id, price, quantity, trade_ms, buyer_is_maker = trade
        self._pushes.add_trade(trade_ms, trade_id, Decimal(price), Decimal(quantity), buyer_is_maker)
        self._last_fed_id = trade_id

    async def next_row(self, fetch_rows: int) -> Any | None:
        assert self._pushes is not None
        while not self._out:
            if self._tick > self._end_ms:
                return None
            while (trade := await self._peek_trade(fetch_rows)) is not None and trade[4] < self._tick:
                self._feed(trade)
                self._trade_index += 1
            if self._tick > self._start_ms:
                self._out.extend((self._tick, TICK_ID, payload) for payload in self._pushes.tick(self._tick))
            else:
                self._pushes.tick(self._tick)
            self._tick += SECOND_MS
        return self._out.popleft()

    async def _peek_trade(self, fetch_rows: int) -> Any | None:
        if self._trade_index >= len(self._trades):
            if self._trades_done:
                return None
            self._trades = await self._next_batch()
            self._trade_index = 0
            if not self._trades:
                self._trades_done = True
                return None
        return self._trades[self._trade_index]

    async def start_live(self, driver: Any) -> None:
        """Subscribed once live: newer() starts it at the next kline's open."""

    def sent(self, row_id: int) -> None:
        """Pushes carry no trade id: where live goes on is the last trade fed."""

    async def newer(self, driver: Any, start: datetime, end: datetime, limit: int) -> list[Any]:
        """live=true: the trades stored after the last one fed, and the pushes of every whole
        second up to live_delay_s ago (the trades of a second are stored by then)."""
        if self._pushes is None:
            # Subscribed once live: from the next kline's open, so that its first push is whole.
            now_ms = to_ms(datetime.now(tz=start.tzinfo))
            await self._begin(
                driver, from_ms(intervals.next_open_time(self.interval, intervals.open_time(self.interval, now_ms)))
            )
            newest = queries.NEWEST_ID[StreamKind.TRADE]
            found = await driver.fetchval(newest.sql, *newest.arguments({"symbol": self.stream.symbol}))
            self._last_fed_id = -1 if found is None else found
        assert self._pushes is not None
        after = self._live_trades[-1][1] if self._live_trades else self._last_fed_id
        statement = queries.NEWER[StreamKind.TRADE]
        values = {
            "symbol": self.stream.symbol,
            "after_id": after,
            "start": from_ms(self._first_open),
            "end": end,
            "row_limit": limit,
        }
        self._live_trades.extend(await driver.fetch(statement.sql, *statement.arguments(values)))
        horizon = min(to_ms(end), to_ms(datetime.now(tz=start.tzinfo)) - int(self.live_delay_s * 1000))
        pushes: list[tuple[int, int, str]] = []
        while self._tick <= horizon:
            while self._live_trades and self._live_trades[0][4] < self._tick:
                self._feed(self._live_trades.popleft())
            ticked = self._pushes.tick(self._tick)
            if self._tick > self._start_ms:
                pushes.extend((self._tick, TICK_ID, payload) for payload in ticked)
            self._tick += SECOND_MS
        return pushes
