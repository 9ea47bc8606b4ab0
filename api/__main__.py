"""`python -m api`: serve the HTTP API (API_WORKERS processes: api/server.py)."""

import sys

from api.server import configure_logging, serve
from api.settings import ApiSettings


def main() -> int:
    settings = ApiSettings()
    configure_logging(settings.log_level)
    return serve(settings)


if __name__ == "__main__":
    sys.exit(main())
