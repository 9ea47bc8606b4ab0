"""Which messages of a batch sent the rows that conflict with stored ones. Pure: no I/O.

A trade (or aggregate trade) re-sent with the same id and another price, quantity, time or side is
not stored: the first stored row stays, exactly once. But it is a data-quality event, so the
message that sent it is dead-lettered as conflicting_duplicate. The sink finds the conflicting
rows (only when a batch meets stored ids, see consumer/sink.py); this finds their messages by
parsing the batch again, which costs a few milliseconds on that rare path and nothing on the usual
one (the hot path keeps no message per row).
"""

from collections.abc import Container, Sequence
from decimal import Decimal
from typing import Any

from confluent_kafka import Message

from consumer.dead_letters import Rejected
from consumer.headers import message_headers, read_headers
from consumer.parse import AggTradeRow, Rejection, TradeRow, parse_message
from consumer.sink import Conflict

REASON = "conflicting_duplicate"


def _values(row: TradeRow | AggTradeRow) -> tuple[Any, ...]:
    """The row's values as the sink's conflict query returns them (see Conflict.sent)."""
    if isinstance(row, TradeRow):
        return (Decimal(row.price), Decimal(row.quantity), row.trade_time_us, row.buyer_is_maker)
    return (
        Decimal(row.price),
        Decimal(row.quantity),
        row.first_trade_id,
        row.last_trade_id,
        row.trade_time_us,
        row.buyer_is_maker,
    )


def _normalised(values: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(Decimal(value) if isinstance(value, str) else value for value in values)


def conflicting_messages(
    messages: Sequence[Message], conflicts: Sequence[Conflict], known_symbols: Container[str] | None = None
) -> list[Rejected]:
    """The messages among `messages` whose row is one of `conflicts`, as dead letters naming both."""
    wanted: dict[tuple[str, str, int], dict[tuple[Any, ...], Conflict]] = {}
    for conflict in conflicts:
        key = (conflict.table, conflict.symbol, conflict.row_id)
        wanted.setdefault(key, {})[_normalised(conflict.sent)] = conflict
    found = []
    for message in messages:
        try:
            pairs = read_headers(message)
        except Exception:  # unreadable headers: dead-lettered already, never a row
            continue
        row = parse_message(message.value(), message_headers(pairs), known_symbols)
        if isinstance(row, TradeRow):
            key = ("trades", row.symbol, row.trade_id)
        elif isinstance(row, AggTradeRow):
            key = ("agg_trades", row.symbol, row.agg_trade_id)
        else:
            continue
        match = wanted.get(key, {}).get(_values(row))
        if match is not None:
            found.append(_rejected(message, pairs, match))
    return found


def _rejected(message: Message, pairs: Any, conflict: Conflict) -> Rejected:
    kind = "trade" if conflict.table == "trades" else "aggregate trade"
    detail = (
        f"{kind} {conflict.row_id} of {conflict.symbol} is stored with {_describe(conflict.stored)};"
        f" this message sent {_describe(conflict.sent)}; the stored one stays"
    )
    return Rejected(
        message.topic() or "",
        message.partition() or 0,
        message.offset() or 0,
        message.value(),
        message.key(),
        pairs,
        Rejection(REASON, detail),
    )


def _describe(values: Sequence[Any]) -> str:
    names: tuple[str, ...] = ("price", "quantity", "time_us", "buyer_is_maker")
    if len(values) == 6:
        names = ("price", "quantity", "first trade id", "last trade id", "time_us", "buyer_is_maker")
    return ", ".join(f"{name} {value}" for name, value in zip(names, values, strict=True))
