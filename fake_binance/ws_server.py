"""The WebSocket side: Binance's URL layout, live control messages, pings, limits, closes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from websockets import http11 as websockets_http11
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from fake_binance import streams, wire
from fake_binance.exchange import Event, Exchange
from fake_binance.settings import FakeBinanceSettings
from schemas.control_messages import TOO_MANY_STREAMS, ControlOutcome
from schemas.control_messages import handle_control as answer_control

log = logging.getLogger("fake_binance.ws")

# Binance: at most 5 incoming messages per second per connection, 1024 streams per connection,
# 300 connection attempts per 5 minutes per IP.
MAX_INCOMING_PER_SECOND = 5
MAX_STREAMS = 1024
CONNECTION_ATTEMPT_WINDOW_S = 300.0
# A request line long enough for 1024 stream names in the URL (about 30 bytes each at most), so
# that it is the stream limit that refuses a larger list, not the HTTP parser.
MAX_REQUEST_LINE_BYTES = 64 * 1024
# Frames waiting for a slow reader before the connection is dropped.
SEND_QUEUE_LIMIT = 100_000
# Binance accepts exactly these spellings of `timeUnit` in the URL.
_TIME_UNITS = {
    "MILLISECOND": wire.MILLISECONDS,
    "millisecond": wire.MILLISECONDS,
    "MICROSECOND": wire.MICROSECONDS,
    "microsecond": wire.MICROSECONDS,
}


# --- the URL ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConnectionSpec:
    combined: bool
    streams: tuple[str, ...]
    time_scale: int


class BadRequestPath(ValueError):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def parse_request_path(path: str) -> ConnectionSpec:
    """`/ws`, `/ws/<s1>[/<s2>...]` (raw payloads) or `/stream?streams=<s1>/<s2>` (wrapped)."""
    parts = urlsplit(path)
    query = parse_qs(parts.query, keep_blank_values=True)
    unit = query.get("timeUnit", ["MILLISECOND"])[-1]
    time_scale = _TIME_UNITS.get(unit)
    if time_scale is None:
        raise BadRequestPath(400, f"Invalid timeUnit: {unit}")
    route = unquote(parts.path).rstrip("/")
    if route == "/ws":
        return ConnectionSpec(combined=False, streams=(), time_scale=time_scale)
    if route.startswith("/ws/"):
        names = [name for name in route.removeprefix("/ws/").split("/") if name]
        return ConnectionSpec(combined=False, streams=_unique(names), time_scale=time_scale)
    if route == "/stream":
        names = [name for value in query.get("streams", []) for name in value.split("/") if name]
        return ConnectionSpec(combined=True, streams=_unique(names), time_scale=time_scale)
    raise BadRequestPath(404, "Not Found")


def _unique(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


# --- live control messages --------------------------------------------------------------------


def handle_control(text: str, subscribed: list[str], combined: bool) -> ControlOutcome[str]:
    """Binance's answer to one control message, and what it changes (schemas/control_messages.py's
    rules, with every stream name Binance takes). Pure."""
    return answer_control(text, subscribed, combined, MAX_STREAMS, _binance_stream, _same)


def _binance_stream(name: str) -> str | None:
    return name if streams.is_valid_stream(name) else None


def _same(name: str) -> str:
    return name


# --- one connection ---------------------------------------------------------------------------


class StreamConnection:
    """One client: its subscriptions, its outgoing queue, its keepalive and its limits."""

    def __init__(
        self, ws: ServerConnection, spec: ConnectionSpec, exchange: Exchange, settings: FakeBinanceSettings
    ) -> None:
        self.ws = ws
        self.exchange = exchange
        self.settings = settings
        self.combined = spec.combined
        self.time_scale = spec.time_scale
        self.streams: list[str] = []
        # A deque and an event rather than an asyncio.Queue: the writer takes whatever is waiting in
        # one go, without a get() per frame (every frame of the whole market passes here).
        self._outbox: deque[str] = deque()
        self._queued = asyncio.Event()
        self._incoming: deque[float] = deque()
        self._closing: asyncio.Task[None] | None = None
        self._pong_watchers: set[asyncio.Task[None]] = set()
        # A frozen connection neither reads (so pings go unanswered) nor writes: a dead peer
        # whose TCP connection never closed, which only the client's own keepalive can detect.
        self._thawed = asyncio.Event()
        self._thawed.set()
        self._add_streams(spec.streams)

    @property
    def peer(self) -> str:
        address = self.ws.remote_address
        return f"{address[0]}:{address[1]}" if address else "?"

    def deliver(self, event: Event) -> None:
        for text in self.exchange.faults.corrupt(event.stream, event.text(self.time_scale, self.combined)):
            self._send(text)

    def send_error(self, code: int, msg: str) -> None:
        """An unsolicited `{"code","msg"}` error frame, as Binance answers a request it refuses."""
        self._send(wire.encode(wire.rest_error(code, msg)))

    def drop(self, mode: str, shutdown_grace_s: float = 1.0) -> None:
        """abrupt: the TCP connection is cut with no close frame; close: a close frame (1001);
        shutdown: Binance's serverShutdown event, then a close frame after a grace period."""
        if mode == "abrupt":
            log.info("dropping connection abruptly", extra={"peer": self.peer})
            transport = self.ws.transport
            if transport is not None:
                transport.abort()
        elif mode == "close":
            self.close_soon(1001, "Going away")
        else:
            self.deliver_shutdown(self.exchange.clock.now_ms())
            asyncio.get_running_loop().call_later(shutdown_grace_s, self.close_soon, 1001, "Server shutdown")

    def freeze(self) -> None:
        log.info("freezing connection", extra={"peer": self.peer})
        self._thawed.clear()
        transport = self.ws.transport
        if transport is not None:
            transport.pause_reading()

    def deliver_shutdown(self, event_time: int) -> None:
        payload = wire.encode(wire.server_shutdown_payload(event_time, self.time_scale))
        self._send(wire.combined_frame(wire.SERVER_SHUTDOWN_STREAM, payload) if self.combined else payload)

    def _send(self, text: str) -> None:
        if len(self._outbox) >= SEND_QUEUE_LIMIT:
            self.close_soon(1008, "Slow consumer")
            return
        self._outbox.append(text)
        if not self._queued.is_set():
            self._queued.set()

    def close_soon(self, code: int, reason: str) -> None:
        if self._closing is None:
            log.info("closing connection", extra={"peer": self.peer, "code": code, "reason": reason})
            self._closing = asyncio.create_task(self.ws.close(code, reason))

    def _add_streams(self, names: Iterable[str]) -> None:
        new = [name for name in names if name not in self.streams]
        self.streams.extend(new)
        self.exchange.subscribe(self, new)

    def _remove_streams(self, names: Iterable[str]) -> None:
        gone = [name for name in names if name in self.streams]
        self.streams = [name for name in self.streams if name not in gone]
        self.exchange.unsubscribe(self, gone)

    async def run(self) -> None:
        log.info(
            "connection open",
            extra={
                "peer": self.peer,
                "path": self.ws.request.path if self.ws.request else None,
                "streams": self.streams,
                "combined": self.combined,
            },
        )
        tasks = [
            asyncio.create_task(self._write()),
            asyncio.create_task(self._keepalive()),
            asyncio.create_task(self._expire()),
        ]
        try:
            async for message in self.ws:
                self._on_message(message)
        except ConnectionClosed:
            pass
        finally:
            self._remove_streams(list(self.streams))
            for task in (*tasks, *self._pong_watchers):
                task.cancel()
            log.info("connection closed", extra={"peer": self.peer, "code": self.ws.close_code})

    def _on_message(self, message: str | bytes) -> None:
        now = time.monotonic()
        self._incoming.append(now)
        while self._incoming and now - self._incoming[0] >= 1.0:
            self._incoming.popleft()
        if len(self._incoming) > MAX_INCOMING_PER_SECOND:
            self.close_soon(1008, "Too many requests")
            return
        text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
        outcome = handle_control(text, self.streams, self.combined)
        self._remove_streams(outcome.unsubscribe)
        self._add_streams(outcome.subscribe)
        if outcome.combined is not None:
            self.combined = outcome.combined
        self._send(outcome.reply)
        if outcome.subscribe or outcome.unsubscribe:
            log.info(
                "subscriptions changed",
                extra={
                    "peer": self.peer,
                    "added": outcome.subscribe,
                    "removed": outcome.unsubscribe,
                    "streams": len(self.streams),
                },
            )

    async def _write(self) -> None:
        outbox, send = self._outbox, self.ws.send
        with contextlib.suppress(ConnectionClosed):
            while True:
                await self._queued.wait()
                await self._thawed.wait()
                while outbox:
                    await send(outbox.popleft())
                    if not self._thawed.is_set():
                        break  # frozen meanwhile: what is left waits for the thaw
                else:
                    # Empty, and no frame can arrive between the check and this (no await).
                    self._queued.clear()

    async def flush(self, timeout: float) -> None:
        """Wait (bounded) until everything queued has been handed to the socket."""
        deadline = time.monotonic() + timeout
        while self._outbox and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    async def _keepalive(self) -> None:
        # Binance pings every 20 s and drops a connection that has not answered within a minute.
        while True:
            await asyncio.sleep(self.settings.ping_interval_s)
            payload = str(self.exchange.clock.now_ms()).encode()
            try:
                pong = await self.ws.ping(payload)
            except ConnectionClosed:
                return
            watcher = asyncio.create_task(self._expect_pong(pong))
            self._pong_watchers.add(watcher)
            watcher.add_done_callback(self._pong_watchers.discard)

    async def _expect_pong(self, pong: Any) -> None:
        try:
            await asyncio.wait_for(pong, self.settings.pong_timeout_s)
        except TimeoutError:
            self.close_soon(1008, "Pong timeout")
        except ConnectionClosed:
            pass

    async def _expire(self) -> None:
        # A single connection is only valid for 24 hours on Binance.
        await asyncio.sleep(self.settings.connection_lifetime_s)
        self.close_soon(1000, "Connection lifetime expired")


# --- the server -------------------------------------------------------------------------------


class AttemptWindow:
    """Connection attempts per IP in a sliding window: Binance's 300 per 5 minutes."""

    def __init__(self, limit: int, window_s: float = CONNECTION_ATTEMPT_WINDOW_S) -> None:
        self.limit = limit
        self.window_s = window_s
        self._attempts: dict[str, deque[float]] = {}
        self.refused = 0

    def allow(self, ip: str, now: float) -> float:
        """Counts an attempt; 0 when allowed, else the seconds until one would be."""
        attempts = self._attempts.setdefault(ip, deque())
        while attempts and attempts[0] <= now - self.window_s:
            attempts.popleft()
        if len(attempts) >= self.limit:
            self.refused += 1
            return attempts[0] + self.window_s - now
        attempts.append(now)
        return 0.0


class StreamServer:
    def __init__(self, exchange: Exchange, settings: FakeBinanceSettings) -> None:
        self.exchange = exchange
        self.settings = settings
        self.connections: set[StreamConnection] = set()
        self.connections_accepted = 0
        self.attempts = AttemptWindow(settings.ws_connection_attempts_per_5min)
        self._server: Server | None = None
        self._chores: list[asyncio.Task[None]] = []

    # --- run-time misbehaviour (the /fake/ control endpoints and the standing settings) ---------

    def drop_all(self, mode: str) -> int:
        connections = list(self.connections)
        for connection in connections:
            connection.drop(mode)
        self.exchange.faults.connections_dropped += len(connections)
        return len(connections)

    def freeze_all(self) -> int:
        connections = list(self.connections)
        for connection in connections:
            connection.freeze()
        return len(connections)

    def send_error_all(self, code: int, msg: str) -> int:
        connections = list(self.connections)
        for connection in connections:
            connection.send_error(code, msg)
        self.exchange.faults.errors_sent += len(connections)
        return len(connections)

    async def _every(self, period_s: float, action: Callable[[], object]) -> None:
        while True:
            await asyncio.sleep(period_s)
            action()

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        address = connection.remote_address
        wait_s = self.attempts.allow(address[0] if address else "?", time.monotonic())
        if wait_s > 0:
            log.warning("connection attempts over the limit: refused", extra={"peer": address, "retry_after_s": wait_s})
            limit = self.attempts.limit
            body = wire.rest_error(-1003, f"Too many connection attempts; current limit is {limit} per 5 minutes.")
            response = connection.respond(429, wire.encode(body) + "\n")
            response.headers["Retry-After"] = str(max(1, round(wait_s)))
            return response
        try:
            spec = parse_request_path(request.path)
        except BadRequestPath as error:
            return connection.respond(error.status, f"{error}\n")
        if len(spec.streams) > MAX_STREAMS:
            log.warning("too many streams in the URL: refused", extra={"peer": address, "streams": len(spec.streams)})
            return connection.respond(400, wire.control_error(2, TOO_MANY_STREAMS, None, with_id=False) + "\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        spec = parse_request_path(ws.request.path)
        connection = StreamConnection(ws, spec, self.exchange, self.settings)
        self.connections.add(connection)
        self.connections_accepted += 1
        try:
            await connection.run()
        finally:
            self.connections.discard(connection)

    async def start(self, sock: Any) -> None:
        # websockets reads this limit (8 KiB by default, its WEBSOCKETS_MAX_LINE_LENGTH) at each
        # request; Binance takes a URL of 1024 streams, so the fake must read one too.
        websockets_http11.MAX_LINE_LENGTH = max(websockets_http11.MAX_LINE_LENGTH, MAX_REQUEST_LINE_BYTES)
        self._server = await serve(
            self._handle,
            sock=sock,
            process_request=self._process_request,
            # Pings are sent by StreamConnection on Binance's schedule, not by the library.
            ping_interval=None,
            ping_timeout=None,
            max_size=2**20,
        )
        if self.settings.drop_every_s > 0:
            mode = self.settings.drop_mode
            dropping = self._every(self.settings.drop_every_s, lambda: self.drop_all(mode))
            self._chores.append(asyncio.create_task(dropping))
        if self.settings.error_reply_every_s > 0:
            self._chores.append(
                asyncio.create_task(
                    self._every(
                        self.settings.error_reply_every_s,
                        lambda: self.send_error_all(2, "Invalid request: fake error reply"),
                    )
                )
            )

    async def announce_shutdown_and_close(self, grace_s: float = 1.0) -> None:
        """Send Binance's serverShutdown event to everyone, then close the listener and connections."""
        for chore in self._chores:
            chore.cancel()
        now = self.exchange.clock.now_ms()
        for connection in list(self.connections):
            connection.deliver_shutdown(now)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*(c.flush(grace_s) for c in list(self.connections))), grace_s + 0.5)
        if self._server is not None:
            self._server.close(close_connections=True)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5.0)
