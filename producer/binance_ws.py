"""Binance WebSocket connections: one per shard of streams, kept alive, replaced before they expire.

Each shard owns at most two connections at a time: the current one, and during a rollover
(the 24 h limit coming up, or a `serverShutdown` announcement) its successor, opened first and
read alongside the old one for an overlap period, so the switch leaves no gap. A connection
that drops is replaced after an exponential backoff with jitter, and its streams are reported
as dropped so the gap tracker checks what was missed.
"""

import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.frames import CloseCode

from producer.frames import SERVER_SHUTDOWN_STREAM, stream_of
from producer.limits import (
    CONTROL_MESSAGE_INTERVAL_S,
    AttemptBudget,
    backoff_delay,
    combined_stream_url,
    control_messages,
)
from producer.settings import ProducerSettings
from schemas.topics import received_at_ns

log = logging.getLogger(__name__)

# frame, stream, received_at_ns, connection_id
FrameSink = Callable[[bytes, str, int, bytes], None]
DroppedHandler = Callable[[list[str]], None]

_CONNECT_ERRORS = (OSError, TimeoutError, websockets.InvalidHandshake, websockets.InvalidURI)
# Answers to our own SUBSCRIBE/UNSUBSCRIBE: not market data, so not published.
_CONTROL_REPLY_PREFIXES = (b'{"result":', b'{"error":')


@dataclass(eq=False)
class Link:
    """One open connection and the task reading it."""

    ws: ClientConnection
    connection_id: str
    opened_at: float
    frames: int = 0
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    server_shutdown: asyncio.Event = field(default_factory=asyncio.Event)
    closing: bool = False
    reader: asyncio.Task[None] | None = None
    end_reason: str = ""
    # One of a few words (the metrics' label): server_close, connection_lost, frame_too_big, error.
    end_cause: str = "connection_lost"
    # The streams this connection carries: its URL's, then changed by SUBSCRIBE/UNSUBSCRIBE.
    streams: set[str] = field(default_factory=set)
    sync_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Shard:
    """Keeps one combined-stream connection for its list of streams, for as long as it runs.

    The list may change while it runs (symbols listed or halted): open connections are told with
    SUBSCRIBE/UNSUBSCRIBE, and every new connection's URL names the list as it is then.
    """

    def __init__(
        self,
        index: int,
        streams: list[str],
        settings: ProducerSettings,
        sink: FrameSink,
        attempts: AttemptBudget,
        on_dropped: DroppedHandler,
    ) -> None:
        self.index = index
        self.streams = list(streams)
        self.settings = settings
        self.sink = sink
        self.attempts = attempts
        self.on_dropped = on_dropped
        self.connections_opened = 0
        self.rollovers = 0
        self.drops = 0
        self.drop_causes: Counter[str] = Counter()
        self.control_errors = 0
        self._failures = 0
        self._next_request_id = 1
        self._links: set[Link] = set()
        # Since when the shard has had no open connection (None: it has one); it starts without.
        self.down_since: float | None = time.monotonic()

    @property
    def url(self) -> str:
        return combined_stream_url(self.settings.ws_base_url, self.streams, self.settings.time_unit)

    # --- one connection -------------------------------------------------------------------------

    async def _connect(self) -> Link:
        await self._respect_attempt_budget()
        self.attempts.record(time.monotonic())
        named = list(self.streams)
        ws = await websockets.connect(
            combined_stream_url(self.settings.ws_base_url, named, self.settings.time_unit),
            open_timeout=self.settings.open_timeout_s,
            # Our own keepalive pings detect a connection that died without closing (no FIN, no close
            # frame); the library also answers Binance's pings with pongs of the same payload.
            ping_interval=self.settings.ping_interval_s,
            ping_timeout=self.settings.ping_timeout_s,
            close_timeout=2,
            max_size=self.settings.ws_max_frame_bytes,
            # Frames buffered ahead of the reader before TCP backpressure: enough for bursts.
            max_queue=4096,
            # Binance sends uncompressed frames; not offering deflate saves CPU with any server.
            compression=None,
        )
        link = Link(ws, uuid.uuid4().hex[:12], time.monotonic(), streams=set(named))
        link.reader = asyncio.create_task(self._read(link), name=f"ws-read-{link.connection_id}")
        self._links.add(link)
        self.down_since = None
        self.connections_opened += 1
        log.info(
            "connected",
            extra={"shard": self.index, "connection_id": link.connection_id, "streams": len(named)},
        )
        # The list may have changed during the handshake.
        await self._sync(link)
        return link

    # --- live subscription changes ----------------------------------------------------------------

    async def change(self, add: list[str], remove: list[str]) -> None:
        """Add and remove streams: open connections at once (SUBSCRIBE/UNSUBSCRIBE), later ones by URL."""
        gone = set(remove)
        self.streams = [name for name in self.streams if name not in gone]
        self.streams.extend(name for name in dict.fromkeys(add) if name not in set(self.streams))
        for link in list(self._links):
            await self._sync(link)

    async def _sync(self, link: Link) -> None:
        """Bring one connection's subscriptions to the shard's list, within Binance's message rate."""
        async with link.sync_lock:
            wanted = set(self.streams)
            removals = [name for name in sorted(link.streams) if name not in wanted]
            additions = [name for name in self.streams if name not in link.streams]
            for method, names in (("UNSUBSCRIBE", removals), ("SUBSCRIBE", additions)):
                messages = control_messages(method, names, self._next_request_id)
                self._next_request_id += len(messages)
                for request_id, message in messages:
                    if link.ended.is_set():
                        return  # its successor's URL names the list as it is then
                    try:
                        await link.ws.send(message, text=True)
                    except websockets.ConnectionClosed:
                        return
                    batch = orjson.loads(message)["params"]
                    if method == "SUBSCRIBE":
                        link.streams.update(batch)
                    else:
                        link.streams.difference_update(batch)
                    log.info(
                        "subscriptions changed",
                        extra={
                            "shard": self.index,
                            "connection_id": link.connection_id,
                            "method": method,
                            "request_id": request_id,
                            "streams": len(batch),
                        },
                    )
                    await asyncio.sleep(CONTROL_MESSAGE_INTERVAL_S)

    def _on_control_reply(self, link: Link, frame: bytes) -> None:
        # {"result":null,"id":N} confirms; {"error":{"code":..,"msg":..},"id":N} refuses a request.
        if frame.startswith(b'{"error":'):
            self.control_errors += 1
            log.error(
                "Binance refused a subscription change",
                extra={"shard": self.index, "connection_id": link.connection_id, "reply": frame[:300].decode()},
            )

    async def _respect_attempt_budget(self) -> None:
        while (wait_s := self.attempts.wait_s(time.monotonic())) > 0:
            log.warning(
                "connection attempt budget used up (Binance: 300 per 5 min per IP), waiting",
                extra={"shard": self.index, "wait_s": round(wait_s, 1)},
            )
            await asyncio.sleep(wait_s)

    async def _read(self, link: Link) -> None:
        # The hot path: no parsing, one sink call per frame.
        recv = link.ws.recv
        sink = self.sink
        connection_id = link.connection_id.encode()
        now_ns = received_at_ns
        try:
            while True:
                frame = await recv(decode=False)
                if isinstance(frame, str):  # pragma: no cover - decode=False returns bytes
                    frame = frame.encode()
                stream = stream_of(frame)
                if not stream and frame.startswith(_CONTROL_REPLY_PREFIXES):
                    self._on_control_reply(link, frame)
                    continue
                sink(frame, stream, now_ns(), connection_id)
                link.frames += 1
                if stream == SERVER_SHUTDOWN_STREAM:
                    link.server_shutdown.set()
        except websockets.ConnectionClosed as closed:
            link.end_reason = f"closed: code={closed.rcvd.code if closed.rcvd else None} {closed!s}"
            # No close frame received: the network, or a keepalive ping that went unanswered.
            link.end_cause = "server_close" if closed.rcvd is not None else "connection_lost"
            if closed.sent is not None and closed.sent.code == CloseCode.MESSAGE_TOO_BIG:
                link.end_cause = "frame_too_big"
                link.end_reason = f"frame over {self.settings.ws_max_frame_bytes} bytes: {closed.sent.reason}"
                log.error(
                    "frame over PRODUCER_WS_MAX_FRAME_BYTES: connection closed (1009); reconnecting, and the ids"
                    " it carried are backfilled over REST",
                    extra={
                        "shard": self.index,
                        "connection_id": link.connection_id,
                        "max_frame_bytes": self.settings.ws_max_frame_bytes,
                        "detail": closed.sent.reason,
                    },
                )
        except Exception as error:
            link.end_reason = f"error: {error!r}"
            link.end_cause = "error"
            log.exception("reader failed", extra={"shard": self.index, "connection_id": link.connection_id})
        finally:
            link.ended.set()

    async def _close(self, link: Link) -> None:
        link.closing = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(link.ws.close(), 3)
        if link.reader is not None:
            link.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await link.reader
        self._forget(link)

    def _forget(self, link: Link) -> None:
        self._links.discard(link)
        if not self._links and self.down_since is None:
            self.down_since = time.monotonic()

    def connection_ages_s(self, now: float) -> list[float]:
        """How long each open connection has been open (two during a rollover). Called from the
        metrics thread too: list() copies the set in one step, so a change meanwhile cannot break it."""
        return [now - link.opened_at for link in list(self._links)]

    # --- keeping the shard connected ------------------------------------------------------------

    async def _open(self, while_alive: Link | None = None) -> Link | None:
        """Connect, retrying with backoff; None if `while_alive` ends first (a rollover that lost its base)."""
        while True:
            if while_alive is not None and while_alive.ended.is_set():
                return None
            try:
                return await self._connect()
            except _CONNECT_ERRORS as error:
                delay = backoff_delay(self._failures, self.settings.reconnect_min_s, self.settings.reconnect_max_s)
                self._failures += 1
                log.warning(
                    "connect failed, retrying",
                    extra={"shard": self.index, "error": repr(error), "retry_in_s": round(delay, 2)},
                )
                if while_alive is None:
                    await asyncio.sleep(delay)
                else:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(while_alive.ended.wait(), delay)

    async def _next_event(self, link: Link) -> str:
        """'ended', 'serverShutdown' or 'max_age', whichever comes first."""
        if link.server_shutdown.is_set():
            return "serverShutdown"
        deadline = link.opened_at + self.settings.connection_max_age_s
        waits = {
            asyncio.create_task(link.ended.wait()): "ended",
            asyncio.create_task(link.server_shutdown.wait()): "serverShutdown",
        }
        try:
            done, _ = await asyncio.wait(
                waits, timeout=max(0.0, deadline - time.monotonic()), return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in waits:
                task.cancel()
        if not done:
            return "max_age"
        # A serverShutdown frame is usually followed by the close: it is the reason, not the drop.
        if link.server_shutdown.is_set():
            return "serverShutdown"
        return "ended"

    async def run(self) -> None:
        current: Link | None = None
        try:
            while True:
                if current is None:
                    current = await self._open()
                    assert current is not None
                event = await self._next_event(current)
                if event == "ended":
                    await self._after_drop(current)
                    current = None
                    continue
                current = await self._rollover(current, event)
        finally:
            for link in list(self._links):
                await self._close(link)

    async def _after_drop(self, link: Link) -> None:
        lived_s = time.monotonic() - link.opened_at
        self.drops += 1
        self.drop_causes[link.end_cause] += 1
        self._forget(link)
        self.on_dropped(self.streams)
        # A connection that lived a while was healthy: start the backoff over.
        if lived_s >= self.settings.reconnect_max_s:
            self._failures = 0
        delay = backoff_delay(self._failures, self.settings.reconnect_min_s, self.settings.reconnect_max_s)
        self._failures += 1
        log.warning(
            "connection lost, reconnecting",
            extra={
                "shard": self.index,
                "connection_id": link.connection_id,
                "frames": link.frames,
                "lived_s": round(lived_s, 1),
                "reason": link.end_reason,
                "retry_in_s": round(delay, 2),
            },
        )
        await asyncio.sleep(delay)

    async def _rollover(self, old: Link, reason: str) -> Link | None:
        """Open the successor, read both for the overlap, then close the old one: no gap."""
        log.info(
            "rollover: opening the replacement connection",
            extra={"shard": self.index, "connection_id": old.connection_id, "reason": reason, "frames": old.frames},
        )
        successor = await self._open(while_alive=old)
        if successor is None:
            # The old connection ended before a replacement could be opened: an ordinary drop.
            await self._after_drop(old)
            return None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(old.ended.wait(), self.settings.rollover_overlap_s)
        await self._close(old)
        self.rollovers += 1
        log.info(
            "rollover done",
            extra={
                "shard": self.index,
                "old_connection_id": old.connection_id,
                "connection_id": successor.connection_id,
                "reason": reason,
                "old_frames": old.frames,
            },
        )
        return successor
