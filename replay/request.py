"""What a replay connection asks for, read from its URL. Pure.

Binance's layout (`/ws/<stream>[/<stream>…]` for raw payloads, `/stream?streams=<a>/<b>` for
frames wrapped as {"stream","data"}) plus the replay's own parameters in the query string. The same
parameters may instead come as a path segment before it, `/replay/<query string>/ws/<stream>`:
clients that only let a base URL be set (python-binance's STREAM_URL) then reach a replay too.
"""

import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl, unquote, urlsplit

from api.params import parse_timestamp
from replay.streams import StreamName, parse_stream

PARAMETERS = ("streams", "start", "end", "speed", "live", "timeUnit")
_SPEED = re.compile(r"[0-9]{1,9}(?:\.[0-9]{1,9})?")
_REPLAY_PREFIX = "/replay/"


class RequestError(ValueError):
    """A request that cannot be served; the message names the parameter and why (the close reason)."""


class NotFoundError(RequestError):
    """A path that is neither /ws nor /stream (an HTTP 404, before any upgrade)."""


@dataclass(frozen=True, slots=True)
class ReplayRequest:
    combined: bool
    streams: tuple[StreamName, ...]
    start: datetime | None  # None: from now on (live only)
    end: datetime | None  # None: to the present, or for ever with live
    speed: float  # 0: as fast as the client reads
    live: bool


def parse_request(target: str, max_speed: float, max_streams: int) -> ReplayRequest:
    """The request in `target` (path and query string), or RequestError naming what is wrong."""
    parts = urlsplit(target)
    path = unquote(parts.path)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if path.startswith(_REPLAY_PREFIX):
        segment, _, rest = path.removeprefix(_REPLAY_PREFIX).partition("/")
        pairs = parse_qsl(segment, keep_blank_values=True) + pairs
        path = "/" + rest
    path = path.rstrip("/")
    query = _single_values(pairs)
    if path == "/ws" or path.startswith("/ws/"):
        if "streams" in query:
            raise RequestError("streams: only /stream takes streams=; /ws names them in its path")
        names = [name for name in path.removeprefix("/ws").split("/") if name]
        combined = False
    elif path == "/stream":
        names = [name for name in query.get("streams", "").split("/") if name]
        combined = True
    else:
        raise NotFoundError(f"no such path {path or '/'}: use /ws/<stream> or /stream?streams=<a>/<b>")
    return _request(combined, names, query, max_speed, max_streams)


def _single_values(pairs: list[tuple[str, str]]) -> dict[str, str]:
    query: dict[str, str] = {}
    for name, value in pairs:
        if name not in PARAMETERS:
            raise RequestError(f"unknown parameter {name[:40]!r}; known are {', '.join(PARAMETERS)}")
        if name in query:
            raise RequestError(f"{name}: given twice")
        query[name] = value
    return query


def _request(
    combined: bool, names: list[str], query: dict[str, str], max_speed: float, max_streams: int
) -> ReplayRequest:
    streams = parse_streams(names)
    if len(streams) > max_streams:
        raise RequestError(f"streams: {len(streams)} streams, at most {max_streams} per connection")
    if query.get("timeUnit", "MILLISECOND") not in ("MILLISECOND", "millisecond"):
        raise RequestError("timeUnit: a replay sends milliseconds only (MILLISECOND)")
    live = _live(query.get("live", "false"))
    start = _time("start", query.get("start"))
    end = _time("end", query.get("end"))
    if start is None and not live:
        raise RequestError("start: required (ISO 8601 or epoch milliseconds), unless live=true")
    if start is not None and end is not None and end <= start:
        raise RequestError("end: must be after start")
    return ReplayRequest(combined, streams, start, end, _speed(query.get("speed", "1"), max_speed), live)


def parse_streams(names: list[str]) -> tuple[StreamName, ...]:
    parsed: dict[str, StreamName] = {}
    for name in names:
        stream = parse_stream(name)
        if stream is None:
            raise RequestError(
                f"streams: {name[:40]!r} is not a stored stream: <symbol>@trade, @aggTrade, @bookTicker or"
                " @kline_<interval>, the symbol in lower case"
            )
        parsed.setdefault(stream.name, stream)
    return tuple(parsed.values())


def _time(parameter: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except ValueError as error:
        raise RequestError(f"{parameter}: {error}") from None


def _speed(value: str, max_speed: float) -> float:
    if not _SPEED.fullmatch(value):
        raise RequestError("speed: a number >= 0: 1 is real time, 10 ten times faster, 0 as fast as read")
    speed = float(value)
    if speed > max_speed:
        raise RequestError(f"speed: at most {max_speed:g}")
    return speed


def _live(value: str) -> bool:
    if value not in ("true", "false"):
        raise RequestError("live: true or false")
    return value == "true"
