"""Live coverage wired to the producer: publishes the markers producer/coverage.py decides on.

Every PRODUCER_COVERAGE_INTERVAL_S each subscribed stream gets at most one marker: held while it
is connected and gap-free, a hole when its gap was given up or a bookTicker dropped. A restarted
producer resumes each stream from its last held marker on the raw topic (producer/resume.py).
"""

import logging
import time
from collections import Counter

from producer.backfill import Backfiller
from producer.coverage import CoverageTracker, frame_time_ms
from producer.frames import TRACKED_ID_FIELDS, stream_type
from producer.gaps import GapTracker
from producer.publisher import RawPublisher
from schemas.coverage import CoverageMarker

log = logging.getLogger(__name__)

BOOK_TICKER_DROPPED = "bookTicker connection dropped; Binance keeps no bookTicker history to refill it"


class LiveCoverage:
    def __init__(
        self, publisher: RawPublisher, gaps: GapTracker, backfiller: Backfiller, streams: list[str], micros: bool
    ) -> None:
        self.publisher = publisher
        self.gaps = gaps
        self.backfiller = backfiller
        self.streams = list(streams)
        self.micros = micros
        self.tracker = CoverageTracker()
        # stream -> (newest frame, its receipt in ns): written by Ingest for every frame.
        self.newest: dict[str, tuple[bytes, int]] = {}
        # kind (held, hole) -> markers published, for the metrics.
        self.markers_published: Counter[str] = Counter()

    def follow(self, streams: list[str]) -> None:
        """Streams subscribed after the start (PRODUCER_SYMBOLS=ALL): vouched for from their first frame."""
        known = set(self.streams)
        self.streams.extend(stream for stream in streams if stream not in known)

    def _newest_ms(self, stream: str) -> int | None:
        seen = self.newest.get(stream)
        return None if seen is None else frame_time_ms(seen[0], stream_type(stream), seen[1], self.micros)

    def tick(self) -> int:
        """One marker per stream that has one due; returns how many were published."""
        busy = self.backfiller.busy_streams()
        published = 0
        for stream in self.streams:
            tracked = stream_type(stream) in TRACKED_ID_FIELDS
            clean = stream not in busy and self.gaps.clean(stream)
            last_id = self.gaps.last_id(stream) if tracked else None
            marker = self.tracker.tick(stream, self._newest_ms(stream), clean, last_id)
            if marker is not None and self._publish(marker, stream):
                self.tracker.advanced(stream, marker)
                published += 1
        return published

    def _publish(self, marker: CoverageMarker, stream: str) -> bool:
        if not self.publisher.try_publish_coverage(marker, stream):
            return False  # the buffer is full: offered again at the next tick
        self.markers_published[marker.kind.value] += 1
        if marker.kind == "hole":
            log.warning(
                "coverage hole",
                extra={"stream": stream, "start_ms": marker.start_ms, "end_ms": marker.end_ms, "why": marker.detail},
            )
        return True

    def dropped(self, streams: list[str]) -> None:
        """A connection ended: a bookTicker's period since its last frame can't be refilled."""
        for stream in streams:
            if stream_type(stream) == "bookTicker":
                marker = self.tracker.dropped(stream, self._newest_ms(stream), BOOK_TICKER_DROPPED)
                if marker is not None:
                    self._publish(marker, stream)

    def given_up(self, stream: str, why: str) -> None:
        self.tracker.damage(stream, why)

    def resume(self, markers: dict[str, CoverageMarker], max_age_s: float) -> None:
        """Each stream continues from its last held marker: ids and klines since are refetched
        (a hole if REST can't), a bookTicker's time since is a hole."""
        now_ms = int(time.time() * 1000)
        for stream, marker in markers.items():
            kind = stream_type(stream)
            down_s = (now_ms - marker.end_ms) / 1000
            if down_s > max_age_s:
                why = f"producer was down {down_s:.0f} s, more than PRODUCER_RESUME_MAX_AGE_S ({max_age_s:g} s)"
                self.tracker.resume(stream, marker.end_ms, why)
            elif kind in TRACKED_ID_FIELDS and marker.last_id is not None:
                self.gaps.resume(stream, marker.last_id, time.monotonic())
                self.tracker.resume(stream, marker.end_ms)
            elif kind.startswith("kline_"):
                self.backfiller.resume_klines(stream, marker.end_ms)
                self.tracker.resume(stream, marker.end_ms)
            elif kind == "bookTicker":
                self.tracker.resume(stream, marker.end_ms, "producer was down; Binance keeps no bookTicker history")
            else:
                self.tracker.resume(stream, marker.end_ms, "producer was down; its last marker names no trade id")
            log.info(
                "resuming from the last held marker",
                extra={"stream": stream, "end_ms": marker.end_ms, "last_id": marker.last_id, "down_s": round(down_s)},
            )
