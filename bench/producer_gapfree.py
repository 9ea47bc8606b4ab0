"""Gap-free proof: the producer against the fake exchange for minutes, with forced disconnects
every 30 s and one 24 h-style rollover; then every trade id and aggregate id must be in Kafka.

    python bench/producer_gapfree.py [--duration-s 600] [--bootstrap 127.0.0.1:29092]

The fake (`python -m fake_binance`) and the producer (`python -m producer`) run as processes, as
in production. The fake drops every connection every `--drop-every-s` (abruptly, then with a close
frame, then with serverShutdown, in turn), except in one quiet window in the middle where the
producer's connection reaches its maximum age and is rolled over (the fake's own connection
lifetime, Binance's 24 h shortened, is a little longer than that age). Trade and aggregate ids
start at 1 and are consecutive, so the fake's last ids are the ground truth. Prints one JSON
summary; exit 1 if any id is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

REPO = Path(__file__).resolve().parent.parent
SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except Exception:
            pass
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def read_topic(bootstrap: str, topic: str) -> dict[tuple[str, str], dict[str, set[int]]]:
    """(symbol, 'trade'|'aggTrade') -> {'ws': ids, 'rest': ids}, read to the end of the topic."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex[:6]}"})
    partitions = [TopicPartition(topic, p, 0) for p in range(3)]
    ends = {p.partition: consumer.get_watermark_offsets(p, timeout=10)[1] for p in partitions}
    consumer.assign(partitions)
    found: dict[tuple[str, str], dict[str, set[int]]] = {}
    positions = dict.fromkeys(ends, 0)
    deadline = time.monotonic() + 300
    while any(positions[p] < ends[p] for p in ends) and time.monotonic() < deadline:
        for message in consumer.consume(num_messages=10_000, timeout=1.0):
            if message.error() is not None:
                continue
            positions[message.partition() or 0] = (message.offset() or 0) + 1
            raw = message.headers() or []
            pairs = raw.items() if isinstance(raw, dict) else raw
            headers = {key: value.decode() if isinstance(value, bytes) else "" for key, value in pairs}
            stream = headers.get("stream", "")
            symbol, _, kind = stream.partition("@")
            if kind not in ("trade", "aggTrade"):
                continue
            try:
                body = orjson.loads(message.value() or b"")
            except orjson.JSONDecodeError:
                continue
            source = headers.get("source", "")
            if source == "ws":
                id_ = body["data"]["t" if kind == "trade" else "a"]
            else:
                id_ = body["id" if kind == "trade" else "a"]
            found.setdefault((symbol.upper(), kind), {"ws": set(), "rest": set()})[source].add(id_)
    consumer.close()
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration-s", type=float, default=600.0)
    parser.add_argument("--drop-every-s", type=float, default=30.0)
    parser.add_argument("--trades-per-second", type=float, default=50.0, help="per symbol")
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:29092"))
    parser.add_argument("--log-dir", type=Path, default=REPO / "artifacts" / "bench")
    args = parser.parse_args()

    max_age_s = args.drop_every_s * 1.5
    # One drop skipped in the middle: that connection lives 2 drop periods, so it reaches its
    # maximum age (1.5 periods) and is rolled over, once.
    quiet_from = (args.duration_s // 2 // args.drop_every_s) * args.drop_every_s
    quiet_until = quiet_from + args.drop_every_s / 2
    args.log_dir.mkdir(parents=True, exist_ok=True)
    topic = f"binance.raw.gapfree.{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    for future in admin.create_topics([NewTopic(topic, 3, 1)]).values():
        future.result(timeout=30)

    ws_port, rest_port = free_port(), free_port()
    max_trades = int(args.trades_per_second * args.duration_s)
    fake_env = {
        "FAKE_BINANCE_WS_PORT": str(ws_port),
        "FAKE_BINANCE_REST_PORT": str(rest_port),
        "FAKE_BINANCE_SYMBOLS": ",".join(SYMBOLS),
        "FAKE_BINANCE_TRADES_PER_SECOND": str(args.trades_per_second),
        "FAKE_BINANCE_MAX_TRADES": str(max_trades),
        # Binance's 24 h limit, shortened: a little longer than the producer's maximum age.
        "FAKE_BINANCE_CONNECTION_LIFETIME_S": str(max_age_s + 5),
        "FAKE_BINANCE_LOG_LEVEL": "WARNING",
    }
    producer_env = {
        "PRODUCER_KAFKA_BOOTSTRAP_SERVERS": args.bootstrap,
        "PRODUCER_RAW_TOPIC": topic,
        "PRODUCER_WS_BASE_URL": f"ws://127.0.0.1:{ws_port}",
        "PRODUCER_REST_BASE_URL": f"http://127.0.0.1:{rest_port}",
        "PRODUCER_SYMBOLS": ",".join(SYMBOLS),
        "PRODUCER_STREAM_TYPES": "trade,aggTrade",
        "PRODUCER_CONNECTION_MAX_AGE_S": str(max_age_s),
        "PRODUCER_ROLLOVER_OVERLAP_S": "2",
    }
    logs = {name: (args.log_dir / f"gapfree-{name}.log").open("wb") for name in ("fake", "producer")}
    fake = subprocess.Popen(
        [sys.executable, "-m", "fake_binance"],
        env={**os.environ, **fake_env},
        cwd=REPO,
        stdout=logs["fake"],
        stderr=subprocess.STDOUT,
    )
    http = httpx.Client(base_url=f"http://127.0.0.1:{rest_port}", timeout=10)
    producer: subprocess.Popen[bytes] | None = None
    drops = 0
    modes = ("abrupt", "close", "shutdown")
    try:
        wait_for(lambda: http.get("/api/v3/ping").status_code == 200, 30, "the fake exchange")
        producer = subprocess.Popen(
            [sys.executable, "-m", "producer"],
            env={**os.environ, **producer_env},
            cwd=REPO,
            stdout=logs["producer"],
            stderr=subprocess.STDOUT,
        )
        wait_for(lambda: http.get("/fake/state").json()["connections_open"] >= 1, 30, "the producer's connection")
        started = time.monotonic()
        next_drop = started + args.drop_every_s
        while not http.get("/fake/state").json()["market_done"]:
            now = time.monotonic()
            if now >= next_drop:
                if not quiet_from <= now - started < quiet_until:
                    http.post("/fake/drop-connections", json={"mode": modes[drops % len(modes)]})
                    drops += 1
                next_drop += args.drop_every_s
            if producer.poll() is not None:
                raise SystemExit(f"the producer exited with {producer.returncode}")
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        state = http.get("/fake/state").json()
        # Let the last gaps (grace period, then REST) be backfilled before stopping.
        time.sleep(10)
        producer.send_signal(signal.SIGTERM)
        producer_exit = producer.wait(60)
    finally:
        if producer is not None and producer.poll() is None:
            producer.kill()
        fake.send_signal(signal.SIGTERM)
        fake.wait(30)
        for log in logs.values():
            log.close()

    found = read_topic(args.bootstrap, topic)
    producer_log = [
        json.loads(line)
        for line in (args.log_dir / "gapfree-producer.log").read_text().splitlines()
        if line.startswith("{")
    ]
    summary: dict[str, Any] = {
        "duration_s": round(elapsed, 1),
        "forced_disconnects": drops,
        "rollovers_at_max_age": sum(
            1 for line in producer_log if line.get("message") == "rollover done" and line.get("reason") == "max_age"
        ),
        "rollovers_on_server_shutdown": sum(
            1
            for line in producer_log
            if line.get("message") == "rollover done" and line.get("reason") == "serverShutdown"
        ),
        "reconnects": sum(1 for line in producer_log if line.get("message") == "connection lost, reconnecting"),
        "producer_exit": producer_exit,
        "streams": {},
    }
    missing_total = 0
    for symbol in SYMBOLS:
        for kind, last_key in (("trade", "last_trade_ids"), ("aggTrade", "last_agg_ids")):
            last = state[last_key][symbol]
            ids = found.get((symbol, kind), {"ws": set(), "rest": set()})
            missing = set(range(1, last + 1)) - ids["ws"] - ids["rest"]
            missing_total += len(missing)
            summary["streams"][f"{symbol.lower()}@{kind}"] = {
                "emitted": last,
                "via_ws": len(ids["ws"]),
                "only_via_rest": len(ids["rest"] - ids["ws"]),
                "missing": len(missing),
            }
    summary["missing_ids"] = missing_total
    print(json.dumps(summary, indent=2))
    admin.delete_topics([topic])
    return 0 if missing_total == 0 and producer_exit == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
