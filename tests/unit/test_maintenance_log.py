"""The maintenance pass's log line: every key a LogRecord accepts (a reserved one raises)."""

import logging

import psycopg2
import pytest

from maintenance import runner
from maintenance.partitions import PassReport
from maintenance.settings import MaintenanceSettings


def test_a_pass_report_logs_without_clashing_with_log_record_fields(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    report = PassReport(
        created={"trades": ["trades_p20261202"]},
        moved_rows={"trades": 3},
        dropped={"trades": ["trades_p20261120"]},
        skipped=["klines"],
        compacted=["trades_p20261201"],
    )

    class Connection:
        def close(self) -> None:
            pass

    monkeypatch.setattr(psycopg2, "connect", lambda dsn: Connection())
    monkeypatch.setattr(runner, "run_pass", lambda *args: report)
    with caplog.at_level(logging.INFO, logger="maintenance.runner"):
        assert runner.run_once(MaintenanceSettings()) is report
    (record,) = caplog.records
    assert record.partitions_created == {"trades": ["trades_p20261202"]}  # type: ignore[attr-defined]
    assert record.partitions_dropped == {"trades": ["trades_p20261120"]}  # type: ignore[attr-defined]
    assert record.indexes_rebuilt == ["trades_p20261201"]  # type: ignore[attr-defined]
