"""The FastAPI application factory."""

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import create_engine
from sqlalchemy.exc import DBAPIError

from api.routes import health, prices
from api.settings import ApiSettings

log = logging.getLogger(__name__)


def create_app(settings: ApiSettings) -> FastAPI:
    app = FastAPI(
        title="Binance prices",
        version="0.1.0",
        description="Prices from Binance spot trades, as ingested through Kafka into PostgreSQL.",
    )
    app.state.engine = create_engine(settings.database_url, pool_pre_ping=True, pool_size=5)
    app.include_router(health.router)
    app.include_router(prices.router)

    @app.exception_handler(DBAPIError)
    async def database_unavailable(request: Request, error: DBAPIError) -> JSONResponse:
        # The database being away is not the client's fault, nor a bug: say so, and say retry.
        log.error("database error", extra={"path": request.url.path, "error": str(error).splitlines()[0]})
        return JSONResponse({"detail": "database unavailable, retry later"}, status_code=503)

    return app
