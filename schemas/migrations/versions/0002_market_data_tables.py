"""Market data beyond trades: agg_trades, klines, book_tickers, symbols, and the trade candle rollups.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 02:02:43.332843
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "agg_trades",
        sa.Column("symbol", sa.Text(), nullable=False),
        sa.Column("agg_trade_id", sa.BigInteger(), nullable=False),
        sa.Column("price", sa.Numeric(), nullable=False),
        sa.Column("quantity", sa.Numeric(), nullable=False),
        sa.Column("first_trade_id", sa.BigInteger(), nullable=False),
        sa.Column("last_trade_id", sa.BigInteger(), nullable=False),
        sa.Column("trade_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("buyer_is_maker", sa.Boolean(), nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ingested_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("symbol", "agg_trade_id", name="agg_trades_pkey"),
    )
    op.create_index("agg_trades_symbol_trade_time_idx", "agg_trades", ["symbol", "trade_time"], unique=False)
    op.create_table(
        "book_tickers",
        sa.Column("symbol", sa.Text(), nullable=False),
        sa.Column("update_id", sa.BigInteger(), nullable=False),
        sa.Column("bid_price", sa.Numeric(), nullable=False),
        sa.Column("bid_quantity", sa.Numeric(), nullable=False),
        sa.Column("ask_price", sa.Numeric(), nullable=False),
        sa.Column("ask_quantity", sa.Numeric(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("symbol", "update_id", name="book_tickers_pkey"),
    )
    op.create_table(
        "klines",
        sa.Column("symbol", sa.Text(), nullable=False),
        sa.Column("interval", sa.Text(), nullable=False),
        sa.Column("open_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("close_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("open", sa.Numeric(), nullable=False),
        sa.Column("high", sa.Numeric(), nullable=False),
        sa.Column("low", sa.Numeric(), nullable=False),
        sa.Column("close", sa.Numeric(), nullable=False),
        sa.Column("volume", sa.Numeric(), nullable=False),
        sa.Column("quote_volume", sa.Numeric(), nullable=False),
        sa.Column("trade_count", sa.BigInteger(), nullable=False),
        sa.Column("taker_buy_base_volume", sa.Numeric(), nullable=False),
        sa.Column("taker_buy_quote_volume", sa.Numeric(), nullable=False),
        sa.Column("first_trade_id", sa.BigInteger(), nullable=True),
        sa.Column("last_trade_id", sa.BigInteger(), nullable=True),
        sa.Column("is_closed", sa.Boolean(), nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("symbol", "interval", "open_time", name="klines_pkey"),
    )
    op.create_table(
        "symbols",
        sa.Column("symbol", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("base_asset", sa.Text(), nullable=False),
        sa.Column("quote_asset", sa.Text(), nullable=False),
        sa.Column("info", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("symbol"),
    )
    op.create_table(
        "trade_candles_1m",
        sa.Column("symbol", sa.Text(), nullable=False),
        sa.Column("open_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("open", sa.Numeric(), nullable=False),
        sa.Column("high", sa.Numeric(), nullable=False),
        sa.Column("low", sa.Numeric(), nullable=False),
        sa.Column("close", sa.Numeric(), nullable=False),
        sa.Column("volume", sa.Numeric(), nullable=False),
        sa.Column("quote_volume", sa.Numeric(), nullable=False),
        sa.Column("trade_count", sa.BigInteger(), nullable=False),
        sa.Column("taker_buy_base_volume", sa.Numeric(), nullable=False),
        sa.Column("taker_buy_quote_volume", sa.Numeric(), nullable=False),
        sa.Column("first_trade_id", sa.BigInteger(), nullable=False),
        sa.Column("last_trade_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("symbol", "open_time", name="trade_candles_1m_pkey"),
    )
    op.create_table(
        "trade_candles_1s",
        sa.Column("symbol", sa.Text(), nullable=False),
        sa.Column("open_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("open", sa.Numeric(), nullable=False),
        sa.Column("high", sa.Numeric(), nullable=False),
        sa.Column("low", sa.Numeric(), nullable=False),
        sa.Column("close", sa.Numeric(), nullable=False),
        sa.Column("volume", sa.Numeric(), nullable=False),
        sa.Column("quote_volume", sa.Numeric(), nullable=False),
        sa.Column("trade_count", sa.BigInteger(), nullable=False),
        sa.Column("taker_buy_base_volume", sa.Numeric(), nullable=False),
        sa.Column("taker_buy_quote_volume", sa.Numeric(), nullable=False),
        sa.Column("first_trade_id", sa.BigInteger(), nullable=False),
        sa.Column("last_trade_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("symbol", "open_time", name="trade_candles_1s_pkey"),
    )


def downgrade() -> None:

    op.drop_table("trade_candles_1s")
    op.drop_table("trade_candles_1m")
    op.drop_table("symbols")
    op.drop_table("klines")
    op.drop_table("book_tickers")
    op.drop_index("agg_trades_symbol_trade_time_idx", table_name="agg_trades")
    op.drop_table("agg_trades")
