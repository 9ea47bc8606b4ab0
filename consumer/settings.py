"""Consumer settings, read from CONSUMER_* environment variables."""

from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.topics import DLQ_TOPIC, RAW_TOPIC


class ConsumerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONSUMER_")

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    raw_topic: str = RAW_TOPIC
    dlq_topic: str = DLQ_TOPIC
    group_id: str = "binance-consumer"
    # A member that stops heartbeating (kill -9, a lost host) keeps its partitions this long before
    # the group moves them: Kafka's 45 s default is a long stall of the whole pipeline, and
    # librdkafka heartbeats from its own thread, so a long batch write never delays a heartbeat.
    session_timeout_ms: int = 10_000
    database_url: str = "postgresql+psycopg2://binance@127.0.0.1:5432/binance"
    # Where exchangeInfo comes from: the list of known symbols.
    rest_base_url: str = "https://api.binance.com"
    # Reject messages whose symbol the exchange does not list (dead-lettered as unknown_symbol).
    check_symbols: bool = True
    # A message of a symbol not in the list reloads it at once, but reloads are at least this far apart.
    symbol_refresh_s: float = Field(default=10.0, ge=0)
    # A batch closes at this many messages or after this long, whichever comes first: large
    # batches for throughput under load, a short wait for latency when the stream is quiet.
    batch_max_messages: int = 5000
    # 10 ms: at 5,000 msg/s batches of ~50; the median latency to a committed row went 23-31 -> 17-19 ms.
    batch_max_wait_s: float = 0.01
    # Database connections writing a batch's partitions side by side (partition modulo writers),
    # so one's commit flush overlaps the other's work (docs/benchmarks.md: a few % to 14% more).
    # Rollup rows are per symbol and a symbol has one partition (its key), so they don't contend.
    writers: Annotated[int, Field(ge=1, le=8)] = 2
    # Reads whose batches may be queued or being written while the next is read and parsed. At 1
    # a writer idles from finishing one batch until the main thread hands it the next, which it
    # does only after parsing a whole read: a third of the time at full load (docs/benchmarks.md).
    batches_in_flight: Annotated[int, Field(ge=1, le=8)] = 2
    # bookTicker updates stored: the first of each symbol in each period of this many ms (0: every
    # update). Kafka keeps every update for the raw topic's retention; at the whole market's ~5,000
    # updates/s, one a second per symbol is what months in PostgreSQL can hold (README.md).
    book_ticker_sample_ms: Annotated[int, Field(ge=0, le=3_600_000)] = 1000
    # Run the partition maintenance pass (maintenance/, settings MAINTENANCE_*) in a thread of the
    # consumer. Consumers of one group take turns (an advisory lock): leave it on in each.
    maintenance: bool = True
    # Database retry backoff while PostgreSQL is unavailable.
    retry_min_s: float = 0.5
    retry_max_s: float = 15.0
    # How often the consumer records its lag per partition for the status page.
    lag_report_s: float = 5.0
    # Touched after every poll: the container health check reads its age (empty: no file).
    heartbeat_path: str = ""
    # /metrics and /health (consumer/metrics.py). Loopback by default; compose sets 0.0.0.0 so
    # Prometheus and the health check reach it.
    metrics_host: str = "127.0.0.1"
    metrics_port: Annotated[int, Field(ge=0, le=65535)] = 9102
    # How often librdkafka reports each partition's lag (the consumer_lag_messages metric); 0: never.
    statistics_interval_ms: Annotated[int, Field(ge=0)] = 5000
    # Unhealthy once messages wait and nothing has been committed for this long.
    health_max_commit_age_s: Annotated[float, Field(gt=0)] = 60.0
    log_level: str = "INFO"
