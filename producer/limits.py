"""Binance's connection rules as pure logic: sharding, connection-attempt budget, backoff, REST weight,
live subscription changes."""

import random
from collections import deque
from collections.abc import Sequence

import orjson

# Binance: 300 connection attempts per 5 minutes per IP.
CONNECTION_ATTEMPT_WINDOW_S = 300.0


def shard_streams(stream_names: Sequence[str], per_connection: int) -> list[list[str]]:
    """Streams split into groups of at most `per_connection`, in order (a symbol's streams stay together)."""
    if per_connection < 1:
        raise ValueError("per_connection must be at least 1")
    names = list(dict.fromkeys(stream_names))
    return [names[start : start + per_connection] for start in range(0, len(names), per_connection)]


def combined_stream_url(base_url: str, stream_names: Sequence[str], time_unit: str = "MILLISECOND") -> str:
    """Streams in the URL: the connection needs no SUBSCRIBE, so it sends no control messages at all
    (Binance allows 5 a second) besides pongs and our keepalive pings."""
    url = f"{base_url.rstrip('/')}/stream?streams={'/'.join(stream_names)}"
    return url if time_unit == "MILLISECOND" else f"{url}&timeUnit={time_unit}"


def backoff_delay(attempt: int, minimum_s: float, maximum_s: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter, so many clients do not reconnect in lock step."""
    ceiling: float = min(maximum_s, minimum_s * 2 ** min(attempt, 32))
    return (rng or random).uniform(minimum_s, max(minimum_s, ceiling))


class AttemptBudget:
    """At most `limit` connection attempts in any `window_s` seconds (a sliding window)."""

    def __init__(self, limit: int, window_s: float = CONNECTION_ATTEMPT_WINDOW_S) -> None:
        self.limit = limit
        self.window_s = window_s
        self._attempts: deque[float] = deque()

    def wait_s(self, now: float) -> float:
        """How long to wait before the next attempt is allowed (0: now)."""
        while self._attempts and self._attempts[0] <= now - self.window_s:
            self._attempts.popleft()
        if len(self._attempts) < self.limit:
            return 0.0
        return self._attempts[0] + self.window_s - now

    def record(self, now: float) -> None:
        self._attempts.append(now)


class WeightBudget:
    """REST request weight used in the current minute, from Binance's X-MBX-USED-WEIGHT-1M header."""

    def __init__(self, limit_per_minute: int, share: float) -> None:
        self.allowed = max(1, int(limit_per_minute * share))
        self.used = 0
        self._minute = -1

    def update(self, used_header: str | None, now_s: float) -> None:
        if used_header is not None and used_header.isdigit():
            self.used = int(used_header)
            self._minute = int(now_s // 60)

    def wait_s(self, now_s: float) -> float:
        """0 while under budget; else the time to the next minute, when Binance's window resets."""
        if int(now_s // 60) != self._minute:
            return 0.0
        if self.used < self.allowed:
            return 0.0
        return 60.0 - now_s % 60 + 0.1


# --- live subscription changes ------------------------------------------------------------------

# Binance counts pings, pongs and control messages against 5 incoming messages a second per
# connection: control messages go at most 2 a second, which leaves room for the keepalive.
CONTROL_MESSAGE_INTERVAL_S = 0.5
# Streams named in one SUBSCRIBE or UNSUBSCRIBE: client libraries batch about 200-250, and a
# message that size (about 5 KB) is far from any frame limit.
STREAMS_PER_CONTROL_MESSAGE = 200


def control_messages(method: str, stream_names: Sequence[str], first_id: int) -> list[tuple[int, bytes]]:
    """SUBSCRIBE/UNSUBSCRIBE messages for `stream_names`, at most STREAMS_PER_CONTROL_MESSAGE each,
    with consecutive request ids from `first_id`: (id, message)."""
    names = list(stream_names)
    messages = []
    for offset, start in enumerate(range(0, len(names), STREAMS_PER_CONTROL_MESSAGE)):
        request_id = first_id + offset
        body = {"method": method, "params": names[start : start + STREAMS_PER_CONTROL_MESSAGE], "id": request_id}
        messages.append((request_id, orjson.dumps(body)))
    return messages


def place_streams(
    loads: Sequence[int], groups: Sequence[Sequence[str]], per_connection: int
) -> tuple[list[list[str]], list[list[str]]]:
    """Where new streams go: each group (one symbol's streams, kept on one connection) into the first
    existing connection with room for all of it, else into new connections of at most
    `per_connection` streams. Returns (what each existing connection adds, the new connections)."""
    if per_connection < 1:
        raise ValueError("per_connection must be at least 1")
    room = [per_connection - load for load in loads]
    added: list[list[str]] = [[] for _ in loads]
    new: list[list[str]] = []
    # A group larger than a connection (a tiny per_connection) is split: the limit comes first.
    pieces = [list(g[start : start + per_connection]) for g in groups for start in range(0, len(g), per_connection)]
    for names in pieces:
        target = next((index for index, free in enumerate(room) if free >= len(names)), None)
        if target is not None:
            added[target].extend(names)
            room[target] -= len(names)
            continue
        if not new or len(new[-1]) + len(names) > per_connection:
            new.append([])
        new[-1].extend(names)
    return added, new
