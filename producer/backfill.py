"""REST side of the producer (python-binance): symbol validation, gap backfill, start-up lookback.

Every REST record is published on its own, as compact JSON of the element Binance returned, with
source `rest` and the stream header naming what it is (schemas.topics.Source). Binance's weight
rules are obeyed: backfills use a share of the per-minute weight limit (read from exchangeInfo,
tracked with the X-MBX-USED-WEIGHT-1M header), a 429 waits its Retry-After, and a 418 (IP ban)
stops all REST traffic for the ban's duration and says so loudly.
"""

import asyncio
import logging
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Mapping
from typing import Any

import requests
from binance.client import Client
from binance.exceptions import BinanceAPIException, BinanceRequestException

from producer.frames import encode_record, record_id, stream_type
from producer.gaps import BackfillRange, GapTracker, merge_ranges
from producer.held_ends import klines_held_end, trades_held_end
from producer.limits import WeightBudget, backoff_delay
from producer.publisher import RawPublisher
from schemas.coverage import CoverageKind, CoverageMarker
from schemas.kline_intervals import FIXED_INTERVAL_MS
from schemas.topics import Source, received_at_ns

log = logging.getLogger(__name__)

PAGE_LIMIT = 1000  # Binance's maximum for trades, aggTrades and klines
# Kline lengths, to refetch the one that was open when a connection dropped (months: at most 31 days).
_KLINE_MS = {
    "1s": 1_000,
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
    "1M": 2_678_400_000,
}
_TRANSIENT_ATTEMPTS = 5
# Binance's longest IP ban (418) is 3 days: a longer Retry-After is not believed.
MAX_RETRY_AFTER_S = 3 * 86400.0
# The id field of each REST record type, and its time field.
REST_ID_FIELDS = {"trade": "id", "aggTrade": "a"}
REST_TIME_FIELDS = {"trade": "time", "aggTrade": "T"}


class SymbolError(ValueError):
    """Configured symbols that Binance does not list, or does not trade."""


class GivenUp(Exception):
    """REST refused a range for longer than the settings allow: its ids stay missing."""


class IpBanned(Exception):
    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"REST IP ban for {retry_after_s:.0f}s")
        self.retry_after_s = retry_after_s


# --- pure helpers -------------------------------------------------------------------------------


def check_symbols(exchange_info: Mapping[str, Any], symbols: list[str]) -> None:
    """Raises SymbolError naming every configured symbol that is unknown or not TRADING."""
    statuses = {entry.get("symbol"): entry.get("status") for entry in exchange_info.get("symbols", [])}
    unknown = [symbol for symbol in symbols if symbol not in statuses]
    halted = [f"{s} ({statuses[s]})" for s in symbols if s in statuses and statuses[s] != "TRADING"]
    problems = []
    if unknown:
        problems.append(f"unknown symbols: {', '.join(unknown)}")
    if halted:
        problems.append(f"symbols not trading: {', '.join(halted)}")
    if problems:
        raise SymbolError("; ".join(problems) + " (checked against GET /api/v3/exchangeInfo)")


def request_weight_limit(exchange_info: Mapping[str, Any], default: int = 6000) -> int:
    """The REQUEST_WEIGHT per minute limit exchangeInfo announces."""
    for limit in exchange_info.get("rateLimits", []):
        if limit.get("rateLimitType") == "REQUEST_WEIGHT" and limit.get("interval") == "MINUTE":
            return int(limit["limit"]) // max(1, int(limit.get("intervalNum", 1)))
    return default


def retry_after_s(error: BinanceAPIException, default: float = 1.0) -> float:
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None) or {}
    value = headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else default
    except ValueError:
        return default


# --- the REST client ----------------------------------------------------------------------------


class BinanceRest:
    """python-binance's Client pointed at the configured base URL. Blocking: run it in a thread."""

    def __init__(self, base_url: str, timeout_s: float, time_unit: str = "MILLISECOND") -> None:
        self.client = Client(
            ping=False,
            requests_params={"timeout": timeout_s},
            time_unit=None if time_unit == "MILLISECOND" else time_unit,
        )
        # python-binance has no base-URL argument; API_URL is what its requests are built on.
        self.client.API_URL = f"{base_url.rstrip('/')}/api"

    def used_weight(self) -> str | None:
        response = self.client.response
        return response.headers.get("X-MBX-USED-WEIGHT-1M") if response is not None else None

    def exchange_info(self) -> dict[str, Any]:
        info: dict[str, Any] = self.client.get_exchange_info()
        return info

    def historical_trades(self, symbol: str, from_id: int, limit: int) -> list[dict[str, Any]]:
        page: list[dict[str, Any]] = self.client.get_historical_trades(symbol=symbol, fromId=from_id, limit=limit)
        return page

    def agg_trades(
        self,
        symbol: str,
        limit: int,
        from_id: int | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"symbol": symbol, "limit": limit}
        if from_id is not None:
            params["fromId"] = from_id
        if start_time is not None:
            params["startTime"] = start_time
        if end_time is not None:
            params["endTime"] = end_time
        page: list[dict[str, Any]] = self.client.get_aggregate_trades(**params)
        return page

    def klines(self, symbol: str, interval: str, start_time: int, end_time: int, limit: int) -> list[list[Any]]:
        page: list[list[Any]] = self.client.get_klines(
            symbol=symbol, interval=interval, startTime=start_time, endTime=end_time, limit=limit
        )
        return page


async def startup_exchange_info(rest: BinanceRest, reconnect_min_s: float, reconnect_max_s: float) -> dict[str, Any]:
    """exchangeInfo for the start-up checks, asked until Binance answers.

    Even this first request may be refused: a 429 when the IP's weight is used up (by an earlier
    run, or another process on the same IP), a 418 when the IP is banned. Either is waited out,
    Retry-After in full (Binance escalates the bans of clients that retry sooner), bounded only by
    Binance's longest ban, and the request repeated; transient errors are retried with backoff
    like every REST call. Any other error is raised.
    """
    refusals = 0
    transient = 0
    while True:
        try:
            return await asyncio.to_thread(rest.exchange_info)
        except BinanceAPIException as error:
            if error.status_code not in (429, 418):
                raise
            # No Retry-After (or 0): at least a growing backoff, so a refusing server is not hammered.
            backoff = backoff_delay(refusals, reconnect_min_s, reconnect_max_s)
            refusals += 1
            if error.status_code == 429:
                delay = min(MAX_RETRY_AFTER_S, max(backoff, retry_after_s(error, default=0.0)))
                log.warning(
                    "REST 429 on exchangeInfo at start: rate limited, honouring Retry-After, then asking again",
                    extra={"retry_after_s": round(delay, 2), "refusals": refusals, "binance_msg": error.message},
                )
            else:
                delay = min(MAX_RETRY_AFTER_S, max(backoff, retry_after_s(error, default=120.0)))
                log.critical(
                    "REST 418 on exchangeInfo at start: this IP is BANNED by Binance; starting when the ban ends",
                    extra={"retry_after_s": round(delay, 2), "refusals": refusals, "binance_msg": error.message},
                )
        except (BinanceRequestException, requests.RequestException) as error:
            if transient >= _TRANSIENT_ATTEMPTS:
                raise
            delay = backoff_delay(transient, reconnect_min_s, reconnect_max_s)
            transient += 1
            log.warning(
                "REST request failed, retrying",
                extra={"request": "exchangeInfo", "error": repr(error), "retry_in_s": round(delay, 2)},
            )
        await asyncio.sleep(delay)


# --- the backfill worker ------------------------------------------------------------------------


class Backfiller:
    """Fetches missing ranges over REST and publishes them; one request at a time, within the weight."""

    def __init__(
        self,
        rest: BinanceRest,
        publisher: RawPublisher,
        tracker: GapTracker,
        weight: WeightBudget,
        reconnect_min_s: float = 0.5,
        reconnect_max_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        give_up_after_s: float = float("inf"),
        on_given_up: Callable[[str, str], None] | None = None,
        receipt_clock_ns: Callable[[], int] = received_at_ns,
    ) -> None:
        self.rest = rest
        self.publisher = publisher
        self.tracker = tracker
        self.weight = weight
        self.reconnect_min_s = reconnect_min_s
        self.reconnect_max_s = reconnect_max_s
        self.clock = clock
        # Stamps a REST answer's RECEIVED_AT_NS header (the live frames' definition, schemas/topics.py).
        self.receipt_clock_ns = receipt_clock_ns
        self.queue: deque[BackfillRange] = deque()
        self.grace_s = tracker.grace_s
        # Kline streams whose connection dropped: stream -> (wall ms of the drop, when to refetch).
        self.kline_drops: dict[str, tuple[int, float]] = {}
        self.banned_until = 0.0
        self.records_published = 0
        self.requests = 0
        self.rate_limited = 0
        self.ranges_done = 0
        self.ranges_failed = 0
        self.ids_given_up = 0
        # (endpoint, HTTP status or "error") -> responses, for the metrics.
        self.responses: Counter[tuple[str, str]] = Counter()
        # A range REST refuses (429s, a 418 ban) this long after it was queued is given up, and
        # on_given_up(stream, why) told: live coverage records a hole rather than wait forever.
        self.give_up_after_s = give_up_after_s
        self.on_given_up = on_given_up
        self._queued_since: dict[str, float] = {}
        # The stream being fetched now (a range or a kline refetch), for busy_streams().
        self._fetching: str | None = None
        self._ban_logged_at = float("-inf")

    def busy_streams(self) -> set[str]:
        """Streams with REST work queued or under way: their coverage can't be vouched for yet."""
        busy = {gap.stream for gap in self.queue} | set(self.kline_drops)
        if self._fetching is not None:
            busy.add(self._fetching)
        return busy

    def resume_klines(self, stream: str, since_ms: int) -> None:
        """A restart: the klines since `since_ms` (the previous run's last held marker) are refetched."""
        self.kline_drops[stream] = (since_ms, self.clock())
        self._queued_since.setdefault(stream, self.clock())

    def _overdue(self, stream: str | None) -> bool:
        if stream is None:
            return False
        since = self._queued_since.get(stream)
        return since is not None and self.clock() - since > self.give_up_after_s

    def _give_up(self, stream: str, why: str) -> None:
        self._queued_since.pop(stream, None)
        log.error("backfill given up; coverage records a hole", extra={"stream": stream, "why": why})
        if self.on_given_up is not None:
            self.on_given_up(stream, why)

    # --- REST calls with Binance's rules -----------------------------------------------------

    async def call(self, what: str, function: Callable[[], Any]) -> Any:
        """One REST request: within the weight budget, 429 waited out, 418 raised, transient errors retried."""
        result, _ = await self.call_received(what, function)
        return result

    async def call_received(self, what: str, function: Callable[[], Any]) -> tuple[Any, int]:
        """call(), and the answer's receipt time (RECEIVED_AT_NS), read on the request's thread as
        it returns: the event loop may be busy with live frames before this coroutine resumes."""
        transient = 0
        while True:
            if self.banned_until > self.clock():
                raise IpBanned(self.banned_until - self.clock())
            wait_s = self.weight.wait_s(time.time())
            if wait_s > 0:
                log.info("REST weight budget used, waiting for the next minute", extra={"wait_s": round(wait_s, 1)})
                await asyncio.sleep(wait_s)
            self.requests += 1
            endpoint = what.partition(" ")[0]
            try:
                result, received_ns = await asyncio.to_thread(self._answered, function)
            except BinanceAPIException as error:
                self.responses[(endpoint, str(error.status_code))] += 1
                self.weight.update(self.rest.used_weight(), time.time())
                if error.status_code == 429:
                    delay = retry_after_s(error)
                    self.rate_limited += 1
                    if self._overdue(self._fetching):
                        raise GivenUp(f"REST answered 429 for over {self.give_up_after_s:g} s") from error
                    log.warning(
                        "REST 429: rate limited, honouring Retry-After",
                        extra={"request": what, "retry_after_s": delay, "binance_msg": error.message},
                    )
                    await asyncio.sleep(delay)
                    continue
                if error.status_code == 418:
                    delay = retry_after_s(error, default=120.0)
                    self.banned_until = self.clock() + delay
                    log.critical(
                        "REST 418: this IP is BANNED by Binance; backfilling STOPPED until the ban ends",
                        extra={"request": what, "retry_after_s": delay, "binance_msg": error.message},
                    )
                    raise IpBanned(delay) from error
                raise
            except (BinanceRequestException, requests.RequestException) as error:
                self.responses[(endpoint, "error")] += 1
                if transient >= _TRANSIENT_ATTEMPTS:
                    raise
                delay = backoff_delay(transient, self.reconnect_min_s, self.reconnect_max_s)
                transient += 1
                log.warning(
                    "REST request failed, retrying", extra={"request": what, "error": repr(error), "retry_in_s": delay}
                )
                await asyncio.sleep(delay)
                continue
            self.responses[(endpoint, "200")] += 1
            self.weight.update(self.rest.used_weight(), time.time())
            return result, received_ns

    def _answered(self, function: Callable[[], Any]) -> tuple[Any, int]:
        result = function()
        return result, self.receipt_clock_ns()

    async def publish(self, records: list[Any], stream: str, received_at_ns: int) -> None:
        """Publishes one REST answer's records, each stamped with the answer's receipt time."""
        request_id = f"rest-{uuid.uuid4().hex[:8]}".encode()
        for record in records:
            value = encode_record(record)
            while not self.publisher.try_publish_rest(value, stream, received_at_ns, request_id):
                # Kafka is behind: REST records wait (they are not time critical), live frames do not.
                await asyncio.sleep(0.05)
            self.records_published += 1

    # --- gap ranges ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Forever: take due ranges from the tracker and fetch them, oldest first."""
        while True:
            if self.banned_until > self.clock():
                # Ranges still come due meanwhile, so that those refused too long are given up.
                self._take_due()
                self._give_up_overdue(f"REST banned this IP (418) for over {self.give_up_after_s:g} s")
                if self.clock() - self._ban_logged_at >= 10.0:
                    self._ban_logged_at = self.clock()
                    log.critical(
                        "REST banned (418): gaps wait for the ban to end",
                        extra={
                            "ranges_waiting": len(self.queue) + self.tracker.pending(),
                            "ban_left_s": round(self.banned_until - self.clock()),
                        },
                    )
                await asyncio.sleep(min(1.0, self.banned_until - self.clock()))
                continue
            if not self.publisher.has_room():
                # Recovering losses while Kafka is still away would only lose them again; meanwhile the
                # tracker merges consecutive lost ids into few ranges.
                await asyncio.sleep(0.2)
                continue
            await self._refetch_klines()
            self._take_due()
            if not self.queue:
                await asyncio.sleep(0.1)
                continue
            gap = self.queue[0]
            self._fetching = gap.stream
            try:
                await self.fetch(gap)
            except IpBanned:
                continue  # kept at the head of the queue
            except Exception as error:
                self.ranges_failed += 1
                if gap.last is not None:
                    self.ids_given_up += gap.last - gap.first + 1
                log.error(
                    "backfill failed; ids stay missing",
                    extra={"stream": gap.stream, "first": gap.first, "last": gap.last, "error": repr(error)},
                )
                self._give_up(gap.stream, f"producer could not refetch ids {gap.first}..{gap.last}: {error}")
            finally:
                self._fetching = None
            self.queue.popleft()
            if not any(queued.stream == gap.stream for queued in self.queue):
                self._queued_since.pop(gap.stream, None)

    def _take_due(self) -> None:
        due = self.tracker.due(self.clock())
        if due:
            for gap in due:
                self._queued_since.setdefault(gap.stream, self.clock())
            self.queue = deque(merge_ranges([*self.queue, *due]))

    def _give_up_overdue(self, why: str) -> None:
        for stream in [stream for stream in self.kline_drops if self._overdue(stream)]:
            del self.kline_drops[stream]
            self._give_up(stream, why)
        overdue = {gap.stream for gap in self.queue if self._overdue(gap.stream)}
        if overdue:
            self.queue = deque(gap for gap in self.queue if gap.stream not in overdue)
            for stream in sorted(overdue):
                self._give_up(stream, why)

    async def fetch(self, gap: BackfillRange) -> int:
        """Fetch and publish ids gap.first..gap.last (or on until caught up with the live stream)."""
        published, _ = await self._fetch(gap)
        return published

    async def _fetch(self, gap: BackfillRange) -> tuple[int, int | None]:
        """fetch(), and the time of the newest record published (None: none)."""
        kind = stream_type(gap.stream)
        id_field, time_field = REST_ID_FIELDS[kind], REST_TIME_FIELDS[kind]
        newest_ms: int | None = None
        symbol = gap.stream.partition("@")[0].upper()
        from_id = gap.first
        published = 0
        while gap.last is None or from_id <= gap.last:
            limit = PAGE_LIMIT if gap.last is None else min(PAGE_LIMIT, gap.last - from_id + 1)
            page, received_ns = await self._page(kind, symbol, from_id, limit)
            ids = [i for i in (record_id(record, id_field) for record in page) if i is not None]
            if not ids:
                break
            wanted = [r for r, i in zip(page, ids, strict=False) if gap.last is None or i <= gap.last]
            await self.publish(wanted, gap.stream, received_ns)
            published += len(wanted)
            if wanted:
                newest_ms = int(wanted[-1][time_field])
            newest = max(ids)
            self.tracker.filled(gap.stream, from_id, newest if gap.last is None else min(newest, gap.last))
            live = self.tracker.live_id(gap.stream)
            if gap.last is None and live is not None and newest >= live:
                break  # caught up with what the live stream has delivered
            from_id = newest + 1
        self.ranges_done += 1
        log.info(
            "backfilled",
            extra={"stream": gap.stream, "first": gap.first, "last": gap.last, "records": published},
        )
        return published, newest_ms

    async def _page(self, kind: str, symbol: str, from_id: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        """A page of trades or aggTrades from `from_id` on, and when it was received."""
        if kind == "trade":
            return await self.call_received(
                f"historicalTrades {symbol} fromId={from_id}",
                lambda: self.rest.historical_trades(symbol, from_id, limit),
            )
        return await self.call_received(
            f"aggTrades {symbol} fromId={from_id}",
            lambda: self.rest.agg_trades(symbol, limit, from_id=from_id),
        )

    # --- klines missed while disconnected ---------------------------------------------------------

    def kline_dropped(self, stream: str) -> None:
        """Klines carry no consecutive id: after a drop, the klines since then are fetched over REST."""
        if stream not in self.kline_drops:
            self.kline_drops[stream] = (int(time.time() * 1000), self.clock() + self.grace_s)
            self._queued_since.setdefault(stream, self.clock())

    async def _refetch_klines(self) -> None:
        now = self.clock()
        for stream, (dropped_ms, due) in list(self.kline_drops.items()):
            if due > now:
                continue
            # Taken off first: a drop during the refetch asks for another one (busy_streams() still
            # names the stream meanwhile).
            del self.kline_drops[stream]
            symbol, _, kind = stream.partition("@")
            interval = kind.removeprefix("kline_")
            # From the kline that was open at the drop (its close may have been missed) to now.
            start_ms = dropped_ms - _KLINE_MS.get(interval, 60_000)
            self._queued_since.setdefault(stream, now)
            self._fetching = stream
            try:
                count = await self._klines(symbol.upper(), interval, start_ms, int(time.time() * 1000))
            except IpBanned:
                if self._overdue(stream):
                    self._give_up(stream, f"REST banned this IP (418) for over {self.give_up_after_s:g} s")
                else:
                    later_drop = self.kline_drops.get(stream)
                    since_ms = dropped_ms if later_drop is None else min(dropped_ms, later_drop[0])
                    self.kline_drops[stream] = (since_ms, self.banned_until)
                return
            except Exception as error:
                log.error("kline refetch failed", extra={"stream": stream, "error": repr(error)})
                self._give_up(stream, f"producer could not refetch klines: {error}")
                continue
            finally:
                self._fetching = None
            if stream not in self.kline_drops:
                self._queued_since.pop(stream, None)
            log.info("klines refetched after a drop", extra={"stream": stream, "klines": count})

    # --- start-up lookback ----------------------------------------------------------------------

    async def lookback(self, symbols: list[str], stream_types: list[str], intervals: list[str], seconds: float) -> None:
        """History from `seconds` ago to now: klines of `intervals`, then trades and aggTrades; for
        each stream a held marker of the period fetched, as far as its records are final
        (producer/held_ends.py, the history import's rules)."""
        end_ms = int(time.time() * 1000)
        start_ms = end_ms - int(seconds * 1000)
        for symbol in symbols:
            for interval in intervals:
                count, held_to = await self._klines_held(symbol, interval, start_ms, end_ms)
                log.info("lookback klines", extra={"symbol": symbol, "interval": interval, "klines": count})
                await self._held(f"{symbol.lower()}@kline_{interval}", start_ms, held_to)
            wanted = [kind for kind in ("trade", "aggTrade") if kind in stream_types]
            if not wanted:
                continue
            first = await self.call(
                f"aggTrades {symbol} startTime={start_ms}",
                lambda symbol=symbol: self.rest.agg_trades(symbol, 1, start_time=start_ms),  # type: ignore[misc]
            )
            if not first:
                log.info("lookback: no trades in the window", extra={"symbol": symbol})
                continue
            # An aggregate trade names its first trade id: the trade id at the window's start.
            starts = {"aggTrade": int(first[0]["a"]), "trade": int(first[0]["f"])}
            for kind in wanted:
                stream = f"{symbol.lower()}@{kind}"
                count, newest_ms = await self._fetch(BackfillRange(stream, starts[kind], None))
                log.info("lookback trades", extra={"symbol": symbol, "stream_type": kind, "records": count})
                # Fetched until caught up with the live stream: no later record proves the newest's millisecond over.
                await self._held(stream, start_ms, trades_held_end(newest_ms, end_ms, later_record_seen=False))

    async def _held(self, stream: str, start_ms: int, end_ms: int | None) -> None:
        """A held marker for [start_ms, end_ms) of `stream`, after its records on their partition."""
        if end_ms is None or end_ms <= start_ms:
            return
        marker = CoverageMarker(CoverageKind.HELD, start_ms, end_ms, Source.REST)
        while not self.publisher.try_publish_coverage(marker, stream):
            await asyncio.sleep(0.05)  # the buffer is full: Kafka is behind
        log.info("lookback held", extra={"stream": stream, "start_ms": start_ms, "end_ms": end_ms})

    async def _klines_held(self, symbol: str, interval: str, start_ms: int, end_ms: int) -> tuple[int, int]:
        """_klines(), and how far the klines published hold [start_ms, end_ms]: up to the first one
        still open when its page came."""
        held_to = end_ms + 1  # endTime is inclusive
        interval_ms = FIXED_INTERVAL_MS.get(interval, _KLINE_MS["1M"])

        def on_page(page: list[list[Any]], received_ms: int) -> None:
            nonlocal held_to
            if page or held_to == end_ms + 1:  # the empty answer after the last page says nothing
                held_to = min(held_to, klines_held_end(page, end_ms + 1, received_ms, interval_ms))

        count = await self._klines(symbol, interval, start_ms, end_ms, on_page)
        return count, held_to

    async def _klines(
        self,
        symbol: str,
        interval: str,
        start_ms: int,
        end_ms: int,
        on_page: Callable[[list[list[Any]], int], None] | None = None,
    ) -> int:
        stream = f"{symbol.lower()}@kline_{interval}"
        count = 0
        next_start = start_ms
        while next_start <= end_ms:
            page, received_ns = await self.call_received(
                f"klines {symbol} {interval} startTime={next_start}",
                lambda start=next_start: self.rest.klines(symbol, interval, start, end_ms, PAGE_LIMIT),  # type: ignore[misc]
            )
            if on_page is not None:
                on_page(page, received_ns // 1_000_000)  # when the answer came, to tell the open kline
            if not page:
                break
            await self.publish(page, stream, received_ns)
            count += len(page)
            # Rows are ordered by open time; the next page starts after the last one's open.
            next_start = int(page[-1][0]) + 1
        return count
