"""The consumer's list of known symbols on real PostgreSQL: a symbol it does not know makes it
re-read exchangeInfo at once, but never more often than CONSUMER_SYMBOL_REFRESH_S."""

import time
from contextlib import closing
from typing import Any

import psycopg2
import pytest

from bootstrap.__main__ import migrate
from consumer.settings import ConsumerSettings
from consumer.symbols import SymbolRegistry
from tests.conftest import libpq_dsn

pytestmark = pytest.mark.integration


class Exchange:
    """exchangeInfo as a test wants it, counting how often it is asked."""

    def __init__(self, *symbols: str) -> None:
        self.symbols = list(symbols)
        self.calls = 0

    def __call__(self) -> dict[str, Any]:
        self.calls += 1
        return {
            "symbols": [
                {"symbol": s, "status": "TRADING", "baseAsset": s[:3], "quoteAsset": s[3:]} for s in self.symbols
            ]
        }


def stored(database_url: str) -> set[str]:
    with closing(psycopg2.connect(libpq_dsn(database_url))) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT symbol FROM symbols")
        return {row[0] for row in cursor.fetchall()}


def test_the_default_reloads_within_seconds_not_a_minute() -> None:
    assert ConsumerSettings().symbol_refresh_s <= 10


def test_a_symbol_listed_since_the_last_load_is_known_after_one_reload(database: dict[str, str]) -> None:
    migrate(database["owner"], api_role="")
    exchange = Exchange("BTCUSDT")
    registry = SymbolRegistry(database["owner"], exchange, refresh_interval_s=0.5)
    try:
        assert registry.load() and registry.known == {"BTCUSDT"}
        exchange.symbols.append("NEWCOINUSDT")
        # Right after a load: rate-limited, nothing asked.
        assert not registry.reload_for_unknown() and exchange.calls == 1
        time.sleep(0.6)
        # The first unknown symbol after the interval: reloaded at once, and stored for the api.
        assert registry.reload_for_unknown() and exchange.calls == 2
        assert registry.known == {"BTCUSDT", "NEWCOINUSDT"} == stored(database["owner"])
    finally:
        registry.dispose()


def test_a_flood_of_unknown_symbols_costs_one_reload_per_interval(database: dict[str, str]) -> None:
    migrate(database["owner"], api_role="")
    exchange = Exchange("BTCUSDT")
    registry = SymbolRegistry(database["owner"], exchange, refresh_interval_s=0.3)
    try:
        registry.load()
        started = time.monotonic()
        reloads = 0
        # One batch with an unknown symbol after another, as fast as they come, for about a second.
        while time.monotonic() - started < 1.0:
            reloads += registry.reload_for_unknown()
        elapsed = time.monotonic() - started
        assert exchange.calls == 1 + reloads
        assert 1 <= reloads <= int(elapsed / 0.3) + 1
        assert registry.known == {"BTCUSDT"}
    finally:
        registry.dispose()
