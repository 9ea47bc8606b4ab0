"""Binance WebSocket connection: one combined stream, frames handed on byte for byte, reconnects."""

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Callable

import orjson
import websockets

log = logging.getLogger(__name__)

# Combined-stream frames are `{"stream":"<name>","data":{...}}` with the stream first, so the
# name can be read without parsing the whole frame.
_COMBINED_PREFIX = b'{"stream":"'

FrameHandler = Callable[[bytes, str, int, str], None]


def combined_stream_url(base_url: str, stream_names: list[str]) -> str:
    return f"{base_url.rstrip('/')}/stream?streams={'/'.join(stream_names)}"


def stream_of(frame: bytes) -> str:
    """The stream name a combined frame carries, or '' when the frame has none (or is not JSON)."""
    if frame.startswith(_COMBINED_PREFIX):
        end = frame.find(b'"', len(_COMBINED_PREFIX))
        if end > 0:
            return frame[len(_COMBINED_PREFIX) : end].decode(errors="replace")
    try:
        parsed = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return ""
    stream = parsed.get("stream") if isinstance(parsed, dict) else None
    return stream if isinstance(stream, str) else ""


def backoff_delay(attempt: int, minimum_s: float, maximum_s: float) -> float:
    """Exponential backoff with full jitter, so many clients do not reconnect in lock step."""
    ceiling: float = min(maximum_s, minimum_s * 2**attempt)
    return random.uniform(minimum_s, max(minimum_s, ceiling))


async def stream_forever(
    url: str,
    on_frame: FrameHandler,
    reconnect_min_s: float,
    reconnect_max_s: float,
) -> None:
    """Reads `url` until cancelled, reconnecting after every failure."""
    attempt = 0
    while True:
        connection_id = uuid.uuid4().hex[:12]
        frames = 0
        try:
            # The library answers Binance's pings with pongs, and its own pings (every 20 s,
            # 20 s to answer) detect a connection that died without a close frame.
            async with websockets.connect(url, open_timeout=10, max_size=2**22) as connection:
                log.info("connected", extra={"url": url, "connection_id": connection_id})
                attempt = 0
                while True:
                    frame = await connection.recv(decode=False)
                    on_frame(frame, stream_of(frame), time.time_ns(), connection_id)
                    frames += 1
        except (OSError, TimeoutError, websockets.ConnectionClosed, websockets.InvalidHandshake) as error:
            delay = backoff_delay(attempt, reconnect_min_s, reconnect_max_s)
            log.warning(
                "connection lost, reconnecting",
                extra={
                    "url": url,
                    "connection_id": connection_id,
                    "frames": frames,
                    "error": repr(error),
                    "retry_in_s": round(delay, 2),
                },
            )
            attempt += 1
            await asyncio.sleep(delay)
