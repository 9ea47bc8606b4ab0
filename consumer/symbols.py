"""The symbols the exchange lists: what makes a message's symbol "known".

Loaded from GET /api/v3/exchangeInfo (python-binance) and kept in the `symbols` table, which also
serves the api. When Binance can't be reached the table is the fallback, so a restart during an
outage keeps working; a message with a symbol outside the list triggers a reload at once, because
a newly listed symbol is not an error. Reloads are at least the refresh interval apart, so that a
flood of junk symbols costs one exchangeInfo call and one upsert per interval, not one per batch.
"""

import logging
import time
from collections.abc import Callable
from typing import Any

from binance.client import Client
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.dialects.postgresql import insert

from schemas.tables import symbols

log = logging.getLogger(__name__)

ExchangeInfoFetcher = Callable[[], dict[str, Any]]


def binance_exchange_info(rest_base_url: str, timeout_s: float = 10.0) -> ExchangeInfoFetcher:
    def fetch() -> dict[str, Any]:
        # ping=False: the constructor sends nothing; python-binance has no base-URL argument.
        client = Client(ping=False, requests_params={"timeout": timeout_s})
        client.API_URL = f"{rest_base_url.rstrip('/')}/api"
        info: dict[str, Any] = client.get_exchange_info()
        return info

    return fetch


class SymbolRegistry:
    def __init__(self, database_url: str, fetch: ExchangeInfoFetcher, refresh_interval_s: float = 10.0) -> None:
        self._engine: Engine = create_engine(database_url, pool_pre_ping=True, pool_size=1)
        self._fetch = fetch
        self._refresh_interval_s = refresh_interval_s
        self._last_attempt = float("-inf")
        self.known: frozenset[str] = frozenset()

    def load(self) -> bool:
        """Reloads from the exchange, falling back to the table. True if any symbol is known."""
        self._last_attempt = time.monotonic()
        try:
            entries = self._fetch()["symbols"]
        except Exception as error:  # any failure of a remote call: fall back to what is stored
            log.warning("exchangeInfo unavailable, using stored symbols", extra={"error": repr(error)})
            with self._engine.connect() as connection:
                self.known = frozenset(connection.execute(select(symbols.c.symbol)).scalars())
            return bool(self.known)
        self._store(entries)
        self.known = frozenset(entry["symbol"] for entry in entries)
        log.info("symbols loaded", extra={"count": len(self.known)})
        return bool(self.known)

    def reload_for_unknown(self) -> bool:
        """A message named a symbol not in the list (listed since the last load?): reloads now,
        unless the last attempt is under the refresh interval old. True if it reloaded."""
        if time.monotonic() - self._last_attempt < self._refresh_interval_s:
            return False
        self.load()
        return True

    def _store(self, entries: list[dict[str, Any]]) -> None:
        rows = [
            {
                "symbol": entry["symbol"],
                "status": entry.get("status", ""),
                "base_asset": entry.get("baseAsset", ""),
                "quote_asset": entry.get("quoteAsset", ""),
                "info": entry,
            }
            for entry in entries
        ]
        statement = insert(symbols)
        statement = statement.on_conflict_do_update(
            index_elements=[symbols.c.symbol],
            set_={
                "status": statement.excluded.status,
                "base_asset": statement.excluded.base_asset,
                "quote_asset": statement.excluded.quote_asset,
                "info": statement.excluded.info,
                "updated_at": statement.excluded.updated_at,
            },
        )
        with self._engine.begin() as connection:
            connection.execute(statement, rows)

    def dispose(self) -> None:
        self._engine.dispose()
