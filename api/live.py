"""The live price feed behind GET /v1/stream/prices: one poller shared by every client.

The api has no Kafka access, so "live" means polling PostgreSQL. One background task asks for the
newest trade of every symbol (one loose index scan, api/queries/prices.py) once per interval while
at least one client listens, and none while nobody does; clients only wait on the feed's change
event. However many pages are open, the database sees one query per interval (from each api
process: every worker has its own feed).

A client that reads slowly never queues anything: it is sent the newest state whenever it is
ready, so intermediate states are skipped rather than buffered.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from api.models import LatestPrice
from api.queries import prices

log = logging.getLogger(__name__)

# JSON of one symbol's newest trade, as /v1/prices/latest answers it (prices as strings).
PriceJson = dict[str, Any]
# Rows with the columns of prices.latest_trades (SQLAlchemy RowMappings, or dicts in tests).
PollFunction = Callable[[], Awaitable[Sequence[Mapping[Any, Any]]]]

POLL_INTERVAL_S = 1.0
# While the database is away the poller backs off, doubling up to this.
POLL_BACKOFF_MAX_S = 10.0
# SSE connections held at once (each is a request in flight under API_LIMIT_CONCURRENCY,
# 200 by default): beyond this a client gets a 503 and its page retries later. Per api process,
# as limit_concurrency is: with API_WORKERS processes, that many times both.
MAX_CLIENTS = 100
POLL_FAILED = "database unavailable"


class TooManyClients(Exception):
    pass


@dataclass(frozen=True)
class FeedState:
    """What the poller last saw. `version` grows with every change a client should be told of."""

    version: int = 0
    prices: Mapping[str, PriceJson] = field(default_factory=dict)
    polled_at: datetime | None = None
    # Why the last poll failed (None when it succeeded): the page marks the prices as stale.
    error: str | None = None


def price_json(row: Mapping[Any, Any]) -> PriceJson:
    return LatestPrice.model_validate(dict(row)).model_dump(mode="json")


def changed_prices(before: Mapping[str, PriceJson], after: Mapping[str, PriceJson]) -> dict[str, PriceJson]:
    """The symbols whose newest trade differs (new symbols included); symbols never disappear."""
    return {symbol: price for symbol, price in after.items() if before.get(symbol) != price}


def engine_poll(engine: AsyncEngine) -> PollFunction:
    async def poll() -> Sequence[Mapping[Any, Any]]:
        async with engine.connect() as connection:
            return await prices.latest_trades(connection)

    return poll


class PriceFeed:
    def __init__(
        self,
        poll: PollFunction,
        interval_s: float = POLL_INTERVAL_S,
        backoff_max_s: float = POLL_BACKOFF_MAX_S,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        self._poll = poll
        self.interval_s = interval_s
        self.backoff_max_s = backoff_max_s
        self.max_clients = max_clients
        self.clients = 0
        self.state = FeedState()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @asynccontextmanager
    async def subscription(self) -> AsyncIterator["PriceFeed"]:
        """Counts a client in (TooManyClients beyond the bound) and keeps the poller running
        while any client is in."""
        if self.clients >= self.max_clients:
            raise TooManyClients(f"{self.clients} live price clients already connected; retry later")
        self.clients += 1
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="price-feed-poller")
        try:
            yield self
        finally:
            self.clients -= 1
            if self.clients == 0:
                await self.stop()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        # A poller started later must not serve this one's (possibly old) prices as fresh.
        self.state = FeedState(version=self.state.version + 1, prices=self.state.prices)

    async def wait_for_change(self, seen_version: int, timeout_s: float) -> FeedState:
        """The state once its version is past `seen_version`, or as it is after `timeout_s`."""
        if self.state.version == seen_version:
            with suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout_s)
        return self.state

    def _publish(self, state: FeedState) -> None:
        self.state = state
        # One event per version: every waiter wakes, and later waiters wait for the next one.
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _run(self) -> None:
        delay = self.interval_s
        while True:
            try:
                rows = await self._poll()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the database away or slow: keep polling, say so, back off
                log.warning("price feed poll failed", extra={"error": repr(error)[:300], "retry_in_s": delay})
                if self.state.error is None:
                    previous = self.state
                    self._publish(FeedState(previous.version + 1, previous.prices, previous.polled_at, POLL_FAILED))
                delay = min(delay * 2, self.backoff_max_s)
            else:
                polled = {str(row["symbol"]): price_json(row) for row in rows}
                now = datetime.now(UTC)
                if polled != self.state.prices or self.state.error is not None or self.state.polled_at is None:
                    self._publish(FeedState(self.state.version + 1, polled, now, None))
                else:
                    # Nothing new: no wake-ups, but the time of the last good poll moves on.
                    self.state = FeedState(self.state.version, polled, now, None)
                delay = self.interval_s
            await asyncio.sleep(delay)
