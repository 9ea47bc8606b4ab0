"""`python -m maintenance`: partition upkeep (create ahead, drain DEFAULT, retention).

`--once` runs one pass and exits (0 when every table was maintained, 1 if one was skipped);
without it, a pass every MAINTENANCE_INTERVAL_S until SIGTERM or SIGINT."""

import logging
import signal
import sys
import threading
from types import FrameType

from pythonjsonlogger.json import JsonFormatter

from maintenance.runner import run_once
from maintenance.settings import MaintenanceSettings


def main(argv: list[str]) -> int:
    settings = MaintenanceSettings()
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=settings.log_level, handlers=[handler])
    if "--once" in argv:
        return 1 if run_once(settings).skipped else 0
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping.is_set():
        try:
            run_once(settings)
        except Exception:  # the database away: try again at the next pass
            logging.getLogger("maintenance").exception("maintenance pass failed")
        stopping.wait(settings.interval_s)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
