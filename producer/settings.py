"""Producer settings: PRODUCER_* environment variables, and the same names as CLI flags over them."""

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from schemas.shards import parse_shard, shard_of
from schemas.topics import RAW_TOPIC

# Binance's kline intervals; names are case-sensitive ("1m" a minute, "1M" a month).
KLINE_INTERVALS = ("1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M")
PLAIN_STREAM_TYPES = ("trade", "aggTrade", "bookTicker")
# PRODUCER_SYMBOLS=ALL: every TRADING symbol of exchangeInfo (no Binance symbol is called ALL).
ALL_SYMBOLS = "ALL"
# Binance: at most 1024 streams on one connection.
MAX_STREAMS_PER_CONNECTION = 1024
# librdkafka's default message.max.bytes, which the publisher sets: the largest raw message,
# frame plus key and headers, that produce() accepts.
KAFKA_MESSAGE_MAX_BYTES = 1_000_000
# Room left in a message for its key and headers (stream name, source, time, connection id).
KAFKA_HEADER_ROOM_BYTES = 1024

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([dhms])")
_DURATION_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


def parse_duration_s(value: object) -> object:
    """'1h', '90m', '1h30m', '45s', '2d' or a number of seconds -> seconds; anything else unchanged."""
    if not isinstance(value, str):
        return value
    text = value.strip().lower()
    if text in ("", "0", "off", "none"):
        return 0.0
    try:
        return float(text)
    except ValueError:
        pass
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise ValueError(f"not a duration: {value!r} (examples: 90s, 30m, 1h, 1h30m, 2d)")
    return sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)


def is_stream_type(name: str) -> bool:
    return name in PLAIN_STREAM_TYPES or (name.startswith("kline_") and name[6:] in KLINE_INTERVALS)


class ProducerSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PRODUCER_",
        cli_prog_name="python -m producer",
        cli_kebab_case=True,
        cli_implicit_flags=True,
        extra="ignore",
    )

    # --- what to read ---------------------------------------------------------------------------
    # Comma-separated in the environment and on the command line: BTCUSDT,ETHUSDT; or ALL.
    symbols: Annotated[list[str], NoDecode] = Field(
        default=["BTCUSDT", "ETHUSDT"],
        description="symbols to stream, or ALL: every TRADING symbol of exchangeInfo, followed as symbols are listed"
        " and halted",
    )
    stream_types: Annotated[list[str], NoDecode] = Field(
        default=["trade"],
        description="trade, aggTrade, bookTicker, kline_<interval> (1s 1m ... 1M), comma-separated",
    )
    # Real Binance by default; wss://data-stream.binance.vision and https://data-api.binance.vision
    # are Binance's market-data-only endpoints. Tests and the demo point both at the fake exchange.
    ws_base_url: str = Field(default="wss://stream.binance.com:9443", description="Binance WebSocket base URL")
    rest_base_url: str = Field(default="https://api.binance.com", description="Binance REST base URL")
    time_unit: Literal["MILLISECOND", "MICROSECOND"] = Field(
        default="MILLISECOND", description="unit of the time fields Binance sends (WebSocket and REST)"
    )

    shard: str = Field(
        default="0/1",
        description="i/n: this process streams the symbols whose hash modulo n is i (0 <= i < n); n processes"
        " with 0/n ... n-1/n stream every symbol exactly once",
    )

    # --- where it goes --------------------------------------------------------------------------
    kafka_bootstrap_servers: str = Field(default="127.0.0.1:9092", description="Kafka bootstrap servers")
    raw_topic: str = Field(default=RAW_TOPIC, description="topic every raw message is published to")
    # librdkafka's own queue is the bounded buffer that rides out a Kafka outage.
    buffer_max_messages: int = Field(default=500_000, ge=1, description="messages buffered while Kafka is away")
    flush_timeout_s: float = Field(default=30.0, ge=0, description="how long shutdown waits for Kafka to confirm")

    # --- connections ----------------------------------------------------------------------------
    max_streams_per_connection: int = Field(
        default=MAX_STREAMS_PER_CONNECTION, ge=1, le=MAX_STREAMS_PER_CONNECTION, description="streams per connection"
    )
    # Binance: 300 connection attempts per 5 minutes per IP.
    max_connection_attempts_per_5min: int = Field(
        default=300, ge=1, le=300, description="connection attempts per 5 min"
    )
    connection_max_age_s: Annotated[float, NoDecode] = Field(
        default=23.5 * 3600, gt=0, description="replace a connection this old (Binance closes them at 24 h)"
    )
    rollover_overlap_s: Annotated[float, NoDecode] = Field(
        default=5.0, ge=0, description="old and replacement connection both read this long"
    )
    ping_interval_s: float = Field(default=20.0, gt=0, description="our keepalive ping period")
    ping_timeout_s: float = Field(default=20.0, gt=0, description="a connection whose pong is this late is dead")
    open_timeout_s: float = Field(default=10.0, gt=0, description="WebSocket handshake timeout")
    # Binance's frames are a few hundred bytes. A frame must fit in one Kafka message: a larger one
    # accepted here would fail in produce() after its id was counted as received, so it would never
    # be backfilled. Refused here instead (websockets closes the connection with 1009), its
    # connection is replaced and the ids it carried are fetched over REST. The bound also caps the
    # memory of the frames queued ahead of the reader.
    ws_max_frame_bytes: int = Field(
        default=2**19,
        ge=4096,
        le=KAFKA_MESSAGE_MAX_BYTES - KAFKA_HEADER_ROOM_BYTES,
        description="largest WebSocket frame accepted; a larger one closes the connection, its ids are backfilled",
    )
    reconnect_min_s: float = Field(default=0.5, gt=0, description="first reconnect delay (doubles, with jitter)")
    reconnect_max_s: float = Field(default=30.0, gt=0, description="largest reconnect delay")

    # --- gaps and REST --------------------------------------------------------------------------
    gap_grace_s: float = Field(default=2.0, ge=0, description="wait this long for late frames before backfilling a gap")
    backfill: Annotated[float, NoDecode] = Field(
        default=0.0, ge=0, description="on start, fetch this much history over REST, e.g. 1h (0: none)"
    )
    exchange_info_refresh_s: Annotated[float, NoDecode] = Field(
        default=300.0, ge=0, description="with SYMBOLS=ALL: re-read exchangeInfo this often, e.g. 5m (0: never)"
    )
    rest_timeout_s: float = Field(default=10.0, gt=0, description="REST request timeout")
    rest_weight_share: float = Field(
        default=0.5, gt=0, le=1, description="share of Binance's per-minute REST weight limit backfills may use"
    )
    backfill_give_up_s: Annotated[float, NoDecode] = Field(
        default=600.0, gt=0, description="a gap REST refuses (429, 418) this long is given up: coverage records a hole"
    )

    # --- coverage markers (producer/live_coverage.py) -------------------------------------------
    coverage_interval_s: Annotated[float, NoDecode] = Field(
        default=30.0, gt=0, description="how often each stream's held period (or hole) is published"
    )
    resume_scan_max_messages: int = Field(
        default=2_000_000,
        ge=0,
        description="raw messages per partition read back at start for the last markers (0: none)",
    )
    resume_max_age_s: Annotated[float, NoDecode] = Field(
        default=86400.0, ge=0, description="a restart after a longer stop records a hole instead of refetching"
    )

    stats_interval_s: float = Field(default=10.0, gt=0, description="period of the stats log line")
    # /metrics and /health (producer/metrics.py). Loopback by default; compose sets 0.0.0.0 so
    # Prometheus and the health check reach it.
    metrics_host: str = Field(default="127.0.0.1", description="address of the /metrics and /health server")
    metrics_port: int = Field(default=9101, ge=0, le=65535, description="port of /metrics and /health (0: any free)")
    health_max_down_s: float = Field(
        default=60.0, gt=0, description="unhealthy once no connection has been open (or the loop stuck) this long"
    )
    heartbeat_path: str = Field(default="", description="file touched while running, for health checks (empty: none)")
    log_level: str = Field(default="INFO", description="logging level")

    @field_validator("symbols", "stream_types", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str) and "," in value[0]:
            return [part.strip() for part in value[0].split(",") if part.strip()]
        return value

    @field_validator("symbols")
    @classmethod
    def _upper_symbols(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one symbol is required")
        symbols = [symbol.upper() for symbol in value]
        if ALL_SYMBOLS in symbols and len(symbols) > 1:
            raise ValueError(f"{ALL_SYMBOLS} stands alone: it means every TRADING symbol")
        bad = [symbol for symbol in symbols if not re.fullmatch(r"[A-Z0-9]{1,20}", symbol)]
        if bad:
            raise ValueError(f"malformed symbols: {', '.join(bad)}")
        return list(dict.fromkeys(symbols))

    @field_validator("stream_types")
    @classmethod
    def _known_stream_types(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one stream type is required")
        unknown = [name for name in value if not is_stream_type(name)]
        if unknown:
            raise ValueError(
                f"unknown stream types: {', '.join(unknown)}; expected trade, aggTrade, bookTicker or "
                f"kline_<interval> with an interval of {' '.join(KLINE_INTERVALS)}"
            )
        return list(dict.fromkeys(value))

    @field_validator("shard")
    @classmethod
    def _shard(cls, value: str) -> str:
        index, count = parse_shard(value)
        return f"{index}/{count}"

    @field_validator(
        "connection_max_age_s",
        "rollover_overlap_s",
        "backfill",
        "backfill_give_up_s",
        "coverage_interval_s",
        "resume_max_age_s",
        "exchange_info_refresh_s",
        mode="before",
    )
    @classmethod
    def _durations(cls, value: object) -> object:
        return parse_duration_s(value)

    @property
    def whole_market(self) -> bool:
        """SYMBOLS=ALL: the symbols are exchangeInfo's TRADING ones, now and as they change."""
        return self.symbols == [ALL_SYMBOLS]

    @property
    def shard_index(self) -> int:
        return int(self.shard.split("/")[0])

    @property
    def shard_count(self) -> int:
        return int(self.shard.split("/")[1])

    def owns(self, symbol: str) -> bool:
        """Whether this process (PRODUCER_SHARD) streams `symbol`."""
        return self.shard_count == 1 or shard_of(symbol, self.shard_count) == self.shard_index

    def stream_names(self, symbols: list[str] | None = None) -> list[str]:
        """Binance stream names: the lower-case symbol, '@', the stream type; a symbol's streams together."""
        chosen = self.symbols if symbols is None else symbols
        return [name for symbol in chosen for name in self.symbol_streams(symbol)]

    def symbol_streams(self, symbol: str) -> list[str]:
        return [f"{symbol.lower()}@{stream_type}" for stream_type in self.stream_types]

    def kline_intervals(self) -> list[str]:
        return [name.removeprefix("kline_") for name in self.stream_types if name.startswith("kline_")]
