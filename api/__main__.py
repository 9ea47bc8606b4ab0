"""`python -m api`: serve the HTTP API."""

import logging
import sys

import uvicorn
from pythonjsonlogger.json import JsonFormatter

from api.app import create_app
from api.settings import ApiSettings


def main() -> int:
    settings = ApiSettings()
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=settings.log_level, handlers=[handler])
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        # Beyond this many connections and requests in flight uvicorn answers 503 at once.
        limit_concurrency=settings.limit_concurrency,
        # The metrics middleware times every request; uvicorn's access log would add a log line each.
        access_log=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
