"""Trade times that go backwards as trade ids grow (milliseconds sent under a microsecond
header land in January 1970; a clock that jumps back) leave every answer correct: the newest
trade is the latest in time, the price at a second is the last trade before its end, a
range's trades are those with a time in it, nothing else, and each symbol's first and last trade
(/v1/symbols, /v1/status) are its oldest and newest in time. Hypothesis interleaves them."""

import csv
import dataclasses
import io
import itertools
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.api_helpers import TradeRow, asgi_client, migrated, ms_time, to_ms

pytestmark = pytest.mark.integration

T0 = to_ms(datetime(2025, 7, 3, 8, 30, tzinfo=UTC))
# The same wire value read in the wrong unit: T0 in milliseconds read as microseconds.
MISREAD = T0 // 1000

# Offsets from T0 within three minutes (several trades a second, some in the same millisecond),
# and some trades from 1970: in id order, times jump back and forth.
offsets = st.one_of(st.integers(0, 180_000), st.sampled_from([0, 999, 1000, 59_999, 60_000]))
misread = st.integers(0, 5_000).map(lambda ms: MISREAD + ms - T0)


@st.composite
def interleaved(draw: Any) -> list[TradeRow]:
    times = draw(st.lists(st.one_of(offsets, offsets, misread), min_size=2, max_size=40))
    return [
        TradeRow("X", 1000 + index, Decimal(f"{100 + index}.5"), Decimal("0.1"), T0 + offset, index % 2 == 0)
        for index, offset in enumerate(times)
    ]


def newest(trades: Sequence[TradeRow]) -> TradeRow | None:
    return max(trades, key=lambda t: (t.trade_time_ms, t.trade_id), default=None)


EDGES = ("first_trade_id", "first_trade_time", "last_trade_id", "last_trade_time", "trade_count")


def edges(trades: Sequence[TradeRow]) -> dict[str, Any]:
    """A symbol's entry in /v1/symbols: its oldest and newest trade in time (the smallest and the
    largest id among equal times), and how many it has."""
    first = min(trades, key=lambda t: (t.trade_time_ms, t.trade_id))
    last = max(trades, key=lambda t: (t.trade_time_ms, t.trade_id))
    values = (first.trade_id, iso(first.trade_time_ms), last.trade_id, iso(last.trade_time_ms), len(trades))
    return dict(zip(EDGES, values, strict=True))


def listings(client: TestClient) -> dict[str, dict[str, Any]]:
    """Each symbol's edges as /v1/symbols and /v1/status answer them; each symbol listed once by each."""
    listed = get(client, "/v1/symbols")["symbols"]
    freshness = get(client, "/v1/status")["symbols"]
    assert len({s["symbol"] for s in listed}) == len(listed) == len(freshness) == len({s["symbol"] for s in freshness})
    answers = {s["symbol"]: {key: s[key] for key in EDGES} for s in listed}
    for s in freshness:
        answers[s["symbol"]]["status_last"] = (s["last_trade_id"], s["last_trade_time"])
    return answers


def expected_listing(trades: Sequence[TradeRow]) -> dict[str, Any]:
    entry = edges(trades)
    return {**entry, "status_last": (entry["last_trade_id"], entry["last_trade_time"])}


def get(client: TestClient, path: str, **params: Any) -> Any:
    response = client.get(path, params=params)
    assert response.status_code in (200, 404), (path, params, response.text)
    return response.json() if response.status_code == 200 else None


def all_pages(client: TestClient, symbol: str, start: int, end: int) -> list[int]:
    ids: list[int] = []
    from_id = None
    for _ in range(200):
        params = {"symbol": symbol, "start": start, "end": end, "format": "json", "limit": 3}
        page = get(client, "/v1/trades", **params, **({"from_id": from_id} if from_id else {}))
        ids += [t["trade_id"] for t in page["trades"]]
        if (from_id := page["next_from_id"]) is None:
            return ids
    raise AssertionError("pages never ended")


def test_answers_are_right_whatever_the_order_of_times_and_ids(database: dict[str, str]) -> None:
    store = migrated(database)
    names = (f"I{n}USDT" for n in itertools.count())
    stored: dict[str, list[TradeRow]] = {}
    with asgi_client(database) as client:

        @given(trades=interleaved(), data=st.data())
        @settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def check(trades: list[TradeRow], data: st.DataObject) -> None:
            symbol = next(names)
            trades = [dataclasses.replace(t, symbol=symbol) for t in trades]
            store.trades(trades)
            stored[symbol] = trades
            answers = listings(client)
            assert answers.keys() == stored.keys()
            assert answers[symbol] == expected_listing(trades)

            latest = get(client, "/v1/prices/latest", symbol=symbol)
            expected = newest(trades)
            assert expected is not None and latest["trade_id"] == expected.trade_id
            every = {p["symbol"]: p["trade_id"] for p in get(client, "/v1/prices/latest")["prices"]}
            assert every[symbol] == expected.trade_id
            assert get(client, "/api/v3/ticker/price", symbol=symbol)["price"].startswith(f"{expected.price}")

            for _ in range(3):
                second = data.draw(st.sampled_from([t.trade_time_ms // 1000 * 1000 for t in trades] + [T0 + 200_000]))
                at = get(client, "/v1/prices/at", symbol=symbol, timestamp=second)
                before = newest([t for t in trades if t.trade_time_ms < second + 1000])
                assert (at and at["trade_id"]) == (before and before.trade_id), second

            start = data.draw(st.sampled_from(sorted({t.trade_time_ms for t in trades})))
            end = start + data.draw(st.sampled_from([1, 500, 1000, 1500, 60_000, 61_001, 400_000]))
            inside = sorted(t.trade_id for t in trades if start <= t.trade_time_ms < end)
            assert all_pages(client, symbol, start, end) == inside
            exported = client.get("/v1/trades", params={"symbol": symbol, "start": start, "end": end})
            assert [int(row["trade_id"]) for row in csv.DictReader(io.StringIO(exported.text))] == inside
            stats = get(client, "/v1/stats", symbol=symbol, start=start, end=end)
            assert stats["trade_count"] == len(inside)
            chosen = [t for t in trades if start <= t.trade_time_ms < end]
            assert stats["first_trade_time"] == iso(min(t.trade_time_ms for t in chosen))
            assert stats["last_trade_time"] == iso(max(t.trade_time_ms for t in chosen))

        check()
        # Every symbol at once, beside many others: each row holds its own symbol's trades.
        assert listings(client) == {symbol: expected_listing(trades) for symbol, trades in stored.items()}


def iso(milliseconds: int) -> str:
    return (ms_time(milliseconds)).isoformat().replace("+00:00", "Z")
