"""What the fake exchange's whole-market mode sends, and what it costs the fake itself.

Starts `python -m fake_binance --market all` (default rates, or those given), subscribes to trade,
aggTrade, kline_1m and bookTicker of every TRADING symbol over 1024-stream connections, and every
`--every-s` prints the frames per second received by kind and the fake's own CPU (share of one
core, from /proc) and resident memory. The reader here is one Python process too: when it cannot
keep up (a burst), the fake's queues fill and its own CPU is the figure to read.

    .venv/bin/python bench/fake_market_rate.py --seconds 120 --first-burst-s 40 --burst-s 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import websockets

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.conftest import free_port  # noqa: E402

KINDS = ("trade", "aggTrade", "kline_1m", "bookTicker")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def usage(pid: int) -> tuple[float, int]:
    """(CPU seconds, resident KiB) of the fake's process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS, int(fields[21]) * PAGE_KB


async def read(url: str, counts: Counter[str]) -> None:
    async with websockets.connect(url, max_size=2**20, max_queue=4096, compression=None) as ws:
        async for frame in ws:
            text = frame if isinstance(frame, str) else frame.decode()
            start = text.find("@") + 1
            counts[text[start : text.find('"', start)]] += 1


async def measure(args: argparse.Namespace, rest_url: str, ws_url: str, pid: int) -> None:
    with urllib.request.urlopen(f"{rest_url}/api/v3/exchangeInfo?symbolStatus=TRADING", timeout=30) as response:
        symbols = [entry["symbol"].lower() for entry in json.loads(response.read())["symbols"]]
    names = [f"{symbol}@{kind}" for symbol in symbols for kind in KINDS]
    counts: Counter[str] = Counter()
    readers = [
        asyncio.create_task(read(f"{ws_url}/stream?streams={'/'.join(names[i : i + 1024])}", counts))
        for i in range(0, len(names), 1024)
    ]
    print(f"{len(symbols)} symbols, {len(names)} streams, {len(readers)} connections", flush=True)
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        cpu_before, started = usage(pid)[0], time.monotonic()
        counts.clear()
        await asyncio.sleep(args.every_s)
        elapsed = time.monotonic() - started
        cpu_after, rss_kb = usage(pid)
        rates = {kind: round(counts[kind] / elapsed) for kind in KINDS}
        print(
            f"{rates} fake CPU {100 * (cpu_after - cpu_before) / elapsed:.0f}% of a core, RSS {rss_kb // 1024} MB",
            flush=True,
        )
    for reader in readers:
        reader.cancel()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--every-s", type=float, default=5.0)
    parser.add_argument("--first-burst-s", type=float, default=600.0)
    parser.add_argument("--burst-s", type=float, default=60.0)
    args = parser.parse_args()
    rest_port, ws_port = free_port(), free_port()
    env = {
        **os.environ,
        "FAKE_BINANCE_MARKET": "all",
        "FAKE_BINANCE_REST_PORT": str(rest_port),
        "FAKE_BINANCE_WS_PORT": str(ws_port),
        "FAKE_BINANCE_MARKET_FIRST_BURST_S": str(args.first_burst_s),
        "FAKE_BINANCE_MARKET_BURST_S": str(args.burst_s),
        "FAKE_BINANCE_LOG_LEVEL": "WARNING",
    }
    fake = subprocess.Popen([sys.executable, "-m", "fake_binance"], cwd=REPO, env=env)
    try:
        rest_url, ws_url = f"http://127.0.0.1:{rest_port}", f"ws://127.0.0.1:{ws_port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{rest_url}/api/v3/ping", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        asyncio.run(measure(args, rest_url, ws_url, fake.pid))
    finally:
        fake.terminate()
        fake.wait(20)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
