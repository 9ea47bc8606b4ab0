"""WebSocket trades against REST klines (the notebook's REST-versus-WebSocket comparison)."""

from datetime import timedelta
from decimal import Decimal

from fastapi import APIRouter

from api import retention
from api.deps import DbConnection, Settings, require_known_symbol
from api.errors import Problem
from api.models import Agreement, Reconciliation, SecondComparison
from api.params import End, Start, Symbol, check_range, from_ms, to_ms
from api.queries import candles as candle_queries
from api.queries import reconcile as reconcile_queries
from api.reconcile import compare
from api.retention import require_kept
from schemas.tables import trade_candles_1s

router = APIRouter(prefix="/v1", tags=["reconcile"])


@router.get(
    "/reconcile",
    response_model=Reconciliation,
    responses={
        404: {"model": Problem, "description": "nothing stored for that symbol"},
        422: {"model": Problem, "description": "a parameter is invalid; the body names it and says why"},
    },
)
async def reconcile(
    connection: DbConnection, settings: Settings, symbol: Symbol, start: Start, end: End
) -> Reconciliation:
    """Per second of [start, end) (at most 6 hours by default): the close from the WebSocket
    trades against the close of the 1s kline fetched over REST, and every second where they
    differ or one side is missing."""
    check_range(start, end, timedelta(seconds=settings.reconcile_max_range_s))
    start, end = start.replace(microsecond=0), end
    await require_kept(connection, retention.RECONCILE, "start", start)
    ws_rows = await reconcile_queries.trade_closes(connection, symbol, start, end)
    rest_rows = await reconcile_queries.rest_kline_closes(connection, symbol, start, end)
    if not ws_rows and not rest_rows:
        await require_known_symbol(connection, symbol)
    before_text = await candle_queries.close_before(connection, trade_candles_1s, symbol, start)
    before = Decimal(before_text) if before_text is not None else None
    comparisons = compare(
        {to_ms(row["open_time"]): (row["close"], row["trade_count"]) for row in ws_rows},
        {to_ms(row["open_time"]): (row["close"], row["trade_count"]) for row in rest_rows},
        before,
    )
    seconds = [
        SecondComparison(
            second=from_ms(c.second_ms),
            ws_close=c.ws_close,
            rest_close=c.rest_close,
            difference=c.difference,
            ws_trade_count=c.ws_trade_count,
            rest_trade_count=c.rest_trade_count,
            agreement=c.agreement,
        )
        for c in comparisons
    ]
    differences = [s for s in seconds if s.agreement is not Agreement.MATCH]
    return Reconciliation(
        symbol=symbol,
        start=start,
        end=end,
        seconds_compared=len(seconds),
        matching=len(seconds) - len(differences),
        differences=differences,
        seconds=seconds,
    )
