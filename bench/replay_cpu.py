"""Replay CPU per frame: the replay server in this process, one speed=0 /ws/btcusdt@trade replay
read by bench/replay_rate.py's minimal client in another, and this process's CPU time per frame
while it plays. On a shared box a rate moves with the load; the CPU a frame costs much less.

    .venv/bin/python bench/replay_cpu.py --trades 1000000            # a database of its own, dropped after
    .venv/bin/python bench/replay_cpu.py --database NAME --runs 3     # a database loaded before (kept)
    .venv/bin/python bench/replay_cpu.py --database NAME --profile    # cProfile's top functions too

The server is not niced (REPLAY_NICE is the service's __main__'s), and runs without the metrics
endpoint's thread.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import multiprocessing
import pstats
import sys
import time
import uuid
from pathlib import Path

from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "bench"))

import compose_local  # noqa: E402
from api_load import T0, admin_execute, free_port, load, log  # noqa: E402
from replay_rate import END, read_replay  # noqa: E402

from bootstrap.__main__ import migrate  # noqa: E402
from replay.server import ReplayServer  # noqa: E402
from replay.settings import ReplaySettings  # noqa: E402


async def one_replay(api_url: str, profile: cProfile.Profile | None) -> tuple[int, float, float]:
    """(frames, seconds, this process's CPU seconds) of one whole-range replay."""
    port = free_port()
    settings = ReplaySettings(database_url=api_url, port=port, db_ssl="disable", end_linger_s=0.0)
    server = ReplayServer(settings)
    await server.start()
    url = f"ws://127.0.0.1:{port}/ws/btcusdt@trade?start={T0:%Y-%m-%d}&end={END}&speed=0"
    results: multiprocessing.Queue[tuple[int, float, float]] = multiprocessing.Queue()
    reader = multiprocessing.Process(target=read_replay, args=(url, results))
    reader.start()
    if profile is not None:
        profile.enable()
    cpu_before = time.process_time()
    while results.empty():
        await asyncio.sleep(0.05)
    cpu = time.process_time() - cpu_before
    if profile is not None:
        profile.disable()
    frames, seconds, _client_cpu = results.get()
    reader.join()
    await server.close()
    return frames, seconds, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack-env", default=str(REPO / ".local/test-stack/stack.env"))
    parser.add_argument("--database", help="a database bench/api_load.py's loader filled; kept")
    parser.add_argument("--trades", type=int, default=1_000_000, help="all symbols; BTCUSDT gets 55%%")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    stack = compose_local.read_env_file(Path(args.stack_env))
    name = args.database or f"bench_replay_cpu_{uuid.uuid4().hex[:8]}"
    owner_url = make_url(stack["DATABASE_URL"]).set(database=name).render_as_string(hide_password=False)
    api_url = make_url(stack["API_DATABASE_URL"]).set(database=name).render_as_string(hide_password=False)
    if args.database is None:
        admin_execute(stack["DATABASE_URL"], f'CREATE DATABASE "{name}"')  # a generated identifier
    try:
        if args.database is None:
            migrate(owner_url, "binance_api")
            load(owner_url, args.trades, 1.0)
        profile = cProfile.Profile() if args.profile else None
        for _run in range(args.runs):
            frames, seconds, cpu = asyncio.run(one_replay(api_url, profile))
            log(
                f"{frames:,} frames in {seconds:.2f} s = {frames / seconds:,.0f} frames/s;"
                f" replay CPU {cpu:.2f} s = {cpu / frames * 1e6:.2f} us a frame"
            )
        if profile is not None:
            pstats.Stats(profile).sort_stats("tottime").print_stats(20)
    finally:
        if args.database is None:
            admin_execute(stack["DATABASE_URL"], f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
