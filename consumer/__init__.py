"""Validates and cleans raw Binance messages and persists them to PostgreSQL, exactly once in effect."""
