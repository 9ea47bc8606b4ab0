"""Bounds on a request's head for uvicorn's httptools server: its size, and the time it may take.

uvicorn has neither for httptools: llhttp hands a header to httptools in pieces, which joins
them without limit (a 10 MB header was accepted), and a connection that never finishes its
request head is held forever (uvicorn's one timer, `timeout_keep_alive`, only runs between
requests), so `limit_concurrency` slow clients would shut everyone else out. uvicorn's h11
server has a size limit (`h11_max_incomplete_event_size`, answered with a 400) but no head
timeout either, and parses in pure Python, which costs throughput (docs/reliability.md has
the figures). So parsing stays with httptools, and this subclass only counts and times what
arrives before the head is complete:

* **size**: a head over `max_head_bytes` is answered 431 (414 when the request target alone is
  over) and the connection closed. While the head is incomplete the raw bytes are counted, so
  memory stays within the limit plus one socket read; once it is complete its parsed size is
  checked too, since a large head may arrive in a single read.
* **time**: a head not complete `head_timeout_s` after the connection opened (first request) or
  after its first byte (later ones) is answered 408 and the connection closed; a connection that
  sent nothing is closed. Between requests, uvicorn's own keep-alive timer applies.
* **connections**: at most `max_connections` open at once. One more closes the connection that
  has been idle longest (no request in flight: between requests, or still sending its head), so
  idle and slow-header sockets can never keep a real request out; only when every connection has
  a request in flight is the new one answered 503 and closed. (uvicorn's `limit_concurrency`
  counted idle sockets as load: a few hundred idle connections made every request a 503.)
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar

import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

log = logging.getLogger(__name__)

# Per header field, besides name and value: ": " and CRLF.
_FIELD_OVERHEAD = 4


class _HeadRefused(Exception):
    """Raised inside httptools' callback to stop parsing a head that was refused."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a size limit and a time limit on each request head."""

    max_head_bytes: ClassVar[int] = 16 * 1024
    head_timeout_s: ClassVar[float] = 10.0
    max_connections: ClassVar[int] = 4096

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._reading_head = True
        self._head_started = False
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._refused = False
        self._idle_since = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._idle_since = self.loop.time()
        self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_timed_out)
        if len(self.connections) > self.max_connections and not self._make_room():
            log.warning("every connection has a request in flight: refused", extra={"client": self._peer()})
            self._refuse(503, "too many connections with requests in flight, retry later")

    def on_response_complete(self) -> None:
        self._idle_since = self.loop.time()
        super().on_response_complete()

    def _busy(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def _make_room(self) -> bool:
        """Closes the connection idle longest (not this one); False when none is idle."""
        idle = [
            other
            for other in self.connections
            if isinstance(other, LimitedHttpToolsProtocol) and other is not self and not other._busy()
        ]
        if not idle:
            return False
        oldest = min(idle, key=lambda other: other._idle_since)
        oldest._refused = True
        oldest._cancel_head_timer()
        oldest.transport.close()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._reading_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._reading_head and self._head_bytes > self.max_head_bytes and not self.transport.is_closing():
            self._refuse_oversized(self._head_bytes)

    # --- httptools' callbacks -------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_head = True
        self._head_started = True
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_timed_out)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._head_started = False
        self._head_bytes = 0
        self._cancel_head_timer()
        size = len(self.url) + sum(len(name) + len(value) + _FIELD_OVERHEAD for name, value in self.headers)
        if size > self.max_head_bytes:
            self._refuse_oversized(size)
            # Stops httptools here: no request cycle starts. uvicorn turns it into a 400, which
            # send_400_response below does not send, the answer having gone out already.
            raise _HeadRefused
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        # What arrives next is the next request's head.
        self._reading_head = True

    def send_400_response(self, msg: str) -> None:
        if not self._refused:
            super().send_400_response(msg)

    # --- refusals -------------------------------------------------------------------------------

    def _refuse_oversized(self, size: int) -> None:
        target_too_long = len(getattr(self, "url", b"")) > self.max_head_bytes
        log.warning(
            "request head over the size limit: refused, connection closed",
            extra={"client": self._peer(), "head_bytes_at_least": size, "max_head_bytes": self.max_head_bytes},
        )
        if target_too_long:
            self._refuse(414, f"request target longer than {self.max_head_bytes} bytes")
        else:
            self._refuse(431, f"request line and headers longer than {self.max_head_bytes} bytes")

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if not self._head_started:
            # Nothing of a request arrived: an idle connection, closed without a word.
            self._refused = True
            self.transport.close()
            return
        log.warning(
            "request head not complete in time: refused, connection closed",
            extra={"client": self._peer(), "head_timeout_s": self.head_timeout_s},
        )
        self._refuse(408, f"request head not received within {self.head_timeout_s:g} s")

    def _refuse(self, status: int, detail: str) -> None:
        self._refused = True
        self._reading_head = False
        self._cancel_head_timer()
        # With a response still going out on this connection (pipelining), an answer written now
        # would land inside it: then the connection is only closed.
        if self.cycle is None or self.cycle.response_complete:
            body = orjson.dumps({"detail": detail, "errors": []})
            head = [STATUS_LINE[status]]
            if status == 503:
                head.append(b"retry-after: 1\r\n")
            for name, value in self.server_state.default_headers:
                head += [name, b": ", value, b"\r\n"]
            head += [
                b"content-type: application/json\r\n",
                b"content-length: %d\r\n" % len(body),
                b"connection: close\r\n\r\n",
            ]
            self.transport.write(b"".join(head) + body)
        self.transport.close()

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _peer(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "?"


def limited_http_protocol(
    max_head_bytes: int, head_timeout_s: float, max_connections: int = 4096
) -> type[LimitedHttpToolsProtocol]:
    """The protocol class to pass as uvicorn's `http`, with these limits (uvicorn instantiates it)."""
    return type(
        "LimitedHttpToolsProtocol",
        (LimitedHttpToolsProtocol,),
        {"max_head_bytes": max_head_bytes, "head_timeout_s": head_timeout_s, "max_connections": max_connections},
    )
