"""What a history import has had acknowledged by Kafka, remembered so a killed import resumes.

One small JSON file per symbol and stream in the state directory (e.g. `adabnb@kline_5m.json`):
  delivered: the periods [start_ms, end_ms) every record of which Kafka has acknowledged
             (merged; the same periods the coverage markers announce);
  partial:   for a file cut off mid-way, how many of its rows were acknowledged.
It is written (atomically: a temporary file renamed over it) only after the acknowledgement, so
it never claims more than Kafka holds; a kill -9 loses at most the rows since the last checkpoint,
which the next run publishes again and the store's primary keys make harmless. A lock file keeps
two imports from sharing one state directory.
"""

import fcntl
import json
import os
from pathlib import Path
from typing import IO


def merge(periods: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(periods):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def subtract(start_ms: int, end_ms: int, delivered: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of [start_ms, end_ms) not yet delivered."""
    left: list[tuple[int, int]] = []
    cursor = start_ms
    for done_start, done_end in delivered:
        if done_end <= cursor or done_start >= end_ms:
            continue
        if done_start > cursor:
            left.append((cursor, done_start))
        cursor = max(cursor, done_end)
    if cursor < end_ms:
        left.append((cursor, end_ms))
    return left


class StreamState:
    """The state of one symbol's stream."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.delivered: list[tuple[int, int]] = []
        self.partial: dict[str, int] = {}
        if path.exists():
            stored = json.loads(path.read_text())
            self.delivered = [(int(a), int(b)) for a, b in stored.get("delivered", [])]
            self.partial = {str(name): int(rows) for name, rows in stored.get("partial", {}).items()}

    def covered(self, start_ms: int, end_ms: int) -> bool:
        return not subtract(start_ms, end_ms, self.delivered)

    def add_delivered(self, start_ms: int, end_ms: int) -> None:
        self.delivered = merge([*self.delivered, (start_ms, end_ms)])

    def save(self) -> None:
        body = {"delivered": self.delivered, "partial": self.partial}
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(body))
        os.replace(temporary, self.path)


class StateDir:
    """The state directory of one import at a time."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._lock: IO[str] | None = None
        self._streams: dict[str, StreamState] = {}

    def lock(self) -> None:
        """Raises BlockingIOError when another import holds the directory."""
        handle = (self.directory / "import.lock").open("w")
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._lock = handle

    def stream(self, stream_name: str) -> StreamState:
        state = self._streams.get(stream_name)
        if state is None:
            state = self._streams[stream_name] = StreamState(self.directory / f"{stream_name}.json")
        return state
