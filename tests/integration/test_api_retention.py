"""A question about a period past retention is a 422 saying what is kept and since when; inside
retention the answers are exact, and candles from the 1-minute rollup answer as long as it is kept."""

from contextlib import closing
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import psycopg2
import pytest

from maintenance.partitions import run_pass
from schemas.partitions import PARTITIONED_TABLES
from tests.conftest import libpq_dsn
from tests.integration.api_helpers import Store, TradeRow, asgi_client, migrated, to_ms

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
        for path, params, name in (
            ("/v1/trades", {"start": old.isoformat(), "end": NOW.isoformat()}, "start"),
            ("/v1/trades", {"start": old.isoformat(), "end": NOW.isoformat(), "format": "json"}, "start"),
            ("/v1/stats", {"start": old.isoformat(), "end": NOW.isoformat()}, "start"),
            ("/v1/prices/at", {"timestamp": old.isoformat()}, "timestamp"),
            ("/v1/candles", {"interval": "1s", "start": old.isoformat()}, "start"),
            ("/v1/candles", {"interval": "1s", "end": old.isoformat()}, "end"),
            ("/v1/indicators/sma", {"interval": "1s", "windows": "2", "end": old.isoformat()}, "end"),
        ):
            answer = client.get(path, params={"symbol": "BTCUSDT", **params})
            assert answer.status_code == 422, (path, answer.text)
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


def second_kline(open_time: datetime, close: str, trades: int, interval: str = "1s") -> dict[str, Any]:
    price = Decimal(close)
    span = timedelta(seconds=1) if interval == "1s" else timedelta(minutes=1)
    return {
        "symbol": "BTCUSDT", "interval": interval, "open_time": open_time,
        "close_time": open_time + span - timedelta(milliseconds=1),
        "open": price, "high": price, "low": price, "close": price, "volume": Decimal(trades),
        "quote_volume": price * trades, "trade_count": trades, "taker_buy_base_volume": Decimal(0),
        "taker_buy_quote_volume": Decimal(0), "first_trade_id": None, "last_trade_id": None, "is_closed": True,
        "event_time": None, "source": "archive",
    }  # fmt: skip


def hourly_store_past_a_pass(database: dict[str, str], retention: dict[str, int]) -> Store:
    """BTCUSDT: a trade and an aggregate trade every hour for nine days, then the maintenance
    pass at NOW with `retention` (trades kept from 2026-11-27 on with 3 days)."""
    store = migrated(database)
    hours = int((NOW - FIRST) / timedelta(hours=1))
    store.trades(
        [
            TradeRow(
                "BTCUSDT", n + 1, Decimal(f"{100 + n}.5"), Decimal("0.1"), to_ms(FIRST + timedelta(hours=n)), False
            )
            for n in range(hours)
        ]
    )
    store.agg_trades(
        [
            ("BTCUSDT", n + 1, Decimal(f"{100 + n}.5"), Decimal("0.1"), n + 1, n + 1, to_ms(FIRST + timedelta(hours=n)),
             False)
            for n in range(hours)
        ]
    )  # fmt: skip
    with closing(psycopg2.connect(libpq_dsn(database["owner"]))) as connection:
        run_pass(connection, NOW, retention, ahead_days=1, lock_timeout_ms=5000)
    return store


def assert_binance_refusal(answer: httpx.Response, parameter: str, kept: str) -> None:
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["code"] == -1130 and set(body) == {"code", "msg"}
    assert f"parameter '{parameter}'" in body["msg"] and kept in body["msg"], body["msg"]


def test_binance_reads_past_retention_are_refused_in_binance_layout_naming_the_parameter(
    database: dict[str, str],
) -> None:
    hourly_store_past_a_pass(database, RETENTION | {"agg_trades": 3})
    old, kept = to_ms(NOW - timedelta(days=5)), "kept for 3 days, from 2026-11-27T00:00:00Z on"
    first_kept_id = int((datetime(2026, 11, 27, tzinfo=UTC) - FIRST) / timedelta(hours=1)) + 1
    with asgi_client(database) as client:

        def get(path: str, **params: object) -> httpx.Response:
            answer: httpx.Response = client.get(f"/api/v3/{path}", params={"symbol": "BTCUSDT", **params})
            return answer

        assert_binance_refusal(get("klines", interval="1s", startTime=old), "startTime", kept)
        assert_binance_refusal(get("uiKlines", interval="1s", startTime=old), "startTime", kept)
        assert_binance_refusal(get("klines", interval="1s", endTime=old), "endTime", kept)
        assert_binance_refusal(get("aggTrades", startTime=old), "startTime", "aggregate trades are " + kept)
        assert_binance_refusal(get("aggTrades", endTime=old), "endTime", kept)
        assert_binance_refusal(get("aggTrades", fromId=1), "fromId", f"first stored id of BTCUSDT is {first_kept_id}")
        assert_binance_refusal(
            get("historicalTrades", fromId=first_kept_id - 1), "fromId", "individual trades are " + kept
        )
        reconcile = client.get("/v1/reconcile", params={"symbol": "BTCUSDT", "start": old, "end": old + 60_000})
        assert reconcile.status_code == 422 and "kept for 3 days" in reconcile.json()["detail"]

        # From what is kept on: the answers, exact.
        trades = get("historicalTrades", fromId=first_kept_id, limit=5).json()
        assert [trade["id"] for trade in trades] == list(range(first_kept_id, first_kept_id + 5))
        aggregates = get("aggTrades", fromId=first_kept_id, limit=3).json()
        assert [row["a"] for row in aggregates] == list(range(first_kept_id, first_kept_id + 3))
        # Candles of 1h come from the 1-minute rollup, kept for 30 days.
        hourly = get("klines", interval="1h", startTime=to_ms(FIRST))
        assert hourly.status_code == 200, hourly.text
        assert hourly.json()[0][0] == to_ms(FIRST) and len(hourly.json()) == 9 * 24
        assert hourly.headers["X-Kline-Source"] == "trades"


def test_imported_klines_answer_where_trades_retention_dropped_the_period(database: dict[str, str]) -> None:
    # Trades and seconds kept for 3 days (from Nov 27 on), minutes for 3 (monthly partitions:
    # from Nov 1 on), klines forever.
    store = hourly_store_past_a_pass(database, RETENTION | {"trade_candles_1m": 3})
    imported, october = datetime(2026, 11, 24, 10, 30, tzinfo=UTC), datetime(2026, 10, 20, 10, 30, tzinfo=UTC)
    # Ten 1s klines of an import, the last traded second 10:30:05, then four without trades; and
    # a 1m kline of a minute whose rollup is past retention.
    store.klines(
        [second_kline(imported + timedelta(seconds=n), f"50.{n}", 0 if n > 5 else 3) for n in range(10)]
        + [second_kline(october, "61.5", 4, "1m")]
    )
    kept = "kept for 3 days, from 2026-11-27T00:00:00Z on"
    with asgi_client(database) as client:

        def price_at(moment: datetime) -> httpx.Response:
            answer: httpx.Response = client.get(
                "/v1/prices/at", params={"symbol": "BTCUSDT", "timestamp": moment.isoformat()}
            )
            return answer

        at = price_at(imported + timedelta(seconds=8))
        assert at.status_code == 200, at.text
        assert at.json()["source"] == "klines" and at.json()["price"] == "50.5"
        assert at.json()["actual_timestamp"].startswith("2026-11-24T10:30:05")
        # Past the klines' end (trades there were dropped: a later one may have set the price),
        # and before their start: no source holds the second.
        for moment in (imported + timedelta(seconds=20), imported - timedelta(hours=1)):
            refused = price_at(moment)
            assert refused.status_code == 422, refused.text
            assert refused.json()["errors"][0]["parameter"] == "timestamp" and kept in refused.json()["detail"]

        minute = client.get("/v1/prices/minmax", params={"symbol": "BTCUSDT", "minute": october.isoformat()})
        assert minute.status_code == 200, minute.text
        assert minute.json()["source"] == "klines" and minute.json()["high"] == "61.5"
        other = client.get(
            "/v1/prices/minmax", params={"symbol": "BTCUSDT", "minute": (october + timedelta(minutes=1)).isoformat()}
        )
        assert other.status_code == 422, other.text
        assert other.json()["errors"][0]["parameter"] == "minute"
        minutes_kept = "1-minute rollups (candles of 1m and longer) are kept for 3 days, from 2026-11-01"
        assert minutes_kept in other.json()["detail"]

        # 1s candles: the stored klines, and none made up after them in the dropped period.
        seconds = client.get(
            "/v1/candles", params={"symbol": "BTCUSDT", "interval": "1s", "start": imported.isoformat()}
        )
        assert seconds.status_code == 200, seconds.text
        assert [(c["open_time"][11:19], c["close"], c["source"]) for c in seconds.json()["candles"]] == [
            (f"10:30:0{n}", f"50.{n}", "klines") for n in range(10)
        ]
        klines = client.get(
            "/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "1s", "startTime": to_ms(imported)}
        )
        assert klines.status_code == 200, klines.text
        assert [row[0] for row in klines.json()] == [to_ms(imported) + 1000 * n for n in range(10)]
        assert klines.headers["X-Kline-Source"] == "klines"
        later = to_ms(imported + timedelta(hours=1))
        assert_binance_refusal(
            client.get("/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "1s", "startTime": later}),
            "startTime",
            "no 1s kline of BTCUSDT is stored between startTime and then",
        )
        refused = client.get("/v1/candles", params={"symbol": "BTCUSDT", "interval": "1s", "start": later})
        assert refused.status_code == 422 and kept in refused.json()["detail"]
