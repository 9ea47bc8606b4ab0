"""Errors and how they reach the client.

/v1 (and /health etc.): `{"detail": "<parameter>: <why>", "errors": [{"parameter", "in", "reason"}]}`.
/api/v3: Binance's own layout, `{"code": -1121, "msg": "Invalid symbol."}`, because python-binance
and ccxt decide what went wrong from the code.
"""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

BINANCE_PREFIX = "/api/"


class ParameterProblem(BaseModel):
    parameter: str
    # Where the parameter was: "query" for every parameter of this API.
    location: str = "query"
    reason: str


class Problem(BaseModel):
    """Every /v1 error body: one sentence, and the parameters at fault (if any)."""

    detail: str
    errors: list[ParameterProblem] = []


class BinanceErrorBody(BaseModel):
    code: int
    msg: str


class ParameterError(Exception):
    """A parameter the client got wrong: 422 (or `status`), naming it; under /api/v3, Binance's
    -1130 (400) naming it."""

    def __init__(self, parameter: str, reason: str, status: int = 422) -> None:
        super().__init__(f"{parameter}: {reason}")
        self.parameter = parameter
        self.reason = reason
        self.status = status


class NotFoundError(Exception):
    """Nothing stored for a well-formed question: 404, naming the parameter that found nothing."""

    def __init__(self, parameter: str, reason: str) -> None:
        super().__init__(f"{parameter}: {reason}")
        self.parameter = parameter
        self.reason = reason


class BinanceError(Exception):
    """An error in Binance's layout and with Binance's code (see Binance's errors.md)."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status


def problem(status: int, detail: str, errors: list[ParameterProblem] | None = None) -> JSONResponse:
    body = Problem(detail=detail, errors=errors or [])
    return JSONResponse(body.model_dump(mode="json"), status_code=status)


def binance_error(status: int, code: int, msg: str) -> JSONResponse:
    return JSONResponse({"code": code, "msg": msg}, status_code=status)


def _reason(error: dict[str, Any]) -> str:
    message = str(error.get("msg", "invalid"))
    # Pydantic prefixes messages of our own validators; the reason reads better without it.
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message


def validation_problems(error: RequestValidationError) -> list[ParameterProblem]:
    problems = []
    for item in error.errors():
        location = [str(part) for part in item.get("loc", ())]
        where = location[0] if location else "query"
        name = location[1] if len(location) > 1 else where
        problems.append(ParameterProblem(parameter=name, location=where, reason=_reason(item)))
    return problems


_DATABASE_UNAVAILABLE = "database unavailable, retry later"
_QUERY_TOO_LONG = "the question took longer than the time limit; ask for a shorter range"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = validation_problems(error)
        if request.url.path.startswith(BINANCE_PREFIX):
            # Binance's routes parse their own parameters; anything FastAPI rejects there is
            # structural, which Binance reports as a malformed mandatory parameter.
            name = problems[0].parameter if problems else "request"
            return binance_error(
                400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
            )
        detail = "; ".join(f"{p.parameter}: {p.reason}" for p in problems) or "invalid request"
        return problem(422, detail, problems)

    @app.exception_handler(ParameterError)
    async def bad_parameter(request: Request, error: ParameterError) -> JSONResponse:
        if request.url.path.startswith(BINANCE_PREFIX):
            # A rule shared with /v1 (retention): Binance's INVALID_PARAMETER, with the reason.
            return binance_error(
                400, -1130, f"Data sent for parameter '{error.parameter}' is not valid: {error.reason}."
            )
        return problem(error.status, str(error), [ParameterProblem(parameter=error.parameter, reason=error.reason)])

    @app.exception_handler(NotFoundError)
    async def not_found(_request: Request, error: NotFoundError) -> JSONResponse:
        return problem(404, str(error), [ParameterProblem(parameter=error.parameter, reason=error.reason)])

    @app.exception_handler(BinanceError)
    async def binance(_request: Request, error: BinanceError) -> JSONResponse:
        return binance_error(error.status, error.code, error.msg)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        if request.url.path.startswith(BINANCE_PREFIX) and error.status_code == 404:
            return binance_error(404, -1000, "An unknown error occurred while processing the request.")
        # The layout of every /v1 error (an unknown path's 404, a 405 with its Allow header).
        body = Problem(detail=str(error.detail)).model_dump(mode="json")
        return JSONResponse(body, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(DBAPIError)
    async def database_error(request: Request, error: DBAPIError) -> JSONResponse:
        # The database being away or slow is neither the client's fault nor a bug: say so, and
        # say retry. A statement cut off by statement_timeout is the one a client can avoid.
        # SQLSTATE 57014, query_canceled: what statement_timeout raises.
        timed_out = getattr(error.orig, "sqlstate", None) == "57014"
        log.error(
            "database error",
            extra={"path": request.url.path, "timed_out": timed_out, "error": str(error).splitlines()[0]},
        )
        return _unavailable(request, _QUERY_TOO_LONG if timed_out else _DATABASE_UNAVAILABLE)

    @app.exception_handler(OSError)
    async def database_unreachable(request: Request, error: OSError) -> JSONResponse:
        # asyncpg lets a refused or broken connection surface as the OSError it is.
        log.error("database unreachable", extra={"path": request.url.path, "error": str(error)})
        return _unavailable(request, _DATABASE_UNAVAILABLE)

    @app.exception_handler(PoolTimeoutError)
    async def pool_exhausted(request: Request, _error: PoolTimeoutError) -> JSONResponse:
        log.error("no database connection free", extra={"path": request.url.path})
        return _unavailable(request, "too busy, retry later")


RETRY_AFTER_S = 1


def _unavailable(request: Request, detail: str) -> JSONResponse:
    retry = {"Retry-After": str(RETRY_AFTER_S)}
    if request.url.path.startswith(BINANCE_PREFIX):
        # -1001 DISCONNECTED: "Internal error; unable to process your request. Please try again."
        body: dict[str, Any] = {
            "code": -1001,
            "msg": "Internal error; unable to process your request. Please try again.",
        }
        return JSONResponse(body, status_code=503, headers=retry)
    return JSONResponse(Problem(detail=detail).model_dump(mode="json"), status_code=503, headers=retry)


def busy(request: Request, detail: str) -> JSONResponse:
    """503 with Retry-After: the service is at a limit of its own, not broken."""
    return _unavailable(request, detail)
