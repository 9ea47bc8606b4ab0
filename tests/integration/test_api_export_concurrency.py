"""More concurrent CSV exports than the api's pool has connections, over real HTTP: each one
streams every row or is refused with a 503 and Retry-After before its status line; none is a
200 cut short."""

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from api.app import create_app
from tests.integration.api_helpers import TradeRow, api_settings, live_api, migrated, ms_time, to_ms

pytestmark = pytest.mark.integration

T0 = to_ms(datetime(2025, 9, 30, tzinfo=UTC))
TRADES = 40_000
EXPORTS = 12


def exported(url: str, results: list[tuple[int, str | None, int, bytes]], barrier: threading.Barrier) -> None:
    start, end = ms_time(T0).isoformat(), (ms_time(T0) + timedelta(days=1)).isoformat()
    barrier.wait()
    with (
        httpx.Client(timeout=60) as client,
        client.stream("GET", f"{url}/v1/trades", params={"symbol": "BTCUSDT", "start": start, "end": end}) as answer,
    ):
        body = answer.read()
        results.append((answer.status_code, answer.headers.get("retry-after"), body.count(b"\n"), body[-1:]))


@pytest.mark.parametrize(
    ("pool", "slots"),
    [pytest.param((2, 0), 12, id="pool-is-the-limit"), pytest.param((4, 2), 3, id="export-slots-are-the-limit")],
)
def test_concurrent_exports_stream_whole_or_are_refused_before_answering(
    database: dict[str, str], pool: tuple[int, int], slots: int
) -> None:
    migrated(database).trades(
        [
            TradeRow("BTCUSDT", 1 + i, Decimal("114244.00") + i % 97, Decimal("0.047"), T0 + i * 3, i % 3 == 0)
            for i in range(TRADES)
        ]
    )
    settings = api_settings(
        database, db_pool_size=pool[0], db_max_overflow=pool[1], db_pool_timeout_s=0.5, export_max_concurrent=slots
    )
    results: list[tuple[int, str | None, int, bytes]] = []
    with live_api(create_app(settings)) as url:
        barrier = threading.Barrier(EXPORTS)
        threads = [threading.Thread(target=exported, args=(url, results, barrier)) for _ in range(EXPORTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        # Afterwards every connection and slot is free again: an export is served whole.
        exported(url, results, threading.Barrier(1))
    assert len(results) == EXPORTS + 1
    for status, retry_after, lines, last_byte in results:
        if status == 200:
            assert (lines, last_byte) == (TRADES + 1, b"\n"), "a 200 export ended early"
        else:
            assert (status, retry_after) == (503, "1")
    assert results[-1][0] == 200
    assert any(status == 200 for status, *_ in results[:-1])
