"""History import benchmark: archive files -> Kafka -> consumer -> PostgreSQL, against the consumer's
own rate in the same run; and the REST source's use of its weight budget.

    bash scripts/stack.sh up        # the dev stack (or STACK_ENV_FILE=... for another)
    .venv/bin/python bench/history_import.py [--trades 600000] [--rest-trades 60000]

1. the consumer's own benchmark (bench/consumer_throughput.py's load and measured consumer): N
   live trade frames preloaded into Kafka, then consumed to committed rows;
2. `python -m producer history --source archive` importing a day of N trades (split over
   --symbols) from the fake exchange's archive while the same measured consumer stores them:
   the rate from the import's start to the last row's commit, and its ratio to (1);
3. `python -m producer history --source rest` over --rest-trades trades: the request weight it
   used in each whole minute against the budget (exchangeInfo's limit times the weight share),
   and the 429s it met.
The fake exchange runs as its own process; its archive zips are built (and cached) before the
clock starts. Everything runs in its own database and topics, dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from tempfile import TemporaryDirectory

import httpx
import psycopg2

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "scripts"))

import compose_local  # noqa: E402
import consumer_throughput as ct  # noqa: E402

from consumer.loop import tune_garbage_collector  # noqa: E402
from consumer.settings import ConsumerSettings  # noqa: E402
from schemas.topics import RAW_TOPIC, TOPICS  # noqa: E402
from tests.conftest import free_port  # noqa: E402

DAY = "2021-05-22"
RAW_PARTITIONS = next(spec.partitions for spec in TOPICS if spec.name == RAW_TOPIC)
DAY_START_MS = 1621641600000
# The fake's request weights (Binance's): what the REST import spends.
WEIGHTS = {"/api/v3/historicalTrades": 25, "/api/v3/aggTrades": 4, "/api/v3/klines": 2, "/api/v3/exchangeInfo": 20}


def start_fake(trades_per_day: int, log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "FAKE_BINANCE_REST_PORT": str(port),
        "FAKE_BINANCE_WS_PORT": str(free_port()),
        "FAKE_BINANCE_TRADES_PER_SECOND": "0",
        "FAKE_BINANCE_HISTORY_TRADES_PER_DAY": str(trades_per_day),
    }
    with log_path.open("ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "fake_binance"], env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/api/v3/ping", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the fake exchange did not start")


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set so far (Linux's VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def history(args: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "producer", "history", *args], env={**os.environ, **env}, stdout=log, stderr=log
        )


def summary_of(log_path: Path) -> dict[str, object]:
    lines = [line for line in log_path.read_text().splitlines() if '"history import' in line]
    summary: dict[str, object] = json.loads(lines[-1])
    return summary


def consumer_baseline(bootstrap: str, database_url: str, count: int) -> float:
    topic = ct.create_topic(bootstrap)
    ct.produce_all(bootstrap, topic, count)
    settings = ConsumerSettings(
        kafka_bootstrap_servers=bootstrap,
        raw_topic=topic,
        dlq_topic=f"{topic}.dlq",
        group_id=f"bench-{uuid.uuid4().hex[:6]}",
        database_url=database_url,
    )
    consumer = ct.run_consumer(settings, count)
    assert consumer.first_batch_at is not None
    return consumer.processed / (consumer.last_commit_at - consumer.first_batch_at)


def archive_import(
    bootstrap: str, database_url: str, fake_url: str, symbols: list[str], per_symbol: int, work: Path
) -> tuple[float, dict[str, object]]:
    for symbol in symbols:  # the fake builds each zip once; not part of the import's time
        httpx.get(f"{fake_url}/data/spot/daily/trades/{symbol}/{symbol}-trades-{DAY}.zip.CHECKSUM", timeout=600)
    # The raw topic's own partition count (bootstrap creates it so): where the symbols' keys land,
    # and so which of the consumer's writers take them, is then what it is in production.
    topic = ct.create_topic(bootstrap, partitions=RAW_PARTITIONS)
    settings = ConsumerSettings(
        kafka_bootstrap_servers=bootstrap,
        raw_topic=topic,
        dlq_topic=f"{topic}.dlq",
        group_id=f"bench-{uuid.uuid4().hex[:6]}",
        database_url=database_url,
    )
    expected = per_symbol * len(symbols) + len(symbols)  # the rows, and one coverage marker per file
    measured: dict[str, ct.MeasuredConsumer] = {}
    runner = threading.Thread(target=lambda: measured.setdefault("c", ct.run_consumer(settings, expected)))
    runner.start()
    time.sleep(3)  # the consumer joins its group before the clock starts
    log_path = work / "history-archive.log"
    started = time.perf_counter()
    process = history(
        ["--symbols", ",".join(symbols), "--streams", "trade", "--start", DAY, "--end", "2021-05-23"],
        {
            "PRODUCER_HISTORY_SOURCE": "archive",
            "PRODUCER_HISTORY_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "PRODUCER_HISTORY_RAW_TOPIC": topic,
            "PRODUCER_HISTORY_ARCHIVE_BASE_URL": fake_url,
            "PRODUCER_HISTORY_STATE_DIR": str(work / "state-archive"),
            "PRODUCER_HISTORY_PROGRESS": "log",
        },
        log_path,
    )
    assert process.wait(timeout=3600) == 0, log_path.read_text()[-3000:]
    runner.join(timeout=3600)
    consumer = measured["c"]
    return (consumer.processed - len(symbols)) / (consumer.last_commit_at - started), summary_of(log_path)


def rest_import(bootstrap: str, fake_url: str, rest_trades: int, per_day: int, work: Path) -> dict[str, object]:
    hours = max(1, -(-rest_trades * 24 // per_day))
    end = f"{DAY}T{hours:02d}:00" if hours < 24 else "2021-05-23"
    log_path = work / "history-rest.log"
    started = time.time()
    process = history(
        ["--symbols", "BTCUSDT", "--streams", "trade", "--start", DAY, "--end", end],
        {
            "PRODUCER_HISTORY_SOURCE": "rest",
            "PRODUCER_HISTORY_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "PRODUCER_HISTORY_RAW_TOPIC": ct.create_topic(bootstrap, partitions=RAW_PARTITIONS),
            "PRODUCER_HISTORY_REST_BASE_URL": fake_url,
            "PRODUCER_HISTORY_STATE_DIR": str(work / "state-rest"),
            "PRODUCER_HISTORY_PROGRESS": "log",
        },
        log_path,
    )
    assert process.wait(timeout=3600) == 0, log_path.read_text()[-3000:]
    finished = time.time()
    state = httpx.get(f"{fake_url}/fake/state", timeout=10).json()
    by_minute: Counter[int] = Counter()
    statuses: Counter[int] = Counter()
    for request in state["rest_requests"]:
        if started <= request["at"] <= finished and request["path"] in WEIGHTS:
            by_minute[int(request["at"] // 60)] += WEIGHTS[request["path"]]
            statuses[request["status"]] += 1
    summary = summary_of(log_path)
    # Whole minutes only: the first and last are cut by the run's start and end.
    whole = [by_minute[minute] for minute in sorted(by_minute)[1:-1]]
    return {
        "records": summary["records"],
        "seconds": round(finished - started, 1),
        "weight_by_whole_minute": whole,
        "statuses": dict(statuses),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trades", type=int, default=600_000, help="archive trades in the day, over all symbols")
    parser.add_argument("--symbols", default="BTCUSDT,ETHUSDT")
    parser.add_argument("--rest-trades", type=int, default=60_000)
    parser.add_argument(
        "--stack-env", type=Path, default=Path(os.environ.get("STACK_ENV_FILE", REPO / ".local/stack/stack.env"))
    )
    args = parser.parse_args()
    tune_garbage_collector()
    symbols = args.symbols.split(",")
    per_symbol = args.trades // len(symbols)
    stack = compose_local.read_env_file(args.stack_env)
    bootstrap, admin_url = stack["KAFKA_BOOTSTRAP_SERVERS"], stack["DATABASE_URL"]
    database_url = ct.create_database(admin_url)
    with TemporaryDirectory(prefix="bench-history-") as directory:
        work = Path(directory)
        fake, fake_url = start_fake(per_symbol, work / "fake.log")
        try:
            baseline = consumer_baseline(bootstrap, database_url, per_symbol * len(symbols))
            print(
                f"consumer benchmark: {per_symbol * len(symbols):,} trade frames committed at {baseline:,.0f}/s",
                flush=True,
            )
            ct.truncate_trades(database_url)
            rate, summary = archive_import(bootstrap, database_url, fake_url, symbols, per_symbol, work)
            with psycopg2.connect(ct.libpq(database_url)) as connection, connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM trades")
                stored = cursor.fetchone()[0]
            assert stored == per_symbol * len(symbols), stored
            print(
                f"archive import: {stored:,} trades of {len(symbols)} files, import start to last commit at"
                f" {rate:,.0f}/s = {rate / baseline:.2f} of the consumer benchmark (the import alone published"
                f" at {summary['records_per_s']:,}/s)",
                flush=True,
            )
            rest = rest_import(bootstrap, fake_url, args.rest_trades, per_symbol, work)
            print(f"REST import: {json.dumps(rest)}", flush=True)
            print(f"fake exchange: peak resident {peak_rss_mb(fake.pid):,.0f} MB", flush=True)
        finally:
            fake.terminate()
            fake.wait(30)
            ct.drop_database(admin_url, database_url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
