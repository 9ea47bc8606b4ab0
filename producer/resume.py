"""Where a restarted producer stopped: each stream's last held coverage marker on the raw topic.

The raw topic is the producer's own record of what it published, and the only one it can read
(the store is the consumer's, and the producer has no database access). Its live held markers say
up to when (end_ms) and, for trades and aggTrades, up to which id (last_id) every record was
published; whatever came after (the ids still missing when it stopped, the time it was down) is
refetched from there. Each partition is read backwards in growing windows from its end until
every stream has its marker, the partition's start is reached or `max_messages` were read.
"""

import logging
import time
import uuid
from collections.abc import Iterable, Mapping

from confluent_kafka import Consumer, TopicPartition

from schemas.coverage import CoverageKind, CoverageMarker, decode_marker
from schemas.topics import Header, Source

log = logging.getLogger(__name__)

_FIRST_WINDOW = 10_000
_COVERAGE = Source.COVERAGE.encode()


def last_held_markers(
    bootstrap_servers: str, topic: str, streams: Iterable[str], max_messages: int, timeout_s: float = 10.0
) -> dict[str, CoverageMarker]:
    """stream -> its newest held marker from live capture, for the streams that have one."""
    wanted = set(streams)
    found: dict[str, CoverageMarker] = {}
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            # Only assign() and reads: nothing is ever committed under this throwaway group.
            "group.id": f"producer-resume-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=timeout_s).topics[topic].partitions
        for partition in sorted(partitions):
            _scan_partition(consumer, TopicPartition(topic, partition), wanted, found, max_messages, timeout_s)
            if wanted <= found.keys():
                break
    finally:
        consumer.close()
    return found


def _scan_partition(
    consumer: Consumer,
    partition: TopicPartition,
    wanted: set[str],
    found: dict[str, CoverageMarker],
    max_messages: int,
    timeout_s: float,
) -> None:
    low, high = consumer.get_watermark_offsets(partition, timeout=timeout_s)
    end, window, scanned = high, _FIRST_WINDOW, 0
    while end > low and scanned < max_messages and not wanted <= found.keys():
        start = max(low, end - window, end - (max_messages - scanned))
        newest = _read_window(consumer, partition, start, end, wanted - found.keys(), timeout_s)
        found.update(newest)
        scanned += end - start
        end, window = start, window * 2


def _read_window(
    consumer: Consumer, partition: TopicPartition, start: int, end: int, wanted: set[str], timeout_s: float
) -> dict[str, CoverageMarker]:
    """The last held marker of each wanted stream among offsets [start, end)."""
    newest: dict[str, CoverageMarker] = {}
    consumer.assign([TopicPartition(partition.topic, partition.partition, start)])
    deadline = time.monotonic() + timeout_s * 6
    offset = start
    while offset < end - 1 and time.monotonic() < deadline:
        for message in consumer.consume(num_messages=1000, timeout=1.0):
            if message.error() is not None:
                continue
            offset = max(offset, message.offset() or 0)
            if offset >= end:
                break
            marker = _held_marker(message.headers() or [], message.value(), wanted)
            if marker is not None:
                newest[marker[0]] = marker[1]
    return newest


def _held_marker(
    headers: Mapping[str, str | bytes | None] | list[tuple[str, str | bytes | None]],
    value: bytes | None,
    wanted: set[str],
) -> tuple[str, CoverageMarker] | None:
    named = dict(headers)
    if named.get(Header.SOURCE) != _COVERAGE or not value:
        return None
    raw_stream = named.get(Header.STREAM) or b""
    stream = raw_stream.decode(errors="replace") if isinstance(raw_stream, bytes) else raw_stream
    if stream not in wanted:
        return None
    try:
        marker = decode_marker(value)
    except ValueError:
        return None
    if marker.kind is not CoverageKind.HELD or marker.origin != Source.WS:
        return None
    return stream, marker
