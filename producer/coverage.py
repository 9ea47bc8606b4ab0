"""Live coverage: the periods of each stream this producer can vouch for. Pure: no I/O, no clock.

Every coverage interval each stream's newest frame time is offered with whether the stream is
clean (connected, no id gap pending, no REST backfill queued for it). A clean stream's period
since the last marker becomes a held marker; a stream that is not clean waits (its gap may still
be filled, and then the held marker covers the gap too); a stream whose gap was given up, or a
bookTicker that dropped (nothing can refill it), gets a hole for the period it cannot vouch for.

A held period ends at the newest frame's own time: a trade, aggTrade or kline at its exchange
time, a bookTicker (which carries none) at its receipt. A marker never claims beyond what was
seen, so a gap that shows only with the next frame is never inside a held period.
"""

from dataclasses import dataclass

from schemas.coverage import CoverageKind, CoverageMarker
from schemas.topics import Source

# The first occurrence of these keys in a combined frame is the payload's own time: a trade's and
# an aggTrade's trade time `T`; a kline's event time `E` (its `k` object has a `T` of its own).
_TIME_FIELDS = {"trade": b'"T":', "aggTrade": b'"T":'}
_EVENT_TIME = b'"E":'


def frame_time_ms(frame: bytes, stream_type: str, received_at_ns: int, micros: bool) -> int | None:
    """The time a frame vouches up to, in ms; None when it can't be read (a cut or odd frame)."""
    if stream_type == "bookTicker":
        return received_at_ns // 1_000_000
    field = _TIME_FIELDS.get(stream_type, _EVENT_TIME)
    start = frame.find(field)
    if start < 0:
        return None
    start += len(field)
    end = start
    while end < len(frame) and 48 <= frame[end] <= 57:
        end += 1
    if end == start:
        return None
    value = int(frame[start:end])
    return value // 1000 if micros else value


@dataclass(slots=True)
class _Stream:
    # Start of the period the next marker speaks for; None until the stream's first frame.
    held_from_ms: int | None = None
    # Why the period since held_from_ms can't be vouched for: the next marker is a hole.
    damaged: str | None = None


class CoverageTracker:
    def __init__(self) -> None:
        self._streams: dict[str, _Stream] = {}

    def _stream(self, stream: str) -> _Stream:
        state = self._streams.get(stream)
        if state is None:
            state = self._streams[stream] = _Stream()
        return state

    def resume(self, stream: str, from_ms: int, damaged: str | None = None) -> None:
        """A restart: the previous run vouched for the stream up to `from_ms`. The period since is
        held once the stream is clean (its ids refetched), or a hole if `damaged` says why not."""
        state = self._stream(stream)
        state.held_from_ms = from_ms
        state.damaged = damaged

    def damage(self, stream: str, why: str) -> None:
        """The period since the last marker lacks records that nothing will refetch."""
        state = self._stream(stream)
        if state.damaged is None:
            state.damaged = why

    def dropped(self, stream: str, last_frame_ms: int | None, why: str) -> CoverageMarker | None:
        """A stream without history (bookTicker) lost its connection after a frame at
        `last_frame_ms`: held up to it, a hole from it until the next frame."""
        state = self._stream(stream)
        marker = None
        if last_frame_ms is not None and state.held_from_ms is not None and state.damaged is None:
            if last_frame_ms > state.held_from_ms:
                marker = _held(state.held_from_ms, last_frame_ms, None)
                state.held_from_ms = last_frame_ms
        elif last_frame_ms is not None and state.held_from_ms is None:
            state.held_from_ms = last_frame_ms
        if state.held_from_ms is not None:
            state.damaged = state.damaged or why
        return marker

    def tick(self, stream: str, newest_ms: int | None, clean: bool, last_id: int | None) -> CoverageMarker | None:
        """The marker for the stream's period up to its newest frame, if one is due. The caller
        publishes it, then calls advanced() (a marker Kafka refused is offered again next time)."""
        if newest_ms is None:
            return None
        state = self._stream(stream)
        if state.held_from_ms is None:
            # The first frame: nothing before it is known, the period starts after it.
            state.held_from_ms = newest_ms + 1
            return None
        if newest_ms <= state.held_from_ms:
            return None
        if state.damaged is not None:
            return CoverageMarker(CoverageKind.HOLE, state.held_from_ms, newest_ms, Source.WS, state.damaged)
        if not clean:
            return None
        return _held(state.held_from_ms, newest_ms, last_id)

    def advanced(self, stream: str, marker: CoverageMarker) -> None:
        """`marker` was published: the next period starts at its end."""
        state = self._stream(stream)
        state.held_from_ms = marker.end_ms
        if marker.kind is CoverageKind.HOLE:
            state.damaged = None


def _held(start_ms: int, end_ms: int, last_id: int | None) -> CoverageMarker:
    return CoverageMarker(CoverageKind.HELD, start_ms, end_ms, Source.WS, last_id=last_id)
