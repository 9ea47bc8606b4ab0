"""Replay: the stored history served back over a WebSocket in Binance's own wire format."""
