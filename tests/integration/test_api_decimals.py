"""Every decimal the api prints is fixed-point text and exact, whatever its size: prices and
quantities from 1e-8 to 1e20 (hypothesis), stored in a real PostgreSQL, read back through every
endpoint that prints one, in JSON and CSV."""

import csv
import io
import itertools
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.models import DECIMAL_PATTERN
from tests.integration.api_helpers import TradeRow, asgi_client, migrated, to_ms

pytestmark = pytest.mark.integration

T0 = to_ms(datetime(2025, 7, 3, 8, 30, 0, tzinfo=UTC))
PLAIN = re.compile(DECIMAL_PATTERN)

decimals_1e8_to_1e20 = st.one_of(
    st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("1e20"), places=8),
    # The corners, and values written with an exponent as a client's Decimal would hold them.
    st.sampled_from([Decimal("1E-8"), Decimal("9.9E-7"), Decimal("0.00000099"), Decimal("1E+20"), Decimal("1E+2")]),
)


def exact(expression: Any) -> Decimal:
    """The test's own exact arithmetic, independent of schemas/decimals.py."""
    with localcontext() as context:
        context.prec = 200
        return Decimal(expression())


def decimal_strings(value: Any) -> Iterator[str]:
    """Every string in a JSON answer that reads as a decimal number (symbols, times and enums do not)."""
    if isinstance(value, dict):
        for item in value.values():
            yield from decimal_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from decimal_strings(item)
    elif isinstance(value, str):
        try:
            number = Decimal(value)
        except InvalidOperation:
            return
        if number.is_finite():
            yield value


def get_json(client: TestClient, path: str, **params: Any) -> Any:
    response = client.get(path, params=params)
    assert response.status_code == 200, (path, params, response.text)
    return response.json()


def test_every_decimal_is_printed_plainly_and_exactly(database: dict[str, str]) -> None:
    store = migrated(database)
    names = (f"S{n}USDT" for n in itertools.count())
    with asgi_client(database) as client:

        @given(first=decimals_1e8_to_1e20, second=decimals_1e8_to_1e20, quantity=decimals_1e8_to_1e20)
        @settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def check(first: Decimal, second: Decimal, quantity: Decimal) -> None:
            symbol = next(names)
            store.trades(
                [
                    TradeRow(symbol, 1, first, quantity, T0 + 100, False),
                    TradeRow(symbol, 2, second, quantity, T0 + 1_100, True),
                ]
            )
            day = {"start": "2025-07-03", "end": "2025-07-04"}
            answers = {
                "latest": get_json(client, "/v1/prices/latest", symbol=symbol),
                "latest all": get_json(client, "/v1/prices/latest"),
                "at": get_json(client, "/v1/prices/at", symbol=symbol, timestamp=T0),
                "minmax": get_json(client, "/v1/prices/minmax", symbol=symbol, minute=T0),
                "candles": get_json(client, "/v1/candles", symbol=symbol, interval="1s", **day),
                "stats": get_json(client, "/v1/stats", symbol=symbol, **day),
                "sma": get_json(client, "/v1/indicators/sma", symbol=symbol, interval="1s", windows="2,3", **day),
                "trades": get_json(client, "/v1/trades", symbol=symbol, format="json", **day),
                "reconcile": get_json(client, "/v1/reconcile", symbol=symbol, start=T0, end=T0 + 60_000),
                "klines": get_json(client, "/api/v3/klines", symbol=symbol, interval="1m", startTime=T0),
                "api trades": get_json(client, "/api/v3/trades", symbol=symbol),
                "ticker": get_json(client, "/api/v3/ticker/price", symbol=symbol),
            }
            for name, answer in answers.items():
                for text in decimal_strings(answer):
                    assert PLAIN.match(text), (name, text, answer)

            plain_second = f"{second:f}"
            assert answers["latest"]["price"] == plain_second
            assert answers["latest"]["quantity"] == f"{quantity:f}"
            assert answers["at"]["price"] == f"{first:f}"
            total = exact(lambda: first * quantity + second * quantity)
            assert Decimal(answers["minmax"]["quote_volume"]) == total
            assert Decimal(answers["stats"]["quote_volume"]) == total
            assert Decimal(answers["stats"]["mean_price"]) == exact(lambda: (first + second) / 2)
            assert [Decimal(t["price"]) for t in answers["trades"]["trades"]] == [first, second]
            points = answers["sma"]["points"]
            assert [Decimal(p["close"]) for p in points] == [first, second]
            assert Decimal(points[1]["sma"]["2"]) == exact(lambda: (first + second) / 2)
            quote_quantity = exact(lambda: (second * quantity).quantize(Decimal("0.00000001")))
            assert Decimal(answers["api trades"][1]["quoteQty"]) == quote_quantity

            exported = client.get("/v1/trades", params={"symbol": symbol, "format": "csv", **day})
            rows = list(csv.DictReader(io.StringIO(exported.text)))
            assert [(row["price"], row["quantity"]) for row in rows] == [
                (f"{first:f}", f"{quantity:f}"),
                (plain_second, f"{quantity:f}"),
            ]

        check()
