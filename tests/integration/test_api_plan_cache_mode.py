"""The api's connections take the plan_cache_mode of API_DB_PLAN_CACHE_MODE: the generic plan by
default, which plans a statement over the partitioned tables once per connection instead of once
per execution (docs/benchmarks.md, "API at scale")."""

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.api_helpers import asgi_client, migrated

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, "force_generic_plan"),
        ({"db_plan_cache_mode": "auto"}, "auto"),
        ({"db_plan_cache_mode": "force_custom_plan"}, "force_custom_plan"),
    ],
    ids=["default", "auto", "custom"],
)
def test_the_api_connections_take_the_configured_plan_cache_mode(
    database: dict[str, str], overrides: dict[str, str], expected: str
) -> None:
    migrated(database)
    with asgi_client(database, **overrides) as client:
        engine: AsyncEngine = client.app.state.engine  # type: ignore[attr-defined]

        async def shown() -> str:
            async with engine.connect() as connection:
                return str((await connection.execute(text("SHOW plan_cache_mode"))).scalar())

        assert client.portal is not None
        assert client.portal.call(shown) == expected
        # The api still answers through those connections.
        assert client.get("/v1/prices/latest?symbol=BTCUSDT").status_code == 404
