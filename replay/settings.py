"""Replay settings, read from REPLAY_* environment variables."""

from typing import Annotated, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ReplaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REPLAY_")

    # The api's read-only role is enough: a replay only reads.
    database_url: str = "postgresql+psycopg2://binance_api@127.0.0.1:5432/binance"
    db_ssl: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = "prefer"
    # Loopback by default; the container sets 0.0.0.0 so the published port reaches it.
    host: str = "127.0.0.1"
    port: int = 9444
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9104
    log_level: str = "INFO"
    # Added to the process's nice value at start: on a box shared with the api, the kernel gives
    # the api's latest-price answers the CPU first, and replays at speed=0 what is left.
    nice: Annotated[int, Field(ge=0, le=19)] = 10

    # Replays at once; each holds one database connection for its whole life. Beyond, a new
    # connection is closed at once with 1013 (try again later).
    max_replays: Annotated[int, Field(ge=1, le=1000)] = 20
    # Rows a cursor fetches per round trip: memory per stream is this many rows, whatever the range.
    fetch_rows: Annotated[int, Field(ge=1, le=100_000)] = 2000
    # Bytes a client may leave unread (the socket's write buffer above the kernel's) before the
    # replay waits for it: backpressure, not memory growth.
    client_buffer_bytes: Annotated[int, Field(ge=1024)] = 1024 * 1024
    # A client that reads nothing for this long while the buffer is full is cut off (close 4001).
    client_stall_s: Annotated[float, Field(gt=0)] = 30.0
    # Between the last frame of a replay and its close: python-binance stops reading at a close
    # frame and drops the frames it had received but not yet taken (Binance itself never closes
    # at an end), so the close waits this long after the last frame.
    end_linger_s: Annotated[float, Field(ge=0)] = 1.0
    # How long a close handshake may take before the TCP connection is cut.
    close_timeout_s: Annotated[float, Field(gt=0)] = 5.0
    # Binance pings every 20 s and closes a connection whose pong is a minute late.
    ping_interval_s: Annotated[float, Field(gt=0)] = 20.0
    pong_timeout_s: Annotated[float, Field(gt=0)] = 60.0
    # live=true: how often the store is asked for rows newer than those sent.
    live_poll_s: Annotated[float, Field(gt=0)] = 0.5
    # How long after their time rows may still be stored (the pipeline's delay from Binance to
    # PostgreSQL): live=true with an end ends this long after it, and kline pushes, computed from
    # trades, trail the present by it.
    live_end_grace_s: Annotated[float, Field(ge=0)] = 5.0
    # Binance: at most 5 incoming messages a second and 1024 streams per connection.
    max_incoming_per_second: Annotated[int, Field(ge=1)] = 5
    max_streams: Annotated[int, Field(ge=1)] = 1024
    # The fastest replay asked for by speed=N (speed=0 is as fast as the client reads).
    max_speed: Annotated[float, Field(gt=0)] = 1_000_000.0
