"""Second-by-second comparison of WebSocket trades with REST 1s klines. Pure: no I/O.

A 1s kline's close is the price of the last trade at or before the end of its second (flat at
the previous close when the second had no trade), which is exactly what the stored WebSocket
trades give: the two must agree wherever both exist.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from api.models import Agreement
from schemas import decimals


@dataclass(frozen=True, slots=True)
class Comparison:
    second_ms: int
    ws_close: Decimal | None
    rest_close: Decimal | None
    ws_trade_count: int
    rest_trade_count: int | None
    agreement: Agreement

    @property
    def difference(self) -> Decimal | None:
        if self.ws_close is None or self.rest_close is None:
            return None
        return decimals.subtract(self.ws_close, self.rest_close)


def compare(
    ws: Mapping[int, tuple[Decimal, int]],
    rest: Mapping[int, tuple[Decimal, int]],
    ws_close_before: Decimal | None,
) -> list[Comparison]:
    """`ws` and `rest`: second (epoch ms) -> (close, trade count); `ws_close_before`: the WS
    price in effect before the first second. One comparison per second present on either side."""
    comparisons: list[Comparison] = []
    carried = ws_close_before
    for second in sorted(ws.keys() | rest.keys()):
        ws_row, rest_row = ws.get(second), rest.get(second)
        if ws_row is not None:
            carried = ws_row[0]
        rest_close = rest_row[0] if rest_row is not None else None
        if rest_close is None:
            agreement = Agreement.MISSING_REST
        elif carried is None:
            agreement = Agreement.MISSING_WS
        elif carried == rest_close:
            agreement = Agreement.MATCH
        else:
            agreement = Agreement.CLOSE_DIFFERS
        comparisons.append(
            Comparison(
                second_ms=second,
                ws_close=carried,
                rest_close=rest_close,
                ws_trade_count=ws_row[1] if ws_row is not None else 0,
                rest_trade_count=rest_row[1] if rest_row is not None else None,
                agreement=agreement,
            )
        )
    return comparisons
