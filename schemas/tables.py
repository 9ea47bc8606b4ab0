"""The database schema, as SQLAlchemy Core tables. Alembic migrations in schemas/migrations/ create it."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
)

metadata = MetaData()

# Unconstrained NUMERIC keeps Binance's decimal strings exactly, trailing zeros included.
trades = Table(
    "trades",
    metadata,
    Column("symbol", Text, nullable=False),
    Column("trade_id", BigInteger, nullable=False),
    Column("price", Numeric, nullable=False),
    Column("quantity", Numeric, nullable=False),
    Column("trade_time", DateTime(timezone=True), nullable=False),
    Column("buyer_is_maker", Boolean, nullable=False),
    Column("event_time", DateTime(timezone=True), nullable=False),
    Column("ingested_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Binance trade ids are unique per symbol: this key is what makes redelivery harmless.
    PrimaryKeyConstraint("symbol", "trade_id", name="trades_pkey"),
)

# "Latest price" and "price at a second" walk this index backwards from a time.
Index("trades_symbol_trade_time_idx", trades.c.symbol, trades.c.trade_time)
