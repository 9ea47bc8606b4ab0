"""Settings of the fake exchange: environment (FAKE_BINANCE_*) first, CLI flags over it."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.shards import parse_shard, shard_of


class FakeBinanceSettings(BaseSettings):
    """Everything `python -m fake_binance` can be told; validated once at start."""

    model_config = SettingsConfigDict(
        env_prefix="FAKE_BINANCE_",
        cli_prog_name="python -m fake_binance",
        cli_kebab_case=True,
        cli_implicit_flags=True,
        extra="ignore",
    )

    host: str = Field("127.0.0.1", description="interface both servers listen on")
    ws_port: int = Field(9443, ge=0, le=65535, description="WebSocket port (0: any free port)")
    rest_port: int = Field(8090, ge=0, le=65535, description="REST port (0: any free port)")
    symbols: str = Field("BTCUSDT,ETHUSDT", description="comma-separated symbols to trade")
    trades_per_second: float = Field(5.0, ge=0, description="trades per second per symbol (0: none)")
    max_trades: int = Field(0, ge=0, description="trades per symbol before the market goes quiet (0: no cap)")
    first_trade_id: int = Field(1, ge=0, description="id of the first trade of every symbol")
    ids_from_clock: bool = Field(
        False,
        description="start trade, aggTrade and book update ids at the Unix time in ms instead (first_trade_id is"
        " ignored): a restarted exchange then continues above its earlier runs' ids, as Binance's never go back,"
        " while it averaged under 1,000 trades a second",
    )
    seed: int = Field(1, description="seed of the random walk; same seed, same trades")
    record_path: Path | None = Field(None, description="append every emitted trade payload here")
    replay_path: Path | None = Field(None, description="JSON-lines file to replay instead of generating")
    replay_speed: float = Field(1.0, ge=0, description="replay time factor (2: twice as fast, 0: no pauses)")
    wait_for_subscriber: bool = Field(True, description="start trading when the first stream is subscribed")
    ping_interval_s: float = Field(20.0, gt=0, description="server ping period (Binance: 20 s)")
    pong_timeout_s: float = Field(60.0, gt=0, description="close a connection silent this long after a ping")
    connection_lifetime_s: float = Field(86400.0, gt=0, description="close connections this old (Binance: 24 h)")
    # Misbehaviours (also switchable at run time: POST /fake/... on the REST port).
    drop_every_s: float = Field(0.0, ge=0, description="drop every connection this often (0: never)")
    drop_mode: str = Field("abrupt", description="how drop_every_s drops: abrupt (no close frame), close, shutdown")
    gap_every: int = Field(0, ge=0, description="leave 1 in N trades (and their aggTrade) out of the streams")
    malformed_every: int = Field(0, ge=0, description="corrupt 1 in N trade frames (0: never)")
    malformed_mode: str = Field("truncate", description="truncate (frame cut short) or garbage (junk frame first)")
    oversize_every: int = Field(0, ge=0, description="pad 1 in N trade frames to oversize_bytes (0: never)")
    oversize_bytes: int = Field(2**21, ge=1, description="size of an oversized frame (over the usual 1 MiB limit)")
    error_reply_every_s: float = Field(0.0, ge=0, description='send {"code","msg"} error frames this often')
    rest_429_every: int = Field(0, ge=0, description="answer 1 in N REST requests with 429 (0: never)")
    rest_retry_after_s: int = Field(1, ge=0, description="Retry-After of forced 429/418 answers")
    rest_page_cap: int = Field(0, ge=0, description="at most N rows per REST page whatever the limit (0: no cap)")
    history_trades_per_day: int = Field(
        2000, ge=1, le=10_000_000, description="trades per symbol on every past day (REST history and the archive)"
    )
    archive_missing: str = Field("", description="archive files (names or dates, comma-separated) answered 404")
    archive_bad_checksum: str = Field("", description="archive files whose .CHECKSUM names another digest")
    archive_truncated: str = Field("", description="archive files served cut short (their CHECKSUM is the whole's)")
    archive_429_every: int = Field(0, ge=0, description="answer 1 in N archive requests with 429 (0: never)")
    halted_symbols: str = Field("", description="comma-separated symbols listed with status BREAK")
    # --- whole-market mode (FAKE_BINANCE_MARKET=all): every symbol of the full recorded exchangeInfo ---
    market: Literal["symbols", "all"] = Field(
        "symbols",
        description="symbols: trade FAKE_BINANCE_SYMBOLS; all (or SYMBOLS=ALL): every TRADING symbol of the full"
        " recorded exchangeInfo",
    )
    market_trades_per_second: float = Field(1000.0, gt=0, description="whole market: trades per second in all")
    market_top_trades_per_second: float = Field(
        50.0, gt=0, description="whole market: trades per second of the busiest symbol (sets the Zipf exponent)"
    )
    market_book_tickers_per_second: float = Field(
        5000.0, ge=0, description="whole market: bookTicker updates per second in all"
    )
    market_burst_factor: float = Field(20.0, ge=1, description="whole market: trade rate multiplier during a burst")
    market_burst_s: float = Field(60.0, ge=0, description="whole market: length of a burst (0: no bursts)")
    market_burst_every_s: float = Field(600.0, gt=0, description="whole market: a burst starts this often")
    market_first_burst_s: float = Field(
        600.0, ge=0, description="whole market: the first burst starts this long after the market opens"
    )
    market_shard: str = Field(
        "0/1",
        description="whole market: i/n trades only the symbols whose name's CRC-32 modulo n is i (the producer's"
        " PRODUCER_SHARD rule), so n fakes make the one market in n processes; exchangeInfo still lists them all",
    )
    market_tick_s: float = Field(0.05, gt=0, le=1, description="whole market: how often the trading loop runs")
    history_keep_s: float = Field(
        0.0, ge=0, description="keep REST history of trades this recent (0: all; whole market: 300 s if unset)"
    )
    ws_connection_attempts_per_5min: int = Field(
        300, ge=1, description="WebSocket handshakes allowed per IP in any 5 minutes (Binance: 300); then HTTP 429"
    )
    log_level: str = Field("INFO", description="logging level")

    @field_validator("market_shard")
    @classmethod
    def _market_shard(cls, value: str) -> str:
        index, count = parse_shard(value)
        return f"{index}/{count}"

    def trades_here(self, symbol: str) -> bool:
        """Whether this fake (FAKE_BINANCE_MARKET_SHARD) trades `symbol` in whole-market mode."""
        index, count = parse_shard(self.market_shard)
        return count == 1 or shard_of(symbol, count) == index

    @field_validator("drop_mode")
    @classmethod
    def _drop_mode(cls, value: str) -> str:
        if value not in ("abrupt", "close", "shutdown"):
            raise ValueError("drop_mode must be abrupt, close or shutdown")
        return value

    @field_validator("malformed_mode")
    @classmethod
    def _malformed_mode(cls, value: str) -> str:
        if value not in ("truncate", "garbage"):
            raise ValueError("malformed_mode must be truncate or garbage")
        return value

    @staticmethod
    def _entries(value: str) -> tuple[str, ...]:
        return tuple(entry.strip() for entry in value.split(",") if entry.strip())

    @property
    def archive_missing_list(self) -> tuple[str, ...]:
        return self._entries(self.archive_missing)

    @property
    def archive_bad_checksum_list(self) -> tuple[str, ...]:
        return self._entries(self.archive_bad_checksum)

    @property
    def archive_truncated_list(self) -> tuple[str, ...]:
        return self._entries(self.archive_truncated)

    @property
    def halted_symbol_list(self) -> tuple[str, ...]:
        return tuple(name.strip().upper() for name in self.halted_symbols.split(",") if name.strip())

    @field_validator("symbols")
    @classmethod
    def _normalise_symbols(cls, value: str) -> str:
        names = [name.strip().upper() for name in value.split(",") if name.strip()]
        if not names:
            raise ValueError("at least one symbol is required")
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate symbols in {value!r}")
        return ",".join(names)

    @property
    def symbol_list(self) -> tuple[str, ...]:
        return tuple(self.symbols.split(","))

    @property
    def whole_market(self) -> bool:
        # SYMBOLS=ALL, which compose gives the producer and the fake alike, means the whole market here too.
        return self.market == "all" or self.symbol_list == ("ALL",)

    @property
    def history_window_ms(self) -> int:
        """How far back REST history reaches (0: forever). The whole market's history would grow
        by about 1 GB an hour, so it keeps the last five minutes unless told otherwise."""
        keep_s = self.history_keep_s or (300.0 if self.whole_market else 0.0)
        return int(keep_s * 1000)
