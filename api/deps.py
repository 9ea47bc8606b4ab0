"""Request dependencies: a read-only database connection per request, the settings, and the
checks several routes share."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.errors import NotFoundError, ParameterError
from api.queries import prices
from api.settings import ApiSettings


async def _connection(request: Request) -> AsyncIterator[AsyncConnection]:
    # An async dependency runs on the event loop: no hop to a worker thread and back.
    engine: AsyncEngine = request.app.state.engine
    async with engine.connect() as connection:
        yield connection


# Async, although they do not wait for anything: FastAPI runs a plain `def` dependency on a
# worker thread, and the hop there and back would cost more than the function.
async def _settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings
    return settings


async def _engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


DbConnection = Annotated[AsyncConnection, Depends(_connection)]
DbEngine = Annotated[AsyncEngine, Depends(_engine)]
Settings = Annotated[ApiSettings, Depends(_settings)]


def unknown_symbol(symbol: str) -> NotFoundError:
    return NotFoundError("symbol", f"no trades or exchangeInfo stored for {symbol!r}")


async def require_known_symbol(connection: AsyncConnection, symbol: str) -> None:
    """404 naming the symbol unless something is stored for it. Routes call this only once their
    main query found nothing, so a good request pays no extra round trip."""
    if not await prices.symbol_is_known(connection, symbol):
        raise unknown_symbol(symbol)


def check_limit(limit: int, maximum: int) -> None:
    if limit > maximum:
        raise ParameterError("limit", f"at most {maximum}")
