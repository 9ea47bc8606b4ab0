"""Producer throughput: frames from a local WebSocket to Kafka, messages per second, one process.

    python bench/producer_throughput.py [--frames 300000] [--bootstrap 127.0.0.1:29092]

1. Baseline: the same frames produced straight to Kafka with confluent-kafka (same producer
   settings as the producer: idempotent, acks=all, lz4), no WebSocket, no headers, then flushed.
2. The producer: its real code path (producer.binance_ws.Shard -> Ingest -> RawPublisher: stream
   name, id extraction and gap tracking, headers, produce) reading the frames from a local
   WebSocket server, until every frame is confirmed by Kafka (flush included).

The server is another process that writes pre-encoded WebSocket frames straight to the socket,
so it costs next to nothing and the figure is the producer's. Prints one JSON line with both
rates and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import multiprocessing
import os
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from producer.app import Ingest
from producer.binance_ws import Shard
from producer.gaps import GapTracker
from producer.limits import AttemptBudget
from producer.publisher import RawPublisher
from producer.settings import ProducerSettings

SYMBOLS = ("BTCUSDT", "ETHUSDT")
_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def trade_frames(count: int) -> list[bytes]:
    """Combined trade frames as Binance sends them, ids consecutive per symbol."""
    frames = []
    for n in range(count):
        symbol = SYMBOLS[n % len(SYMBOLS)]
        trade_id = 4_000_000_000 + n // len(SYMBOLS)
        time_ms = 1_763_800_000_000 + n // 50
        payload = (
            f'{{"e":"trade","E":{time_ms},"s":"{symbol}","t":{trade_id},"p":"84517.28000000",'
            f'"q":"0.00120000","T":{time_ms},"m":{"true" if n % 3 else "false"},"M":true}}'
        )
        frames.append(f'{{"stream":"{symbol.lower()}@trade","data":{payload}}}'.encode())
    return frames


def ws_frame(payload: bytes) -> bytes:
    """An unmasked server-to-client text frame."""
    length = len(payload)
    if length < 126:
        header = bytes([0x81, length])
    elif length < 65536:
        header = bytes([0x81, 126]) + length.to_bytes(2, "big")
    else:
        header = bytes([0x81, 127]) + length.to_bytes(8, "big")
    return header + payload


def serve(port: int, count: int, ready: Any) -> None:
    """A minimal WebSocket server: handshake, then every frame in large writes."""
    blob = b"".join(ws_frame(frame) for frame in trade_frames(count))

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        key = next(
            line.split(b":", 1)[1].strip()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        accept = base64.b64encode(hashlib.sha1(key + _WS_GUID.encode()).digest())
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        for start in range(0, len(blob), 1 << 20):
            writer.write(blob[start : start + (1 << 20)])
            await writer.drain()
        with contextlib.suppress(Exception):
            await reader.read()  # keep the connection open until the client leaves

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def producer_config(bootstrap: str) -> dict[str, object]:
    # What RawPublisher sets, minus the callbacks.
    return {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "message.timeout.ms": 0,
        "queue.buffering.max.messages": 500_000,
        "linger.ms": 5,
        "compression.type": "lz4",
        "delivery.report.only.error": True,
    }


def baseline(bootstrap: str, topic: str, frames: list[bytes]) -> float:
    producer = Producer(producer_config(bootstrap))
    keys = {symbol.lower(): symbol.encode() for symbol in SYMBOLS}
    started = time.perf_counter()
    for index, frame in enumerate(frames):
        key = keys[frame[11:18].decode()]
        while True:
            try:
                producer.produce(topic, frame, key)
                break
            except BufferError:
                producer.poll(0.01)
        if index % 2000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0
    return len(frames) / (time.perf_counter() - started)


async def through_producer(bootstrap: str, topic: str, port: int, count: int) -> float:
    settings = ProducerSettings(
        ws_base_url=f"ws://127.0.0.1:{port}",
        symbols=list(SYMBOLS),
        stream_types=["trade"],
        kafka_bootstrap_servers=bootstrap,
        raw_topic=topic,
    )
    tracker = GapTracker(settings.gap_grace_s)
    publisher = RawPublisher(bootstrap, topic, settings.buffer_max_messages)
    ingest = Ingest(publisher, tracker, set(settings.stream_names()))
    publisher.on_lost = ingest.on_lost
    shard = Shard(0, settings.stream_names(), settings, ingest.on_frame, AttemptBudget(300), ingest.on_dropped)
    started = time.perf_counter()
    reading = asyncio.create_task(shard.run())
    while ingest.frames < count:
        await asyncio.sleep(0.01)
        if reading.done():
            reading.result()
    remaining = publisher.flush(60)
    elapsed = time.perf_counter() - started
    reading.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reading
    assert remaining == 0 and publisher.lost == 0 and publisher.failed == 0
    assert tracker.gaps_detected == 0, "the frames' ids are consecutive"
    return count / elapsed


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=3, help="each measured this many times; the median is kept")
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:29092"))
    args = parser.parse_args()

    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    topics = [f"binance.raw.bench.{uuid.uuid4().hex[:8]}" for _ in range(2 * args.rounds)]
    for future in admin.create_topics([NewTopic(name, 3, 1) for name in topics]).values():
        future.result(timeout=30)
    frames = trade_frames(args.frames)
    base_rates, producer_rates = [], []
    try:
        for round_ in range(args.rounds):
            base_rates.append(baseline(args.bootstrap, topics[2 * round_], frames))
            port = free_port()
            ready = multiprocessing.Event()
            server = multiprocessing.Process(target=serve, args=(port, args.frames, ready), daemon=True)
            server.start()
            ready.wait(60)
            try:
                producer_rates.append(
                    asyncio.run(through_producer(args.bootstrap, topics[2 * round_ + 1], port, args.frames))
                )
            finally:
                server.terminate()
                server.join()
    finally:
        admin.delete_topics(topics)
    base = sorted(base_rates)[len(base_rates) // 2]
    rate = sorted(producer_rates)[len(producer_rates) // 2]
    print(
        json.dumps(
            {
                "frames": args.frames,
                "rounds": args.rounds,
                "baseline_produce_msgs_per_s": round(base),
                "producer_ws_to_kafka_msgs_per_s": round(rate),
                "ratio": round(rate / base, 2),
                "all_baseline": [round(r) for r in base_rates],
                "all_producer": [round(r) for r in producer_rates],
                "cpus": os.cpu_count(),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
