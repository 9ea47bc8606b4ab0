"""The database schema, as SQLAlchemy Core tables. Alembic migrations in schemas/migrations/ create it."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

# Unconstrained NUMERIC keeps Binance's decimal strings exactly, trailing zeros included.
# Columns in alignment order in every time-series table (migration 0007): the 8-byte ones (ids,
# times, counts) first, then booleans, then the variable-width ones (text, numerics), which need
# no padding: a bigint or timestamptz after a text would pad to 8 bytes. Writers name their
# columns, so the order is only the disk's business.
trades = Table(
    "trades",
    metadata,
    Column("trade_id", BigInteger, nullable=False),
    Column("trade_time", DateTime(timezone=True), nullable=False),
    # When Binance emitted the event; REST backfill records carry none. The replay serves it.
    Column("event_time", DateTime(timezone=True), nullable=True),
    Column("buyer_is_maker", Boolean, nullable=False),
    Column("symbol", Text, nullable=False),
    Column("price", Numeric, nullable=False),
    Column("quantity", Numeric, nullable=False),
    # No ingested_at (8 bytes a row): when a symbol's trades were last stored is
    # stored_id_ranges.updated_at, which the consumer upserts with every batch anyway.
    # Binance trade ids are unique per symbol: this key is what makes redelivery harmless. It holds
    # the partition key too (PostgreSQL's rule for a partitioned table's unique keys), so it is
    # unique per partition only: consumer/sink.py keeps (symbol, trade_id) unique across them.
    PrimaryKeyConstraint("symbol", "trade_id", "trade_time", name="trades_pkey"),
    postgresql_partition_by="RANGE (trade_time)",
)

# No index on (symbol, trade_time): a time maps to trade ids through the 1-second rollup's
# primary key, and a second B-tree insert per trade is what the consumer can least afford.

# Aggregate trades (`<symbol>@aggTrade`, REST /api/v3/aggTrades): ids consecutive per symbol.
agg_trades = Table(
    "agg_trades",
    metadata,
    Column("agg_trade_id", BigInteger, nullable=False),
    Column("first_trade_id", BigInteger, nullable=False),
    Column("last_trade_id", BigInteger, nullable=False),
    Column("trade_time", DateTime(timezone=True), nullable=False),
    # REST records carry no event time.
    Column("event_time", DateTime(timezone=True), nullable=True),
    Column("buyer_is_maker", Boolean, nullable=False),
    Column("symbol", Text, nullable=False),
    Column("price", Numeric, nullable=False),
    Column("quantity", Numeric, nullable=False),
    PrimaryKeyConstraint("symbol", "agg_trade_id", "trade_time", name="agg_trades_pkey"),
    postgresql_partition_by="RANGE (trade_time)",
)
Index("agg_trades_symbol_trade_time_idx", agg_trades.c.symbol, agg_trades.c.trade_time)

# Klines as Binance sent them (WebSocket `<symbol>@kline_<interval>` or REST /api/v3/klines).
# One row per symbol, interval and open time: an open kline is updated until it closes.
klines = Table(
    "klines",
    metadata,
    Column("open_time", DateTime(timezone=True), nullable=False),
    Column("close_time", DateTime(timezone=True), nullable=False),
    Column("trade_count", BigInteger, nullable=False),
    Column("first_trade_id", BigInteger, nullable=True),
    Column("last_trade_id", BigInteger, nullable=True),
    Column("event_time", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("is_closed", Boolean, nullable=False),
    Column("symbol", Text, nullable=False),
    Column("interval", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("open", Numeric, nullable=False),
    Column("high", Numeric, nullable=False),
    Column("low", Numeric, nullable=False),
    Column("close", Numeric, nullable=False),
    Column("volume", Numeric, nullable=False),
    Column("quote_volume", Numeric, nullable=False),
    Column("taker_buy_base_volume", Numeric, nullable=False),
    Column("taker_buy_quote_volume", Numeric, nullable=False),
    PrimaryKeyConstraint("symbol", "interval", "open_time", name="klines_pkey"),
    postgresql_partition_by="RANGE (open_time)",
)

# Best bid and ask (`<symbol>@bookTicker`); the payload has no time, so the producer's receive time.
# Kafka keeps every update; the consumer stores one per symbol per CONSUMER_BOOK_TICKER_SAMPLE_MS.
book_tickers = Table(
    "book_tickers",
    metadata,
    Column("update_id", BigInteger, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("symbol", Text, nullable=False),
    Column("bid_price", Numeric, nullable=False),
    Column("bid_quantity", Numeric, nullable=False),
    Column("ask_price", Numeric, nullable=False),
    Column("ask_quantity", Numeric, nullable=False),
    PrimaryKeyConstraint("symbol", "received_at", "update_id", name="book_tickers_pkey"),
    postgresql_partition_by="RANGE (received_at)",
)

# Symbols as listed by GET /api/v3/exchangeInfo: what "known symbol" means to the consumer, and
# what the api's Binance-compatible exchangeInfo serves. `info` is the entry exactly as received.
symbols = Table(
    "symbols",
    metadata,
    Column("symbol", Text, primary_key=True),
    Column("status", Text, nullable=False),
    Column("base_asset", Text, nullable=False),
    Column("quote_asset", Text, nullable=False),
    Column("info", JSONB, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


def _trade_candles(name: str) -> Table:
    """Candles computed from stored trades, maintained by the consumer in the same transaction as
    the trades it inserts (only newly inserted trades count, so a replay adds nothing). Open and
    close are the prices of the first and last trade id in the bucket, so late or out-of-order
    batches merge correctly."""
    return Table(
        name,
        metadata,
        Column("open_time", DateTime(timezone=True), nullable=False),
        Column("trade_count", BigInteger, nullable=False),
        Column("first_trade_id", BigInteger, nullable=False),
        Column("last_trade_id", BigInteger, nullable=False),
        Column("symbol", Text, nullable=False),
        Column("open", Numeric, nullable=False),
        Column("high", Numeric, nullable=False),
        Column("low", Numeric, nullable=False),
        Column("close", Numeric, nullable=False),
        Column("volume", Numeric, nullable=False),
        Column("quote_volume", Numeric, nullable=False),
        Column("taker_buy_base_volume", Numeric, nullable=False),
        Column("taker_buy_quote_volume", Numeric, nullable=False),
        # Sum of the trade prices, for the mean price of a range without reading its trades.
        Column("price_sum", Numeric, nullable=False),
        PrimaryKeyConstraint("symbol", "open_time", name=f"{name}_pkey"),
        postgresql_partition_by="RANGE (open_time)",
    )


# 1-second and 1-minute rollups: every Binance interval is a grouping of one of them.
trade_candles_1s = _trade_candles("trade_candles_1s")
trade_candles_1m = _trade_candles("trade_candles_1m")

# One row per dead-lettered message, written in the same transaction as its batch and keyed by
# where it came from, so replays don't count it twice (the key holds the partition key, so the sink
# checks "where it came from" across partitions before inserting). The message itself (original bytes and
# headers) is in the DLQ topic; this is the index a person or the status page starts from.
dead_letters = Table(
    "dead_letters",
    metadata,
    Column("source_topic", Text, nullable=False),
    Column("source_partition", Integer, nullable=False),
    Column("source_offset", BigInteger, nullable=False),
    Column("reason", Text, nullable=False),
    Column("detail", Text, nullable=False),
    Column("stream", Text, nullable=True),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("source_topic", "source_partition", "source_offset", "recorded_at", name="dead_letters_pkey"),
    postgresql_partition_by="RANGE (recorded_at)",
)
Index("dead_letters_recorded_at_idx", dead_letters.c.recorded_at)

# Per symbol, the smallest and largest id stored of trades and of aggregate trades (`kind`). A batch
# whose ids all lie outside its symbols' ranges cannot repeat a stored id in any partition, so it
# takes the plain insert; one that overlaps is checked against every partition (consumer/sink.py).
# Ranges only widen: after retention drops a partition they still cover its ids, which only sends
# a re-sent old trade the careful way.
stored_id_ranges = Table(
    "stored_id_ranges",
    metadata,
    Column("kind", Text, nullable=False),
    Column("symbol", Text, nullable=False),
    Column("first_id", BigInteger, nullable=False),
    Column("last_id", BigInteger, nullable=False),
    # When the consumer last stored rows of this kind and symbol (set with every batch that does):
    # what /v1/status reports as a symbol's last ingestion.
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("kind", "symbol", name="stored_id_ranges_pkey"),
)

# What each time-partitioned table keeps, as the maintenance job (maintenance/) last applied it:
# the api answers a question about an older period with a 4xx naming `kept_since`.
storage_horizons = Table(
    "storage_horizons",
    metadata,
    Column("table_name", Text, primary_key=True),
    # Rows older than this are dropped (whole partitions): null while nothing was ever dropped.
    Column("kept_since", DateTime(timezone=True), nullable=True),
    Column("retention_days", Integer, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# How far each consumer group is behind, per partition, as the consumer last saw it.
consumer_lag = Table(
    "consumer_lag",
    metadata,
    Column("group_id", Text, nullable=False),
    Column("topic", Text, nullable=False),
    Column("partition", Integer, nullable=False),
    Column("next_offset", BigInteger, nullable=False),
    Column("high_watermark", BigInteger, nullable=False),
    Column("lag", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("group_id", "topic", "partition", name="consumer_lag_pkey"),
)

# Which periods of each stream the store holds complete (`held`) or knows it lacks (`hole`), from
# the coverage markers on the raw topic (schemas/coverage.py). The consumer keeps each stream's
# periods of one kind disjoint and merges the touching ones, and a held period removes what it
# covers of any hole, so the table holds a few rows per stream however many markers arrive. It
# does so through coverage_apply() (migration 0006), a union that gives the same rows in any order
# and for any replay: exactly once in effect.
coverage = Table(
    "coverage",
    metadata,
    Column("symbol", Text, nullable=False),
    # The stream type as in the stream name after "@": trade, aggTrade, bookTicker, kline_5m.
    Column("stream", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("start_time", DateTime(timezone=True), nullable=False),
    # Exclusive.
    Column("end_time", DateTime(timezone=True), nullable=False),
    # The Source value of the newest marker merged into the period (ws, rest, history, archive).
    Column("origin", Text, nullable=False),
    # Why, for a hole (the newest marker's words); empty for held.
    Column("detail", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("symbol", "stream", "kind", "start_time", name="coverage_pkey"),
    CheckConstraint("kind IN ('held', 'hole')", name="coverage_kind_check"),
    CheckConstraint("start_time < end_time", name="coverage_period_check"),
)
