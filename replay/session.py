"""One replay connection: its request, its control messages, its pace and its limits."""

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from replay.control import handle_control
from replay.frames import combined_frame
from replay.metrics import ReplayMetrics
from replay.outbox import Outbox
from replay.pacing import Schedule
from replay.player import Player
from replay.readers import make_readers
from replay.request import ReplayRequest
from replay.settings import ReplaySettings
from replay.streams import StreamName

log = logging.getLogger(__name__)

# Close codes (README, "Replay"): the end of the range; a request that cannot be served (the
# reason names the parameter) or too many control messages; the store failed; too many replays;
# a client that left its buffer full for REPLAY_CLIENT_STALL_S.
END_OF_REPLAY = 1000
BAD_REQUEST = 1008
STORE_FAILED = 1011
TRY_AGAIN_LATER = 1013
CLIENT_TOO_SLOW = 4001
# A close reason is at most 123 bytes (RFC 6455: a control frame's payload is at most 125).
MAX_REASON_BYTES = 123


def close_reason(text: str) -> str:
    encoded = text.encode()
    if len(encoded) <= MAX_REASON_BYTES:
        return text
    return encoded[: MAX_REASON_BYTES - 3].decode(errors="ignore") + "..."


class Session:
    def __init__(
        self,
        ws: ServerConnection,
        request: ReplayRequest,
        connection: AsyncConnection,
        driver: Any,
        settings: ReplaySettings,
        metrics: ReplayMetrics,
    ) -> None:
        self.ws = ws
        self.request = request
        self.settings = settings
        self.metrics = metrics
        self.combined = request.combined
        self.player = Player(
            connection,
            driver,
            request.start,
            request.end,
            request.live,
            settings.fetch_rows,
            settings.live_poll_s,
            settings.live_end_grace_s,
            make_readers,
        )
        self.player.subscribe(list(request.streams))
        self._schedule = Schedule(request.speed)
        self._paced = request.speed > 0  # speed=0 has no schedule: no clock read per frame
        self._incoming: deque[float] = deque()
        self.frames_sent = 0
        self._frames_counted = 0
        self._closing: asyncio.Task[None] | None = None
        self._outbox = Outbox(ws, settings.client_buffer_bytes)

    async def run(self) -> None:
        """Plays until the end of the range, the client leaves, or a limit cuts it."""
        play = asyncio.create_task(self._play())
        listen = asyncio.create_task(self._listen())
        watch = asyncio.create_task(self._watch_stall())
        try:
            await asyncio.wait({play, listen}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (play, listen, watch):
                task.cancel()
            await asyncio.gather(play, listen, watch, return_exceptions=True)
            if self._closing is not None:
                await asyncio.gather(self._closing, return_exceptions=True)
            self._count_frames()
            log.info(
                "replay finished",
                extra={"peer": self._peer(), "frames_sent": self.frames_sent, "store_wait_s": self.player.store_wait_s},
            )

    async def _play(self) -> None:
        try:
            await self.player.play(self._emit, self._send_now)
        except ConnectionClosed:
            return
        except Exception as problem:
            if isinstance(problem, asyncio.CancelledError):
                raise
            log.error("replay failed reading the store", extra={"error": repr(problem), "peer": self._peer()})
            await self.close(STORE_FAILED, "the store failed; try again")
            return
        self._outbox.flush()
        await asyncio.sleep(self.settings.end_linger_s)
        await self.close(END_OF_REPLAY, "end of replay")

    def _send_now(self, stream: StreamName, event_ms: int, payload: str) -> bool:
        """The frame queued at once, if there is no schedule and the client's buffer has room."""
        if self._paced:
            return False
        if not self._outbox.append(combined_frame(stream.name, payload) if self.combined else payload):
            return False
        self.frames_sent += 1
        return True

    async def _emit(self, stream: StreamName, event_ms: int, payload: str) -> None:
        frame = combined_frame(stream.name, payload) if self.combined else payload
        if self._paced:
            delay = self._schedule.delay(event_ms, time.monotonic())
            if delay:
                await asyncio.sleep(delay)
        if not self._outbox.append(frame):
            await self._outbox.put(frame)
        self.frames_sent += 1

    async def _listen(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in self.ws:
                if not self._within_rate():
                    await self.close(BAD_REQUEST, "Too many requests")
                    return
                text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
                outcome = handle_control(text, self.player.stream_names, self.combined, self.settings.max_streams)
                self.metrics.control_messages.inc()
                self.player.unsubscribe(outcome.unsubscribe)
                self.player.subscribe(outcome.subscribe)
                if outcome.combined is not None:
                    self.combined = outcome.combined
                self._outbox.flush()
                await self.ws.send(outcome.reply)

    def _within_rate(self) -> bool:
        """Binance's limit: at most max_incoming_per_second messages in any second."""
        now = time.monotonic()
        self._incoming.append(now)
        while now - self._incoming[0] >= 1.0:
            self._incoming.popleft()
        return len(self._incoming) <= self.settings.max_incoming_per_second

    async def _watch_stall(self) -> None:
        """Cuts a client whose buffer stayed full (no frame went out) for client_stall_s."""
        stalled_since: float | None = None
        last_count = self.frames_sent
        while True:
            await asyncio.sleep(min(1.0, self.settings.client_stall_s / 4))
            self._count_frames()
            now = time.monotonic()
            if self._outbox.waiting and self.frames_sent == last_count:
                stalled_since = stalled_since or now
                if now - stalled_since >= self.settings.client_stall_s:
                    buffered = self.settings.client_buffer_bytes
                    log.info("client too slow: cut", extra={"peer": self._peer(), "frames_sent": self.frames_sent})
                    await self.close(CLIENT_TOO_SLOW, f"client too slow: {buffered} bytes unread")
                    return
            else:
                stalled_since = None
            last_count = self.frames_sent

    def _count_frames(self) -> None:
        self.metrics.frames_sent.inc(self.frames_sent - self._frames_counted)
        self._frames_counted = self.frames_sent

    async def close(self, code: int, reason: str) -> None:
        """Closes with `code`; a peer that does not answer (its buffer full) is cut off."""
        if self._closing is None:
            self.metrics.closed.labels(code=str(code)).inc()
            self._closing = asyncio.create_task(self._close(code, close_reason(reason)))
        await asyncio.shield(self._closing)

    async def _close(self, code: int, reason: str) -> None:
        try:
            await asyncio.wait_for(self.ws.close(code, reason), self.settings.close_timeout_s)
        except TimeoutError:
            self.ws.transport.abort()

    def _peer(self) -> str:
        return str(self.ws.remote_address)
