"""Which symbols have data."""

from fastapi import APIRouter

from api.deps import DbConnection
from api.models import Symbols, SymbolSummary
from api.queries import symbols

router = APIRouter(prefix="/v1", tags=["symbols"])


@router.get("/symbols", response_model=Symbols)
async def list_symbols(connection: DbConnection) -> Symbols:
    """Every symbol with stored trades: first and last trade, and the number of trades stored."""
    return Symbols(
        symbols=[SymbolSummary.model_validate(dict(row)) for row in await symbols.symbol_summaries(connection)]
    )
