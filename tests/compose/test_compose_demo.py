"""docker-compose.yml's offline demo, checked from outside the containers (scripts/compose_check.sh
starts it under podman): prices, candles and the page on the published loopback ports, the topics,
the consumer group and a dead letter through the `tools` profile, then a consumer restart and a
broker that is killed, after which every trade the fake exchange made is in the table.

The tests run in file order and share one running stack.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import psycopg2
import pytest

from schemas.topics import RAW_TOPIC, TOPICS
from tests.conftest import wait_until

REPO = Path(__file__).resolve().parents[2]
SYMBOLS = ("BTCUSDT", "ETHUSDT")
API = f"http://127.0.0.1:{os.environ.get('API_HOST_PORT', '38000')}"
PG_DSN = (
    f"host=127.0.0.1 port={os.environ.get('PG_HOST_PORT', '35432')} dbname=binance user=binance"
    f" password={os.environ.get('PG_PASSWORD', 'binance')}"
)


def compose(*args: str, timeout_s: float = 180) -> str:
    """Runs `docker compose` on the check's project and override; fails with its output."""
    argv = [
        os.environ["COMPOSE_CHECK_BIN"],
        "-p",
        os.environ["COMPOSE_CHECK_PROJECT"],
        "-f",
        "docker-compose.yml",
        "-f",
        "tests/compose/compose.podman.yml",
        *args,
    ]
    result = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=timeout_s, check=False)
    if result.returncode != 0:
        raise AssertionError(
            f"docker compose {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result.stdout


def tools(*argv: str) -> str:
    """A command in the `tools` profile's console-tools container, as README runs it. --no-deps:
    the broker is up, and compose on podman's API would recreate it (it sees the running
    container's networks differ from the expected ones)."""
    return compose("--profile", "tools", "run", "--rm", "--no-deps", "-T", "kafka-tools", *argv)


def figure(line: str) -> None:
    """A measured figure for docs/compose.md (scripts/compose_check.sh prints them at the end)."""
    path = os.environ.get("COMPOSE_CHECK_FIGURES")
    if path:
        with open(path, "a", encoding="utf-8") as figures:
            figures.write(line + "\n")


def latest_prices() -> dict[str, dict[str, object]]:
    response = httpx.get(f"{API}/v1/prices/latest", timeout=5)
    response.raise_for_status()
    return {price["symbol"]: price for price in response.json()["prices"]}


def prices_advance(timeout_s: float) -> dict[str, dict[str, object]]:
    """Waits until every symbol has a newer trade than now; returns the newer prices."""

    def every_symbol() -> dict[str, dict[str, object]] | None:
        now = latest_prices()
        return now if set(SYMBOLS) <= now.keys() else None

    before = wait_until(every_symbol, timeout_s, "a price of every symbol", interval_s=0.5)
    assert isinstance(before, dict)

    def advanced() -> dict[str, dict[str, object]] | None:
        now = latest_prices()
        if all(int(now[s]["trade_id"]) > int(before[s]["trade_id"]) for s in SYMBOLS):  # type: ignore[call-overload]
            return now
        return None

    after = wait_until(advanced, timeout_s, f"newer trades of {', '.join(SYMBOLS)} than {before}", interval_s=0.5)
    assert isinstance(after, dict)
    return after


def health(service: str) -> str:
    return compose("ps", "--format", "{{.Health}}", service).strip()


@pytest.fixture(scope="module")
def db() -> Iterator[psycopg2.extensions.connection]:
    connection = psycopg2.connect(PG_DSN)
    connection.autocommit = True
    yield connection
    connection.close()


def test_live_prices_of_both_symbols_advance() -> None:
    prices = prices_advance(timeout_s=120)
    for symbol in SYMBOLS:
        assert Decimal(str(prices[symbol]["price"])) > 0, prices[symbol]
        # A string in the answer, never a float.
        assert isinstance(prices[symbol]["price"], str)


def test_candles_of_the_last_minutes() -> None:
    now = datetime.now(UTC)
    params = {
        "symbol": "BTCUSDT",
        "interval": "1s",
        "start": (now - timedelta(minutes=10)).isoformat(),
        "end": (now + timedelta(minutes=1)).isoformat(),
        "limit": "1000",
    }
    response = httpx.get(f"{API}/v1/candles", params=params, timeout=10)
    assert response.status_code == 200, response.text
    candles = response.json()["candles"]
    traded = [candle for candle in candles if candle["trade_count"] > 0]
    assert traded, f"no candle with trades in {response.text[:500]}"
    for candle in traded:
        assert Decimal(candle["low"]) <= Decimal(candle["open"]) <= Decimal(candle["high"]), candle
        assert Decimal(candle["low"]) <= Decimal(candle["close"]) <= Decimal(candle["high"]), candle


def test_web_page() -> None:
    response = httpx.get(f"{API}/", timeout=10)
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"].startswith("text/html")
    assert "<title>Binance prices</title>" in response.text


def test_topics_and_consumer_group_through_the_tools_container() -> None:
    topics = tools("kafka-topics.sh", "--bootstrap-server", "kafka:29092", "--list").split()
    assert {"binance.raw", "binance.raw.dlq"} <= set(topics), topics
    # README's other way in: the broker's own container.
    described = compose(
        "exec", "-T", "kafka", "/opt/kafka/bin/kafka-topics.sh", "--bootstrap-server", "kafka:29092",
        "--describe", "--topic", "binance.raw",
    )  # fmt: skip
    # init creates it with the contract's partitions (compose's default is the contract's).
    partitions = next(s.partitions for s in TOPICS if s.name == RAW_TOPIC)
    assert described.count("Partition:") == partitions, described
    groups = tools(
        "kafka-consumer-groups.sh", "--bootstrap-server", "kafka:29092", "--describe", "--group", "binance-consumer"
    )
    rows = [line.split() for line in groups.splitlines() if line.startswith("binance-consumer ")]
    held = sorted(int(row[2]) for row in rows if row[1] == "binance.raw")
    assert held == list(range(partitions)), groups


def test_a_bad_message_becomes_a_dead_letter_with_its_reason() -> None:
    marker = f"compose-check-{uuid.uuid4()}"
    # A combined-stream frame cut short.
    frame = f'{{"stream":"btcusdt@trade","data":{{"marker":"{marker}"'
    tools(
        "bash",
        "-c",
        f"printf '%s\\n' '{frame}' | kafka-console-producer.sh --bootstrap-server kafka:29092 --topic binance.raw",
    )

    def dead_letter() -> str | None:
        # README's command, bounded: the consumer stops 10 s after the last dead letter.
        output = tools(
            "bash",
            "-c",
            "kafka-console-consumer.sh --bootstrap-server kafka:29092 --topic binance.raw.dlq --from-beginning"
            " --property print.headers=true --timeout-ms 10000 2>/dev/null || true",
        )
        return next((line for line in output.splitlines() if marker in line), None)

    line = wait_until(dead_letter, 90, f"a dead letter carrying {marker}", interval_s=1)
    assert isinstance(line, str)
    assert "dlq_reason:invalid_json" in line, line


def test_consumer_restart_recovers() -> None:
    compose("restart", "consumer")
    prices_advance(timeout_s=120)
    wait_until(lambda: health("consumer") == "healthy", 120, "the restarted consumer to be healthy", interval_s=1)


def container_pid(service: str) -> int:
    container = compose("ps", "-q", service).strip()
    inspected = subprocess.run(
        ["podman", "inspect", "--format", "{{.State.Pid}}", container], capture_output=True, text=True, check=True
    )
    return int(inspected.stdout)


def test_killed_broker_is_restarted_and_the_pipeline_recovers() -> None:
    # A crash, not a stop: SIGKILL to the container's first process from outside, so the
    # restart policy (unless-stopped) has to bring it back.
    pid = container_pid("kafka")
    killed_at = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: container_pid("kafka") not in (0, pid), 120, "the killed broker to be restarted", interval_s=1)
    prices_advance(timeout_s=180)
    figure(f"after a kill -9 of the broker: prices advance again within {time.monotonic() - killed_at:.1f} s")
    wait_until(lambda: health("kafka") == "healthy", 180, "the restarted broker to be healthy", interval_s=1)


def recorded_trades() -> dict[str, set[int]]:
    """The fake exchange's ground truth: every trade it made, by symbol."""
    record = compose("exec", "-T", "fake-binance", "cat", "/tmp/trades.jsonl")
    trades: dict[str, set[int]] = {}
    for line in record.splitlines():
        payload = json.loads(line)
        trades.setdefault(payload["s"], set()).add(int(payload["t"]))
    return trades


def test_no_trade_lost(db: psycopg2.extensions.connection) -> None:
    made = recorded_trades()
    assert set(SYMBOLS) <= made.keys(), made.keys()

    def missing() -> dict[str, list[int]]:
        gone: dict[str, list[int]] = {}
        with db.cursor() as cursor:
            for symbol, ids in made.items():
                cursor.execute(
                    "SELECT trade_id FROM trades WHERE symbol = %s AND trade_id BETWEEN %s AND %s",
                    (symbol, min(ids), max(ids)),
                )
                stored = {row[0] for row in cursor.fetchall()}
                if ids - stored:
                    gone[symbol] = sorted(ids - stored)
        return gone

    deadline = time.monotonic() + 90
    while (gone := missing()) and time.monotonic() < deadline:
        time.sleep(1)
    assert not gone, {symbol: (len(ids), ids[:10]) for symbol, ids in gone.items()}
    figure(f"trades the fake exchange made, all stored: {sum(len(ids) for ids in made.values())}")
