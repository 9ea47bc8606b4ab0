"""Binance's connection limits as the fake enforces them, seen by a real WebSocket client over a real
socket: 1024 streams per connection (in the URL or by SUBSCRIBE), 300 handshakes per 5 minutes per IP
(scaled down here), and the whole market's exchangeInfo."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from fake_binance.server import Endpoints, FakeBinanceThread
from fake_binance.settings import FakeBinanceSettings
from fake_binance.ws_server import MAX_STREAMS

TOO_MANY_STREAMS = {"code": 2, "msg": "Invalid request: too many streams"}


@pytest.fixture
def fake() -> Iterator[Endpoints]:
    settings = FakeBinanceSettings.model_validate(
        {
            "host": "127.0.0.1",
            "ws_port": 0,
            "rest_port": 0,
            "market": "all",
            "market_trades_per_second": 50,
            "market_top_trades_per_second": 5,
            "market_book_tickers_per_second": 0,
            "ws_connection_attempts_per_5min": 4,
        }
    )
    with FakeBinanceThread(settings) as endpoints:
        yield endpoints


def trading_streams(endpoints: Endpoints, count: int) -> list[str]:
    info = httpx.get(f"{endpoints.rest_url}/api/v3/exchangeInfo", params={"symbolStatus": "TRADING"}).json()
    names = [f"{entry['symbol'].lower()}@{kind}" for entry in info["symbols"] for kind in ("trade", "aggTrade")]
    return names[:count]


def url(endpoints: Endpoints, streams: list[str]) -> str:
    return f"{endpoints.ws_url}/stream?streams={'/'.join(streams)}"


def test_the_whole_market_is_listed(fake: Endpoints) -> None:
    info = httpx.get(f"{fake.rest_url}/api/v3/exchangeInfo").json()
    statuses = [entry["status"] for entry in info["symbols"]]
    assert len(statuses) == 1695 and statuses.count("TRADING") == 1262


def test_a_url_of_more_than_1024_streams_is_refused(fake: Endpoints) -> None:
    async def connect() -> InvalidStatus:
        with pytest.raises(InvalidStatus) as refused:
            async with websockets.connect(url(fake, trading_streams(fake, MAX_STREAMS + 1))):
                pass
        return refused.value

    refusal = asyncio.run(connect())
    assert refusal.response.status_code == 400
    assert json.loads(refusal.response.body or b"{}")["error"] == TOO_MANY_STREAMS


def test_a_subscription_past_1024_streams_is_refused_and_the_1024_go_on(fake: Endpoints) -> None:
    streams = trading_streams(fake, MAX_STREAMS + 1)

    async def subscribe_one_more() -> tuple[dict[str, object], dict[str, object]]:
        async with websockets.connect(url(fake, streams[:MAX_STREAMS]), max_size=2**20) as ws:
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": [streams[-1]], "id": 9}))
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 10}))
            replies: dict[int, dict[str, object]] = {}
            while len(replies) < 2:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if "id" in frame:
                    replies[frame["id"]] = frame
            return replies[9], replies[10]

    refused, listed = asyncio.run(subscribe_one_more())
    assert refused == {"error": TOO_MANY_STREAMS, "id": 9}
    assert listed["result"] == streams[:MAX_STREAMS]


def test_handshakes_over_the_ip_s_budget_are_refused_with_429(fake: Endpoints) -> None:
    async def attempts() -> list[int]:
        statuses = []
        for _ in range(6):
            try:
                async with websockets.connect(url(fake, ["btcusdt@trade"])):
                    statuses.append(101)
            except InvalidStatus as refused:
                statuses.append(refused.response.status_code)
                assert int(refused.response.headers["Retry-After"]) > 0
                assert json.loads(refused.response.body or b"{}")["code"] == -1003
        return statuses

    assert asyncio.run(attempts()) == [101, 101, 101, 101, 429, 429]
    assert httpx.get(f"{fake.rest_url}/fake/state").json()["connections_refused"] == 2


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"symbol": "NOSUCHUSDT"}, "give `like`"),
        ({"symbol": "NEWUSDT", "like": "NOSUCHUSDT"}, "not in exchangeInfo"),
        ({"symbol": "BTCUSDT", "status": "HALTED"}, "status must be one of"),
        ({"symbol": "NEWUSDT", "like": "BTCUSDT", "status": "BREAK"}, "listed TRADING"),
        ({"symbol": "BTCUSDT", "trades_per_second": -1}, "trades_per_second"),
        ({}, "symbol"),
    ],
    ids=["unknown-without-like", "unknown-like", "bad-status", "new-not-trading", "negative-rate", "no-symbol"],
)
def test_the_symbol_control_names_what_is_wrong(fake: Endpoints, body: dict[str, object], reason: str) -> None:
    response = httpx.post(f"{fake.rest_url}/fake/symbol", json=body)
    assert response.status_code == 400 and reason in response.json()["error"]


def test_a_halted_symbol_is_listed_as_such(fake: Endpoints) -> None:
    assert httpx.post(f"{fake.rest_url}/fake/symbol", json={"symbol": "ETHUSDT", "status": "HALT"}).status_code == 200
    info = httpx.get(f"{fake.rest_url}/api/v3/exchangeInfo", params={"symbol": "ETHUSDT"}).json()
    assert info["symbols"][0]["status"] == "HALT"
