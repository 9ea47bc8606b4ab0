"""A consumed message's headers, read so that no header can crash the consumer."""

import operator
from collections.abc import Callable, Iterable, Iterator
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
# NULL crashes the process (or the error surfaces at some later call). Called from C (map,
# methodcaller), the result is always checked and the error raised, as one of these; the cached
# list is then never read again.
HEADER_ERRORS = (UnicodeDecodeError, SystemError)
_HEADERS = Message.headers


def each_headers(messages: Iterable[Message]) -> Iterator[Headers | None]:
    """The headers of each message, lazily; raises one of HEADER_ERRORS at an unreadable one (the
    iterator ends there). As cheap as calling headers() in a loop."""
    return map(_HEADERS, messages)  # type: ignore[arg-type]


read_headers: Callable[[Message], Headers | None] = operator.methodcaller("headers")
