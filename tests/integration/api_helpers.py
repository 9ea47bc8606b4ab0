"""Helpers of the api's integration tests: a migrated database, data put in with plain SQL, and
the api served in-process (ASGI) or on a loopback port (for real HTTP clients).

The rollups are computed here from the inserted trades, independently of the consumer's SQL, so
that the api's answers are checked against a second implementation of the same rules.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any

import psycopg2
import psycopg2.extras
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from bootstrap.__main__ import migrate
from tests.conftest import free_port, libpq_dsn, wait_until

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ms_time(milliseconds: int) -> datetime:
    return EPOCH + timedelta(milliseconds=milliseconds)


def to_ms(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1)


@dataclass(frozen=True)
class TradeRow:
    symbol: str
    trade_id: int
    price: Decimal
    quantity: Decimal
    trade_time_ms: int
    buyer_is_maker: bool


def rollup_rows(trades: Iterable[TradeRow], unit_ms: int) -> list[tuple[Any, ...]]:
    """trade_candles_1s (unit 1000) or _1m (60000) rows, by the rules the consumer follows:
    open and close are the prices of the smallest and largest trade id in the bucket; taker buy
    volumes count trades whose buyer was not the maker; price_sum (last) adds up the prices."""
    with localcontext() as context:
        # Exact sums and products of long decimals (the default context keeps 28 digits).
        context.prec = 1000
        return _rollup_rows(trades, unit_ms)


def _rollup_rows(trades: Iterable[TradeRow], unit_ms: int) -> list[tuple[Any, ...]]:
    buckets: dict[tuple[str, int], list[TradeRow]] = {}
    for trade in trades:
        buckets.setdefault((trade.symbol, trade.trade_time_ms // unit_ms * unit_ms), []).append(trade)
    rows = []
    for (symbol, open_ms), members in sorted(buckets.items()):
        members.sort(key=lambda t: t.trade_id)
        taker_buys = [t for t in members if not t.buyer_is_maker]
        rows.append(
            (
                symbol,
                ms_time(open_ms),
                members[0].price,
                max(t.price for t in members),
                min(t.price for t in members),
                members[-1].price,
                sum((t.quantity for t in members), Decimal(0)),
                sum((t.price * t.quantity for t in members), Decimal(0)),
                len(members),
                sum((t.quantity for t in taker_buys), Decimal(0)),
                sum((t.price * t.quantity for t in taker_buys), Decimal(0)),
                members[0].trade_id,
                members[-1].trade_id,
                sum((t.price for t in members), Decimal(0)),
            )
        )
    return rows


class Store:
    """Writes test data into one migrated database as the owner role."""

    def __init__(self, owner_url: str) -> None:
        self.dsn = libpq_dsn(owner_url)

    def _execute_values(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        with psycopg2.connect(self.dsn) as connection, connection.cursor() as cursor:
            psycopg2.extras.execute_values(cursor, sql, rows, page_size=5000)
        connection.close()

    def trades(self, trades: Sequence[TradeRow]) -> None:
        """Trades, both rollups and the symbols' id ranges, in one go (as the consumer commits them
        together; /v1/status reads a symbol's last ingestion from its id range row)."""
        self._execute_values(
            "INSERT INTO trades (symbol, trade_id, price, quantity, trade_time, buyer_is_maker, event_time) VALUES %s",
            [
                (
                    t.symbol,
                    t.trade_id,
                    t.price,
                    t.quantity,
                    ms_time(t.trade_time_ms),
                    t.buyer_is_maker,
                    ms_time(t.trade_time_ms),
                )
                for t in trades
            ],
        )
        columns = (
            "symbol, open_time, open, high, low, close, volume, quote_volume, trade_count,"
            " taker_buy_base_volume, taker_buy_quote_volume, first_trade_id, last_trade_id, price_sum"
        )
        for table, unit_ms in (("trade_candles_1s", 1000), ("trade_candles_1m", 60_000)):
            self._execute_values(f"INSERT INTO {table} ({columns}) VALUES %s", rollup_rows(trades, unit_ms))
        self._execute_values(
            "INSERT INTO stored_id_ranges AS r (kind, symbol, first_id, last_id)"
            " SELECT 'trades', symbol, min(id), max(id) FROM (VALUES %s) AS v (symbol, id) GROUP BY symbol"
            " ON CONFLICT (kind, symbol) DO UPDATE SET first_id = least(r.first_id, excluded.first_id),"
            " last_id = greatest(r.last_id, excluded.last_id), updated_at = now()",
            [(t.symbol, t.trade_id) for t in trades],
        )

    def symbols(self, entries: Sequence[dict[str, Any]]) -> None:
        self._execute_values(
            "INSERT INTO symbols (symbol, status, base_asset, quote_asset, info) VALUES %s",
            [(e["symbol"], e["status"], e["baseAsset"], e["quoteAsset"], psycopg2.extras.Json(e)) for e in entries],
        )

    def klines(self, rows: Sequence[dict[str, Any]]) -> None:
        """Klines as the consumer stores them: keys are the klines table's columns."""
        columns = [
            "symbol", "interval", "open_time", "close_time", "open", "high", "low", "close", "volume",
            "quote_volume", "trade_count", "taker_buy_base_volume", "taker_buy_quote_volume",
            "first_trade_id", "last_trade_id", "is_closed", "event_time", "source",
        ]  # fmt: skip
        self._execute_values(
            f"INSERT INTO klines ({', '.join(columns)}) VALUES %s", [tuple(row[c] for c in columns) for row in rows]
        )

    def agg_trades(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """(symbol, agg_trade_id, price, quantity, first_trade_id, last_trade_id, trade_time_ms, buyer_is_maker)"""
        self._execute_values(
            "INSERT INTO agg_trades (symbol, agg_trade_id, price, quantity, first_trade_id, last_trade_id,"
            " trade_time, buyer_is_maker, event_time) VALUES %s",
            [(*row[:6], ms_time(row[6]), row[7], ms_time(row[6])) for row in rows],
        )

    def coverage(self, markers: Sequence[tuple[str, str, str, int, int, str]]) -> None:
        """(symbol, stream, kind, start_ms, end_ms, detail), merged by coverage_apply as the consumer does."""
        self._execute_values(
            "SELECT coverage_apply(symbol, stream, kind, to_timestamp(start_ms / 1000.0),"
            " to_timestamp(end_ms / 1000.0), 'ws', detail)"
            " FROM (VALUES %s) AS m (symbol, stream, kind, start_ms, end_ms, detail)",
            markers,
        )


def migrated(database: dict[str, str]) -> Store:
    """Migrate the fresh test database and grant the api's role read access, as bootstrap does."""
    migrate(database["owner"], "binance_api")
    return Store(database["owner"])


def api_settings(database: dict[str, str], **overrides: Any) -> ApiSettings:
    return ApiSettings(database_url=database["api"], **overrides)


@contextmanager
def asgi_client(database: dict[str, str], **overrides: Any) -> Iterator[TestClient]:
    with TestClient(create_app(api_settings(database, **overrides))) as client:
        yield client


@contextmanager
def live_api(app: FastAPI) -> Iterator[str]:
    """The app on a loopback port in a background thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, name="live-api", daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, 15, "the api to listen")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
