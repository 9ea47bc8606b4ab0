"""How /v1/stats splits a range: whole minutes, whole seconds, and sub-second edges read as trades."""

import random
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from api.queries.stats import SLOTS, Piece, Source, slot_bounds, split

T0 = datetime(2025, 7, 3, 8, 30, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(microseconds=round(seconds * 1_000_000))


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, 180, [(Source.MINUTES, 0, 180)]),
        (10.5, 10.7, [(Source.TRADES, 10.5, 10.7)]),
        (10.5, 11.7, [(Source.TRADES, 10.5, 11), (Source.TRADES, 11, 11.7)]),
        (10.5, 15, [(Source.TRADES, 10.5, 11), (Source.SECONDS, 11, 15)]),
        (59.5, 60.5, [(Source.TRADES, 59.5, 60), (Source.TRADES, 60, 60.5)]),
        (30, 90, [(Source.SECONDS, 30, 90)]),
        (
            10.5,
            195.25,
            [
                (Source.TRADES, 10.5, 11),
                (Source.SECONDS, 11, 60),
                (Source.MINUTES, 60, 180),
                (Source.SECONDS, 180, 195),
                (Source.TRADES, 195, 195.25),
            ],
        ),
        (0.000001, 60, [(Source.TRADES, 0.000001, 1), (Source.SECONDS, 1, 60)]),
        (5, 5, []),
    ],
)
def test_split_uses_the_coarsest_exact_source(
    start: float, end: float, expected: list[tuple[Source, float, float]]
) -> None:
    assert split(at(start), at(end)) == [Piece(source, at(a), at(b)) for source, a, b in expected]


def test_pieces_cover_the_range_exactly_and_are_aligned() -> None:
    rng = random.Random(3)
    for _ in range(5000):
        start = at(rng.randrange(0, 400_000_000) / 1_000_000)
        end = start + timedelta(microseconds=rng.choice([1, 999, 1000, 60_000_000, 10**9, rng.randrange(1, 10**9)]))
        pieces = split(start, end)
        assert pieces[0].start == start and pieces[-1].end == end
        assert all(a.end == b.start for a, b in pairwise(pieces))
        for piece in pieces:
            assert piece.start < piece.end
            if piece.source is Source.MINUTES:
                assert piece.start.second == piece.start.microsecond == piece.end.second == piece.end.microsecond == 0
            elif piece.source is Source.SECONDS:
                assert piece.start.microsecond == piece.end.microsecond == 0
            else:  # within one second
                assert piece.start.replace(microsecond=0) == (piece.end - timedelta(microseconds=1)).replace(
                    microsecond=0
                )
        assert sum(piece.source is Source.TRADES for piece in pieces) <= 2
        # The one constant statement has a slot for every piece, in order.
        slots = slot_bounds(start, end)
        used = [Piece(source, a, b) for source, (a, b) in zip(SLOTS, slots, strict=True) if a < b]
        assert used == pieces
        assert all(a == b == start for a, b in slots if not a < b)
