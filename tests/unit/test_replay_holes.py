"""The replayHole event's text and which holes are announced again (replay/holes.py)."""

import json

from hypothesis import given
from hypothesis import strategies as st

from replay.holes import HOLE_ID, Announced, coverage_stream, hole_row
from replay.streams import StreamKind, StreamName, parse_stream

TRADES = StreamName("btcusdt@trade", "BTCUSDT", StreamKind.TRADE)


@given(detail=st.text(), origin=st.text())
def test_any_stored_words_make_a_valid_event_that_keeps_them(detail: str, origin: str) -> None:
    event_ms, row_id, payload = hole_row(TRADES, 1_000, (2_000, 3_000, origin, detail))
    assert (event_ms, row_id) == (2_000, HOLE_ID)
    assert json.loads(payload) == {
        "e": "replayHole",
        "E": 2_000,
        "s": "BTCUSDT",
        "stream": "btcusdt@trade",
        "start": 2_000,
        "end": 3_000,
        "origin": origin,
        "detail": detail,
    }


def test_a_hole_begun_before_the_replay_is_announced_at_its_start_with_its_whole_period() -> None:
    event_ms, _id, payload = hole_row(TRADES, 5_000, (2_000, 9_000, "ws", ""))
    assert event_ms == 5_000
    assert (json.loads(payload)["E"], json.loads(payload)["start"], json.loads(payload)["end"]) == (5_000, 2_000, 9_000)


def test_kline_streams_share_the_holes_of_their_trades() -> None:
    streams = [parse_stream(name) for name in ("btcusdt@kline_1m", "btcusdt@aggTrade", "btcusdt@bookTicker")]
    assert [coverage_stream(stream) for stream in streams if stream is not None] == ["trade", "aggTrade", "bookTicker"]


@given(
    announced=st.lists(st.tuples(st.integers(0, 100), st.integers(1, 50)), max_size=5),
    start=st.integers(0, 100),
    length=st.integers(1, 50),
)
def test_a_hole_is_new_unless_inside_one_announced(announced: list[tuple[int, int]], start: int, length: int) -> None:
    holes = Announced()
    for first, size in announced:
        holes.add(first, first + size)
    inside = any(first <= start and start + length <= first + size for first, size in announced)
    assert holes.is_new(start, start + length) is not inside
