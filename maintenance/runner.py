"""Runs maintenance passes on a schedule, on a connection of its own."""

import logging
import threading
from datetime import UTC, datetime
from typing import Any

import psycopg2
from sqlalchemy.engine import make_url

from maintenance.partitions import PassReport, run_pass
from maintenance.settings import MaintenanceSettings
from schemas.partitions import PARTITIONED_TABLES

log = logging.getLogger(__name__)


def libpq_dsn(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def run_once(settings: MaintenanceSettings, now: datetime | None = None) -> PassReport:
    connection: Any = psycopg2.connect(libpq_dsn(settings.database_url))
    try:
        retention = {table.name: settings.retention_days(table.name) for table in PARTITIONED_TABLES}
        report = run_pass(
            connection, now or datetime.now(UTC), retention, settings.ahead_days, settings.lock_timeout_ms
        )
    finally:
        connection.close()
    # LogRecord reserves some names ("created" among them): these keys are the report's own.
    log.info(
        "maintenance pass",
        extra={
            "partitions_created": report.created,
            "rows_moved_from_default": report.moved_rows,
            "partitions_dropped": report.dropped,
            "indexes_rebuilt": report.compacted,
            "tables_skipped": report.skipped,
        },
    )
    return report


class MaintenanceThread:
    """A daemon thread running a pass every `interval_s` until stopped. A failed pass (the
    database away, a lock timeout) is logged and the next one tries again: upkeep never stops
    the service it runs in."""

    def __init__(self, settings: MaintenanceSettings) -> None:
        self._settings = settings
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="partition-maintenance", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                run_once(self._settings)
            except Exception:
                log.exception("maintenance pass failed")
            self._stopping.wait(self._settings.interval_s)
