"""A question about a period past retention is a 422 saying what is kept and since when; inside
retention the answers are exact, and candles from the 1-minute rollup answer as long as it is kept."""

from contextlib import closing
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg2
import pytest

from maintenance.partitions import run_pass
from schemas.partitions import PARTITIONED_TABLES
from tests.conftest import libpq_dsn
from tests.integration.api_helpers import TradeRow, asgi_client, migrated, to_ms

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
FIRST = NOW - timedelta(days=9)
RETENTION = {table.name: 0 for table in PARTITIONED_TABLES} | {
    "trades": 3,
    "trade_candles_1s": 3,
    "trade_candles_1m": 30,
}


def test_past_retention_is_a_422_naming_what_is_kept_and_the_rest_answers_exactly(database: dict[str, str]) -> None:
    store = migrated(database)
    # A trade every hour for ten days, then the maintenance pass: three days of trades and
    # seconds kept (from Nov 27 on), thirty of minutes.
    hours = int((NOW - FIRST) / timedelta(hours=1))
    store.trades(
        [
            TradeRow(
                "BTCUSDT", n + 1, Decimal(f"{100 + n}.5"), Decimal("0.1"), to_ms(FIRST + timedelta(hours=n)), False
            )
            for n in range(hours)
        ]
    )
    with closing(psycopg2.connect(libpq_dsn(database["owner"]))) as connection:
        report = run_pass(connection, NOW, RETENTION, ahead_days=1, lock_timeout_ms=5000)
    assert len(report.dropped["trades"]) == 6  # Nov 21 to Nov 26
    kept_since = "2026-11-27T00:00:00Z"
    old, inside = NOW - timedelta(days=5), NOW - timedelta(days=2)
    with asgi_client(database) as client:
        for path, params in (
            ("/v1/trades", {"start": old.isoformat(), "end": NOW.isoformat()}),
            ("/v1/trades", {"start": old.isoformat(), "end": NOW.isoformat(), "format": "json"}),
            ("/v1/stats", {"start": old.isoformat(), "end": NOW.isoformat()}),
            ("/v1/prices/at", {"timestamp": old.isoformat()}),
            ("/v1/candles", {"interval": "1s", "start": old.isoformat()}),
        ):
            answer = client.get(path, params={"symbol": "BTCUSDT", **params})
            assert answer.status_code == 422, (path, answer.text)
            name = "timestamp" if path == "/v1/prices/at" else "start"
            assert answer.json()["errors"][0]["parameter"] == name
            assert kept_since in answer.json()["detail"] and "kept for 3 days" in answer.json()["detail"]

        # Inside retention: exact.
        csv = client.get(
            "/v1/trades", params={"symbol": "BTCUSDT", "start": inside.isoformat(), "end": NOW.isoformat()}
        )
        assert csv.status_code == 200
        assert len(csv.text.splitlines()) == 1 + 48
        stats = client.get(
            "/v1/stats", params={"symbol": "BTCUSDT", "start": inside.isoformat(), "end": NOW.isoformat()}
        )
        assert stats.status_code == 200 and stats.json()["trade_count"] == 48
        # Candles of 1h come from the 1-minute rollup, kept for 30 days: every hour still answers.
        candles = client.get("/v1/candles", params={"symbol": "BTCUSDT", "interval": "1h", "start": FIRST.isoformat()})
        assert candles.status_code == 200, candles.text
        page = candles.json()["candles"]
        assert page[0]["open_time"] == "2026-11-21T12:00:00Z"  # six days before what trades keep
        assert [c["trade_count"] for c in page] == [1] * len(page)
