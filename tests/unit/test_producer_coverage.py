"""Live coverage decisions (producer/coverage.py): held while clean, waiting while a gap may still
be filled, a hole when it was given up or a bookTicker dropped; a restart continues the period."""

from hypothesis import given
from hypothesis import strategies as st

from producer.coverage import CoverageTracker, frame_time_ms
from schemas.coverage import CoverageKind

TRADE = b'{"stream":"btcusdt@trade","data":{"e":"trade","E":1700000000123,"s":"BTCUSDT","t":7,"p":"1","q":"1","T":1700000000120,"m":true,"M":true}}'  # noqa: E501
KLINE = b'{"stream":"btcusdt@kline_1m","data":{"e":"kline","E":1700000000500,"s":"BTCUSDT","k":{"t":1,"T":2}}}'


def published(tracker: CoverageTracker, stream: str, newest_ms: int, clean: bool = True) -> tuple[object, ...] | None:
    marker = tracker.tick(stream, newest_ms, clean, last_id=None)
    if marker is None:
        return None
    tracker.advanced(stream, marker)
    return (marker.kind, marker.start_ms, marker.end_ms)


def test_frame_times_are_the_trades_the_klines_event_and_the_bookTickers_receipt() -> None:
    assert frame_time_ms(TRADE, "trade", 0, micros=False) == 1_700_000_000_120
    assert frame_time_ms(KLINE, "kline_1m", 0, micros=False) == 1_700_000_000_500
    assert frame_time_ms(b"{}", "bookTicker", 1_700_000_000_999_000_000, micros=False) == 1_700_000_000_999
    assert frame_time_ms(TRADE.replace(b"1700000000120", b"1700000000120456"), "trade", 0, micros=True) == (
        1_700_000_000_120
    )
    assert frame_time_ms(b'{"stream":"x@trade","data":{"T":', "trade", 0, micros=False) is None


def test_a_clean_stream_is_held_from_after_its_first_frame_to_its_newest() -> None:
    tracker = CoverageTracker()
    assert published(tracker, "btcusdt@trade", 1000) is None
    assert published(tracker, "btcusdt@trade", 5000) == (CoverageKind.HELD, 1001, 5000)
    assert published(tracker, "btcusdt@trade", 5000) is None  # nothing new
    assert published(tracker, "btcusdt@trade", 9000) == (CoverageKind.HELD, 5000, 9000)


def test_a_stream_with_a_pending_gap_waits_and_its_filled_period_is_held_whole() -> None:
    tracker = CoverageTracker()
    published(tracker, "btcusdt@trade", 1000)
    assert published(tracker, "btcusdt@trade", 5000, clean=False) is None
    assert published(tracker, "btcusdt@trade", 9000, clean=True) == (CoverageKind.HELD, 1001, 9000)


def test_a_gap_given_up_makes_the_period_a_hole_and_capture_goes_on_after_it() -> None:
    tracker = CoverageTracker()
    published(tracker, "btcusdt@trade", 1000)
    tracker.damage("btcusdt@trade", "REST answered 429")
    marker = tracker.tick("btcusdt@trade", 5000, True, None)
    assert marker is not None and (marker.kind, marker.detail) == (CoverageKind.HOLE, "REST answered 429")
    tracker.advanced("btcusdt@trade", marker)
    assert published(tracker, "btcusdt@trade", 9000) == (CoverageKind.HELD, 5000, 9000)


def test_a_bookticker_drop_is_held_to_its_last_frame_and_a_hole_to_the_next() -> None:
    tracker = CoverageTracker()
    published(tracker, "btcusdt@bookTicker", 1000)
    marker = tracker.dropped("btcusdt@bookTicker", 3000, "dropped")
    assert marker is not None and (marker.kind, marker.start_ms, marker.end_ms) == (CoverageKind.HELD, 1001, 3000)
    assert published(tracker, "btcusdt@bookTicker", 3000) is None  # no frame since the drop yet
    assert published(tracker, "btcusdt@bookTicker", 7000) == (CoverageKind.HOLE, 3000, 7000)
    assert published(tracker, "btcusdt@bookTicker", 8000) == (CoverageKind.HELD, 7000, 8000)


def test_a_restart_continues_from_the_last_marker_held_once_refetched_or_a_hole() -> None:
    tracker = CoverageTracker()
    tracker.resume("btcusdt@trade", 500)
    tracker.resume("btcusdt@bookTicker", 500, "no history")
    assert published(tracker, "btcusdt@trade", 9000, clean=False) is None
    assert published(tracker, "btcusdt@trade", 9500) == (CoverageKind.HELD, 500, 9500)
    assert published(tracker, "btcusdt@bookTicker", 9000) == (CoverageKind.HOLE, 500, 9000)


@given(st.lists(st.tuples(st.integers(0, 10**6), st.booleans(), st.booleans()), max_size=40))
def test_markers_never_overlap_and_never_pass_the_newest_frame(steps: list[tuple[int, bool, bool]]) -> None:
    tracker = CoverageTracker()
    newest, end = 0, 0
    for step, clean, give_up in steps:
        newest += step
        if give_up:
            tracker.damage("s@trade", "given up")
        marker = tracker.tick("s@trade", newest, clean, None)
        if marker is not None:
            assert end <= marker.start_ms < marker.end_ms <= newest
            tracker.advanced("s@trade", marker)
            end = marker.end_ms
