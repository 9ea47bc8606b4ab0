"""Drives one import: plan each symbol's streams, fetch, publish, acknowledge, mark, remember, report.

Every record goes to the raw topic keyed by its symbol, as the live path publishes: an archive
row byte for byte (source `archive`, with `time_unit: MICROSECOND` for files in microseconds), a
REST record as compact JSON (source `history`, laid out as for `rest`). Once Kafka has
acknowledged every record of a file or page, a coverage marker (schemas/coverage.py) for exactly
the period it covers follows on the same partition; an archive day that is not published gets a
hole marker. Only then is the period written to the state file (producer/history/state.py).
"""

import asyncio
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from producer.backfill import Backfiller, BinanceRest, request_weight_limit, startup_exchange_info
from producer.frames import encode_record
from producer.gaps import GapTracker
from producer.history.archive import ArchiveClient, ArchiveError, ArchiveMissing, row_time_ms, rows
from producer.history.plan import Unit, daily_units_of_month, plan_stream, rest_unit, unplanned
from producer.history.progress import ProgressReport
from producer.history.rest_source import RestHistory
from producer.history.settings import HistorySettings
from producer.history.state import StateDir, StreamState, subtract
from producer.limits import WeightBudget
from producer.publisher import RawPublisher
from schemas.coverage import CoverageKind, CoverageMarker, encode_marker
from schemas.times import from_ms
from schemas.topics import Header, Source

log = logging.getLogger("producer.history")

EXIT_OK, EXIT_INCOMPLETE, EXIT_BAD_SETTINGS = 0, 1, 2
_ARCHIVE, _HISTORY, _COVERAGE = Source.ARCHIVE.encode(), Source.HISTORY.encode(), Source.COVERAGE.encode()
_MICROSECOND: list[tuple[str, str | bytes | None]] = [(Header.TIME_UNIT, b"MICROSECOND")]
_DRAIN_WAIT_S = 5.0


class KafkaRefused(Exception):
    """Kafka refused messages (no such topic, a message too large, ...): the import stops."""


@dataclass
class Summary:
    records: int = 0
    files: int = 0
    pages: int = 0
    resumed_rows: int = 0
    skipped_units: int = 0
    # Parts of the asked period not imported, in words (a missing day, a bad file, today under --source archive).
    not_imported: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.not_imported


def _iso(milliseconds: int) -> str:
    return from_ms(milliseconds).isoformat().replace("+00:00", "Z")


class Importer:
    def __init__(
        self,
        settings: HistorySettings,
        publisher: RawPublisher,
        state: StateDir,
        archive: ArchiveClient,
        rest: RestHistory | None,
        report: ProgressReport,
    ) -> None:
        self.settings = settings
        self.publisher = publisher
        self.state = state
        self.archive = archive
        self.rest = rest
        self.report = report
        self.summary = Summary()
        self.lost = 0

    # --- Kafka ----------------------------------------------------------------------------------

    def _send(self, value: bytes, stream: str, source: bytes, request_id: bytes, received_at_ns: int = 0) -> None:
        received_at_ns = received_at_ns or time.time_ns()
        while not self.publisher.try_publish(value, stream, source, received_at_ns, request_id):
            time.sleep(0.005)  # the queue is full: Kafka is behind, and history is not time critical

    def _acknowledged(self) -> None:
        """Returns once Kafka has every message sent so far; raises if it refused one."""
        while self.publisher.drain(_DRAIN_WAIT_S) > 0:
            log.warning("waiting for Kafka to acknowledge", extra={"queued": self.publisher.queued})
        if self.publisher.failed or self.lost:
            raise KafkaRefused(f"Kafka refused {self.publisher.failed + self.lost} messages (see the log above)")

    def _mark(self, unit: Unit, kind: CoverageKind, start_ms: int, end_ms: int, origin: str, detail: str = "") -> None:
        if start_ms >= end_ms:
            return
        marker = CoverageMarker(kind=kind, start_ms=start_ms, end_ms=end_ms, origin=origin, detail=detail)
        self._send(encode_marker(marker), unit.stream_name, _COVERAGE, b"history")
        self._acknowledged()

    # --- the plan -------------------------------------------------------------------------------

    async def run(self, now_ms: int) -> Summary:
        start_ms, end_ms = self.settings.start_ms, self.settings.end_ms(now_ms)
        for symbol in self.settings.symbol_list:
            for stream in self.settings.stream_list:
                units = plan_stream(symbol, stream, start_ms, end_ms, now_ms, self.settings.source)
                stream_name = f"{symbol.lower()}@{stream}"
                self.report.add_stream(stream_name, end_ms - start_ms)
                for gap_start, gap_end in unplanned(units, start_ms, end_ms):
                    self.summary.not_imported.append(
                        f"{stream_name} {_iso(gap_start)}..{_iso(gap_end)}: not in the archive yet (--source archive)"
                    )
                await self._run_units(units, self.state.stream(stream_name))
        return self.summary

    async def _run_units(self, units: list[Unit], state: StreamState) -> None:
        queue = list(units)
        while queue:
            unit = queue.pop(0)
            if state.covered(unit.start_ms, unit.end_ms):
                self.summary.skipped_units += 1
                self.report.advance(unit.stream_name, unit.end_ms - unit.start_ms, 0, 0, unit=unit.key, resumed=True)
                continue
            if unit.source == "rest":
                await self._rest_unit(unit, state)
                continue
            try:
                self._archive_file(unit, state)
            except ArchiveMissing:
                queue[:0] = self._instead_of_missing(unit)
            except ArchiveError as error:
                log.error("archive file refused", extra={"file": f"{unit.file_name}.zip", "reason": str(error)})
                self.summary.not_imported.append(str(error))

    def _instead_of_missing(self, unit: Unit) -> list[Unit]:
        """A monthly file not (yet) published: its days. A day: REST under auto, else a hole."""
        if unit.period == "monthly":
            return daily_units_of_month(unit)
        if self.settings.source == "auto" and self.rest is not None:
            log.info("archive lacks the day, asking REST", extra={"file": f"{unit.file_name}.zip"})
            return [rest_unit(unit.symbol, unit.stream, unit.start_ms, unit.end_ms)]
        detail = f"data.binance.vision has no {unit.file_name}.zip (404)"
        self._mark(unit, CoverageKind.HOLE, unit.start_ms, unit.end_ms, Source.ARCHIVE, detail)
        log.error("archive day missing: hole marked", extra={"file": f"{unit.file_name}.zip"})
        self.summary.not_imported.append(f"{unit.stream_name} {_iso(unit.start_ms)}..{_iso(unit.end_ms)}: {detail}")
        return []

    # --- archive files --------------------------------------------------------------------------

    def _archive_file(self, unit: Unit, state: StreamState) -> None:
        started = time.monotonic()
        resume_at = state.partial.get(unit.key, 0)
        with self.archive.fetch(unit) as file:
            if resume_at:
                log.info("resuming a file", extra={"file": f"{unit.file_name}.zip", "rows_acknowledged": resume_at})
                self.summary.resumed_rows += resume_at
            published = self._publish_rows(unit, rows(file), resume_at, state)
            self._acknowledged()
        self._mark(unit, CoverageKind.HELD, unit.start_ms, unit.end_ms, Source.ARCHIVE)
        state.add_delivered(unit.start_ms, unit.end_ms)
        state.partial.pop(unit.key, None)
        state.save()
        self.summary.files += 1
        self.summary.records += published
        seconds = time.monotonic() - started
        self.report.advance(
            unit.stream_name,
            unit.end_ms - unit.start_ms,
            published,
            file.size_bytes,
            file=f"{unit.file_name}.zip",
            seconds=round(seconds, 3),
            rate=round(published / max(seconds, 1e-6)),
        )

    def _publish_rows(self, unit: Unit, file_rows: Iterator[bytes], resume_at: int, state: StreamState) -> int:
        """The file's rows after the first `resume_at`, within the asked period; a checkpoint every
        checkpoint_rows rows (Kafka's acknowledgement first, then the state file)."""
        extra = _MICROSECOND if unit.microseconds else None
        # One key and header list for the whole file: the rows differ only in their value.
        key, headers = self.publisher.addressing(
            unit.stream_name, _ARCHIVE, time.time_ns(), unit.file_name.encode(), extra
        )
        whole, start_ms, end_ms = unit.whole_file, unit.start_ms, unit.end_ms
        checkpoint = self.settings.checkpoint_rows
        try_produce = self.publisher.try_produce
        published = 0
        for row_number, row in enumerate(file_rows, start=1):
            if row_number <= resume_at:
                continue
            if not whole:
                row_ms = row_time_ms(unit, row)
                if row_ms is not None and not start_ms <= row_ms < end_ms:
                    continue
            while not try_produce(row, key, headers):
                time.sleep(0.005)  # the queue is full: Kafka is behind
            published += 1
            if row_number % checkpoint == 0:
                self._acknowledged()
                state.partial[unit.key] = row_number
                state.save()
        return published

    # --- REST -----------------------------------------------------------------------------------

    async def _rest_unit(self, unit: Unit, state: StreamState) -> None:
        if self.rest is None:
            self.summary.not_imported.append(f"{unit.key}: no REST source")
            return
        for part_start, part_end in subtract(unit.start_ms, unit.end_ms, state.delivered):
            try:
                await self._rest_part(unit, state, part_start, part_end)
            except Exception as error:
                log.error("REST import failed", extra={"unit": unit.key, "error": repr(error)})
                self.summary.not_imported.append(
                    f"{unit.stream_name} {_iso(part_start)}..{_iso(part_end)}: REST failed: {error!r}"
                )
                return

    async def _rest_part(self, unit: Unit, state: StreamState, start_ms: int, end_ms: int) -> None:
        assert self.rest is not None
        async for page in self.rest.pages(unit.symbol, unit.stream, start_ms, end_ms):
            request_id = f"history-{page.start_ms}".encode()
            for record in page.records:
                # Received when REST answered: the consumer tells a kline closed by it, as the page did.
                self._send(encode_record(record), unit.stream_name, _HISTORY, request_id, page.received_at_ns)
            self._acknowledged()
            self._mark(unit, CoverageKind.HELD, page.start_ms, page.end_ms, Source.HISTORY)
            if page.start_ms < page.end_ms:
                state.add_delivered(page.start_ms, page.end_ms)
                state.save()
            self.summary.pages += 1
            self.summary.records += len(page.records)
            self.report.advance(
                unit.stream_name, page.end_ms - page.start_ms, len(page.records), 0, request=page.request
            )


async def run_import(settings: HistorySettings) -> int:
    now_ms = time.time_ns() // 1_000_000
    state = StateDir(settings.state_dir)
    try:
        state.lock()
    except BlockingIOError:
        log.error("another import holds the state directory", extra={"state_dir": str(settings.state_dir)})
        return EXIT_BAD_SETTINGS
    publisher = RawPublisher(settings.kafka_bootstrap_servers, settings.raw_topic, settings.buffer_max_messages)
    try:
        rest = None if settings.source == "archive" else await _rest_history(settings, publisher)
    except Exception as error:  # the REST API unreachable, or refusing: nothing can be planned with it
        log.error("REST API unavailable", extra={"rest_base_url": settings.rest_base_url, "error": repr(error)})
        return EXIT_INCOMPLETE
    if isinstance(rest, int):
        return rest
    archive = ArchiveClient(
        settings.archive_base_url, settings.rest_timeout_s, settings.download_dir or settings.state_dir
    )
    started = time.monotonic()
    with ProgressReport(settings.progress) as report:
        importer = Importer(settings, publisher, state, archive, rest, report)
        publisher.on_lost = lambda _value, _stream, _source: setattr(importer, "lost", importer.lost + 1)
        try:
            summary = await importer.run(now_ms)
        except KafkaRefused as error:
            # Nothing unacknowledged was written to the state: a rerun starts where Kafka has it.
            log.error("history import STOPPED", extra={"reason": str(error), "topic": settings.raw_topic})
            return EXIT_INCOMPLETE
    seconds = time.monotonic() - started
    log.info(
        "history import finished" if summary.complete else "history import INCOMPLETE",
        extra={
            "records": summary.records,
            "files": summary.files,
            "pages": summary.pages,
            "resumed_rows": summary.resumed_rows,
            "units_already_done": summary.skipped_units,
            "seconds": round(seconds, 2),
            "records_per_s": round(summary.records / max(seconds, 1e-6)),
            "rest_requests": rest.backfiller.requests if rest is not None else 0,
            "rest_429": rest.backfiller.rate_limited if rest is not None else 0,
            "archive_requests": archive.requests,
            "archive_429": archive.rate_limited,
            "not_imported": summary.not_imported,
        },
    )
    return EXIT_OK if summary.complete else EXIT_INCOMPLETE


async def _rest_history(settings: HistorySettings, publisher: RawPublisher) -> RestHistory | int:
    rest = BinanceRest(settings.rest_base_url, settings.rest_timeout_s)
    info = await startup_exchange_info(rest, 0.5, 30.0)
    listed = {entry.get("symbol") for entry in info.get("symbols", [])}
    unknown = [symbol for symbol in settings.symbol_list if symbol not in listed]
    if unknown:
        log.error("unknown symbols (checked against GET /api/v3/exchangeInfo)", extra={"symbols": unknown})
        return EXIT_BAD_SETTINGS
    weight = WeightBudget(request_weight_limit(info), settings.rest_weight_share)
    backfiller = Backfiller(rest, publisher, GapTracker(0.0), weight)
    return RestHistory(backfiller)


def main(settings: HistorySettings) -> int:
    return asyncio.run(run_import(settings))
