"""The WebSocket side: Binance's URL layout, live control messages, pings, limits, closes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from websockets import http11 as websockets_http11
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from fake_binance import streams, wire
from fake_binance.exchange import Event, Exchange
from fake_binance.settings import FakeBinanceSettings

log = logging.getLogger("fake_binance.ws")

# Binance: at most 5 incoming messages per second per connection, 1024 streams per connection,
# 300 connection attempts per 5 minutes per IP.
MAX_INCOMING_PER_SECOND = 5
MAX_STREAMS = 1024
CONNECTION_ATTEMPT_WINDOW_S = 300.0
TOO_MANY_STREAMS = "Invalid request: too many streams"
# A request line long enough for 1024 stream names in the URL (about 30 bytes each at most), so
# that it is the stream limit that refuses a larger list, not the HTTP parser.
MAX_REQUEST_LINE_BYTES = 64 * 1024
# Frames waiting for a slow reader before the connection is dropped.
SEND_QUEUE_LIMIT = 100_000
METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
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


@dataclass(slots=True)
class ControlOutcome:
    reply: str
    subscribe: list[str] = field(default_factory=list)
    unsubscribe: list[str] = field(default_factory=list)
    combined: bool | None = None


def _serde_position(error: json.JSONDecodeError) -> str:
    # Binance's parser (serde) words it "expected value at line 1 column 1".
    detail = "expected value" if error.msg.startswith("Expecting value") else error.msg[0].lower() + error.msg[1:]
    return f"{detail} at line {error.lineno} column {error.colno}"


def _end_position(text: str) -> str:
    lines = text.split("\n")
    return f"at line {len(lines)} column {len(lines[-1])}"


def handle_control(text: str, subscribed: list[str], combined: bool) -> ControlOutcome:
    """Binance's answer to one control message, and what it changes. Pure."""
    try:
        request = json.loads(text)
    except json.JSONDecodeError as error:
        return ControlOutcome(wire.control_error(3, f"Invalid JSON: {_serde_position(error)}", with_id=False))
    if not isinstance(request, dict):
        return ControlOutcome(wire.control_error(2, "Invalid request: expected a JSON object", None))
    request_id = request.get("id")
    if "method" not in request:
        return ControlOutcome(
            wire.control_error(2, f"Invalid request: missing field `method` {_end_position(text)}", None)
        )
    method = request["method"]
    if method not in METHODS:
        variant = method if isinstance(method, str) else json.dumps(method)
        expected = ", ".join(f"`{m}`" for m in METHODS)
        return ControlOutcome(
            wire.control_error(2, f"Invalid request: unknown variant `{variant}`, expected one of {expected}", None)
        )
    if not _valid_request_id(request):
        return ControlOutcome(wire.control_error(2, "Invalid request: request ID must be an unsigned integer", None))
    params = request.get("params", [])
    if not isinstance(params, list):
        return ControlOutcome(wire.control_error(2, "Invalid request: invalid type: expected a sequence", request_id))
    if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
        return _subscription(method, params, request_id, subscribed)
    if method == "LIST_SUBSCRIPTIONS":
        if params:
            return ControlOutcome(wire.control_error(2, "Invalid request: too many parameters", request_id))
        return ControlOutcome(wire.control_result(list(subscribed), request_id))
    return _property(method, params, request_id, combined)


def _valid_request_id(request: dict[str, Any]) -> bool:
    # The id may be a 64-bit signed integer, an alphanumeric string of up to 36 characters, or null.
    if "id" not in request:
        return False
    value = request["id"]
    if value is None:
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    return isinstance(value, str) and _REQUEST_ID.match(value) is not None


def _subscription(method: str, params: list[Any], request_id: Any, subscribed: list[str]) -> ControlOutcome:
    if not all(isinstance(name, str) and streams.is_valid_stream(name) for name in params):
        return ControlOutcome(wire.control_error(2, "Invalid request: invalid stream", request_id))
    names = list(dict.fromkeys(params))
    if method == "UNSUBSCRIBE":
        return ControlOutcome(wire.control_result(None, request_id), unsubscribe=names)
    if len(set(subscribed) | set(names)) > MAX_STREAMS:
        return ControlOutcome(wire.control_error(2, TOO_MANY_STREAMS, request_id))
    return ControlOutcome(wire.control_result(None, request_id), subscribe=names)


def _property(method: str, params: list[Any], request_id: Any, combined: bool) -> ControlOutcome:
    wanted = 2 if method == "SET_PROPERTY" else 1
    if len(params) > wanted:
        return ControlOutcome(wire.control_error(2, "Invalid request: too many parameters", request_id))
    if not params or not isinstance(params[0], str):
        return ControlOutcome(wire.control_error(2, "Invalid request: property name must be a string", request_id))
    if params[0] != "combined":
        return ControlOutcome(wire.control_error(0, "Unknown property", request_id))
    if method == "GET_PROPERTY":
        return ControlOutcome(wire.control_result(combined, request_id))
    if len(params) < 2 or not isinstance(params[1], bool):
        return ControlOutcome(wire.control_error(1, "Invalid value type: expected Boolean", request_id))
    return ControlOutcome(wire.control_result(None, request_id), combined=params[1])


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
