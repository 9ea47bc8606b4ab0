"""Produces one record with exactly the bytes given, header names included, over Kafka's own protocol.

confluent-kafka (like every client) takes header names as text and encodes them as UTF-8, so it
can't write a name that is not valid UTF-8; the broker stores whatever bytes arrive, and other
producers do send them. This writes a Produce request (v7, a v2 record batch, no compression) on a
plain socket to a single-broker cluster, the way the protocol documents it.
"""

import socket
import struct
import time
from collections.abc import Sequence


def _crc32c_table() -> list[int]:
    table = []
    for index in range(256):
        crc = index
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC32C = _crc32c_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def varint(value: int) -> bytes:
    zigzag = (value << 1) ^ (value >> 63)
    out = bytearray()
    while True:
        low, zigzag = zigzag & 0x7F, zigzag >> 7
        if zigzag:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _sized(data: bytes | None) -> bytes:
    return varint(-1) if data is None else varint(len(data)) + data


def record_batch(value: bytes | None, key: bytes | None, headers: Sequence[tuple[bytes, bytes | None]]) -> bytes:
    record = b"\x00" + varint(0) + varint(0) + _sized(key) + _sized(value) + varint(len(headers))
    record += b"".join(_sized(name) + _sized(data) for name, data in headers)
    now_ms = int(time.time() * 1000)
    # attributes, lastOffsetDelta, first and max timestamp, producer id, epoch, base sequence, count
    after_crc = struct.pack(">hiqqqhii", 0, 0, now_ms, now_ms, -1, -1, -1, 1) + varint(len(record)) + record
    # partitionLeaderEpoch, magic, crc (of everything after it)
    body = struct.pack(">ibI", -1, 2, crc32c(after_crc)) + after_crc
    return struct.pack(">qi", 0, len(body)) + body


def _string(text: str) -> bytes:
    return struct.pack(">h", len(text)) + text.encode()


def produce_raw(
    bootstrap: str,
    topic: str,
    partition: int,
    value: bytes | None,
    key: bytes | None = None,
    headers: Sequence[tuple[bytes, bytes | None]] = (),
) -> None:
    """Appends the record to `topic`/`partition` (acks=all); raises unless the broker accepts it."""
    batch = record_batch(value, key, headers)
    request = struct.pack(">hhi", 0, 7, 1) + _string("raw-records")  # Produce v7, correlation id 1
    request += struct.pack(">hhii", -1, -1, 10_000, 1) + _string(topic)  # no transaction, acks, timeout
    request += struct.pack(">iii", 1, partition, len(batch)) + batch
    host, port = bootstrap.split(",")[0].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=15) as connection:
        connection.sendall(struct.pack(">i", len(request)) + request)
        size = struct.unpack(">i", _read(connection, 4))[0]
        response = _read(connection, size)
    # correlation id, topics count, topic name, partitions count, partition index, error code
    name_length = struct.unpack(">h", response[8:10])[0]
    error_at = 10 + name_length + 4 + 4
    error = struct.unpack(">h", response[error_at : error_at + 2])[0]
    if error != 0:
        raise RuntimeError(f"the broker refused the record: Kafka error code {error}")


def _read(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the broker closed the connection")
        data += chunk
    return data
