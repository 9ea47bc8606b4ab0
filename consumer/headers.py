"""A consumed message's headers, read so that no header can crash the consumer."""

import operator
from collections.abc import Callable
from typing import Any

from confluent_kafka import Message

from consumer.dead_letters import Headers


def message_headers(pairs: list[tuple[str, Any]] | None) -> dict[str, bytes]:
    if not pairs:
        return {}
    # dict() of the (name, value) pairs runs in C: the hot path reads the headers of every message.
    # A consumed header's value is bytes, or None when it has none (str is only for producing).
    named: dict[str, Any] = dict(pairs)
    if None in named.values():  # a header without a value says nothing: as if it were absent
        return {name: value for name, value in named.items() if value is not None}
    return named


# confluent-kafka's Message.headers() on a header name that is not UTF-8 returns a list holding a
# NULL with the decoding error still set, and caches that list. Called as a plain method, hot code
# that CPython has specialised does not check for that error: the list comes back, and touching its
# NULL crashes the process. A call from C (methodcaller) always checks, so it raises instead; the
# cached list is never read again.
read_headers: Callable[[Message], Headers | None] = operator.methodcaller("headers")
