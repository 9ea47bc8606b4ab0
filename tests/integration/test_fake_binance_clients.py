"""Real clients against the fake exchange over real sockets on 127.0.0.1.

Each test starts its own fake in a background thread (ports chosen by binding port 0) so that
trade ids start at 1, and stops it afterwards. Every wait is a poll with a deadline.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
import websockets
from binance.client import Client
from websockets.asyncio.client import ClientConnection

from fake_binance.server import Endpoints, FakeBinanceThread
from fake_binance.settings import FakeBinanceSettings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "binance"
RECORDING = FIXTURES / "recorded-combined-stream-2021-10-12.jsonl"
SHIPPED_EXCHANGE_INFO = Path(__file__).resolve().parents[2] / "fake_binance" / "data" / "exchangeInfo.json"
DEADLINE_S = 15.0
MAX_FRAMES = 5000

StartFake = Callable[..., tuple[FakeBinanceThread, Endpoints]]


@pytest.fixture
def start_fake(tmp_path: Path) -> Iterator[StartFake]:
    """Start fakes with test settings (fast, capped, recorded); all are stopped at teardown."""
    started: list[FakeBinanceThread] = []

    def start(**overrides: Any) -> tuple[FakeBinanceThread, Endpoints]:
        values: dict[str, Any] = {
            "host": "127.0.0.1",
            "ws_port": 0,
            "rest_port": 0,
            "symbols": "BTCUSDT,ETHUSDT",
            "trades_per_second": 40,
            "max_trades": 30,
            "seed": 1,
            "record_path": tmp_path / f"record-{len(started)}.jsonl",
        }
        values.update(overrides)
        fake = FakeBinanceThread(FakeBinanceSettings(**values))
        started.append(fake)
        return fake, fake.start()

    yield start
    for fake in started:
        fake.stop()


async def receive_until(
    ws: ClientConnection, done: Callable[[list[str]], bool], timeout: float = DEADLINE_S
) -> list[str]:
    """Frames received until `done(frames)` holds; fails after `timeout` seconds or MAX_FRAMES."""
    frames: list[str] = []
    deadline = time.monotonic() + timeout
    while not done(frames):
        remaining = deadline - time.monotonic()
        assert remaining > 0 and len(frames) < MAX_FRAMES, f"gave up after {len(frames)} frames"
        message = await asyncio.wait_for(ws.recv(), remaining)
        assert isinstance(message, str), "Binance sends text frames"
        frames.append(message)
    return frames


def trade_ids(frames: list[str], symbol: str) -> list[int]:
    ids = []
    for frame in frames:
        body = json.loads(frame)
        payload = body.get("data", body)
        if payload.get("e") == "trade" and payload["s"] == symbol:
            ids.append(payload["t"])
    return ids


def has_trades(count: int, *symbols: str) -> Callable[[list[str]], bool]:
    return lambda frames: all(len(trade_ids(frames, s)) >= count for s in symbols)


# --- WebSocket ------------------------------------------------------------------------------


def test_combined_stream_wraps_trades_with_consecutive_ids(start_fake: StartFake) -> None:
    _, endpoints = start_fake()

    async def run() -> list[str]:
        async with websockets.connect(f"{endpoints.ws_url}/stream?streams=btcusdt@trade/ethusdt@trade") as ws:
            return await receive_until(ws, has_trades(30, "BTCUSDT", "ETHUSDT"))

    frames = asyncio.run(run())
    for frame in frames:
        body = json.loads(frame)
        assert list(body) == ["stream", "data"]
        assert body["stream"] == body["data"]["s"].lower() + "@trade"
        assert list(body["data"]) == ["e", "E", "s", "t", "p", "q", "T", "m", "M"]
        compact = json.dumps(body["data"], separators=(",", ":"))
        assert frame == '{"stream":"' + body["stream"] + '","data":' + compact + "}"
    assert trade_ids(frames, "BTCUSDT") == list(range(1, 31))
    assert trade_ids(frames, "ETHUSDT") == list(range(1, 31))


def test_raw_stream_sends_bare_payloads(start_fake: StartFake) -> None:
    _, endpoints = start_fake(max_trades=10)

    async def run() -> list[str]:
        async with websockets.connect(f"{endpoints.ws_url}/ws/btcusdt@trade") as ws:
            return await receive_until(ws, has_trades(10, "BTCUSDT"))

    frames = asyncio.run(run())
    assert all(json.loads(frame)["e"] == "trade" for frame in frames)
    assert trade_ids(frames, "BTCUSDT") == list(range(1, 11))


def test_live_subscribe_list_unsubscribe_and_errors(start_fake: StartFake) -> None:
    _, endpoints = start_fake(max_trades=10)

    async def run() -> None:
        async with websockets.connect(f"{endpoints.ws_url}/ws") as ws:
            # An unknown symbol is acknowledged like any stream and simply carries no data.
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["foobarusdt@trade", "btcusdt@trade"], "id": 1}))
            frames = await receive_until(ws, has_trades(10, "BTCUSDT"))
            assert frames[0] == '{"result":null,"id":1}'
            assert trade_ids(frames, "BTCUSDT") == list(range(1, 11))
            assert all(json.loads(f).get("s", "BTCUSDT") == "BTCUSDT" for f in frames[1:])

            await ws.send('{"method":"LIST_SUBSCRIPTIONS","id":2}')
            assert await asyncio.wait_for(ws.recv(), 5) == '{"result":["foobarusdt@trade","btcusdt@trade"],"id":2}'
            await ws.send('{"method":"UNSUBSCRIBE","params":["foobarusdt@trade"],"id":"u-3"}')
            assert await asyncio.wait_for(ws.recv(), 5) == '{"result":null,"id":"u-3"}'
            await asyncio.sleep(1.1)  # Binance allows 5 incoming messages per second
            await ws.send("{oops")
            error = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert error["error"]["code"] == 3 and error["error"]["msg"].startswith("Invalid JSON")
            await ws.send('{"method":"SUBSCRIBE","params":["btcusdt@bogus"],"id":4}')
            assert json.loads(await asyncio.wait_for(ws.recv(), 5)) == {
                "error": {"code": 2, "msg": "Invalid request: invalid stream"},
                "id": 4,
            }

    asyncio.run(run())


def test_more_than_five_messages_a_second_closes_the_connection(start_fake: StartFake) -> None:
    _, endpoints = start_fake(max_trades=1)

    async def run() -> int | None:
        async with websockets.connect(f"{endpoints.ws_url}/ws") as ws:
            for request_id in range(6):
                await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": request_id}))
            with pytest.raises(websockets.ConnectionClosed):
                await receive_until(ws, lambda frames: False, timeout=5)
            return ws.close_code

    assert asyncio.run(run()) == 1008


def test_all_viewers_see_the_same_market(start_fake: StartFake) -> None:
    _, endpoints = start_fake(max_trades=40, trades_per_second=30)

    async def run() -> tuple[list[str], list[str]]:
        async with websockets.connect(f"{endpoints.ws_url}/ws/btcusdt@trade") as first:
            await receive_until(first, has_trades(3, "BTCUSDT"))
            async with websockets.connect(f"{endpoints.ws_url}/stream?streams=btcusdt@trade") as second:
                late = await receive_until(second, has_trades(1, "BTCUSDT"))
                from_first = await receive_until(first, has_trades(37, "BTCUSDT"))
                late += await receive_until(second, lambda f: (trade_ids(late + f, "BTCUSDT") or [0])[-1] == 40)
                return from_first, late

    from_first, late = asyncio.run(run())
    first_payloads = {json.loads(f)["t"]: f for f in from_first}
    late_ids = trade_ids(late, "BTCUSDT")
    assert late_ids == list(range(late_ids[0], 41))
    for frame in late:
        payload = json.loads(frame)["data"]
        if payload["t"] in first_payloads:
            assert json.dumps(payload, separators=(",", ":")) == first_payloads[payload["t"]]


def test_server_pings_and_drops_connections_that_do_not_answer(start_fake: StartFake) -> None:
    _, endpoints = start_fake(ping_interval_s=0.3, pong_timeout_s=0.8)
    port = endpoints.ws_port

    async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
        head = await reader.readexactly(2)
        length = head[1] & 0x7F
        if length == 126:
            length = int.from_bytes(await reader.readexactly(2), "big")
        elif length == 127:
            length = int.from_bytes(await reader.readexactly(8), "big")
        return head[0] & 0x0F, await reader.readexactly(length)

    async def silent_client() -> list[tuple[int, bytes]]:
        # A bare client that never answers pings, which no WebSocket library lets one be.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        assert b" 101 " in await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        frames: list[tuple[int, bytes]] = []
        try:
            while not frames or frames[-1][0] != 0x8:
                frames.append(await asyncio.wait_for(read_frame(reader), 5))
        finally:
            writer.close()
        return frames

    async def polite_client() -> str | bytes:
        async with websockets.connect(f"{endpoints.ws_url}/ws", ping_interval=None) as ws:
            await asyncio.sleep(1.5)  # several server pings, each answered by the library
            await ws.send('{"method":"LIST_SUBSCRIPTIONS","id":1}')
            return await asyncio.wait_for(ws.recv(), 5)

    async def run() -> tuple[list[tuple[int, bytes]], str | bytes]:
        return await asyncio.gather(silent_client(), polite_client())

    frames, reply = asyncio.run(run())
    pings = [payload for opcode, payload in frames if opcode == 0x9]
    assert pings and all(payload.isdigit() for payload in pings)
    assert frames[-1][0] == 0x8 and int.from_bytes(frames[-1][1][:2], "big") == 1008
    assert reply == '{"result":[],"id":1}'


def test_stop_announces_server_shutdown(start_fake: StartFake) -> None:
    fake, endpoints = start_fake(max_trades=2)

    async def run_collecting() -> list[str]:
        collected: list[str] = []
        async with websockets.connect(f"{endpoints.ws_url}/stream?streams=btcusdt@trade") as ws:
            await receive_until(ws, has_trades(2, "BTCUSDT"))
            stopping = asyncio.get_running_loop().run_in_executor(None, fake.stop)
            deadline = time.monotonic() + 10
            try:
                while time.monotonic() < deadline:
                    collected.append(str(await asyncio.wait_for(ws.recv(), deadline - time.monotonic())))
            except websockets.ConnectionClosed:
                pass
            await stopping
        return collected

    frames = asyncio.run(run_collecting())
    assert len(frames) == 1
    body = json.loads(frames[0])
    assert body["stream"] == "!serverShutdown"
    assert list(body["data"]) == ["e", "E"] and body["data"]["e"] == "serverShutdown"


# --- REST with python-binance ------------------------------------------------------------------


def expected_klines(trades: list[dict[str, Any]], interval_ms: int, last_open: int) -> list[list[Any]]:
    """Klines computed here, independently of the fake, from the trades the WebSocket sent."""
    rows: list[list[Any]] = []
    open_ms = trades[0]["T"] // interval_ms * interval_ms
    index, close = 0, Decimal(0)
    while open_ms <= last_open:
        bucket = []
        while index < len(trades) and trades[index]["T"] < open_ms + interval_ms:
            bucket.append(trades[index])
            index += 1
        prices = [Decimal(t["p"]) for t in bucket] or [close]  # an empty kline is flat at the last close
        volume = sum((Decimal(t["q"]) for t in bucket), Decimal(0))
        quote = sum((Decimal(t["p"]) * Decimal(t["q"]) for t in bucket), Decimal(0))
        taker = [t for t in bucket if not t["m"]]
        taker_volume = sum((Decimal(t["q"]) for t in taker), Decimal(0))
        taker_quote = sum((Decimal(t["p"]) * Decimal(t["q"]) for t in taker), Decimal(0))
        rows.append([open_ms, prices[0], max(prices), min(prices), prices[-1], volume,
                     open_ms + interval_ms - 1, quote, len(bucket), taker_volume, taker_quote])  # fmt: skip
        close = prices[-1]
        open_ms += interval_ms
    return rows


def as_decimals(row: list[Any]) -> list[Any]:
    assert isinstance(row[0], int) and isinstance(row[6], int) and isinstance(row[8], int) and row[11] == "0"
    return [Decimal(v) if isinstance(v, str) else v for v in row[:11]]


def test_python_binance_reads_what_the_websocket_sent(start_fake: StartFake) -> None:
    _, endpoints = start_fake(max_trades=40)

    async def run() -> list[str]:
        url = f"{endpoints.ws_url}/stream?streams=btcusdt@trade/btcusdt@aggTrade/ethusdt@trade"

        def done(frames: list[str]) -> bool:
            aggs = [json.loads(f)["data"] for f in frames if '"e":"aggTrade"' in f]
            return has_trades(40, "BTCUSDT", "ETHUSDT")(frames) and bool(aggs) and aggs[-1]["l"] == 40

        async with websockets.connect(url) as ws:
            return await receive_until(ws, done)

    frames = asyncio.run(run())
    payloads = [json.loads(f)["data"] for f in frames]
    trades = [p for p in payloads if p["e"] == "trade" and p["s"] == "BTCUSDT"]
    aggs = [p for p in payloads if p["e"] == "aggTrade"]

    client = Client(ping=False)
    client.API_URL = endpoints.api_url

    info = client.get_exchange_info()
    assert info["timezone"] == "UTC" and {"BTCUSDT", "ETHUSDT", "BNBBTC"} <= {s["symbol"] for s in info["symbols"]}
    recorded = {s["symbol"]: s for s in json.loads(SHIPPED_EXCHANGE_INFO.read_text())["symbols"]}
    assert client.get_symbol_info("BTCUSDT") == recorded["BTCUSDT"]

    historical = client.get_historical_trades(symbol="BTCUSDT", fromId=1, limit=1000)
    assert [(h["id"], h["price"], h["qty"], h["time"], h["isBuyerMaker"]) for h in historical] == [
        (t["t"], t["p"], t["q"], t["T"], t["m"]) for t in trades
    ]
    for row in historical:
        assert Decimal(row["quoteQty"]) == Decimal(row["price"]) * Decimal(row["qty"])
    assert [r["id"] for r in client.get_recent_trades(symbol="BTCUSDT", limit=5)] == [36, 37, 38, 39, 40]

    rest_aggs = client.get_aggregate_trades(symbol="BTCUSDT", fromId=1)
    assert rest_aggs == [{k: a[k] for k in ("a", "p", "q", "f", "l", "T", "m", "M")} for a in aggs]
    assert [a["a"] for a in rest_aggs] == list(range(1, len(rest_aggs) + 1))
    by_time = client.get_aggregate_trades(symbol="BTCUSDT", startTime=aggs[0]["T"], endTime=aggs[-1]["T"])
    assert by_time == rest_aggs

    last_trade_time = trades[-1]["T"]
    minute_rows = client.get_klines(symbol="BTCUSDT", interval="1m")
    expected_minutes = expected_klines(trades, 60_000, minute_rows[-1][0])
    assert [as_decimals(r) for r in minute_rows] == expected_minutes

    # Asks for the earliest kline first (startTime=0&limit=1), then pages with limit=1000.
    second_rows = client.get_historical_klines("BTCUSDT", "1s", start_str=trades[0]["T"] - 3_600_000)
    assert second_rows[0][0] == trades[0]["T"] // 1000 * 1000
    assert second_rows[-1][0] >= last_trade_time // 1000 * 1000
    assert [as_decimals(r) for r in second_rows] == expected_klines(trades, 1000, second_rows[-1][0])

    price = client.get_symbol_ticker(symbol="BTCUSDT")
    assert price == {"symbol": "BTCUSDT", "price": trades[-1]["p"]}


def test_record_file_is_what_the_websocket_clients_received(start_fake: StartFake, tmp_path: Path) -> None:
    record = tmp_path / "ground-truth.jsonl"
    _, endpoints = start_fake(max_trades=25, record_path=record)

    async def run() -> list[str]:
        async with websockets.connect(f"{endpoints.ws_url}/stream?streams=btcusdt@trade/ethusdt@trade") as ws:
            return await receive_until(ws, has_trades(25, "BTCUSDT", "ETHUSDT"))

    frames = asyncio.run(run())
    received = [frame[frame.index(',"data":') + len(',"data":') : -1] for frame in frames]
    deadline = time.monotonic() + 5
    while len(record.read_text().splitlines()) < 50 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert record.read_text().splitlines() == received


# --- REST errors and headers -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/v3/trades?symbol=NOSUCHCOIN", -1121),
        ("/v3/trades?symbol=btcusdt", -1100),
        ("/v3/trades", -1102),
        ("/v3/trades?symbol=BTCUSDT&limit=1001", -1130),
        ("/v3/trades?symbol=BTCUSDT&limit=ten", -1100),
        ("/v3/trades?symbol=BTCUSDT&symbol=ETHUSDT", -1101),
        ("/v3/klines?symbol=BTCUSDT", -1102),
        ("/v3/klines?symbol=BTCUSDT&interval=2m", -1120),
        ("/v3/aggTrades?symbol=BTCUSDT&fromId=1&startTime=1", -1128),
        ('/v3/exchangeInfo?symbols=["BTCUSDT","NOPE"]', -1121),
        ("/v3/exchangeInfo?symbols=BTCUSDT", -1100),
    ],
)
def test_rest_errors_use_binance_codes(start_fake: StartFake, path: str, code: int) -> None:
    _, endpoints = start_fake(max_trades=1)
    response = requests.get(endpoints.api_url + path, timeout=5)
    assert response.status_code == 400
    assert list(response.json()) == ["code", "msg"] and response.json()["code"] == code
    assert int(response.headers["X-MBX-USED-WEIGHT-1M"]) > 0


def test_rest_basics_and_weight_header(start_fake: StartFake) -> None:
    _, endpoints = start_fake(max_trades=1)
    ping = requests.get(endpoints.api_url + "/v3/ping", timeout=5)
    assert ping.status_code == 200 and ping.text == "{}" and ping.headers["X-MBX-USED-WEIGHT-1M"] == "1"
    server_time = requests.get(endpoints.api_url + "/v3/time", timeout=5)
    assert abs(server_time.json()["serverTime"] - time.time() * 1000) < 5000
    assert server_time.headers["X-MBX-USED-WEIGHT-1M"] == "2"
    one = requests.get(endpoints.api_url + "/v3/exchangeInfo?symbol=BNBBTC", timeout=5).json()
    assert [s["symbol"] for s in one["symbols"]] == ["BNBBTC"]
    prices = requests.get(endpoints.api_url + "/v3/ticker/price", timeout=5).json()
    assert {"symbol", "price"} == set(prices[0]) and "BTCUSDT" in {p["symbol"] for p in prices}
    # Nothing has traded (no subscriber yet): the trade lists are empty, not errors.
    assert requests.get(endpoints.api_url + "/v3/trades?symbol=BTCUSDT", timeout=5).json() == []


# --- replay ----------------------------------------------------------------------------------


def test_replay_sends_recorded_frames_verbatim(start_fake: StartFake, tmp_path: Path) -> None:
    if not RECORDING.exists():
        pytest.skip(f"{RECORDING} not available")
    recorded = [json.loads(line)["frame"] for line in RECORDING.read_text().splitlines()[:40]]
    trade = (
        '{"e":"trade","E":1633998600000,"s":"BTCUSDT","t":7,"p":"56000.01000000","q":"0.00100000",'
        '"T":1633998600000,"m":false,"M":true}'
    )
    second = trade.replace('"t":7', '"t":8')
    replay = tmp_path / "replay.jsonl"
    lines = [json.dumps({"received_at": 1633998512.0 + i / 100, "frame": f}) for i, f in enumerate(recorded)]
    # The three accepted line forms: recorder lines, a bare payload, a combined frame.
    replay.write_text("\n".join([*lines, trade, '{"stream":"btcusdt@trade","data":' + second + "}"]))
    expected = [*recorded, *('{"stream":"btcusdt@trade","data":' + t + "}" for t in (trade, second))]
    names = list(dict.fromkeys(json.loads(frame)["stream"] for frame in expected))
    _, endpoints = start_fake(replay_path=replay, replay_speed=0)

    async def run() -> list[str]:
        async with websockets.connect(f"{endpoints.ws_url}/stream?streams={'/'.join(names)}") as ws:
            return await receive_until(ws, lambda frames: len(frames) >= len(expected))

    assert asyncio.run(run()) == expected
    historical = requests.get(endpoints.api_url + "/v3/historicalTrades?symbol=BTCUSDT&fromId=0", timeout=5).json()
    assert [h["id"] for h in historical] == [7, 8]


# --- derived streams and time units ---------------------------------------------------------------


def test_kline_and_book_ticker_streams_follow_the_trades(start_fake: StartFake) -> None:
    _, endpoints = start_fake(max_trades=30, trades_per_second=20)
    streams = "btcusdt@trade/btcusdt@kline_1s/btcusdt@kline_1m/btcusdt@bookTicker"

    def payloads(frames: list[str], stream: str) -> list[dict[str, Any]]:
        return [json.loads(f)["data"] for f in frames if f.startswith('{"stream":"' + stream + '"')]

    def done(frames: list[str]) -> bool:
        seconds = [k["k"] for k in payloads(frames, "btcusdt@kline_1s")]
        minutes = [k["k"] for k in payloads(frames, "btcusdt@kline_1m")]
        # After the last trade the 1s klines go on, empty (L = -1); the open 1m kline keeps L = 30.
        return any(k["L"] == 30 for k in seconds) and any(k["L"] == 30 for k in minutes)

    async def run() -> list[str]:
        async with websockets.connect(f"{endpoints.ws_url}/stream?streams={streams}") as ws:
            return await receive_until(ws, done)

    frames = asyncio.run(run())
    trades = payloads(frames, "btcusdt@trade")
    seconds = [p["k"] for p in payloads(frames, "btcusdt@kline_1s")]
    minutes = [p["k"] for p in payloads(frames, "btcusdt@kline_1m")]
    # Every 1s kline is pushed once, closed; together they hold every trade exactly once.
    assert all(k["x"] is True and k["i"] == "1s" and k["T"] == k["t"] + 999 for k in seconds)
    assert [k["t"] for k in seconds] == list(range(seconds[0]["t"], seconds[-1]["t"] + 1, 1000))
    with_trades = [k for k in seconds if k["n"] > 0]
    assert with_trades[0]["f"] == 1
    assert sum(k["n"] for k in seconds) == 30 == len(trades)
    for kline in seconds:
        inside = [t for t in trades if kline["t"] <= t["T"] <= kline["T"]]
        assert kline["n"] == len(inside)
        if inside:
            assert (kline["f"], kline["L"], kline["o"], kline["c"]) == (
                inside[0]["t"], inside[-1]["t"], inside[0]["p"], inside[-1]["p"]
            )  # fmt: skip
            assert Decimal(kline["v"]) == sum(Decimal(t["q"]) for t in inside)
        else:
            assert (kline["f"], kline["L"], kline["v"]) == (-1, -1, "0.00000000")
    # The open 1m kline is pushed every 2 seconds, not closed yet. The test may straddle a minute
    # boundary: a minute that ended meanwhile was closed, once, and the open kline is the next one.
    assert all(k["i"] == "1m" and k["T"] == k["t"] + 59_999 for k in minutes)
    closed = [k["t"] for k in minutes if k["x"]]
    assert len(set(closed)) == len(closed) <= 1
    assert all([k for k in minutes if k["t"] == t][-1]["x"] for t in closed)  # its minute's last push
    assert minutes[-1]["n"] == sum(1 for t in trades if t["T"] >= minutes[-1]["t"])
    books = payloads(frames, "btcusdt@bookTicker")
    assert len(books) >= 1 and all(Decimal(b["b"]) < Decimal(b["a"]) for b in books)
    assert [b["u"] for b in books] == sorted({b["u"] for b in books})


def test_microsecond_time_unit(start_fake: StartFake) -> None:
    fake, endpoints = start_fake(max_trades=20)

    def reached_last(frames: list[str]) -> bool:
        return 20 in trade_ids(frames, "BTCUSDT")

    async def run() -> tuple[list[str], list[str]]:
        async with (
            websockets.connect(f"{endpoints.ws_url}/ws/btcusdt@trade") as millis,
            websockets.connect(f"{endpoints.ws_url}/ws/btcusdt@trade?timeUnit=MICROSECOND") as micros,
        ):
            return await receive_until(millis, reached_last), await receive_until(micros, reached_last)

    millis, micros = asyncio.run(run())
    by_id = {json.loads(frame)["t"]: json.loads(frame) for frame in millis}
    assert len(micros) >= 10  # the second connection may have missed the very first trades
    for frame in micros:
        us_payload = json.loads(frame)
        ms_payload = by_id[us_payload["t"]]
        assert us_payload["T"] == ms_payload["T"] * 1000 and us_payload["E"] == ms_payload["E"] * 1000
        assert {k: v for k, v in us_payload.items() if k not in ("E", "T")} == {
            k: v for k, v in ms_payload.items() if k not in "ET"
        }
    rest = requests.get(
        endpoints.api_url + "/v3/trades?symbol=BTCUSDT&limit=1", headers={"X-MBX-TIME-UNIT": "MICROSECOND"}, timeout=5
    ).json()
    assert rest[0]["time"] == json.loads(micros[-1])["T"]
    emitted = fake.call(lambda: dict(fake.exchange.trades_emitted) if fake.exchange else {})
    assert emitted == {"BTCUSDT": 20, "ETHUSDT": 20}


def test_request_weight_limit_answers_429(start_fake: StartFake) -> None:
    _, endpoints = start_fake(max_trades=1)
    session = requests.Session()
    # Weight is counted per calendar minute: keep the 49 requests inside one.
    while time.time() % 60 > 55:
        time.sleep(0.1)
    # The recorded exchangeInfo announces 1200 REQUEST_WEIGHT a minute; /trades weighs 25.
    statuses = [session.get(endpoints.api_url + "/v3/trades?symbol=BTCUSDT", timeout=5) for _ in range(49)]
    assert {r.status_code for r in statuses[:48]} == {200}
    assert statuses[47].headers["X-MBX-USED-WEIGHT-1M"] == "1200"
    refused = statuses[48]
    assert refused.status_code == 429 and refused.json()["code"] == -1003
    assert 0 < int(refused.headers["Retry-After"]) <= 60
