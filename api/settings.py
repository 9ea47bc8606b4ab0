"""API settings, read from API_* environment variables."""

from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="API_")

    # A role that can only read: the api never writes.
    database_url: str = "postgresql+psycopg2://binance_api@127.0.0.1:5432/binance"
    # Loopback by default; the container sets 0.0.0.0 so the published port reaches it.
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
