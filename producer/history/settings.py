"""Settings of `python -m producer history`: PRODUCER_HISTORY_* variables, the same names as flags."""

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.kline_intervals import KLINE_INTERVALS
from schemas.times import parse_timestamp, to_ms
from schemas.topics import RAW_TOPIC

STREAM_KINDS = ("trade", "aggTrade")


class HistorySettings(BaseSettings):
    """One import job: what to fetch, from where, and how to publish it."""

    model_config = SettingsConfigDict(
        env_prefix="PRODUCER_HISTORY_",
        cli_prog_name="python -m producer history",
        cli_kebab_case=True,
        cli_implicit_flags=True,
        extra="ignore",
    )

    symbols: str = Field(description="comma-separated symbols, e.g. ADABNB,BTCUSDT")
    streams: str = Field("trade", description="comma-separated: trade, aggTrade, kline_<interval>")
    start: str = Field(description="start of the period, inclusive: ISO 8601 (UTC unless a zone is given) or epoch ms")
    end: str | None = Field(None, description="end of the period, exclusive (default: now)")
    source: Literal["auto", "archive", "rest"] = Field(
        "auto", description="auto: the archive's files where published, REST for the rest; or only one of them"
    )
    kafka_bootstrap_servers: str = Field("127.0.0.1:9092", description="Kafka")
    raw_topic: str = Field(RAW_TOPIC, description="topic the records go to")
    archive_base_url: str = Field("https://data.binance.vision", description="Binance's public archive")
    rest_base_url: str = Field("https://api.binance.com", description="Binance REST base")
    rest_timeout_s: float = Field(10.0, gt=0, description="timeout of one HTTP request")
    rest_weight_share: float = Field(
        0.5, gt=0, le=1, description="share of the per-minute REST weight limit (from exchangeInfo) to use"
    )
    state_dir: Path = Field(Path(".local/history"), description="where what Kafka acknowledged is remembered")
    download_dir: Path | None = Field(None, description="where archive files are spooled (default: the state dir)")
    checkpoint_rows: int = Field(50_000, ge=1, description="rows of a file between two remembered positions")
    progress: Literal["auto", "bar", "log"] = Field(
        "auto", description="bar: a progress bar; log: a JSON line per file or page; auto: bar on a terminal"
    )
    buffer_max_messages: int = Field(500_000, ge=1000, description="Kafka producer queue")
    log_level: str = Field("INFO", description="logging level")

    @field_validator("symbols")
    @classmethod
    def _symbols(cls, value: str) -> str:
        names = [name.strip().upper() for name in value.split(",") if name.strip()]
        if not names:
            raise ValueError("at least one symbol is required")
        bad = [name for name in names if not (name.isalnum() and 2 <= len(name) <= 20)]
        if bad:
            raise ValueError(f"not Binance symbols: {', '.join(bad)}")
        return ",".join(dict.fromkeys(names))

    @field_validator("streams")
    @classmethod
    def _streams(cls, value: str) -> str:
        names = [name.strip() for name in value.split(",") if name.strip()]
        if not names:
            raise ValueError("at least one stream is required")
        for name in names:
            interval = name.removeprefix("kline_")
            if name not in STREAM_KINDS and not (name.startswith("kline_") and interval in KLINE_INTERVALS):
                raise ValueError(f"unknown stream {name!r}: expected trade, aggTrade or kline_<interval>")
        return ",".join(dict.fromkeys(names))

    @field_validator("start", "end")
    @classmethod
    def _time(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.field_name == "end" and value is not None and value.strip() == "":
            return None  # an empty end (compose's HISTORY_END=) means now
        if value is not None:
            parse_timestamp(value)  # a ValueError that says what a time looks like
        return value

    @model_validator(mode="after")
    def _period(self) -> "HistorySettings":
        if self.end is not None and self.end_ms(0) <= self.start_ms:
            raise ValueError(f"end {self.end} must be after start {self.start}")
        return self

    @property
    def symbol_list(self) -> list[str]:
        return self.symbols.split(",")

    @property
    def stream_list(self) -> list[str]:
        return self.streams.split(",")

    @property
    def start_ms(self) -> int:
        return to_ms(parse_timestamp(self.start))

    def end_ms(self, now_ms: int) -> int:
        return now_ms if self.end is None else to_ms(parse_timestamp(self.end))
