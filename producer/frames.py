"""Peeking into raw Binance frames without parsing them: the hot path reads two things only.

A combined-stream frame is `{"stream":"<name>","data":{...}}` with the stream first, so its name
is a prefix scan. Gap tracking needs the trade id (`t`) of trade payloads and the aggregate id
(`a`) of aggTrade payloads; both are integers written without spaces, found by a byte search.
Anything that does not look like that (error replies, truncated frames) yields '' or None and is
still published unchanged. Pure: no I/O.
"""

import orjson

_COMBINED_PREFIX = b'{"stream":"'
_PREFIX_LENGTH = len(_COMBINED_PREFIX)
SERVER_SHUTDOWN_STREAM = "!serverShutdown"

# Which payload field carries the consecutive id, by stream type.
TRACKED_ID_FIELDS: dict[str, bytes] = {"trade": b'"t":', "aggTrade": b'"a":'}


def stream_of(frame: bytes) -> str:
    """The stream name a combined frame carries, or '' when it has none (or is not JSON)."""
    if frame.startswith(_COMBINED_PREFIX):
        end = frame.find(b'"', _PREFIX_LENGTH)
        if end > 0:
            return frame[_PREFIX_LENGTH:end].decode(errors="replace")
        return ""
    # A raw (non-combined) serverShutdown payload; anything else without the wrapper has no stream.
    if frame.startswith(b'{"e":"serverShutdown"'):
        return SERVER_SHUTDOWN_STREAM
    return ""


def stream_type(stream: str) -> str:
    """'btcusdt@aggTrade' -> 'aggTrade'."""
    return stream.partition("@")[2]


def tracked_id(frame: bytes, field: bytes) -> int | None:
    """The integer after `field` (e.g. b'"t":') in the frame's data, or None if absent or malformed.

    The first occurrence after the wrapper is the payload's own field: in trade and aggTrade
    payloads no string value can contain `"t":` or `"a":` (symbols are [A-Z0-9], prices digits).
    """
    # A frame cut short (it happens on a broken wire) is unreadable downstream: its id does not count
    # as received, so the gap it leaves is backfilled.
    if not frame.endswith(b"}}"):
        return None
    start = frame.find(field, _PREFIX_LENGTH)
    if start < 0:
        return None
    start += len(field)
    # In trade and aggTrade payloads the id is never the last field: a ',' ends it.
    end = frame.find(b",", start)
    if end < 0:
        return None
    digits = frame[start:end]
    return int(digits) if digits.isdigit() else None


def record_id(record: object, field: str) -> int | None:
    """The id of a REST record (`id` of a trade, `a` of an aggTrade)."""
    if isinstance(record, dict):
        value = record.get(field)
        if isinstance(value, int):
            return value
    return None


def encode_record(record: object) -> bytes:
    """A REST record as compact JSON, keys in the order Binance sent them."""
    return orjson.dumps(record)
