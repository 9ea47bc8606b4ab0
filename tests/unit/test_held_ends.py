"""How far a REST answer vouches for a stream (producer/held_ends.py)."""

from hypothesis import given
from hypothesis import strategies as st

from producer.held_ends import klines_held_end, trades_held_end

MINUTE = 60_000


def kline(open_ms: int) -> list[object]:
    return [open_ms, "1", "1", "1", "1", "0", open_ms + MINUTE - 1, "0", 0, "0", "0", "0"]


@given(st.integers(1, 500), st.integers(0, MINUTE - 1))
def test_klines_are_held_up_to_the_one_still_open(closed: int, into_open_ms: int) -> None:
    klines = [kline(i * MINUTE) for i in range(closed + 1)]
    received_ms = closed * MINUTE + into_open_ms  # the last kline is open
    assert klines_held_end(klines, received_ms, received_ms, MINUTE) == closed * MINUTE


@given(st.integers(1, 500), st.integers(0, 10 * MINUTE))
def test_closed_klines_of_the_past_are_held_to_the_end(count: int, later_ms: int) -> None:
    end_ms = count * MINUTE
    received_ms = end_ms + MINUTE + later_ms
    assert klines_held_end([kline(i * MINUTE) for i in range(count)], end_ms, received_ms, MINUTE) == end_ms


def test_an_empty_answer_near_now_holds_nothing_of_the_last_interval() -> None:
    assert klines_held_end([], 10 * MINUTE, 10 * MINUTE + 5, MINUTE) == 9 * MINUTE + 5


@given(st.integers(0, 10**12), st.integers(1, 10**6))
def test_trades_are_held_to_the_newest_ones_time_unless_a_later_record_was_seen(newest: int, ahead: int) -> None:
    end_ms = newest + ahead
    assert trades_held_end(newest, end_ms, later_record_seen=False) == newest
    assert trades_held_end(newest, end_ms, later_record_seen=True) == end_ms
    assert trades_held_end(None, end_ms, later_record_seen=False) is None
