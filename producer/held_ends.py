"""How far a REST answer vouches for a stream: a held marker never covers a record that is not final.

Pure: no I/O, no clock (the caller passes the moment the answer was received).

- Klines: Binance's answers include the kline still open, whose figures change until it closes.
  A kline is final once its close time (its last millisecond) is before the moment the answer was
  received, the same rule by which the consumer stores it as closed (consumer/parse.py). A held
  period of klines ends where the first kline still open starts.
- Trades and aggTrades: only a later record proves a period over. The newest trade Binance has
  may be followed by more in its own millisecond or after it, so without a record at or after the
  period's end the held period ends at the newest record's time (end exclusive), never at the
  wall clock's now.
"""

from collections.abc import Sequence
from typing import Any

# A REST kline: [open time, open, high, low, close, volume, close time, ...].
_OPEN, _CLOSE_TIME = 0, 6


def kline_closed(close_time: int, received_at: int) -> bool:
    """Both in the same unit (ms or us)."""
    return close_time < received_at


def first_open_kline(klines: Sequence[Sequence[Any]], received_ms: int) -> int | None:
    """The open time of the first kline of `klines` still open at `received_ms`, if any."""
    for kline in klines:
        if not kline_closed(int(kline[_CLOSE_TIME]), received_ms):
            return int(kline[_OPEN])
    return None


def klines_held_end(klines: Sequence[Sequence[Any]], end_ms: int, received_ms: int, interval_ms: int) -> int:
    """How far [.., end_ms) is held once `klines` (every kline opening in it) are published: up to
    the first kline still open; with none open in the answer, up to an interval before the moment
    of the answer (a kline opening later may still be open, and may have been left out)."""
    open_at = first_open_kline(klines, received_ms)
    return min(end_ms, received_ms - interval_ms if open_at is None else open_at)


def trades_held_end(newest_ms: int | None, end_ms: int, later_record_seen: bool) -> int | None:
    """How far [.., end_ms) is held once every trade up to the newest seen (at `newest_ms`) is
    published: end_ms if a record at or after it was seen, else the newest record's time; None
    when there was no record at all to prove anything."""
    if later_record_seen:
        return end_ms
    return None if newest_ms is None else min(newest_ms, end_ms)
