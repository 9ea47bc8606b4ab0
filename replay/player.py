"""Reads the requested streams from PostgreSQL and hands their rows on in event-time order.

A replay holds one database connection. The stored range is read in one REPEATABLE READ, read-only
transaction, through one server-side cursor per stream (a fixed number of rows in memory per
stream, whatever the range), so every stream is read from the same snapshot: nothing committed
meanwhile appears twice or half. Streams are merged by (event time, id); within a stream the
stored order is kept. With live=true the snapshot then ends, and rows stored after it (by id, above
the newest id the snapshot held) are polled for, so the replay crosses into live data without a
gap or a duplicate. Each stream has a second reader, of its known holes (replay/hole_reader.py),
merged among its rows the same way.
"""

import asyncio
import heapq
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from api.params import MAX_TIME, from_ms
from api.queries.stats import trade_id_bounds
from replay import queries
from replay.frames import PAYLOADS, Row
from replay.streams import StreamKind, StreamName

log = logging.getLogger(__name__)

# (stream, event ms, payload)
Emit = Callable[[StreamName, int, str], Awaitable[None]]
# The same, done at once if nothing needs waiting for (no schedule, room in the client's buffer);
# False if not: then Emit does it. Most frames at speed=0 go this way, without a coroutine each.
SendNow = Callable[[StreamName, int, str], bool]
# A stream's readers: its rows, and its known holes (replay/readers.py).
ReaderFactory = Callable[[StreamName, int], "tuple[StreamReader, ...]"]


class StreamReader:
    """One stream's rows in stored order: a snapshot cursor, then (live) newer rows by id."""

    def __init__(self, stream: StreamName, order: int) -> None:
        self.stream = stream
        self.order = order  # a tie-breaker after (event time, id) between streams
        self.removed = False
        self.after_id: int | None = None  # the newest id seen: live goes on after it
        self._cursor: Any = None
        self._rows: list[Any] = []
        self._next = 0
        self.store_wait_s = 0.0  # time spent waiting for the cursor, for the replay's log line
        # Set by the Player: the replay's one connection takes one statement at a time.
        self.store_lock = asyncio.Lock()
        self.fetch_rows = 1000
        # live=true: how long after their time rows may still be stored (streams computed from
        # others, klines, wait this long before they push a second).
        self.live_delay_s = 5.0
        self._prefetch: asyncio.Future[list[Any]] | None = None
        # A row's payload (replay/frames.py), the symbol bound once: called for every frame.
        self.payload: Callable[[Row], str] = partial(PAYLOADS[stream.kind], stream.symbol)

    def _fetch_ahead(self) -> None:
        """Asks for the next batch now, so that the store reads it while this one is sent."""
        self._prefetch = asyncio.ensure_future(self._fetch())

    async def _fetch(self) -> list[Any]:
        async with self.store_lock:
            rows: list[Any] = await self._cursor.fetch(self.fetch_rows)
            return rows

    async def _next_batch(self) -> list[Any]:
        """The batch fetched ahead (empty once the cursor is exhausted), and the next asked for."""
        if self._prefetch is None:
            return []
        started = time.perf_counter()
        rows = await self._prefetch
        self.store_wait_s += time.perf_counter() - started
        self._prefetch = None
        if rows:
            self._fetch_ahead()
            # One turn of the loop, so that the fetch is sent now and PostgreSQL reads the next
            # batch while this one is formatted and sent: without it the fetch would start only
            # at the replay's next wait, after this batch (the frames written meanwhile go too).
            await asyncio.sleep(0)
        else:
            self._cursor = None
        return rows

    def stop(self) -> None:
        """Cancels a fetch still under way (the replay ends before the cursor does)."""
        if self._prefetch is not None:
            self._prefetch.cancel()
            self._prefetch = None

    async def open(self, connection: AsyncConnection, driver: Any, start: datetime, end: datetime) -> None:
        """Declares the cursor over [start, end) in the snapshot; notes the snapshot's newest id."""
        values: dict[str, object] = {"symbol": self.stream.symbol, "start": start, "end": end}
        newest = queries.NEWEST_ID[self.stream.kind]
        self.after_id = await driver.fetchval(newest.sql, *newest.arguments(values))
        if self.stream.kind is StreamKind.TRADE:
            bounds = await trade_id_bounds(connection, self.stream.symbol, start, end)
            if bounds is None:
                return
            values["first_id"], values["last_id"] = bounds
        statement = queries.HISTORY[self.stream.kind]
        self._cursor = await driver.cursor(statement.sql, *statement.arguments(values))
        self._fetch_ahead()

    async def next_row(self, fetch_rows: int) -> Any | None:
        """The next row of the snapshot, or None once it is exhausted."""
        if self._next >= len(self._rows):
            self._rows = await self._next_batch()
            self._next = 0
            if not self._rows:
                return None
        row = self._rows[self._next]
        self._next += 1
        return row

    async def start_live(self, driver: Any) -> None:
        """Subscribed once live: from what is stored from now on."""
        newest = queries.NEWEST_ID[self.stream.kind]
        self.after_id = await driver.fetchval(newest.sql, *newest.arguments({"symbol": self.stream.symbol}))

    def next_buffered(self) -> Any | None:
        """The next row of the batch in hand, or None once it is used up (then next_row())."""
        if self._next < len(self._rows):
            row = self._rows[self._next]
            self._next += 1
            return row
        return None

    def sent(self, row_id: int) -> None:
        """A live row was sent: the next poll starts after it."""
        self.after_id = row_id

    async def newer(self, driver: Any, start: datetime, end: datetime, limit: int) -> list[Any]:
        """Rows stored after the newest one seen, up to `limit`."""
        statement = queries.NEWER[self.stream.kind]
        values = {
            "symbol": self.stream.symbol,
            "after_id": -1 if self.after_id is None else self.after_id,
            "start": start,
            "end": end,
            "row_limit": limit,
        }
        rows: list[Any] = await driver.fetch(statement.sql, *statement.arguments(values))
        return rows


class Player:
    """The rows of a set of streams that changes while it plays (SUBSCRIBE, UNSUBSCRIBE)."""

    def __init__(
        self,
        connection: AsyncConnection,
        driver: Any,
        start: datetime | None,
        end: datetime | None,
        live: bool,
        fetch_rows: int,
        live_poll_s: float,
        live_end_grace_s: float,
        make_readers: ReaderFactory,
    ) -> None:
        self._make_readers = make_readers
        self._connection = connection
        self._driver = driver
        self._start = start
        self._end = end or MAX_TIME
        self._live = live
        self._fetch_rows = fetch_rows
        self._live_poll_s = live_poll_s
        self._live_end_grace_s = live_end_grace_s
        self._readers: dict[str, tuple[StreamReader, ...]] = {}
        self._pending: list[StreamName] = []
        self._orders = 0
        self._in_snapshot = False
        self._subscribed = asyncio.Event()
        self._store_lock = asyncio.Lock()
        self._stopped: list[StreamReader] = []
        self.last_event_ms: int | None = None

    def subscribe(self, streams: list[StreamName]) -> None:
        """Streams to add; they start where the replay is (taken up before the next row)."""
        self._pending.extend(stream for stream in streams if stream.name not in self._readers)
        if self._pending:
            self._subscribed.set()

    def unsubscribe(self, names: list[str]) -> None:
        for name in names:
            for reader in self._readers.pop(name, ()):
                reader.removed = True
                self._stopped.append(reader)
        self._pending = [stream for stream in self._pending if stream.name not in names]

    @property
    def store_wait_s(self) -> float:
        return sum(reader.store_wait_s for reader in self._all_readers())

    def _all_readers(self) -> list[StreamReader]:
        return [reader for readers in self._readers.values() for reader in readers]

    @property
    def stream_names(self) -> list[str]:
        return [*self._readers, *(stream.name for stream in self._pending)]

    async def play(self, emit: Emit, send_now: SendNow) -> None:
        """Every row of the range, then (live) every row stored after, in order; returns at the end.
        A connection to /ws without streams waits for its first SUBSCRIBE, as on Binance."""
        await self._subscribed.wait()
        transaction = self._driver.transaction(isolation="repeatable_read", readonly=True)
        await transaction.start()
        self._in_snapshot = True
        try:
            if self._start is not None:
                await self._play_snapshot(emit, send_now)
        finally:
            self._in_snapshot = False
            for reader in [*self._all_readers(), *self._stopped]:
                reader.stop()
            async with self._store_lock:
                await transaction.commit()
        if self._live:
            await self._play_live(emit)

    def _current_start(self) -> datetime:
        """Where a stream added now starts: the replay's position."""
        if self.last_event_ms is not None:
            return from_ms(self.last_event_ms)
        return self._start if self._start is not None else datetime.now(tz=MAX_TIME.tzinfo)

    async def _take_pending(self, heap: list[tuple[int, int, int, StreamReader, Any]] | None) -> None:
        pending, self._pending = self._pending, []
        for stream in pending:
            readers = self._make_readers(stream, self._orders)
            self._orders += 1
            self._readers[stream.name] = readers
            for reader in readers:
                await self._start_reader(reader, heap)

    async def _start_reader(
        self, reader: StreamReader, heap: list[tuple[int, int, int, StreamReader, Any]] | None
    ) -> None:
        reader.store_lock, reader.fetch_rows = self._store_lock, self._fetch_rows
        reader.live_delay_s = self._live_end_grace_s
        if self._in_snapshot:
            async with self._store_lock:
                await reader.open(self._connection, self._driver, self._current_start(), self._end)
            if heap is not None:
                await self._push(heap, reader)
        else:
            async with self._store_lock:
                await reader.start_live(self._driver)

    async def _push(self, heap: list[tuple[int, int, int, StreamReader, Any]], reader: StreamReader) -> None:
        row = await reader.next_row(self._fetch_rows)
        if row is not None:
            heapq.heappush(heap, (row[0], row[1], reader.order, reader, row))

    async def _play_snapshot(self, emit: Emit, send_now: SendNow) -> None:
        heap: list[tuple[int, int, int, StreamReader, Any]] = []
        await self._take_pending(heap)
        while heap or self._pending:
            if self._pending:
                await self._take_pending(heap)
                continue
            event_ms, _id, _order, reader, row = heap[0]
            if reader.removed:
                heapq.heappop(heap)
                continue
            if len(heap) == 1:
                await self._play_alone(emit, send_now, heap)
                continue
            self.last_event_ms = event_ms
            payload = reader.payload(row)
            if not send_now(reader.stream, event_ms, payload):
                await emit(reader.stream, event_ms, payload)
            following = await reader.next_row(self._fetch_rows)
            if following is None:
                heapq.heappop(heap)
            else:
                heapq.heapreplace(heap, (following[0], following[1], reader.order, reader, following))

    async def _play_alone(
        self, emit: Emit, send_now: SendNow, heap: list[tuple[int, int, int, StreamReader, Any]]
    ) -> None:
        """The one stream left in the heap: its rows in its own order, without a merge per row,
        until it ends, is unsubscribed or another stream is subscribed (then back to the merge)."""
        event_ms, _id, _order, reader, row = heap[0]
        stream, format_payload, fetch_rows = reader.stream, reader.payload, self._fetch_rows
        while True:
            self.last_event_ms = event_ms
            payload = format_payload(row)
            if not send_now(stream, event_ms, payload):
                await emit(stream, event_ms, payload)
            row = reader.next_buffered()
            if row is None:
                row = await reader.next_row(fetch_rows)
                if row is None:
                    heap.pop()
                    return
            event_ms = row[0]
            if reader.removed or self._pending:
                heap[0] = (event_ms, row[1], reader.order, reader, row)
                return

    async def _play_live(self, emit: Emit) -> None:
        start = self._start or datetime.now(tz=MAX_TIME.tzinfo)
        while True:
            await self._take_pending(None)
            batch: list[tuple[int, int, int, StreamReader, Any]] = []
            more_waiting = False
            for reader in self._all_readers():
                async with self._store_lock:
                    rows = await reader.newer(self._driver, start, self._end, self._fetch_rows)
                more_waiting = more_waiting or len(rows) == self._fetch_rows
                batch.extend((row[0], row[1], reader.order, reader, row) for row in rows)
            batch.sort(key=lambda entry: entry[:3])
            for event_ms, row_id, _order, reader, row in batch:
                if reader.removed:
                    continue
                # A hole recorded late is sent with its own (earlier) time: the position stays.
                self.last_event_ms = max(event_ms, self.last_event_ms or event_ms)
                await emit(reader.stream, event_ms, reader.payload(row))
                reader.sent(row_id)
            if not more_waiting:
                if self._past_end():
                    return
                await asyncio.sleep(self._live_poll_s)

    def _past_end(self) -> bool:
        """Whether rows of the range can no longer arrive: its end is more than the pipeline's
        delay in the past."""
        return time.time() > self._end.timestamp() + self._live_end_grace_s
