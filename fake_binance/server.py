"""Runs the exchange, the WebSocket server and the REST server in one asyncio loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType

import uvicorn

from fake_binance.exchange import Clock, Exchange
from fake_binance.exchange_info import ExchangeInfo, load_exchange_info
from fake_binance.rest_app import create_app
from fake_binance.settings import FakeBinanceSettings
from fake_binance.ws_server import StreamServer

log = logging.getLogger("fake_binance")


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where a running fake listens (ports resolved when 0 was asked for)."""

    host: str
    ws_port: int
    rest_port: int

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.ws_port}"

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.rest_port}"

    @property
    def api_url(self) -> str:
        """What python-binance's `Client.API_URL` must be set to."""
        return f"{self.rest_url}/api"


class _EmbeddedUvicorn(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # Signals belong to fake_binance's own shutdown, which first tells WS clients (serverShutdown).
        yield


def _listen(host: str, port: int) -> socket.socket:
    sock = socket.create_server((host, port))
    # Accepted sockets inherit this: without it a response's body waits ~40 ms behind its headers
    # (Nagle against delayed ACKs), which a client's every REST call would pay.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    return sock


async def serve(
    settings: FakeBinanceSettings,
    stop: asyncio.Event,
    on_ready: Callable[[Endpoints, Exchange], None] | None = None,
    info: ExchangeInfo | None = None,
    clock: Clock | None = None,
) -> None:
    """Serve until `stop` is set, then announce serverShutdown, close everything and return."""
    info = info or load_exchange_info(full=settings.whole_market)
    for symbol in settings.halted_symbol_list:
        info.set_status(symbol, "BREAK")
    exchange = Exchange(settings, info, clock)
    ws_sock = _listen(settings.host, settings.ws_port)
    rest_sock = _listen(settings.host, settings.rest_port)
    endpoints = Endpoints(settings.host, ws_sock.getsockname()[1], rest_sock.getsockname()[1])
    exchange.open_record(settings.record_path)
    stream_server = StreamServer(exchange, settings)
    rest_server = _EmbeddedUvicorn(
        uvicorn.Config(
            create_app(exchange, stream_server),
            log_config=None,
            access_log=False,
            lifespan="off",
            log_level="warning",
        )
    )
    try:
        await stream_server.start(ws_sock)
        rest_task = asyncio.create_task(rest_server.serve(sockets=[rest_sock]))
        while not rest_server.started and not rest_task.done():
            await asyncio.sleep(0.01)
        if rest_task.done():
            rest_task.result()
            raise RuntimeError("REST server stopped during start-up")
        market_task = asyncio.create_task(exchange.run())
        log.info(
            "fake_binance listening",
            extra={
                "ws_url": endpoints.ws_url,
                "api_url": endpoints.api_url,
                "symbols": "all" if settings.whole_market else list(settings.symbol_list),
                "trades_per_second": settings.trades_per_second,
                "max_trades": settings.max_trades,
                "seed": settings.seed,
                "replay_path": str(settings.replay_path) if settings.replay_path else None,
                "record_path": str(settings.record_path) if settings.record_path else None,
            },
        )
        if on_ready is not None:
            on_ready(endpoints, exchange)
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({stopping, market_task, rest_task}, return_when=asyncio.FIRST_COMPLETED)
        for task in (market_task, rest_task):
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.error("fake_binance task failed", exc_info=task.exception())
        stopping.cancel()
        market_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await market_task
        await stream_server.announce_shutdown_and_close()
        rest_server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(rest_task, 10)
    finally:
        exchange.close_record()
        for sock in (ws_sock, rest_sock):
            sock.close()
        log.info("fake_binance stopped", extra={"trades_emitted": exchange.trades_emitted})


def run(settings: FakeBinanceSettings) -> None:
    """Blocking entry point: serve until SIGINT or SIGTERM."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(settings, stop)

    asyncio.run(main())


class FakeBinanceThread:
    """The fake in a background thread of this process, for tests: start(), then stop()."""

    def __init__(self, settings: FakeBinanceSettings) -> None:
        self.settings = settings
        self.endpoints: Endpoints | None = None
        self.exchange: Exchange | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="fake-binance", daemon=True)

    def _main(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await serve(self.settings, self._stop, on_ready=self._on_ready)

        try:
            asyncio.run(main())
        except BaseException as error:
            self._error = error
        finally:
            self._ready.set()

    def _on_ready(self, endpoints: Endpoints, exchange: Exchange) -> None:
        self.endpoints = endpoints
        self.exchange = exchange
        self._ready.set()

    def start(self, timeout: float = 15.0) -> Endpoints:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("fake_binance did not start in time")
        if self.endpoints is None:
            raise RuntimeError("fake_binance failed to start") from self._error
        return self.endpoints

    def call(self, function: Callable[[], object], timeout: float = 5.0) -> object:
        """Run `function` in the fake's loop (to read its state safely) and return its result."""
        if self._loop is None:
            raise RuntimeError("not running")

        async def call() -> object:
            return function()

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(timeout)

    def stop(self, timeout: float = 15.0) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError("fake_binance did not stop in time")

    def __enter__(self) -> Endpoints:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
