"""How far an import is: a progress bar on a terminal (rich), else one JSON log line per file or page."""

import logging
import sys
import time
from types import TracebackType
from typing import Any

from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

log = logging.getLogger("producer.history")


class ProgressReport:
    """Per symbol and stream: records, rate, bytes, and the share of its period done (for the ETA)."""

    def __init__(self, mode: str) -> None:
        self.bar = mode == "bar" or (mode == "auto" and sys.stderr.isatty())
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._records: dict[str, int] = {}
        self._bytes: dict[str, int] = {}
        self._started: dict[str, float] = {}
        if self.bar:
            self._progress = Progress(
                TextColumn("{task.description:<22}"),
                BarColumn(bar_width=24),
                TextColumn(
                    "{task.fields[records]:>10,} records {task.fields[rate]:>8,.0f}/s {task.fields[mb]:>8.1f} MB"
                ),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=None,
            )

    def __enter__(self) -> "ProgressReport":
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def add_stream(self, stream_name: str, period_ms: int) -> None:
        self._records[stream_name] = 0
        self._bytes[stream_name] = 0
        self._started[stream_name] = time.monotonic()  # streams are imported one after another
        if self._progress is not None:
            self._tasks[stream_name] = self._progress.add_task(
                stream_name, total=period_ms, records=0, rate=0.0, mb=0.0
            )

    def advance(self, stream_name: str, done_ms: int, records: int, size_bytes: int, **fields: Any) -> None:
        """A file or page is in Kafka: its records and the part of the period it covered."""
        self._records[stream_name] += records
        self._bytes[stream_name] += size_bytes
        if self._progress is not None:
            elapsed = max(1e-6, time.monotonic() - self._started[stream_name])
            self._progress.update(
                self._tasks[stream_name],
                advance=done_ms,
                records=self._records[stream_name],
                rate=self._records[stream_name] / elapsed,
                mb=self._bytes[stream_name] / 1e6,
            )
        else:
            log.info("imported", extra={"stream": stream_name, "records": records, "bytes": size_bytes, **fields})

    def records(self, stream_name: str) -> int:
        return self._records.get(stream_name, 0)
