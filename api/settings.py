"""API settings, read from API_* environment variables."""

from typing import Annotated, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="API_")

    # A role that can only read: the api never writes.
    database_url: str = "postgresql+psycopg2://binance_api@127.0.0.1:5432/binance"
    # Loopback by default; the container sets 0.0.0.0 so the published port reaches it.
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"

    # Connections: FastAPI runs sync routes on a 40-thread pool, so more connections than that
    # would only queue in PostgreSQL instead of here.
    db_pool_size: Annotated[int, Field(ge=1, le=40)] = 10
    db_max_overflow: Annotated[int, Field(ge=0, le=40)] = 10
    db_pool_timeout_s: Annotated[float, Field(gt=0)] = 5.0
    # Every statement is cut off after this: the time limit of one request's queries (CSV exports
    # have their own, below).
    statement_timeout_ms: Annotated[int, Field(ge=100)] = 5000
    # TLS to PostgreSQL (asyncpg's ssl modes). "prefer" uses it when the server offers it; on
    # loopback or a private network "disable" saves about 0.1 ms of CPU per query.
    db_ssl: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = "prefer"
    # PostgreSQL's plan_cache_mode for the api's prepared statements: the generic plan by default,
    # planned once per connection and pruning partitions when it runs (see api/app.py); "auto" is
    # PostgreSQL's own default, which re-plans over every partition for each execution.
    db_plan_cache_mode: Literal["force_generic_plan", "auto", "force_custom_plan"] = "force_generic_plan"

    # Request limits: GET requests carry their parameters in the query string and no body.
    max_query_string_bytes: Annotated[int, Field(ge=256)] = 4096
    # Requests in flight at once (live price streams included); beyond, a 503 with Retry-After.
    # Idle and slow-header connections do not count (api/metrics.py).
    limit_concurrency: Annotated[int, Field(ge=1)] = 200
    # Open connections per process; one more closes the longest-idle one (api/http_limits.py).
    # Each costs a file descriptor: keep it below the process's open-file limit.
    max_connections: Annotated[int, Field(ge=16)] = 4096
    # The request line and headers (431 beyond; api/http_limits.py), as nginx's and Node's 16 KiB.
    max_header_bytes: Annotated[int, Field(ge=1024)] = 16 * 1024
    # A request head must be complete this long after the connection opened, or after its first
    # byte (408 beyond): otherwise slow clients would hold their sockets for ever.
    header_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    # An idle keep-alive connection is closed after this long (uvicorn's timeout_keep_alive).
    keep_alive_timeout_s: Annotated[int, Field(ge=1)] = 5

    # Range limits, so that no single request scans without bound.
    candles_max_limit: Annotated[int, Field(ge=1000)] = 5000
    candles_max_rollup_rows: Annotated[int, Field(ge=10_000)] = 1_500_000
    # Whole minutes come from the 1-minute rollup (api/queries/stats.py): a year is 527,040 rows at
    # most, about 0.2 s, where 31 days of trades themselves could run past the statement timeout.
    stats_max_range_days: Annotated[float, Field(gt=0)] = 366.0
    export_max_range_days: Annotated[float, Field(gt=0)] = 31.0
    export_json_max_limit: Annotated[int, Field(ge=1000)] = 10_000
    # A CSV export is one COPY statement, timed as a whole: room for a month of a busy symbol.
    export_timeout_ms: Annotated[int, Field(ge=1000)] = 600_000
    # CSV exports streaming at once per process, each holding one database connection while it
    # streams: beyond, a 503 with Retry-After. Keep it well below db_pool_size + db_max_overflow,
    # so that the other questions still find connections.
    export_max_concurrent: Annotated[int, Field(ge=1)] = 4
    reconcile_max_range_s: Annotated[int, Field(ge=60)] = 6 * 3600

    # Processes serving requests (uvicorn workers, under a supervisor that restarts one that dies).
    # One process tops out at one core; each has its own database pool (db_pool_size +
    # db_max_overflow connections), limit_concurrency and live price poller and stream cap.
    workers: Annotated[int, Field(ge=1, le=64)] = 1
