"""live=true on the whole chain: the replay service (run with compose's command) plays the stored
trades, then goes on with the trades the pipeline stores meanwhile, without a gap or a duplicate."""

from __future__ import annotations

import asyncio
import json
import uuid
from contextlib import closing
from pathlib import Path

import psycopg2
import pytest
from websockets.asyncio.client import connect

from tests.conftest import Services, free_port, libpq_dsn, wait_until
from tests.integration.test_pipeline import socket_answers

pytestmark = pytest.mark.integration

SYMBOLS = ("BTCUSDT", "ETHUSDT")
TRADES_PER_SYMBOL = 200


def stored_count(database_url: str) -> int:
    with closing(psycopg2.connect(libpq_dsn(database_url))) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM trades")
        return int(cursor.fetchone()[0])


def start_pipeline(services: Services, database: dict[str, str], emitted_path: Path) -> str:
    """Fake exchange, producer, consumer and the replay service; returns the replay's ws:// URL."""
    suffix = uuid.uuid4().hex[:8]
    raw_topic, dlq_topic = f"binance.raw.{suffix}", f"binance.raw.dlq.{suffix}"
    ws_port, rest_port, replay_port = free_port(), free_port(), free_port()
    services.extra_addresses = {
        "fake-binance:9443": f"127.0.0.1:{ws_port}",
        "fake-binance:8090": f"127.0.0.1:{rest_port}",
    }
    services.variables = {
        "BINANCE_WS_BASE_URL": "ws://fake-binance:9443",
        "BINANCE_REST_BASE_URL": "http://fake-binance:8090",
        "SYMBOLS": ",".join(SYMBOLS),
    }
    topics = {"BOOTSTRAP_RAW_TOPIC": raw_topic, "BOOTSTRAP_DLQ_TOPIC": dlq_topic}
    services.run_once("init", {"BOOTSTRAP_DATABASE_URL": database["owner"], **topics})
    services.start(
        "fake-binance",
        {
            "FAKE_BINANCE_WS_PORT": str(ws_port),
            "FAKE_BINANCE_REST_PORT": str(rest_port),
            "FAKE_BINANCE_TRADES_PER_SECOND": "20",
            "FAKE_BINANCE_MAX_TRADES": str(TRADES_PER_SYMBOL),
            "FAKE_BINANCE_RECORD_PATH": str(emitted_path),
            "FAKE_BINANCE_SEED": "11",
        },
    )
    services.start(
        "consumer",
        {
            "CONSUMER_DATABASE_URL": database["owner"],
            "CONSUMER_RAW_TOPIC": raw_topic,
            "CONSUMER_DLQ_TOPIC": dlq_topic,
            "CONSUMER_GROUP_ID": f"test-{suffix}",
        },
    )
    services.start(
        "replay",
        {
            "REPLAY_DATABASE_URL": database["api"],
            "REPLAY_PORT": str(replay_port),
            "REPLAY_METRICS_PORT": str(free_port()),
            "REPLAY_DB_SSL": "disable",
            "REPLAY_LIVE_POLL_S": "0.2",
        },
    )
    wait_until(lambda: socket_answers(f"127.0.0.1:{ws_port}"), 30, "the fake exchange")
    services.start("producer", {"PRODUCER_RAW_TOPIC": raw_topic})
    wait_until(lambda: socket_answers(f"127.0.0.1:{replay_port}"), 30, "the replay service")
    return f"ws://127.0.0.1:{replay_port}"


def test_live_replay_crosses_into_newly_stored_trades_without_gap_or_duplicate(database, services, tmp_path):
    emitted_path = tmp_path / "emitted.jsonl"
    url = start_pipeline(services, database, emitted_path)
    wait_until(lambda: stored_count(database["owner"]) >= 40, 90, "the first trades to be stored")
    stored_at_connect = stored_count(database["owner"])
    total = TRADES_PER_SYMBOL * len(SYMBOLS)
    assert stored_at_connect < total, (
        "the pipeline stored everything before the replay began: nothing live to cross into"
    )

    async def read() -> list[dict[str, object]]:
        frames: list[dict[str, object]] = []
        streams = "/".join(f"{symbol.lower()}@trade" for symbol in SYMBOLS)
        async with connect(f"{url}/stream?streams={streams}&start=2020-01-01&live=true&speed=0") as ws:
            while len(frames) < total:
                frames.append(json.loads(await asyncio.wait_for(ws.recv(), 60)))
        return frames

    frames = asyncio.run(read())
    services.assert_running()
    emitted = [json.loads(line) for line in emitted_path.read_text().splitlines()]
    emitted_trades = {
        (payload["s"], payload["t"]): payload
        for payload in (record.get("data", record) for record in emitted)
        if payload.get("e") == "trade"
    }
    received = [(frame["data"]["s"], frame["data"]["t"]) for frame in frames]  # type: ignore[index]
    assert len(set(received)) == len(received), "a trade sent twice"
    assert set(received) == set(emitted_trades), "a trade missing"
    for symbol in SYMBOLS:
        ids = [trade_id for s, trade_id in received if s == symbol]
        assert ids == sorted(ids), f"{symbol}: out of id order"
    # Each frame is the one the exchange sent.
    assert all(frame["data"] == emitted_trades[key] for frame, key in zip(frames, received, strict=True))
