"""The replay's WebSocket server: Binance's URL layout, a cap on replays, one database
connection per replay."""

import asyncio
import logging
import signal
import socket
import time
from http import HTTPStatus

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from replay.metrics import ReplayMetrics
from replay.request import NotFoundError, ReplayRequest, RequestError, parse_request
from replay.session import BAD_REQUEST, TRY_AGAIN_LATER, Session, close_reason
from replay.settings import ReplaySettings
from schemas.metrics_http import Health, MetricsServer, start_metrics_server

log = logging.getLogger(__name__)

# A control message is a short JSON object: anything longer is not one (Binance closes too).
MAX_INCOMING_BYTES = 64 * 1024


def create_engine(settings: ReplaySettings) -> AsyncEngine:
    return create_async_engine(
        make_url(settings.database_url).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False),
        # The replay's own snapshot transaction is asyncpg's (replay/player.py).
        isolation_level="AUTOCOMMIT",
        pool_size=settings.max_replays,
        max_overflow=0,
        pool_timeout=5,
        connect_args={
            "ssl": settings.db_ssl,
            "server_settings": {
                "application_name": "binance-replay",
                "default_transaction_read_only": "on",
                "timezone": "UTC",
                "jit": "off",
            },
        },
    )


class ReplayServer:
    def __init__(self, settings: ReplaySettings, metrics: ReplayMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or ReplayMetrics()
        self.engine = create_engine(settings)
        self.active = 0
        self.loop_turned_at = time.monotonic()
        self._server: Server | None = None

    def _check_path(self, connection: ServerConnection, request: Request) -> Response | None:
        """An unknown path is a 404 before any upgrade; other bad requests are closed with their reason."""
        try:
            parse_request(request.path, self.settings.max_speed, self.settings.max_streams)
        except NotFoundError as problem:
            self.metrics.refused.labels(reason="not_found").inc()
            return connection.respond(HTTPStatus.NOT_FOUND, f"{problem}\n")
        except RequestError:
            pass  # answered after the upgrade, as a close reason every client shows
        return None

    async def handle(self, ws: ServerConnection) -> None:
        try:
            request = parse_request(
                ws.request.path if ws.request else "/", self.settings.max_speed, self.settings.max_streams
            )
        except RequestError as problem:
            self.metrics.refused.labels(reason="bad_request").inc()
            await ws.close(BAD_REQUEST, close_reason(str(problem)))
            return
        if self.active >= self.settings.max_replays:
            self.metrics.refused.labels(reason="too_many_replays").inc()
            await ws.close(
                TRY_AGAIN_LATER, f"{self.active} replays playing, the most this server runs; try again later"
            )
            return
        self._bound_send_buffer(ws)
        self.active += 1
        self.metrics.replays_active.inc()
        self.metrics.replays_started.inc()
        try:
            await self._play(ws, request)
        finally:
            self.active -= 1
            self.metrics.replays_active.dec()

    def _bound_send_buffer(self, ws: ServerConnection) -> None:
        """The kernel's send buffer sized as the server's own write buffer: what a client may
        leave unread is then bounded by client_buffer_bytes (Linux doubles SO_SNDBUF for its
        bookkeeping) plus the write buffer, not by the kernel's autotuning (up to 4 MiB)."""
        sock = ws.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.settings.client_buffer_bytes)

    async def _play(self, ws: ServerConnection, request: ReplayRequest) -> None:
        log.info(
            "replay started", extra={"peer": str(ws.remote_address), "path": ws.request.path if ws.request else ""}
        )
        async with self.engine.connect() as connection:
            raw = await connection.get_raw_connection()
            session = Session(ws, request, connection, raw.driver_connection, self.settings, self.metrics)
            await session.run()
        log.info(
            "replay ended",
            extra={"peer": str(ws.remote_address), "frames_sent": session.frames_sent, "code": ws.close_code},
        )

    async def start(self) -> Server:
        self._server = await serve(
            self.handle,
            self.settings.host,
            self.settings.port,
            process_request=self._check_path,
            ping_interval=self.settings.ping_interval_s,
            ping_timeout=self.settings.pong_timeout_s,
            close_timeout=self.settings.close_timeout_s,
            max_size=MAX_INCOMING_BYTES,
            # Above this many unsent bytes, send() waits for the client: backpressure.
            write_limit=self.settings.client_buffer_bytes,
            compression=None,
        )
        return self._server

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        await self.engine.dispose()

    def health(self) -> Health:
        age = time.monotonic() - self.loop_turned_at
        problems = [f"event loop stuck for {age:.0f} s (limit 30 s)"] if age > 30 else []
        return Health(problems, {"replays_playing": float(self.active)})

    async def keep_turning(self) -> None:
        while True:
            self.loop_turned_at = time.monotonic()
            await asyncio.sleep(1)


async def run(settings: ReplaySettings) -> None:
    """Serves until SIGTERM or SIGINT."""
    server = ReplayServer(settings)
    metrics_server: MetricsServer | None = start_metrics_server(
        settings.metrics_host, settings.metrics_port, server.metrics.registry, server.health
    )
    await server.start()
    log.info("replay serving", extra={"host": settings.host, "port": settings.port})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    turning = asyncio.create_task(server.keep_turning())
    await stop.wait()
    turning.cancel()
    await server.close()
    if metrics_server is not None:
        metrics_server.stop()
