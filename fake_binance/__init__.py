"""A fake Binance Spot exchange (market data only) for tests and offline demos.

`python -m fake_binance` serves Binance's WebSocket streams and REST market-data endpoints
from a seeded random walk (or a recording), in Binance's exact wire format.
"""
