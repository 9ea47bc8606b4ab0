"""The one decimal formatter and the exact arithmetic (schemas/decimals.py), and the places that
print through them without a database: the live stream's JSON and the moving average."""

import itertools
import re
from datetime import UTC, datetime
from decimal import Decimal, localcontext

from hypothesis import given
from hypothesis import strategies as st

from api.candles import moving_average
from api.live import price_json
from api.models import DECIMAL_PATTERN
from schemas import decimals

# Any value from 1e-8 to 1e20, written with any exponent (as a NUMERIC comes back from asyncpg).
digits = st.integers(min_value=1, max_value=10**28)
exponents = st.integers(min_value=-36, max_value=20)
values = st.builds(lambda d, e: Decimal(d).scaleb(e), digits, exponents).filter(
    lambda v: Decimal("1e-8") <= v <= Decimal("1e20")
)


@given(values)
def test_plain_is_fixed_point_and_round_trips(value: Decimal) -> None:
    text = decimals.plain(value)
    assert "E" not in text.upper()
    assert Decimal(text) == value
    assert re.match(DECIMAL_PATTERN, text), text


@given(values, values)
def test_products_and_sums_of_long_values_are_exact(left: Decimal, right: Decimal) -> None:
    with localcontext() as context:
        context.prec = 500
        product, total = left * right, left + right
    assert decimals.multiply(left, right) == product
    assert decimals.add(left, right) == total


@given(st.lists(values, min_size=2, max_size=12))
def test_a_moving_average_over_two_values_is_exact(closes: list[Decimal]) -> None:
    averages = moving_average(closes, 2)
    with localcontext() as context:
        context.prec = 500
        expected = [None] + [(a + b) / 2 for a, b in itertools.pairwise(closes)]
    assert averages == expected


@given(values, values)
def test_the_live_stream_prints_plain_decimals(price: Decimal, quantity: Decimal) -> None:
    row = {
        "symbol": "BTCUSDT",
        "price": price,
        "quantity": quantity,
        "trade_id": 1,
        "trade_time": datetime(2025, 7, 3, tzinfo=UTC),
    }
    event = price_json(row)
    assert event["price"] == decimals.plain(price) and event["quantity"] == decimals.plain(quantity)
