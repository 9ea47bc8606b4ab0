"""Live prices as Server-Sent Events: GET /v1/stream/prices.

Events (each `data:` is one JSON object):
* `prices`: `{"prices": [<as /v1/prices/latest>...], "server_time"}`: on connect every symbol with
  trades, then only the symbols whose newest trade changed. The `id` is the feed's version.
* `status`: `{"server_time", "polled_at", "error"}`: every few seconds (a heartbeat: a page that
  hears nothing for longer knows the connection is dead), and at once when polling starts or
  stops failing. `error` is null while the database answers.
* `bye`: the server ends this stream; reconnect at once (see STREAM_MAX_S).

Not in the OpenAPI document: a stream that never ends is not something a schema fuzzer (or a
generated client) can call.
"""

import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from api.errors import problem
from api.live import PriceFeed, PriceJson, TooManyClients, changed_prices

router = APIRouter(prefix="/v1/stream", tags=["live"])

HEARTBEAT_S = 5.0
# Uvicorn's graceful shutdown waits for every open response to finish, and an event stream never
# would: ending each stream after this long bounds a SIGTERM's wait below Docker's default 10 s
# stop timeout (the page reconnects at once on `bye` and is sent the full snapshot again, so it
# misses nothing; a reconnect costs one request, and no query).
STREAM_MAX_S = 8.0
# How long EventSource waits before reconnecting after an unexpected drop.
RETRY_MS = 1000


def sse_event(event: str, data: Mapping[str, Any], event_id: int | None = None) -> bytes:
    lines = [f"event: {event}".encode()]
    if event_id is not None:
        lines.append(f"id: {event_id}".encode())
    # orjson never emits a newline, so the JSON is one `data:` line.
    lines.append(b"data: " + orjson.dumps(data))
    return b"\n".join(lines) + b"\n\n"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


def _status(feed: PriceFeed) -> dict[str, Any]:
    return {
        "server_time": _iso(datetime.now(UTC)),
        "polled_at": _iso(feed.state.polled_at),
        "error": feed.state.error,
    }


async def price_events(
    feed: PriceFeed, heartbeat_s: float = HEARTBEAT_S, max_duration_s: float = STREAM_MAX_S
) -> AsyncIterator[bytes]:
    try:
        async with feed.subscription():
            yield f"retry: {RETRY_MS}\n\n".encode()
            yield sse_event("status", _status(feed))
            ends_at = time.monotonic() + max_duration_s
            next_heartbeat = time.monotonic() + heartbeat_s
            sent: Mapping[str, PriceJson] = {}
            seen_version, sent_error, snapshot_sent = -1, feed.state.error, False
            while (now := time.monotonic()) < ends_at:
                state = await feed.wait_for_change(seen_version, min(next_heartbeat, ends_at) - now)
                if state.version != seen_version:
                    seen_version = state.version
                    # Right after the poller (re)starts there is nothing polled yet to send.
                    if state.polled_at is not None:
                        changes = changed_prices(sent, state.prices)
                        if changes or not snapshot_sent:
                            body = {"prices": list(changes.values()), **_status(feed)}
                            yield sse_event("prices", body, state.version)
                            sent, snapshot_sent = state.prices, True
                    if state.error != sent_error:
                        sent_error = state.error
                        yield sse_event("status", _status(feed))
                if time.monotonic() >= next_heartbeat:
                    yield sse_event("status", _status(feed))
                    next_heartbeat = time.monotonic() + heartbeat_s
            yield sse_event("bye", {"reconnect": True})
    except TooManyClients:
        # Lost a race for the last slot after the route's check: end; EventSource retries later.
        yield b"retry: 5000\n\n"


@router.get("/prices", include_in_schema=False, response_model=None)
async def stream_prices(request: Request) -> Response:
    """Server-Sent Events of the newest trade of every symbol (see the module's docstring)."""
    feed: PriceFeed = request.app.state.price_feed
    if feed.clients >= feed.max_clients:
        refused: JSONResponse = problem(503, f"{feed.clients} live price clients connected already; retry later")
        refused.headers["Retry-After"] = "5"
        return refused
    return StreamingResponse(
        price_events(feed),
        media_type="text/event-stream",
        # No caching, and no buffering by a proxy in front (nginx honours X-Accel-Buffering).
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
