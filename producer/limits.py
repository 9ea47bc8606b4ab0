"""Binance's connection rules as pure logic: sharding, connection-attempt budget, backoff, REST weight."""

import random
from collections import deque
from collections.abc import Sequence

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
