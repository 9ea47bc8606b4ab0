"""Maintenance settings, read from MAINTENANCE_* environment variables.

The consumer runs the maintenance pass in a thread of its own with these settings (its database
URL is the consumer's), bootstrap runs one pass after migrating, and `python -m maintenance` runs
it alone (for a box whose consumer runs it elsewhere, or by hand)."""

from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

Days = Annotated[int, Field(ge=0)]


class MaintenanceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MAINTENANCE_")

    database_url: str = "postgresql+psycopg2://binance@127.0.0.1:5432/binance"
    # How often a pass runs. A pass is a few catalogue queries when there is nothing to do.
    interval_s: Annotated[float, Field(gt=0)] = 300.0
    # Partitions exist this far ahead of the current time, so rows never wait for one (a DEFAULT
    # partition catches the rest). Three days survive a weekend of the job not running.
    ahead_days: Annotated[int, Field(ge=1, le=366)] = 3
    # DDL waits at most this long for a lock (a long api export holds the table): the pass gives
    # up on that table and the next pass tries again, rather than queue every reader behind it.
    lock_timeout_ms: Annotated[int, Field(ge=1)] = 2000
    # Retention per table in days (0: keep forever), applied by dropping whole partitions. The
    # defaults suit a developer's box (README.md gives the disk each costs per day): individual
    # trades for a week, the 1-second rollup (prices at a second, trade lookups by time) for as
    # long, the 1-minute rollup (candles of 1 m and up) and klines for a year.
    retention_trades_days: Days = 7
    retention_agg_trades_days: Days = 7
    retention_trade_candles_1s_days: Days = 7
    retention_book_tickers_days: Days = 7
    retention_trade_candles_1m_days: Days = 365
    retention_klines_days: Days = 365
    retention_dead_letters_days: Days = 30
    log_level: str = "INFO"

    def retention_days(self, table: str) -> int:
        days: int = getattr(self, f"retention_{table}_days")
        return days
