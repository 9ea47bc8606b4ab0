"""Reads Binance WebSocket market streams and publishes every raw frame, unchanged, to Kafka."""
