"""When each frame of a replay is due. Pure: the clock is passed in.

speed=N plays the stored time N times faster: a frame whose event came t ms after the replay's
first event is due t / N ms after that first frame was sent. speed=0 has no schedule: frames go
as fast as the client reads them. A frame whose time has passed (a client that read slowly, or
live rows, which are stored after their event) goes at once: the schedule never sends a burst
early and never waits to catch up.
"""


class Schedule:
    def __init__(self, speed: float) -> None:
        self._seconds_per_ms = 1 / (1000 * speed) if speed > 0 else 0.0
        self._first_event_ms: int | None = None
        self._first_sent_at = 0.0

    def delay(self, event_ms: int, now: float) -> float:
        """Seconds to wait, from `now` (a monotonic clock), before sending the frame of `event_ms`."""
        if not self._seconds_per_ms:
            return 0.0
        if self._first_event_ms is None:
            self._first_event_ms, self._first_sent_at = event_ms, now
            return 0.0
        due = self._first_sent_at + (event_ms - self._first_event_ms) * self._seconds_per_ms
        return max(due - now, 0.0)
