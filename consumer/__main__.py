"""`python -m consumer`: persist market data from the raw topic until SIGTERM or SIGINT."""

import logging
import signal
import sys
from types import FrameType

from pythonjsonlogger.json import JsonFormatter

from consumer.loop import RawConsumer, tune_garbage_collector
from consumer.metrics import METRICS, MeasuredSink
from consumer.settings import ConsumerSettings
from consumer.symbols import SymbolRegistry, binance_exchange_info
from maintenance.runner import MaintenanceThread
from maintenance.settings import MaintenanceSettings


def main() -> int:
    settings = ConsumerSettings()
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=settings.log_level, handlers=[handler])

    registry = None
    if settings.check_symbols:
        fetch = binance_exchange_info(settings.rest_base_url)
        registry = SymbolRegistry(settings.database_url, fetch, settings.symbol_refresh_s)
    sinks = [
        MeasuredSink(settings.database_url, METRICS, settings.book_ticker_sample_ms) for _ in range(settings.writers)
    ]
    consumer = RawConsumer(settings, sinks, registry)
    metrics_server = METRICS.serve(settings)

    def stop(signum: int, frame: FrameType | None) -> None:
        # Finish the batch in hand (write, commit) and leave the group; the loop checks this flag.
        consumer.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    maintenance = None
    if settings.maintenance:
        maintenance = MaintenanceThread(MaintenanceSettings(database_url=settings.database_url))
        maintenance.start()
    tune_garbage_collector()
    try:
        consumer.run()
    finally:
        if maintenance is not None:
            maintenance.stop()
        if metrics_server is not None:
            metrics_server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
