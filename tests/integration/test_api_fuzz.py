"""Fuzzing the OpenAPI schema with schemathesis: no input produces a server error, and every
answer matches the documented status codes, content types and response schemas.

Runs against the ASGI app (no sockets) over a real database holding a little data, so that
valid requests reach the queries. Every operation gets a bounded number of valid and of invalid
requests, derandomized so that a run is repeatable.

(schemathesis.pytest.from_fixture would give one test per operation, but fails under pytest 9
with "'Function' object has no attribute '_nodeid'"; driving hypothesis here keeps the
function-scoped database fixture.)

The second test checks that every schema-valid request is accepted (positive_data_acceptance) on
every operation. Some rules no OpenAPI schema can express (an end after its start, a range within
the endpoint's limit, Binance's parameter combinations): a hook on that test's schema alone makes
its positive requests obey them (tests/integration/fuzz_rules.py).
"""

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.hooks import HookContext

from api.app import create_app
from fake_binance.exchange_info import load_exchange_info
from tests.integration.api_helpers import TradeRow, api_settings, migrated, to_ms
from tests.integration.fuzz_rules import rules_by_path

pytestmark = pytest.mark.integration

T0 = to_ms(datetime(2025, 7, 3, 8, 30, tzinfo=UTC))
EXAMPLES_PER_OPERATION_AND_MODE = 40
ACCEPTANCE_EXAMPLES_PER_OPERATION = 100
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {"enabled": False},
            # An invalid request may also be refused for its size (413, 414).
            "negative_data_rejection": {
                "expected-statuses": [400, 401, 403, 404, 405, 406, 409, 413, 414, 415, 422, 428, 429]
            },
        }
    }
)


@pytest.fixture()
def api_app(database: dict[str, str]) -> Iterator[FastAPI]:
    store = migrated(database)
    store.trades(
        [
            TradeRow("BTCUSDT", 10 + i, Decimal("61928.31") + i, Decimal("0.01"), T0 + i * 1300, i % 2 == 0)
            for i in range(200)
        ]
    )
    store.symbols([e for e in load_exchange_info().document(0)["symbols"] if e["symbol"] in ("BTCUSDT", "ETHUSDT")])
    app = create_app(api_settings(database))
    yield app
    # An AsyncEngine: its pool closes in a coroutine.
    asyncio.run(app.state.engine.dispose())


def test_no_input_produces_a_server_error(api_app: FastAPI) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", api_app, config=CONFIG)
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 20
    failures: list[str] = []
    for operation in operations:
        # Without parameters there is no invalid request to make.
        modes = (
            [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
            if any(operation.iter_parameters())
            else [GenerationMode.POSITIVE]
        )
        for mode in modes:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES_PER_OPERATION_AND_MODE,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def check(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
                case.call_and_validate()

            try:
                check()
            except (Exception, BaseExceptionGroup) as failure:  # report every operation's failures together
                failures.append(f"{operation.label} ({mode.value}): {failure}")
    assert not failures, "\n\n".join(failures)


# Answers that depend on what is stored, not on the request, and only where a symbol is asked
# about: /v1 answers 404 for a symbol with no trades, /api/v3 Binance's 400 -1121 "Invalid symbol."
# Every other operation must answer a schema-valid request with a 2xx.
STORE_DEPENDENT_404 = (
    "/v1/prices/latest",
    "/v1/prices/at",
    "/v1/prices/minmax",
    "/v1/candles",
    "/v1/indicators/sma",
    "/v1/stats",
    "/v1/trades",
    "/v1/reconcile",
    "/v1/coverage",
)
INVALID_SYMBOL_400 = (
    "/api/v3/exchangeInfo",
    "/api/v3/klines",
    "/api/v3/uiKlines",
    "/api/v3/trades",
    "/api/v3/historicalTrades",
    "/api/v3/aggTrades",
    "/api/v3/ticker/price",
)


def _acceptance(expected: list[str]) -> dict[str, Any]:
    return {"checks": {"positive_data_acceptance": {"enabled": True, "expected-statuses": expected}}}


ACCEPTANCE = SchemathesisConfig.from_dict(
    {
        **_acceptance(["2xx"]),
        "operations": [{"include-path": path, **_acceptance(["2xx", "404"])} for path in STORE_DEPENDENT_404]
        + [{"include-path": path, **_acceptance(["2xx", "400"])} for path in INVALID_SYMBOL_400],
    }
)


def test_every_schema_valid_request_is_accepted(api_app: FastAPI) -> None:
    """positive_data_acceptance on every operation, its positive requests narrowed to the rules
    across parameters that OpenAPI cannot state (tests/integration/fuzz_rules.py)."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", api_app, config=ACCEPTANCE)
    rules = rules_by_path(api_app.state.settings)

    # Registered on this schema only: the fuzz test above keeps its unrestricted input.
    @schema.hook
    def map_query(context: HookContext, query: dict[str, Any] | None) -> dict[str, Any] | None:
        assert context.operation is not None
        if query is not None:
            for rule in rules.get(context.operation.path, []):
                rule(query)
        return query

    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    paths = {operation.path for operation in operations}
    assert set(rules) | set(STORE_DEPENDENT_404) | set(INVALID_SYMBOL_400) <= paths
    assert len(operations) >= 20
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
        @settings(
            max_examples=ACCEPTANCE_EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
            response = case.call_and_validate()
            # A 400 under /api/v3 is allowed for an unknown symbol only, not for any other code.
            if response.status_code == 400:
                assert response.json() == {"code": -1121, "msg": "Invalid symbol."}, (
                    f"schema-valid request rejected: {response.text}"
                )

        try:
            check()
        except (Exception, BaseExceptionGroup) as failure:
            failures.append(f"{operation.label}: {failure}")
    assert not failures, "\n\n".join(failures)
