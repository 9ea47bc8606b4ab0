"""When a replay's frames are due (replay/pacing.py)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from replay.pacing import Schedule


def test_speed_zero_never_waits():
    schedule = Schedule(0)
    assert [schedule.delay(event_ms, now=0.0) for event_ms in (0, 10_000, 20_000)] == [0.0, 0.0, 0.0]


def test_frames_are_due_at_their_stored_distance_divided_by_the_speed():
    schedule = Schedule(4)
    assert schedule.delay(1_000, now=100.0) == 0.0  # the first frame goes at once
    assert schedule.delay(3_000, now=100.0) == pytest.approx(0.5)
    assert schedule.delay(3_000, now=100.2) == pytest.approx(0.3)


def test_a_late_frame_goes_at_once():
    schedule = Schedule(1)
    schedule.delay(0, now=0.0)
    assert schedule.delay(1_000, now=5.0) == 0.0


@given(st.floats(min_value=0.001, max_value=1e6), st.lists(st.integers(0, 10**9), min_size=1, max_size=20))
def test_never_early(speed, offsets):
    schedule = Schedule(speed)
    first = schedule.delay(0, now=0.0)
    assert first == 0.0
    for offset in sorted(offsets):
        # Asked at time 0 again: the frame waits its whole distance.
        assert schedule.delay(offset, now=0.0) == pytest.approx(offset / 1000 / speed)
