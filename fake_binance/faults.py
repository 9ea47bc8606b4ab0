"""The fake's misbehaviours: what real Binance does on a bad day, switchable at start and at run time.

One `Faults` object is shared by the exchange (id gaps), the WebSocket side (drops, freezes,
truncated frames, oversized frames, error replies) and the REST side (forced 429/418, short
pages). Settings set the standing faults; the control endpoints under /fake/ on the REST port
(not Binance paths) trigger one-off ones and read the counters. Everything runs in the fake's one event loop.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from fake_binance.settings import FakeBinanceSettings

DROP_MODES = ("abrupt", "close", "shutdown")
TRUNCATE, GARBAGE = "truncate", "garbage"
MALFORMED_MODES = (TRUNCATE, GARBAGE)
_REQUEST_LOG_SIZE = 10_000


@dataclass(slots=True)
class RestRequest:
    """One REST request as the fake saw it: for tests to check what a client did, and when."""

    path: str
    query: str
    status: int
    at: float  # time.time() when answered


@dataclass(slots=True)
class Faults:
    # --- WebSocket ------------------------------------------------------------------------------
    # Trades (and aggregate trades) to leave out of the WebSocket streams, kept in REST history.
    skip_trades: int = 0
    skip_agg_trades: int = 0
    skip_every: int = 0  # standing: one trade and one aggTrade in every N
    # Trade-stream frames still to corrupt, and how.
    malformed: int = 0
    malformed_mode: str = TRUNCATE
    malformed_every: int = 0  # standing: one trade frame in every N
    # Trade-stream frames still to send padded to `oversize_bytes` (over a client's frame limit).
    oversize: int = 0
    oversize_every: int = 0  # standing: one trade frame in every N
    oversize_bytes: int = 2**21
    # --- REST -----------------------------------------------------------------------------------
    forced_status: int = 0  # 429 or 418
    forced_count: int = 0  # requests still to answer with it
    forced_retry_after_s: int = 1
    # Only requests to these paths are refused (empty: every path), e.g. the history endpoints
    # alone, so that a restarted producer's exchangeInfo passes and its gap backfill does not.
    forced_paths: frozenset[str] = frozenset()
    rest_429_every: int = 0  # standing: one request in every N answered 429
    page_cap: int = 0  # at most this many rows per page, whatever the limit asked (0: no cap)
    # --- counters -------------------------------------------------------------------------------
    trades_skipped: int = 0
    agg_trades_skipped: int = 0
    frames_corrupted: int = 0
    frames_oversized: int = 0
    trade_frames_seen: int = 0
    connections_dropped: int = 0
    errors_sent: int = 0
    rest_requests: deque[RestRequest] = field(default_factory=lambda: deque(maxlen=_REQUEST_LOG_SIZE))
    _rest_count: int = 0
    _trade_count: int = 0

    @classmethod
    def from_settings(cls, settings: FakeBinanceSettings) -> Faults:
        return cls(
            skip_every=settings.gap_every,
            malformed_every=settings.malformed_every,
            malformed_mode=settings.malformed_mode,
            oversize_every=settings.oversize_every,
            oversize_bytes=settings.oversize_bytes,
            rest_429_every=settings.rest_429_every,
            forced_retry_after_s=settings.rest_retry_after_s,
            page_cap=settings.rest_page_cap,
        )

    # --- id gaps --------------------------------------------------------------------------------

    def skip_trade(self) -> bool:
        """Whether the next trade is left out of the WebSocket (it stays in the REST history)."""
        self._trade_count += 1
        if self.skip_trades > 0:
            self.skip_trades -= 1
        elif not (self.skip_every and self._trade_count % self.skip_every == 0):
            return False
        self.trades_skipped += 1
        return True

    def skip_agg_trade(self, trades_skipped_in_fill: bool) -> bool:
        if self.skip_agg_trades > 0:
            self.skip_agg_trades -= 1
        elif not (self.skip_every and trades_skipped_in_fill):
            return False
        self.agg_trades_skipped += 1
        return True

    # --- frames ---------------------------------------------------------------------------------

    def corrupt(self, stream: str, text: str) -> list[str]:
        """What a connection sends instead of `text`: itself, a truncated copy, garbage then itself, or
        itself padded past a client's frame size limit."""
        if not stream.endswith("@trade"):
            return [text]
        self.trade_frames_seen += 1
        if self._oversize_due():
            return [self._padded(text)]
        if self.malformed > 0:
            self.malformed -= 1
        elif not (self.malformed_every and self.trade_frames_seen % self.malformed_every == 0):
            return [text]
        self.frames_corrupted += 1
        if self.malformed_mode == GARBAGE:
            return ['{"stream":"' + stream + '","data":{"e":"trade",\x7f', text]
        # Cut inside the trade id, so the frame cannot be read and its id is lost from the stream.
        start = text.find('"t":')
        if start < 0:
            return [text[: len(text) // 2]]
        start += 4
        end = start
        while end < len(text) and text[end].isdigit():
            end += 1
        return [text[: start + (end - start) // 2]]

    def _oversize_due(self) -> bool:
        if self.oversize > 0:
            self.oversize -= 1
        elif not (self.oversize_every and self.trade_frames_seen % self.oversize_every == 0):
            return False
        self.frames_oversized += 1
        return True

    def _padded(self, text: str) -> str:
        # Whitespace before the payload's closing brace: still valid JSON of the same trade, so only
        # its size can be refused, and a combined frame still ends in "}}".
        cut = 2 if text.endswith("}}") else 1
        return text[:-cut] + " " * max(0, self.oversize_bytes - len(text)) + text[-cut:]

    # --- REST -----------------------------------------------------------------------------------

    def rest_override(self, path: str = "") -> tuple[int, int] | None:
        """(status, Retry-After seconds) when this request is to be refused, else None."""
        self._rest_count += 1
        if self.forced_count > 0 and (not self.forced_paths or path in self.forced_paths):
            self.forced_count -= 1
            return self.forced_status, self.forced_retry_after_s
        if self.rest_429_every and self._rest_count % self.rest_429_every == 0:
            return 429, self.forced_retry_after_s
        return None

    def log_request(self, path: str, query: str, status: int) -> None:
        self.rest_requests.append(RestRequest(path, query, status, time.time()))

    def snapshot(self) -> dict[str, Any]:
        return {
            "trades_skipped": self.trades_skipped,
            "agg_trades_skipped": self.agg_trades_skipped,
            "frames_corrupted": self.frames_corrupted,
            "frames_oversized": self.frames_oversized,
            "connections_dropped": self.connections_dropped,
            "errors_sent": self.errors_sent,
            "rest_requests": [
                {"path": r.path, "query": r.query, "status": r.status, "at": r.at} for r in self.rest_requests
            ],
        }
