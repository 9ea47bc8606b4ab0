"""Coverage markers: the contract by which the store learns which periods it holds complete.

A marker travels on the raw topic like the records it vouches for: keyed by the symbol, so it
lands on the same partition after them, and the consumer stores it only after it has stored them.
Its headers are `source: coverage` and `stream: <symbol>@<stream>` (the stream it covers, e.g.
"btcusdt@trade", "adabnb@kline_5m"); its value is the JSON of a CoverageMarker.

- held: every record of the stream in [start_ms, end_ms) has been published before this marker
  (live capture connected and gap-free, a filled gap, an imported file or page).
- hole: the period is known to be missing and nothing will refill it by itself (the producer was
  down and REST refused, a bookTicker drop, an archive day that was not published).
A later held marker over a hole closes it, and a hole never overrides a held period (what was
stored stays stored): the store's view is the same whatever the order of the markers.
"""

from enum import StrEnum

import msgspec

from schemas.kline_intervals import KLINE_INTERVALS

# The stream types a marker may cover: those the store keeps (the part of a stream name after "@").
STREAM_TYPES: frozenset[str] = frozenset(("trade", "aggTrade", "bookTicker", *(f"kline_{i}" for i in KLINE_INTERVALS)))


class CoverageKind(StrEnum):
    HELD = "held"
    HOLE = "hole"


class CoverageMarker(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A period of one stream, in ms since the Unix epoch (UTC), end exclusive."""

    kind: CoverageKind
    start_ms: int
    end_ms: int
    # Which path vouches for the period: a Source value (ws, rest, history, archive).
    origin: str
    # Why, in words, for a hole (e.g. "producer down; REST answered 429"); empty for held.
    detail: str = ""
    # Live capture's held markers of trade and aggTrade streams: the highest id of the stream
    # published before this marker, every id from the period's start up to it published too.
    # A restarted producer refetches from the id after it (producer/resume.py); None otherwise.
    last_id: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.start_ms < self.end_ms:
            raise ValueError(f"coverage period must have 0 <= start_ms < end_ms, not {self.start_ms}..{self.end_ms}")


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(CoverageMarker)


def encode_marker(marker: CoverageMarker) -> bytes:
    return _encoder.encode(marker)


def decode_marker(value: bytes) -> CoverageMarker:
    """Raises msgspec.ValidationError (a ValueError) naming what is wrong."""
    return _decoder.decode(value)
