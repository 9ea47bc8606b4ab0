"""Serving the api: uvicorn in this process, or API_WORKERS uvicorn processes under a supervisor.

Several workers each bind their own listening socket to the same port (SO_REUSEPORT), and the
kernel spreads new connections over them by address hash. uvicorn's own `workers` shares one
socket instead, and whichever worker wakes first accepts every connection waiting: 8 keep-alive
connections opened at once went 8 to 0 in most tries, so one worker did all the work for as long
as they lived. The supervisor here starts the workers, replaces one that dies (and gives up, exit
1, when they fail to start), and on SIGTERM or SIGINT stops them gracefully before it exits.

Everything an app holds is per process: the database pool (db_pool_size + db_max_overflow
connections each), the in-flight and connection limits, the live price poller and its client cap
(api/live.py), the statement caches. Prometheus metrics alone are shared (api/metrics.py), so that
a scrape, whichever worker answers it, counts every worker's requests.
"""

import ctypes
import gc
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from multiprocessing.context import SpawnProcess
from pathlib import Path
from types import FrameType

import uvicorn
from pythonjsonlogger.json import JsonFormatter

from api.app import create_app
from api.http_limits import limited_http_protocol
from api.metrics import METRICS_DIR_VARIABLE
from api.settings import ApiSettings

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
# In the temporary directory, followed by the supervisor's pid.
_METRICS_DIR_PREFIX = "api-metrics-"
# uvicorn's exit code when the app or the socket fails to start: it would fail the same way again.
_STARTUP_FAILURE = 3
# How long the supervisor waits for the workers' graceful shutdown (a live price stream ends
# within 8 s, api/routes/live.py) before it kills them.
_STOP_TIMEOUT_S = 15.0


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])


def uvicorn_config(settings: ApiSettings) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        # httptools' parser, with bounds on each request head's size and arrival time, and on open
        # connections (idle ones give way to new ones).
        http=limited_http_protocol(settings.max_header_bytes, settings.header_timeout_s, settings.max_connections),
        # No uvicorn limit_concurrency: it counts idle connections as load, so idle sockets shut
        # real requests out. Requests in flight are capped by api/metrics.py instead.
        limit_concurrency=None,
        timeout_keep_alive=settings.keep_alive_timeout_s,
        # The metrics middleware times every request; uvicorn's access log would add a log line each.
        access_log=False,
    )


def serve(settings: ApiSettings) -> int:
    """Serves until SIGTERM or SIGINT; the exit code."""
    if settings.workers == 1:
        server = uvicorn.Server(uvicorn_config(settings))
        _run(server, None)
        return 0 if server.started else _STARTUP_FAILURE
    return _Supervisor(settings).run()


def _run(server: uvicorn.Server, sockets: list[socket.socket] | None) -> None:
    # What exists now (modules, routes, models: about 100,000 objects) lives as long as the
    # process. Frozen, it is left out of the collector's full passes, which otherwise took
    # 100-250 ms each here, every 15-20 candle lists: their p99 (docs/benchmarks.md).
    gc.collect()
    gc.freeze()
    server.run(sockets=sockets)


class _Supervisor:
    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings
        self.stopping = threading.Event()
        self.context = multiprocessing.get_context("spawn")

    def run(self) -> int:
        host, port = self.settings.host, self.settings.port
        if port == 0:
            log.error("several workers need a port number: with 0 each would listen on a port of its own")
            return _STARTUP_FAILURE
        try:
            # The workers' sockets would share the port with any other SO_REUSEPORT socket of this
            # user: one without the option is refused if anything already listens there.
            _listening_socket(host, port, reuse_port=False).close()
        except OSError as error:
            log.error("cannot listen", extra={"host": host, "port": port, "error": str(error)})
            return _STARTUP_FAILURE
        _remove_orphaned_metrics_dirs()
        metrics_dir = tempfile.mkdtemp(prefix=f"{_METRICS_DIR_PREFIX}{os.getpid()}-")
        # Set before the workers start, which inherit the environment (api/metrics.py).
        os.environ[METRICS_DIR_VARIABLE] = metrics_dir
        for signal_number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signal_number, self._stop)
        workers = [self._start() for _ in range(self.settings.workers)]
        exit_code = 0
        try:
            while not self.stopping.wait(0.5):
                for index, worker in enumerate(workers):
                    if worker.exitcode is None:
                        continue
                    if worker.exitcode == _STARTUP_FAILURE:
                        log.error("a worker failed to start: stopping", extra={"pid": worker.pid})
                        exit_code = 1
                        self.stopping.set()
                        break
                    log.warning("a worker died: replacing it", extra={"pid": worker.pid, "exit_code": worker.exitcode})
                    workers[index] = self._start()
        finally:
            for worker in workers:
                if worker.exitcode is None:
                    worker.terminate()
            deadline = time.monotonic() + _STOP_TIMEOUT_S
            for worker in workers:
                worker.join(max(0.0, deadline - time.monotonic()))
                if worker.exitcode is None:
                    log.warning("a worker did not stop in time: killed", extra={"pid": worker.pid})
                    worker.kill()
                    worker.join()
            shutil.rmtree(metrics_dir, ignore_errors=True)
        return exit_code

    def _start(self) -> SpawnProcess:
        worker = self.context.Process(target=_serve_as_worker, name="api-worker")
        worker.start()
        log.info("worker started", extra={"pid": worker.pid})
        return worker

    def _stop(self, _signal: int, _frame: FrameType | None) -> None:
        self.stopping.set()


def _remove_orphaned_metrics_dirs() -> None:
    """The metrics directories of supervisors that were killed outright (SIGKILL) and could not
    remove theirs: the supervisor's pid is in the name."""
    for path in Path(tempfile.gettempdir()).glob(f"{_METRICS_DIR_PREFIX}*-*"):
        pid = path.name[len(_METRICS_DIR_PREFIX) :].split("-", 1)[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except PermissionError:
            pass  # alive, someone else's


def _serve_as_worker() -> None:
    """A worker process: its own socket on the shared port, and uvicorn on it."""
    settings = ApiSettings()
    configure_logging(settings.log_level)
    _die_with_the_supervisor()
    try:
        listening = _listening_socket(settings.host, settings.port, reuse_port=True)
    except OSError as error:
        log.error("cannot listen", extra={"host": settings.host, "port": settings.port, "error": str(error)})
        sys.exit(_STARTUP_FAILURE)
    server = uvicorn.Server(uvicorn_config(settings))
    _run(server, [listening])
    if not server.started:
        sys.exit(_STARTUP_FAILURE)


def _listening_socket(host: str, port: int, reuse_port: bool) -> socket.socket:
    """Bound as uvicorn binds (uvicorn's server starts listening on it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _die_with_the_supervisor() -> None:
    """The kernel kills a worker when its supervisor dies: a supervisor killed outright (SIGKILL,
    OOM) would otherwise leave orphans serving the port that nothing stops or replaces. On SIGTERM
    the supervisor stops its workers before it exits, so this never fires then."""
    parent = multiprocessing.parent_process()
    if parent is None or sys.platform != "linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    # The supervisor may have died before the line above.
    if os.getppid() != parent.pid:
        os._exit(1)
