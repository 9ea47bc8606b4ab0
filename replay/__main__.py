"""`python -m replay`: serve the stored history as Binance WebSocket streams."""

import asyncio
import os

from api.server import configure_logging
from replay.server import run
from replay.settings import ReplaySettings


def main() -> None:
    settings = ReplaySettings()
    configure_logging(settings.log_level)
    os.nice(settings.nice)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
