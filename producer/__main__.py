"""`python -m producer`: stream Binance trades into Kafka until SIGTERM or SIGINT."""

import argparse
import asyncio
import logging
import signal
import sys

from pythonjsonlogger.json import JsonFormatter

from producer.binance_ws import combined_stream_url, stream_forever
from producer.publisher import RawPublisher
from producer.settings import ProducerSettings

log = logging.getLogger("producer")


def parse_args(argv: list[str]) -> dict[str, str]:
    parser = argparse.ArgumentParser(prog="python -m producer", description=__doc__)
    parser.add_argument("--symbols", help="comma-separated, e.g. BTCUSDT,ETHUSDT (PRODUCER_SYMBOLS)")
    parser.add_argument("--ws-base-url", help="WebSocket base URL (PRODUCER_WS_BASE_URL)")
    args = parser.parse_args(argv)
    return {key: value for key, value in vars(args).items() if value is not None}


async def run(settings: ProducerSettings) -> int:
    publisher = RawPublisher(settings.kafka_bootstrap_servers, settings.raw_topic)
    url = combined_stream_url(settings.ws_base_url, settings.stream_names())
    streaming = asyncio.create_task(
        stream_forever(url, publisher.publish, settings.reconnect_min_s, settings.reconnect_max_s)
    )
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, streaming.cancel)
    log.info("started", extra={"streams": settings.stream_names(), "topic": settings.raw_topic})
    try:
        await streaming
    except asyncio.CancelledError:
        log.info("stopping")
    undelivered = publisher.flush()
    return 0 if undelivered == 0 and publisher.failed == 0 else 1


def main(argv: list[str]) -> int:
    settings = ProducerSettings(**parse_args(argv))  # type: ignore[arg-type]
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=settings.log_level, handlers=[handler])
    return asyncio.run(run(settings))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
