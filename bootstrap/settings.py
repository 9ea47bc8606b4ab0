"""Bootstrap settings, read from BOOTSTRAP_* environment variables."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.topics import DLQ_TOPIC, RAW_TOPIC, TOPICS

_SPECS = {spec.name: spec for spec in TOPICS}


class BootstrapSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BOOTSTRAP_")

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # A database role that owns the schema: migrations run as it.
    database_url: str = "postgresql+psycopg2://binance@127.0.0.1:5432/binance"
    # The api's role, granted read-only access to every table; empty to skip.
    api_role: str = "binance_api"
    raw_topic: str = RAW_TOPIC
    dlq_topic: str = DLQ_TOPIC
    # Partitions bound how many consumers can share the raw topic; retention how far back a
    # replay can go. Applied when a topic is created (an existing topic is left as it is).
    raw_partitions: int = Field(default=_SPECS[RAW_TOPIC].partitions, ge=1)
    raw_retention_ms: int = Field(default=_SPECS[RAW_TOPIC].retention_ms, ge=-1)
    dlq_partitions: int = Field(default=_SPECS[DLQ_TOPIC].partitions, ge=1)
    dlq_retention_ms: int = Field(default=_SPECS[DLQ_TOPIC].retention_ms, ge=-1)
    wait_timeout_s: float = 120.0
    log_level: str = "INFO"
