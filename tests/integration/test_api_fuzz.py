"""Fuzzing the OpenAPI schema with schemathesis: no input produces a server error, and every
answer matches the documented status codes, content types and response schemas.

Runs against the ASGI app (no sockets) over a real database holding a little data, so that
valid requests reach the queries. Every operation gets a bounded number of valid and of invalid
requests, derandomized so that a run is repeatable.

(schemathesis.pytest.from_fixture would give one test per operation, but fails under pytest 9
with "'Function' object has no attribute '_nodeid'"; driving hypothesis here keeps the
function-scoped database fixture.)

Not checked: that every schema-valid request is accepted (positive_data_acceptance). Some valid
looking requests are rightly refused with a 422 that no OpenAPI schema can express: an end
before its start, a range over the endpoint's limit, a time before 1970.
"""

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig

from api.app import create_app
from fake_binance.exchange_info import load_exchange_info
from tests.integration.api_helpers import TradeRow, api_settings, migrated, to_ms

pytestmark = pytest.mark.integration

T0 = to_ms(datetime(2025, 7, 3, 8, 30, tzinfo=UTC))
EXAMPLES_PER_OPERATION_AND_MODE = 40
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


# Operations whose every rule is one parameter's, which OpenAPI can state: for them any
# schema-valid request must be accepted. A 404 (nothing stored for a valid symbol) depends on the
# data, not the request. The others also refuse combinations (an end not after its start, a
# range over the endpoint's limit), which no OpenAPI schema expresses.
SINGLE_PARAMETER_RULES = ("/v1/prices/latest", "/v1/prices/at", "/v1/prices/minmax", "/v1/symbols", "/health")
ACCEPTANCE = SchemathesisConfig.from_dict(
    {"checks": {"positive_data_acceptance": {"enabled": True, "expected-statuses": ["2xx", "404"]}}}
)


def test_every_schema_valid_request_is_accepted_where_the_schema_states_every_rule(api_app: FastAPI) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", api_app, config=ACCEPTANCE)
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    chosen = [operation for operation in operations if operation.path in SINGLE_PARAMETER_RULES]
    assert len(chosen) == len(SINGLE_PARAMETER_RULES)
    failures: list[str] = []
    for operation in chosen:

        @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
        @settings(
            max_examples=100,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
            case.call_and_validate()

        try:
            check()
        except (Exception, BaseExceptionGroup) as failure:
            failures.append(f"{operation.label}: {failure}")
    assert not failures, "\n\n".join(failures)
