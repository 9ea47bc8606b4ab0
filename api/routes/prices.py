"""Price questions: the newest trade."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from api import queries
from api.deps import DbConnection
from api.models import LatestPrice, LatestPrices, Problem

router = APIRouter(prefix="/v1/prices", tags=["prices"])

SymbolQuery = Annotated[
    str | None,
    Query(
        description="Binance symbol, case-insensitive, e.g. BTCUSDT. Omit it for every symbol.",
        pattern="^[A-Za-z0-9]{2,20}$",
    ),
]


@router.get(
    "/latest",
    response_model=LatestPrice | LatestPrices,
    responses={404: {"model": Problem, "description": "no trade stored for that symbol"}},
)
def latest_price(connection: DbConnection, symbol: SymbolQuery = None) -> LatestPrice | LatestPrices:
    """The newest trade's price: for one symbol, or for every symbol with data."""
    if symbol is None:
        rows = queries.latest_trades(connection)
        return LatestPrices(prices=[LatestPrice.model_validate(dict(row)) for row in rows])
    row = queries.latest_trade(connection, symbol.upper())
    if row is None:
        raise HTTPException(status_code=404, detail=f"symbol: no trades stored for {symbol.upper()!r}")
    return LatestPrice.model_validate(dict(row))
