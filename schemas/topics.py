"""Kafka topics, their keys and headers: the contract between producer and consumer.

The producer publishes each WebSocket frame byte for byte to RAW_TOPIC; the consumer
turns what it can into rows and sends the rest, unchanged, to DLQ_TOPIC.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass

RAW_TOPIC = "binance.raw"
DLQ_TOPIC = "binance.raw.dlq"


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    retention_ms: int


_DAY_MS = 24 * 60 * 60 * 1000

# Keys are the upper-case symbol, so one symbol's messages stay on one partition and in order.
# Partitions bound how many consumer processes share the load. Twelve for the whole spot market
# (~1,600 symbol keys hash evenly over them): its bursts (20x the ~1,000 trades/s, with aggTrades,
# bookTickers and klines beside) are more than one process's rollup writes keep up with, and 12
# splits evenly over 1, 2, 3, 4, 6 or 12 processes on one box or several; a partition costs the
# broker little at this size. The DLQ is small and kept longer because a person has to look at it.
TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(RAW_TOPIC, partitions=12, retention_ms=7 * _DAY_MS),
    TopicSpec(DLQ_TOPIC, partitions=1, retention_ms=30 * _DAY_MS),
)


class Header:
    """Names of the Kafka headers. Values are UTF-8 strings."""

    # Set by the producer on every raw message.
    STREAM = "stream"  # Binance stream name, e.g. "btcusdt@trade"
    SOURCE = "source"  # "ws" or "rest"
    RECEIVED_AT_NS = "received_at_ns"  # producer wall clock at receipt (received_at_ns()), UTC
    CONNECTION_ID = "connection_id"  # which WebSocket connection (or REST request) delivered it
    # "MICROSECOND" when the frame's times are in microseconds (Binance's timeUnit=MICROSECOND);
    # absent or "MILLISECOND" otherwise.
    TIME_UNIT = "time_unit"

    # Set by the consumer on every dead-lettered message, beside the original headers.
    DLQ_REASON = "dlq_reason"  # short machine-readable code, e.g. "non_positive_price"
    DLQ_DETAIL = "dlq_detail"  # human-readable explanation
    DLQ_SOURCE_TOPIC = "dlq_source_topic"
    DLQ_SOURCE_PARTITION = "dlq_source_partition"
    DLQ_SOURCE_OFFSET = "dlq_source_offset"
    # Only on a dead letter whose value was cut short to fit Kafka's size limit: the original's
    # length in bytes (the original itself stays in the source topic, at the offset above).
    DLQ_TRUNCATED_FROM = "dlq_truncated_from"
    # Only on a dead letter that had to drop original headers to fit (or whose headers the client
    # could not read): how many of them, in words.
    DLQ_HEADERS_CUT = "dlq_headers_cut"
    # Only on a dead letter whose key was cut short to fit: the original key's length in bytes.
    DLQ_KEY_CUT_FROM = "dlq_key_cut_from"


class Source:
    """Where a raw message came from.

    ws: the value is a WebSocket frame exactly as received (a combined-stream wrapper).
    rest: the value is one record of a REST backfill response, compact JSON of the element as
    Binance returned it (a /api/v3/historicalTrades or /api/v3/trades object, an
    /api/v3/aggTrades object, or an /api/v3/klines array); the stream header names what it is,
    e.g. "btcusdt@trade", "btcusdt@aggTrade", "btcusdt@kline_1m".
    """

    WS = "ws"
    REST = "rest"
    # Records of a `python -m producer history` import. history: a REST record, laid out as for
    # rest. archive: one CSV row of a data.binance.vision file, its bytes unchanged (no line end);
    # the stream header names what it is and time_unit says whether its times are microseconds.
    HISTORY = "history"
    ARCHIVE = "archive"
    # Not market data: a coverage marker (schemas/coverage.py) saying which period of the stream
    # in the stream header the store now holds complete, or knows it lacks.
    COVERAGE = "coverage"


def message_key(symbol: str) -> bytes:
    """The Kafka key for a symbol's messages."""
    return symbol.upper().encode()


def symbol_from_stream(stream: str) -> str:
    """'btcusdt@trade' -> 'BTCUSDT'. Binance stream names are the lower-case symbol, '@', the type."""
    return stream.split("@", 1)[0].upper()


# The RECEIVED_AT_NS header of bytes that arrived just now: the producer's wall clock in ns since
# the Unix epoch (UTC), read as a WebSocket frame is read or a REST answer returns, before anything
# else (publishing, waiting for Kafka or for the event loop) can delay it. The clock itself, not a
# wrapper: the WebSocket read loop calls it once per frame.
received_at_ns: Callable[[], int] = time.time_ns
