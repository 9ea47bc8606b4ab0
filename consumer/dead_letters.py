"""Dead letters: the record sent to the DLQ topic and the row the dead_letters table keeps. Pure.

A rejected message may hold anything Kafka accepts: any bytes in its value, key and header values,
a header name that is not UTF-8, headers that alone fill Kafka's size limit. Its dead letter must
still be produced and its row stored, or its offset is never committed and the consumer retries
it forever. So the DLQ record is cut to fit Kafka's limit (value first, then the original headers,
then the key), each cut named by a header; the original stays whole in the raw topic, at the
offset the record names. The table row is made storable as PostgreSQL text (no NUL, valid UTF-8,
bounded length), and its detail says what was escaped or cut.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from consumer.parse import Rejection
from schemas.topics import Header

# Kafka's default size limit of a message (librdkafka's message.max.bytes; the broker allows a
# little more), less room for the record's own framing.
DLQ_MAX_MESSAGE_BYTES = 1_000_000 - 1024
# What a header costs beyond its name and value: a record's header count and lengths are varints.
HEADER_OVERHEAD_BYTES = 12
# Room kept for the headers that say what was cut.
_CUT_NOTES_BYTES = 256
# A key kept in the smallest form of a dead letter (after the full one could not be produced).
MINIMAL_KEY_BYTES = 256
# The table is an index for people and the status page: long texts are cut (the DLQ has them whole).
MAX_STREAM_CHARS = 512
MAX_DETAIL_CHARS = 2000

UNREADABLE_HEADERS = "unreadable (a header name is not valid UTF-8)"

# As confluent-kafka types them: a consumed header's value is bytes or None, str only when produced.
Headers = list[tuple[str, str | bytes | None]]


class DeadLetterRow(NamedTuple):
    source_topic: str
    source_partition: int
    source_offset: int
    reason: str
    detail: str
    stream: str | None


class DlqRecord(NamedTuple):
    value: bytes | None
    key: bytes | None
    headers: Headers


@dataclass(frozen=True, slots=True)
class Rejected:
    """A rejected message and why. `headers` is None when the client could not read them."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    key: bytes | None
    headers: Headers | None
    rejection: Rejection

    def row(self) -> DeadLetterRow:
        return dead_letter_row(self)

    def record(self) -> DlqRecord:
        """The DLQ record: the original, with the reason headers, cut to fit Kafka's limit."""
        return fit_dead_letter(self.value, self.key, self.headers, self._reason_headers())

    def minimal_record(self) -> DlqRecord:
        """The smallest dead letter: no original value or headers, the key cut short. For when
        Kafka refused the full one; the reason headers still lead to the original."""
        headers = self._reason_headers()
        if self.value:
            headers.append((Header.DLQ_TRUNCATED_FROM, str(len(self.value)).encode()))
        headers.append((Header.DLQ_HEADERS_CUT, _headers_note(self.headers, kept=0)))
        key = self.key
        if key is not None and len(key) > MINIMAL_KEY_BYTES:
            headers.append((Header.DLQ_KEY_CUT_FROM, str(len(key)).encode()))
            key = key[:MINIMAL_KEY_BYTES]
        return DlqRecord(None, key, headers)

    def _reason_headers(self) -> Headers:
        detail, _ = storable_text(self.rejection.detail, MAX_DETAIL_CHARS)
        return [
            (Header.DLQ_REASON, self.rejection.reason.encode()),
            (Header.DLQ_DETAIL, detail.encode()),
            (Header.DLQ_SOURCE_TOPIC, self.topic.encode()),
            (Header.DLQ_SOURCE_PARTITION, str(self.partition).encode()),
            (Header.DLQ_SOURCE_OFFSET, str(self.offset).encode()),
        ]


def headers_size(headers: Sequence[tuple[str, str | bytes | None]]) -> int:
    return sum(len(name.encode()) + len(_as_bytes(data)) + HEADER_OVERHEAD_BYTES for name, data in headers)


def _as_bytes(data: str | bytes | None) -> bytes:
    return data.encode() if isinstance(data, str) else data or b""


def fit_dead_letter(
    value: bytes | None, key: bytes | None, original_headers: Headers | None, reason_headers: Headers
) -> DlqRecord:
    """The original's value, key and headers behind the reason headers, cut short in that order
    if the whole would exceed Kafka's size limit (a message as large as Kafka allows, plus the
    dlq_* headers, would not fit: produce() would refuse it)."""
    originals = list(original_headers or [])
    notes: Headers = []
    if original_headers is None:
        notes.append((Header.DLQ_HEADERS_CUT, UNREADABLE_HEADERS.encode()))
    budget = DLQ_MAX_MESSAGE_BYTES - headers_size(reason_headers) - _CUT_NOTES_BYTES
    excess = len(value or b"") + len(key or b"") + headers_size(originals) - budget
    if excess > 0 and value:
        kept = max(0, len(value) - excess)
        notes.append((Header.DLQ_TRUNCATED_FROM, str(len(value)).encode()))
        excess -= len(value) - kept
        value = value[:kept]
    if excess > 0 and originals:
        sizes = [headers_size(originals[index : index + 1]) for index in range(len(originals))]
        dropped = set()
        # The largest go first, so as many as possible of the small, telling ones stay.
        for index in sorted(range(len(originals)), key=sizes.__getitem__, reverse=True):
            if excess <= 0:
                break
            excess -= sizes[index]
            dropped.add(index)
        originals = [header for index, header in enumerate(originals) if index not in dropped]
        notes.append((Header.DLQ_HEADERS_CUT, _headers_note(original_headers, kept=len(originals))))
    if excess > 0 and key:
        notes.append((Header.DLQ_KEY_CUT_FROM, str(len(key)).encode()))
        key = key[: max(0, len(key) - excess)]
    return DlqRecord(value, key, [*originals, *reason_headers, *notes])


def _headers_note(headers: Headers | None, kept: int) -> bytes:
    if headers is None:
        return UNREADABLE_HEADERS.encode()
    return f"{len(headers) - kept} of {len(headers)} original headers dropped".encode()


def storable_text(text: str, max_chars: int) -> tuple[str, list[str]]:
    """`text` as PostgreSQL text can hold it, and what was done to it: NUL (which text can't
    hold) and anything not encodable as UTF-8 (a lone surrogate) escaped, then cut to `max_chars`."""
    notes = []
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
        notes.append("NUL escaped as \\x00")
    try:
        text.encode()
    except UnicodeEncodeError:
        text = text.encode(errors="backslashreplace").decode()
        notes.append("characters that are not UTF-8 escaped as \\u")
    if len(text) > max_chars:
        notes.append(f"cut from {len(text)} characters")
        text = text[:max_chars]
    return text, notes


def dead_letter_row(rejected: Rejected) -> DeadLetterRow:
    """The dead_letters row: where the message is, why it was rejected, its stream header; every
    text storable, and the detail naming what was escaped or cut."""
    stream = None
    notes: list[str] = []
    if rejected.headers:
        raw_stream = next((data for name, data in rejected.headers if name == Header.STREAM and data), None)
        if raw_stream is not None:
            # Bytes that are not UTF-8 shown as \xNN escapes, not replaced: the stream is evidence.
            text = _as_bytes(raw_stream).decode(errors="backslashreplace")
            stream, stream_notes = storable_text(text, MAX_STREAM_CHARS)
            notes += [f"stream header {note}" for note in stream_notes]
    detail, detail_notes = storable_text(rejected.rejection.detail, MAX_DETAIL_CHARS)
    notes += [f"detail {note}" for note in detail_notes]
    if notes:
        detail = f"{detail} ({'; '.join(notes)})"
    return DeadLetterRow(rejected.topic, rejected.partition, rejected.offset, rejected.rejection.reason, detail, stream)
