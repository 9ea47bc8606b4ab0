"""`python -m producer [--flags]`: stream Binance market data into Kafka until SIGTERM or SIGINT.

`python -m producer history --symbols ... --streams ... --start ... [--end ...]`: import a past
period instead, and exit (producer/history/; its settings are PRODUCER_HISTORY_* variables).

Every setting is a PRODUCER_* environment variable and the same name as a flag
(PRODUCER_STREAM_TYPES=trade,kline_1m or --stream-types trade,kline_1m); flags win.
"""

import asyncio
import logging
import sys

from pydantic import ValidationError
from pydantic_settings import CliApp
from pythonjsonlogger.json import JsonFormatter

from producer.app import EXIT_BAD_SETTINGS, run
from producer.settings import ProducerSettings

log = logging.getLogger("producer")


def configure_logging(level: str) -> None:
    # One JSON object a line, as every service of the project logs in containers.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("websockets", "urllib3", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def history(argv: list[str]) -> int:
    from producer.history.run import EXIT_BAD_SETTINGS as HISTORY_BAD_SETTINGS
    from producer.history.run import main as run_history
    from producer.history.settings import HistorySettings

    try:
        settings = CliApp.run(HistorySettings, cli_args=argv)
    except ValidationError as error:
        configure_logging("INFO")
        log.error("invalid settings", extra={"reason": str(error)})
        return HISTORY_BAD_SETTINGS
    configure_logging(settings.log_level)
    return run_history(settings)


def main(argv: list[str]) -> int:
    if argv[:1] == ["history"]:
        return history(argv[1:])
    try:
        settings = CliApp.run(ProducerSettings, cli_args=argv)
    except ValidationError as error:
        configure_logging("INFO")
        log.error("invalid settings", extra={"reason": str(error)})
        return EXIT_BAD_SETTINGS
    configure_logging(settings.log_level)
    return asyncio.run(run(settings))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
