"""`python -m fake_binance [--flags]`: settings -> run."""

from __future__ import annotations

import logging
import sys

from pydantic_settings import CliApp
from pythonjsonlogger.json import JsonFormatter

from fake_binance.server import run
from fake_binance.settings import FakeBinanceSettings


def _configure_logging(level: str) -> None:
    # One JSON object a line, as every service of the project logs in containers.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("websockets").setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> None:
    settings = CliApp.run(FakeBinanceSettings, cli_args=sys.argv[1:] if argv is None else argv)
    _configure_logging(settings.log_level)
    try:
        run(settings)
    except (ValueError, OSError) as error:
        # Bad settings or a busy port found at start: say so in one log line and exit 2.
        logging.getLogger("fake_binance").error("cannot start", extra={"reason": str(error)})
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
