"""A stream's known holes, read from the coverage table in the replay's snapshot and, with
live=true, polled for as they are recorded (replay/holes.py says what is sent)."""

from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from api.params import from_ms, to_ms
from replay import queries
from replay.frames import Row, computed_payload
from replay.holes import Announced, coverage_stream, hole_row
from replay.player import StreamReader
from replay.streams import StreamName


class HoleReader(StreamReader):
    """Rows (event ms, HOLE_ID, payload) of the holes of one stream that overlap [start, end)."""

    def __init__(self, stream: StreamName, order: int) -> None:
        super().__init__(stream, order)
        self._announced = Announced()
        self._from_ms: int | None = None
        self.payload = partial(computed_payload, stream.symbol)

    async def _holes(self, driver: Any, start: datetime, end: datetime) -> list[Row]:
        values = {
            "symbol": self.stream.symbol,
            "coverage_stream": coverage_stream(self.stream),
            "start": start,
            "end": end,
        }
        holes: list[Row] = await driver.fetch(queries.HOLES.sql, *queries.HOLES.arguments(values))
        return holes

    def _new_rows(self, holes: list[Row], from_ms: int) -> list[Row]:
        rows = []
        for hole in holes:
            start_ms, end_ms = hole[0], hole[1]
            if self._announced.is_new(start_ms, end_ms):
                self._announced.add(start_ms, end_ms)
                rows.append(hole_row(self.stream, from_ms, tuple(hole)))
        return rows

    async def open(self, connection: AsyncConnection, driver: Any, start: datetime, end: datetime) -> None:
        self._from_ms = to_ms(start)
        self._rows = self._new_rows(await self._holes(driver, start, end), self._from_ms)
        self._next = 0

    async def next_row(self, fetch_rows: int) -> Any | None:
        if self._next >= len(self._rows):
            return None
        row = self._rows[self._next]
        self._next += 1
        return row

    async def start_live(self, driver: Any) -> None:
        """Subscribed once live: newer() looks from then on."""

    def sent(self, row_id: int) -> None:
        """Holes are told apart by their periods, not by an id."""

    async def newer(self, driver: Any, start: datetime, end: datetime, limit: int) -> list[Any]:
        """live=true: the holes recorded since the last look (or grown since announced). One
        recorded after the frames that follow it were sent comes now, its "E" still its start."""
        if self._from_ms is None:
            # Subscribed once live: the holes from now on.
            self._from_ms = to_ms(datetime.now(tz=start.tzinfo))
        return self._new_rows(await self._holes(driver, from_ms(self._from_ms), end), self._from_ms)
