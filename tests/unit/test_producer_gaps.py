"""Gap tracking on consecutive trade/aggTrade ids: pure logic, the time passed in."""

from producer.gaps import MAX_PENDING_RANGES, BackfillRange, GapTracker, merge_ranges

S = "btcusdt@trade"


def test_consecutive_ids_leave_nothing_to_backfill() -> None:
    tracker = GapTracker(grace_s=1.0)
    for id_ in range(1, 100):
        tracker.observe(S, id_, now=0.0)
    assert tracker.last_id(S) == 99
    assert tracker.due(now=10.0) == []
    assert tracker.gaps_detected == 0


def test_a_jump_is_due_after_the_grace_period() -> None:
    tracker = GapTracker(grace_s=1.0)
    tracker.observe(S, 10, now=0.0)
    tracker.observe(S, 15, now=0.0)
    assert tracker.due(now=0.5) == []
    assert tracker.due(now=1.0) == [BackfillRange(S, 11, 14)]
    assert tracker.due(now=2.0) == [], "handed out once"
    assert (tracker.gaps_detected, tracker.ids_missed) == (1, 4)


def test_late_frames_from_another_connection_shrink_the_gap() -> None:
    tracker = GapTracker(grace_s=1.0)
    tracker.observe(S, 10, now=0.0)
    tracker.observe(S, 15, now=0.0)
    tracker.observe(S, 11, now=0.1)
    tracker.observe(S, 13, now=0.1)
    assert tracker.due(now=1.0) == [BackfillRange(S, 12, 12), BackfillRange(S, 14, 14)]


def test_a_gap_filled_entirely_by_late_frames_costs_no_request() -> None:
    tracker = GapTracker(grace_s=1.0)
    tracker.observe(S, 1, now=0.0)
    tracker.observe(S, 3, now=0.0)
    tracker.observe(S, 2, now=0.2)
    assert tracker.due(now=5.0) == []


def test_duplicates_from_an_overlap_are_ignored() -> None:
    tracker = GapTracker(grace_s=0.0)
    for id_ in (1, 2, 3, 2, 3, 4, 3, 4, 5):
        tracker.observe(S, id_, now=0.0)
    assert tracker.last_id(S) == 5
    assert tracker.due(now=1.0) == []


def test_streams_are_tracked_separately() -> None:
    tracker = GapTracker(grace_s=0.0)
    tracker.observe("btcusdt@trade", 1, now=0.0)
    tracker.observe("ethusdt@trade", 100, now=0.0)
    tracker.observe("btcusdt@aggTrade", 7, now=0.0)
    tracker.observe("btcusdt@trade", 2, now=0.0)
    tracker.observe("ethusdt@trade", 102, now=0.0)
    assert tracker.due(now=0.0) == [BackfillRange("ethusdt@trade", 101, 101)]


def test_a_drop_on_a_quiet_stream_asks_rest_from_the_last_id_on() -> None:
    tracker = GapTracker(grace_s=1.0)
    tracker.observe(S, 41, now=0.0)
    tracker.dropped(S, now=5.0)
    assert tracker.due(now=5.5) == []
    assert tracker.due(now=6.0) == [BackfillRange(S, 42, None)]
    assert tracker.due(now=9.0) == []


def test_a_drop_followed_by_live_ids_relies_on_the_jump() -> None:
    tracker = GapTracker(grace_s=1.0)
    tracker.observe(S, 41, now=0.0)
    tracker.dropped(S, now=5.0)
    tracker.observe(S, 50, now=5.5)
    assert tracker.due(now=7.0) == [BackfillRange(S, 42, 49)], "the jump, and no open-ended probe"


def test_a_drop_before_any_id_has_nothing_to_resync() -> None:
    tracker = GapTracker(grace_s=0.0)
    tracker.dropped(S, now=0.0)
    assert tracker.due(now=1.0) == []


def test_rest_fills_advance_the_last_id_and_close_gaps() -> None:
    tracker = GapTracker(grace_s=1.0)
    tracker.observe(S, 10, now=0.0)
    tracker.observe(S, 20, now=0.0)
    tracker.filled(S, 11, 15)
    assert tracker.due(now=1.0) == [BackfillRange(S, 16, 19)]
    tracker.filled(S, 21, 30)
    assert tracker.last_id(S) == 30
    tracker.observe(S, 31, now=2.0)
    assert tracker.due(now=5.0) == []


def test_lost_messages_are_due_at_once_and_merge() -> None:
    tracker = GapTracker(grace_s=5.0)
    for id_ in range(1, 11):
        tracker.observe(S, id_, now=0.0)
    for id_ in (4, 5, 6, 9):
        tracker.lost(S, id_, now=1.0)
    assert tracker.due(now=1.0) == [BackfillRange(S, 4, 6), BackfillRange(S, 9, 9)]


def test_pending_ranges_stay_bounded() -> None:
    tracker = GapTracker(grace_s=0.0)
    for n in range(MAX_PENDING_RANGES + 5):
        tracker.observe(S, 2 * n, now=0.0)
    due = tracker.due(now=1.0)
    assert len(due) <= MAX_PENDING_RANGES
    assert due[0].first == 1
    assert tracker.pending() == 0


def test_rest_fills_do_not_count_as_live() -> None:
    tracker = GapTracker(grace_s=0.0)
    tracker.filled(S, 1, 150)
    assert (tracker.last_id(S), tracker.live_id(S)) == (150, None)
    tracker.observe(S, 400, now=0.0)
    assert (tracker.last_id(S), tracker.live_id(S)) == (400, 400)
    assert tracker.due(now=0.0) == [BackfillRange(S, 151, 399)]


def test_adjacent_ranges_are_merged_into_one_request() -> None:
    ranges = [
        BackfillRange(S, 5, 5),
        BackfillRange("ethusdt@trade", 1, 2),
        BackfillRange(S, 1, 3),
        BackfillRange(S, 4, 4),
        BackfillRange(S, 9, 10),
        BackfillRange(S, 10, None),
        BackfillRange(S, 20, 30),
    ]
    assert merge_ranges(ranges) == [
        BackfillRange("btcusdt@trade", 1, 5),
        BackfillRange("btcusdt@trade", 9, None),
        BackfillRange("ethusdt@trade", 1, 2),
    ]
