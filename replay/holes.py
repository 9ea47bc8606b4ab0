"""The replay's announcement of a known hole: an event Binance never sends, so that a client that
dispatches on "e" skips it, and one that looks for it learns what the store lacks. Pure.

`{"e":"replayHole","E":…,"s":…,"stream":…,"start":…,"end":…,"origin":…,"detail":…}`: "E" is where
the announcement stands among the stream's frames (the hole's start, or the replay's start for a
hole that began before it); "start" and "end" are the hole's whole period as the coverage table
holds it (ms, end exclusive); "origin" and "detail" are the table's (who recorded it, and why).
"""

import json

from replay.frames import Row
from replay.streams import StreamKind, StreamName

# A hole's row sorts before the stored rows of its millisecond (ids are >= 0, a kline tick's is 0):
# the announcement comes before anything the store holds after it.
HOLE_ID = -1


def coverage_stream(stream: StreamName) -> str:
    """The coverage table's stream whose holes a replayed stream shares: its own, but for a kline
    stream the trades it is computed from."""
    if stream.kind is StreamKind.KLINE:
        return str(StreamKind.TRADE.value)
    return str(stream.kind.value)


def hole_payload(stream: StreamName, event_ms: int, start_ms: int, end_ms: int, origin: str, detail: str) -> str:
    # Symbols and stream names need no escaping (replay/frames.py); origin and detail are free text.
    return (
        f'{{"e":"replayHole","E":{event_ms},"s":"{stream.symbol}","stream":"{stream.name}",'
        f'"start":{start_ms},"end":{end_ms},"origin":{json.dumps(origin)},"detail":{json.dumps(detail)}}}'
    )


def hole_row(stream: StreamName, from_ms: int, hole: Row) -> Row:
    """(event ms, HOLE_ID, payload) of a stored hole (start ms, end ms, origin, detail), announced no
    earlier than `from_ms`, the replay's start."""
    start_ms, end_ms, origin, detail = hole
    event_ms = max(start_ms, from_ms)
    return (event_ms, HOLE_ID, hole_payload(stream, event_ms, start_ms, end_ms, origin, detail))


class Announced:
    """The holes already announced on a stream. A hole the table grew (a touching hole merged into
    it) is announced again with its new period; one a held marker cut into pieces is not, each piece
    being inside what was announced."""

    def __init__(self) -> None:
        self._periods: list[tuple[int, int]] = []

    def is_new(self, start_ms: int, end_ms: int) -> bool:
        return not any(start <= start_ms and end_ms <= end for start, end in self._periods)

    def add(self, start_ms: int, end_ms: int) -> None:
        self._periods.append((start_ms, end_ms))
