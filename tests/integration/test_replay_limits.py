"""A replay connection's control messages, pings, bad requests, its cap and slow clients, against
the real server on a real PostgreSQL: clear error frames or close reasons, never a crash."""

from __future__ import annotations

import asyncio
import json
import socket
from decimal import Decimal
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from replay.request import PARAMETERS
from tests.conftest import wait_until
from tests.integration.api_helpers import TradeRow, migrated
from tests.integration.replay_helpers import running_replay, trade_frame, wire

pytestmark = pytest.mark.integration

T0 = 1_763_840_525_123
RANGE = "start=2025-11-22T19:42:00&end=2025-11-22T20:00:00"


def trades(symbol: str, count: int, spacing_ms: int = 10) -> list[TradeRow]:
    return [
        TradeRow(symbol, n + 1, Decimal("84515.96000000"), Decimal("0.00120000"), T0 + n * spacing_ms, n % 2 == 0)
        for n in range(count)
    ]


async def closed(ws: ClientConnection) -> tuple[int | None, str | None]:
    """Reads until the server closes; its close code and reason."""
    with pytest.raises(ConnectionClosed):
        while True:
            await ws.recv()
    return ws.close_code, ws.close_reason


def test_subscribe_list_and_unsubscribe_get_binances_replies(database):
    store = migrated(database)
    btc = trades("BTCUSDT", 5)
    store.trades(btc)

    async def talk(url: str) -> list[str | bytes]:
        async with connect(f"{url}/ws?{RANGE}&speed=0") as ws:
            await ws.send('{"method":"LIST_SUBSCRIPTIONS","id":1}')
            replies = [await ws.recv()]
            await ws.send('{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":2}')
            replies += [await ws.recv() for _ in range(1 + len(btc))]
            return replies

    with running_replay(database) as replay:
        replies = asyncio.run(talk(replay.url))
    assert replies == [
        '{"result":[],"id":1}',
        '{"result":null,"id":2}',
        *(wire(trade_frame(t)) for t in btc),
    ]


def test_list_subscriptions_while_playing_and_unsubscribe_ends_the_stream(database):
    store = migrated(database)
    store.trades(trades("BTCUSDT", 20, spacing_ms=1000))

    async def talk(url: str) -> tuple[list[object], tuple[int | None, str | None]]:
        # Real time: 20 s of trades, so the replay is still playing when asked.
        async with connect(f"{url}/stream?streams=btcusdt@trade&{RANGE}&speed=1") as ws:
            await ws.recv()
            await ws.send('{"method":"LIST_SUBSCRIPTIONS","id":"a"}')
            listed = json.loads(await ws.recv())
            await ws.send('{"method":"UNSUBSCRIBE","params":["btcusdt@trade"],"id":"b"}')
            unsubscribed = json.loads(await ws.recv())
            return [listed, unsubscribed], await closed(ws)

    with running_replay(database) as replay:
        replies, close = asyncio.run(talk(replay.url))
    assert replies == [{"result": ["btcusdt@trade"], "id": "a"}, {"result": None, "id": "b"}]
    assert close == (1000, "end of replay")


def test_invalid_json_gets_binances_error_frame(database):
    migrated(database).trades(trades("BTCUSDT", 3, spacing_ms=5000))

    async def talk(url: str) -> list[str | bytes]:
        async with connect(f"{url}/ws/btcusdt@trade?{RANGE}&speed=1") as ws:
            await ws.recv()
            await ws.send("{not json")
            await ws.send('{"method":"SUBSCRIBE","params":["btcusdt@depth"],"id":7}')
            return [await ws.recv(), await ws.recv()]

    with running_replay(database) as replay:
        replies = asyncio.run(talk(replay.url))
    assert replies == [
        '{"error":{"code":3,"msg":"Invalid JSON: expecting property name enclosed in double quotes'
        ' at line 1 column 2"}}',
        '{"error":{"code":2,"msg":"Invalid request: invalid stream"},"id":7}',
    ]


def test_more_than_five_messages_a_second_close_the_connection(database):
    migrated(database).trades(trades("BTCUSDT", 3, spacing_ms=5000))

    async def flood(url: str) -> tuple[int | None, str | None]:
        async with connect(f"{url}/ws/btcusdt@trade?{RANGE}&speed=1") as ws:
            for n in range(8):
                await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": n}))
            return await closed(ws)

    with running_replay(database) as replay:
        assert asyncio.run(flood(replay.url)) == (1008, "Too many requests")


def test_a_ping_is_answered_with_its_payload(database):
    migrated(database).trades(trades("BTCUSDT", 3, spacing_ms=5000))

    async def ping(url: str) -> float:
        async with connect(f"{url}/ws/btcusdt@trade?{RANGE}&speed=1") as ws:
            pong = await ws.ping(b"1763840525123")
            return await asyncio.wait_for(pong, 10)

    with running_replay(database) as replay:
        assert asyncio.run(ping(replay.url)) >= 0


def test_an_unknown_path_is_a_404(database):
    migrated(database)

    async def attempt(url: str) -> int:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"{url}/api/v3/trades"):
                pass
        return refused.value.response.status_code

    with running_replay(database) as replay:
        assert asyncio.run(attempt(replay.url)) == 404


bad_values = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    parameter=st.sampled_from([name for name in PARAMETERS if name != "streams"] + ["limit", "x"]),
    value=bad_values,
)
def test_bad_parameters_close_with_a_reason_naming_them_and_the_server_goes_on(database_with_replay, parameter, value):
    url, good = database_with_replay

    async def attempt() -> tuple[int | None, str | None, list[str]]:
        async with connect(f"{url}/ws/btcusdt@trade?{RANGE}&speed=0&{quote(parameter)}={quote(value)}") as ws:
            frames: list[str] = []
            try:
                while True:
                    frames.append(await ws.recv())  # type: ignore[arg-type]
            except ConnectionClosed:
                pass
            return ws.close_code, ws.close_reason, frames

    code, reason, frames = asyncio.run(attempt())
    if code == 1008:
        assert reason and (reason.startswith(f"{parameter}: ") or reason.startswith("unknown parameter"))
        assert frames == []
    else:
        # A value that happens to be valid: then a normal replay.
        assert code == 1000, (code, reason)

    # The server still serves.
    async def good_replay() -> int:
        async with connect(good) as ws:
            await closed(ws)
            return ws.close_code or 0

    assert asyncio.run(good_replay()) == 1000


@pytest.fixture(scope="module")
def database_with_replay(stack_env):
    from tests.conftest import create_database, drop_database

    urls = create_database(stack_env)
    try:
        migrated(urls).trades(trades("BTCUSDT", 3))
        with running_replay(urls) as replay:
            yield replay.url, f"{replay.url}/ws/btcusdt@trade?{RANGE}&speed=0"
    finally:
        drop_database(stack_env, urls)


def test_200_connections_past_the_cap_are_refused_with_1013_and_the_rest_play(database):
    store = migrated(database)
    store.trades(trades("BTCUSDT", 4, spacing_ms=1000))

    async def crowd(url: str) -> list[int | None]:
        async def one() -> int | None:
            async with connect(f"{url}/ws/btcusdt@trade?{RANGE}&speed=1", open_timeout=60) as ws:
                try:
                    while True:
                        await ws.recv()
                except ConnectionClosed:
                    return ws.close_code

        return list(await asyncio.gather(*(one() for _ in range(200))))

    with running_replay(database, max_replays=20) as replay:
        codes = asyncio.run(crowd(replay.url))
        assert codes.count(1000) >= 20
        assert set(codes) <= {1000, 1013}
        assert codes.count(1013) == replay.server.metrics.registry.get_sample_value(
            "replay_connections_refused_total", {"reason": "too_many_replays"}
        )
        # Each replay gives its slot back once its handler has returned (after the close handshake).
        wait_until(lambda: replay.server.active == 0, 10, "every replay to give its slot back")


def test_a_client_that_never_reads_is_cut_off_with_4001(database):
    store = migrated(database)
    store.trades(trades("BTCUSDT", 5_000, spacing_ms=1))

    async def never_read(url: str) -> None:
        tiny = socket.socket()
        # A small receive window: the server's buffer fills after a few kilobytes.
        tiny.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        host, port = url.removeprefix("ws://").split(":")
        tiny.connect((host, int(port)))
        async with connect(f"{url}/ws/btcusdt@trade?start=2025-11-22T19:42:00&speed=0", sock=tiny, max_queue=1):
            await asyncio.sleep(6)

    with running_replay(database, client_buffer_bytes=4096, client_stall_s=1.0, close_timeout_s=1.0) as replay:
        asyncio.run(never_read(replay.url))
        assert replay.closes_with(4001) == 1
        # Each replay gives its slot back once its handler has returned (after the close handshake).
        wait_until(lambda: replay.server.active == 0, 10, "every replay to give its slot back")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=st.lists(st.one_of(st.text(max_size=200), st.binary(max_size=50)), min_size=1, max_size=4))
def test_any_message_gets_an_answer_and_the_replay_goes_on(database_with_slow_replay, messages):
    url = database_with_slow_replay

    async def talk() -> tuple[list[object], object]:
        async with connect(url) as ws:
            first = await ws.recv()
            assert "trade" in str(first)
            replies = []
            for message in messages:
                await ws.send(message)
                replies.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
            await ws.send('{"method":"LIST_SUBSCRIPTIONS","id":99}')
            still = json.loads(await asyncio.wait_for(ws.recv(), 10))
            return replies, still

    replies, still = asyncio.run(talk())
    for reply in replies:
        assert isinstance(reply, dict)
        assert "result" in reply or reply["error"]["code"] in (0, 1, 2, 3), reply
    assert isinstance(still, dict) and still.get("id") == 99


@pytest.fixture(scope="module")
def database_with_slow_replay(stack_env):
    from tests.conftest import create_database, drop_database

    urls = create_database(stack_env)
    try:
        # One trade a minute, played in real time: the replay is still playing while it is talked to.
        migrated(urls).trades(trades("BTCUSDT", 10, spacing_ms=60_000))
        with running_replay(urls) as replay:
            yield f"{replay.url}/ws/btcusdt@trade?{RANGE}&speed=1"
    finally:
        drop_database(stack_env, urls)
