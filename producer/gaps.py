"""Gap detection on Binance's consecutive ids. Pure: no I/O, the caller passes the time.

Trade ids (`t`) and aggregate trade ids (`a`) are consecutive per symbol, so a jump means
messages were missed. Missing ranges wait a short grace period before they are handed out for
REST backfill, because during a rollover two connections deliver the same stream and a frame
the other connection is about to deliver should not cost a REST request.
"""

from dataclasses import dataclass, field

# Past this many separate missing ranges on one stream they are merged into one covering range:
# one REST walk with some duplicates beats unbounded memory.
MAX_PENDING_RANGES = 10_000


@dataclass(frozen=True, slots=True)
class BackfillRange:
    """Ids to fetch over REST: `first` to `last` inclusive, or from `first` on when `last` is None."""

    stream: str
    first: int
    last: int | None


def merge_ranges(ranges: list[BackfillRange]) -> list[BackfillRange]:
    """Overlapping or adjacent ranges of a stream as one (an open-ended range absorbs what follows)."""
    merged: list[BackfillRange] = []
    for gap in sorted(ranges, key=lambda r: (r.stream, r.first)):
        previous = merged[-1] if merged else None
        if previous is not None and previous.stream == gap.stream:
            if previous.last is None:
                continue
            if gap.first <= previous.last + 1:
                last = None if gap.last is None else max(previous.last, gap.last)
                merged[-1] = BackfillRange(gap.stream, previous.first, last)
                continue
        merged.append(gap)
    return merged


@dataclass(slots=True)
class _Missing:
    first: int
    last: int
    since: float


@dataclass(slots=True)
class _StreamIds:
    last_id: int | None = None  # highest id known to be published, live or REST
    live_id: int | None = None  # highest id a live connection delivered
    missing: list[_Missing] = field(default_factory=list)
    # After a dropped connection: the last id seen before it, and when it dropped.
    resync_after: int | None = None
    resync_since: float = 0.0


class GapTracker:
    """Per stream (e.g. 'btcusdt@trade'): the highest id seen and the ranges still missing."""

    def __init__(self, grace_s: float) -> None:
        self.grace_s = grace_s
        self._streams: dict[str, _StreamIds] = {}
        self.gaps_detected = 0
        self.ids_missed = 0

    def _ids(self, stream: str) -> _StreamIds:
        ids = self._streams.get(stream)
        if ids is None:
            ids = self._streams[stream] = _StreamIds()
        return ids

    def last_id(self, stream: str) -> int | None:
        ids = self._streams.get(stream)
        return ids.last_id if ids is not None else None

    def live_id(self, stream: str) -> int | None:
        """The highest id a live connection delivered: where a REST walk has caught up."""
        ids = self._streams.get(stream)
        return ids.live_id if ids is not None else None

    def observe(self, stream: str, id_: int, now: float) -> None:
        """An id arrived on a live connection."""
        ids = self._streams.get(stream)
        if ids is None:
            ids = self._ids(stream)
        if ids.live_id is None or id_ > ids.live_id:
            ids.live_id = id_
        last = ids.last_id
        if last is None or id_ == last + 1:
            ids.last_id = id_
            if ids.missing:
                self._fill(ids, id_, id_)
            return
        if id_ > last:
            ids.missing.append(_Missing(last + 1, id_ - 1, now))
            self.gaps_detected += 1
            self.ids_missed += id_ - 1 - last
            ids.last_id = id_
            self._bound(ids)
        elif ids.missing:
            # An older id: a duplicate from an overlapping connection, or a late arrival that fills a gap.
            self._fill(ids, id_, id_)

    def lost(self, stream: str, id_: int, now: float) -> None:
        """A message with this id was received but never reached Kafka: fetch it again over REST."""
        ids = self._ids(stream)
        if ids.last_id is None or id_ > ids.last_id:
            ids.last_id = id_
        # Due at once: nothing else will deliver it.
        due_now = now - self.grace_s
        if ids.missing and ids.missing[-1].last == id_ - 1 and ids.missing[-1].since <= due_now:
            ids.missing[-1].last = id_
        else:
            ids.missing.append(_Missing(id_, id_, due_now))
            self._bound(ids)

    def dropped(self, stream: str, now: float) -> None:
        """The connection carrying `stream` dropped: what happened meanwhile must be checked over REST."""
        ids = self._ids(stream)
        if ids.last_id is not None and ids.resync_after is None:
            ids.resync_after = ids.last_id
            ids.resync_since = now

    def filled(self, stream: str, first: int, last: int) -> None:
        """REST delivered ids `first`..`last`: they are no longer missing."""
        ids = self._ids(stream)
        if ids.last_id is None or last > ids.last_id:
            ids.last_id = last
        if ids.missing:
            self._fill(ids, first, last)

    def due(self, now: float) -> list[BackfillRange]:
        """Ranges whose grace period is over, removed from the tracker: the caller fetches them."""
        ready: list[BackfillRange] = []
        cutoff = now - self.grace_s
        for stream, ids in self._streams.items():
            if ids.missing:
                keep = []
                for missing in ids.missing:
                    if missing.since <= cutoff:
                        ready.append(BackfillRange(stream, missing.first, missing.last))
                    else:
                        keep.append(missing)
                ids.missing = keep
            if ids.resync_after is not None and ids.resync_since <= cutoff:
                # Any live id since the drop went through observe(), which found the jump if there was
                # one; a stream with no live id since (quiet, or still disconnected) is asked over REST.
                if ids.last_id == ids.resync_after:
                    ready.append(BackfillRange(stream, ids.resync_after + 1, None))
                ids.resync_after = None
        return ready

    def clean(self, stream: str) -> bool:
        """Whether every id of the stream up to last_id(stream) is known published: no range
        missing and no resync after a drop still to check (ranges handed out are the caller's)."""
        ids = self._streams.get(stream)
        return ids is None or (not ids.missing and ids.resync_after is None)

    def resume(self, stream: str, last_id: int, now: float) -> None:
        """A restart: the previous run published every id up to `last_id`. The ids since are due
        at once: those before the first live id as a gap, or all of them over REST if none arrives."""
        ids = self._ids(stream)
        ids.last_id = last_id
        ids.resync_after = last_id
        ids.resync_since = now - self.grace_s

    def pending(self) -> int:
        """Missing ranges not yet handed out, and resyncs not yet checked."""
        return sum(len(ids.missing) + (ids.resync_after is not None) for ids in self._streams.values())

    @staticmethod
    def _fill(ids: _StreamIds, first: int, last: int) -> None:
        kept: list[_Missing] = []
        for missing in ids.missing:
            if missing.last < first or missing.first > last:
                kept.append(missing)
                continue
            if missing.first < first:
                kept.append(_Missing(missing.first, first - 1, missing.since))
            if missing.last > last:
                kept.append(_Missing(last + 1, missing.last, missing.since))
        ids.missing = kept

    @staticmethod
    def _bound(ids: _StreamIds) -> None:
        if len(ids.missing) > MAX_PENDING_RANGES:
            ids.missing = [
                _Missing(
                    min(m.first for m in ids.missing),
                    max(m.last for m in ids.missing),
                    min(m.since for m in ids.missing),
                )
            ]
