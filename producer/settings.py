"""Producer settings, read from PRODUCER_* environment variables (and CLI flags in __main__)."""

from typing import Annotated

from pydantic import field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from schemas.topics import RAW_TOPIC


class ProducerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PRODUCER_")

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    raw_topic: str = RAW_TOPIC
    # Real Binance by default; tests and the offline demo point this at the fake exchange.
    ws_base_url: str = "wss://stream.binance.com:9443"
    # Comma-separated in the environment: PRODUCER_SYMBOLS=BTCUSDT,ETHUSDT
    symbols: Annotated[list[str], NoDecode] = ["BTCUSDT", "ETHUSDT"]
    stream_types: Annotated[list[str], NoDecode] = ["trade"]
    # Reconnect backoff: doubles from min to max, with jitter.
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    log_level: str = "INFO"

    @field_validator("symbols", "stream_types", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("symbols")
    @classmethod
    def _upper_symbols(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one symbol is required")
        return [symbol.upper() for symbol in value]

    def stream_names(self) -> list[str]:
        """Binance stream names are the lower-case symbol, '@', and the stream type."""
        return [f"{symbol.lower()}@{stream_type}" for symbol in self.symbols for stream_type in self.stream_types]
