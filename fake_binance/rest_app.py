"""The REST side: Binance's market-data paths, parameter rules, error bodies and weight headers.

A Starlette app (FastAPI's base): its query parsing is done here by hand, because Binance's
answers to bad parameters (-1100, -1102, -1121, ...) are part of what the fake must reproduce.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Container
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from fake_binance import klines as kl
from fake_binance import wire
from fake_binance.archive import ArchiveFiles, checksum_line, is_published, parse_path
from fake_binance.exchange import Exchange
from fake_binance.faults import DROP_MODES, MALFORMED_MODES
from fake_binance.ws_server import StreamServer

_SYMBOL = re.compile(r"^[A-Z0-9-_.]{1,20}$")
_SYMBOL_RANGE = "^[A-Z0-9-_.]{1,20}$"
_SYMBOLS_RANGE = '^\\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\\]$'
_SYMBOLS = re.compile(r'^\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}")*)?\]$')
_UNSIGNED = re.compile(r"^[0-9]{1,20}$")
_UNSIGNED_RANGE = "^[0-9]{1,20}$"
_TIME_ZONE = re.compile(r"^([+-]?)([0-9]{1,2})(?::([0-9]{2}))?$")
# Timestamps may be sent in milliseconds or microseconds; microseconds are 1000 times larger.
_MICROSECOND_THRESHOLD = 10**14
_TIME_UNITS = {"MILLISECOND": 1, "millisecond": 1, "MICROSECOND": 1000, "microsecond": 1000}
MEDIA_TYPE = "application/json;charset=UTF-8"


class BinanceError(Exception):
    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status


def _mandatory(name: str) -> BinanceError:
    return BinanceError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def _illegal(name: str, legal_range: str) -> BinanceError:
    return BinanceError(-1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal_range}'.")


def _not_valid(name: str) -> BinanceError:
    return BinanceError(-1130, f"Data sent for parameter '{name}' is not valid.")


def _invalid_symbol() -> BinanceError:
    return BinanceError(-1121, "Invalid symbol.")


def _bad_combination() -> BinanceError:
    return BinanceError(-1128, "Combination of optional parameters invalid.")


def _invalid_time_unit() -> BinanceError:
    return BinanceError(-1194, "Invalid value for time unit; expected either MICROSECOND or MILLISECOND.")


# --- parameters ------------------------------------------------------------------------------


class Params:
    """The query string with Binance's validation rules."""

    def __init__(self, request: Request) -> None:
        self._query = request.query_params

    def text(self, name: str) -> str | None:
        values = self._query.getlist(name)
        if len(values) > 1:
            raise BinanceError(-1101, "Duplicate values for a parameter detected.")
        return values[0] if values else None

    def has(self, name: str) -> bool:
        return bool(self.text(name))

    def symbol(self, known: Container[str], required: bool = True) -> str | None:
        value = self.text("symbol")
        if not value:
            if required:
                raise _mandatory("symbol")
            return None
        if not _SYMBOL.match(value):
            raise _illegal("symbol", _SYMBOL_RANGE)
        if value not in known:
            raise _invalid_symbol()
        return value

    def symbols(self, known: Container[str]) -> list[str] | None:
        value = self.text("symbols")
        if not value:
            return None
        if not _SYMBOLS.match(value):
            raise _illegal("symbols", _SYMBOLS_RANGE)
        names: list[str] = json.loads(value)
        if len(set(names)) != len(names):
            raise BinanceError(-1151, "Symbol is present multiple times in the list.")
        if any(name not in known for name in names):
            raise _invalid_symbol()
        return names

    def unsigned(self, name: str) -> int | None:
        value = self.text(name)
        if value is None or value == "":
            return None
        if not _UNSIGNED.match(value):
            raise _illegal(name, _UNSIGNED_RANGE)
        return int(value)

    def limit(self, default: int = 500, maximum: int = 1000) -> int:
        value = self.unsigned("limit")
        if value is None:
            return default
        if not 1 <= value <= maximum:
            raise _not_valid("limit")
        return value

    def start_time(self) -> int | None:
        value = self.unsigned("startTime")
        if value is None:
            return None
        # Inclusive start in microseconds: the first whole millisecond at or after it.
        return -(-value // 1000) if value >= _MICROSECOND_THRESHOLD else value

    def end_time(self) -> int | None:
        value = self.unsigned("endTime")
        if value is None:
            return None
        return value // 1000 if value >= _MICROSECOND_THRESHOLD else value

    def interval(self) -> str:
        value = self.text("interval")
        if not value:
            raise _mandatory("interval")
        if not kl.is_interval(value):
            raise BinanceError(-1120, "Invalid interval.")
        return value

    def time_zone_offset_ms(self) -> int:
        value = self.text("timeZone")
        if value is None or value == "":
            return 0
        match = _TIME_ZONE.match(value)
        if match is None:
            raise _not_valid("timeZone")
        sign = -1 if match[1] == "-" else 1
        hours, minutes = int(match[2]), int(match[3] or 0)
        offset_minutes = sign * (hours * 60 + minutes)
        # Binance accepts offsets from -12:00 to +14:00 inclusive.
        if minutes >= 60 or not -12 * 60 <= offset_minutes <= 14 * 60:
            raise _not_valid("timeZone")
        return offset_minutes * 60_000


# --- request weight ----------------------------------------------------------------------------


@dataclass(slots=True)
class WeightMeter:
    """Request weight used per IP in the current minute, as Binance's REQUEST_WEIGHT limiter counts."""

    limit: int
    _used: dict[str, tuple[int, int]] = field(default_factory=dict)

    def charge(self, ip: str, weight: int, now_ms: int) -> int:
        minute = now_ms // 60_000
        window, used = self._used.get(ip, (minute, 0))
        if window != minute:
            used = 0
        used += weight
        self._used[ip] = (minute, used)
        return used


# --- the app ---------------------------------------------------------------------------------

Handler = Callable[[Request, Params, int], Any]


def _json_response(body: Any, status: int, used_weight: int, extra: dict[str, str] | None = None) -> Response:
    headers = {"X-MBX-USED-WEIGHT-1M": str(used_weight), "X-MBX-USED-WEIGHT": str(used_weight)}
    if extra:
        headers.update(extra)
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type=MEDIA_TYPE)


def _refusal(status: int, limit: int) -> dict[str, Any]:
    if status == 418:
        return wire.rest_error(-1003, "Way too much request weight used; IP banned. Please use WebSocket Streams.")
    return wire.rest_error(
        -1003,
        f"Too much request weight used; current limit is {limit} request weight per 1 MINUTE. "
        "Please use WebSocket Streams for live updates to avoid polling the API.",
    )


def create_app(exchange: Exchange, streams: StreamServer | None = None) -> Starlette:
    """The REST app over a running exchange (same event loop, so no locking).

    With `streams`, the /fake/ control endpoints can also act on the WebSocket connections.
    """
    meter = WeightMeter(exchange.info.request_weight_limit())
    rules = exchange.info.rules
    faults = exchange.faults
    past = exchange.past

    def endpoint(weight: int | Callable[[Params], int], handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            now = exchange.clock.now_ms()
            params = Params(request)
            try:
                cost = weight(params) if callable(weight) else weight
            except BinanceError:
                cost = 1
            ip = request.client.host if request.client else "?"
            used = meter.charge(ip, cost, now)
            response = answer(request, params, used, now)
            faults.log_request(request.url.path, request.url.query, response.status_code)
            return response

        def answer(request: Request, params: Params, used: int, now: int) -> Response:
            forced = faults.rest_override(request.url.path)
            if forced is not None:
                status, retry_after_s = forced
                return _json_response(_refusal(status, meter.limit), status, used, {"Retry-After": str(retry_after_s)})
            if used > meter.limit:
                retry_after = str(60 - now % 60_000 // 1000)
                return _json_response(_refusal(429, meter.limit), 429, used, {"Retry-After": retry_after})
            unit = request.headers.get("X-MBX-TIME-UNIT", "MILLISECOND")
            try:
                if unit not in _TIME_UNITS:
                    raise _invalid_time_unit()
                body = handler(request, params, _TIME_UNITS[unit])
            except BinanceError as error:
                return _json_response(wire.rest_error(error.code, error.msg), error.status, used)
            return _json_response(body, 200, used)

        return run

    def page(params: Params) -> int:
        # The pagination fault: fewer rows than asked for, as a server under load may answer.
        limit = params.limit()
        return min(limit, faults.page_cap) if faults.page_cap else limit

    def ping(_request: Request, _params: Params, _scale: int) -> Any:
        return {}

    def server_time(_request: Request, _params: Params, scale: int) -> Any:
        return {"serverTime": exchange.clock.now_ms() * scale}

    def exchange_info(_request: Request, params: Params, scale: int) -> Any:
        symbol = params.symbol(rules, required=False)
        symbols = params.symbols(rules)
        status = params.text("symbolStatus")
        if symbol is not None and symbols is not None:
            raise _bad_combination()
        if status and (symbol is not None or symbols is not None):
            raise _bad_combination()
        if status and status not in ("TRADING", "HALT", "BREAK"):
            raise BinanceError(-1122, "Invalid symbolStatus.")
        chosen: list[str] | None = [symbol] if symbol is not None else symbols
        if status:
            chosen = [name for name in exchange.info.symbols if rules[name].status == status]
        return exchange.info.document(exchange.clock.now_ms() * scale, chosen)

    def recent_trades(_request: Request, params: Params, scale: int) -> Any:
        symbol = params.symbol(rules)
        assert symbol is not None
        limit = page(params)
        return [wire.rest_trade(t, rules[symbol], scale) for t in exchange.histories[symbol].recent_trades(limit)]

    def historical_trades(_request: Request, params: Params, scale: int) -> Any:
        symbol = params.symbol(rules)
        assert symbol is not None
        limit = page(params)
        from_id = params.unsigned("fromId")
        history = exchange.histories[symbol]
        if from_id is not None and past.is_past_id(from_id):
            return [wire.rest_trade(t, rules[symbol], scale) for t in past.trades_from_id(symbol, from_id, limit)]
        found = history.recent_trades(limit) if from_id is None else history.trades_from_id(from_id, limit)
        return [wire.rest_trade(t, rules[symbol], scale) for t in found]

    def agg_trades(_request: Request, params: Params, scale: int) -> Any:
        symbol = params.symbol(rules)
        assert symbol is not None
        limit = page(params)
        from_id = params.unsigned("fromId")
        start, end = params.start_time(), params.end_time()
        # fromId cannot be combined with a time range (Binance dropped that combination in 2024).
        if from_id is not None and (start is not None or end is not None):
            raise _bad_combination()
        if from_id is not None and past.is_past_id(from_id):
            found = past.agg_trades_from_id(symbol, from_id, limit)
        elif from_id is None and start is not None and past.is_past(start):
            found = past.agg_trades_query(symbol, start, end, limit)
        else:
            found = exchange.histories[symbol].agg_trades_query(from_id, start, end, limit)
        return [wire.rest_agg_trade(a, rules[symbol], scale) for a in found]

    def klines(_request: Request, params: Params, scale: int) -> Any:
        symbol = params.symbol(rules)
        assert symbol is not None
        interval = params.interval()
        start, end = params.start_time(), params.end_time()
        offset = params.time_zone_offset_ms()
        limit = page(params)
        if start is not None and end is not None and start > end:
            return []
        if start is not None and offset == 0 and past.is_past(start):
            found = past.klines_query(symbol, interval, start, end, limit)
            return [wire.rest_kline_row(k, rules[symbol], scale) for k in found]
        found = exchange.histories[symbol].klines_query(interval, start, end, limit, exchange.clock.now_ms(), offset)
        return [wire.rest_kline_row(k, rules[symbol], scale) for k in found]

    def ticker_price(_request: Request, params: Params, _scale: int) -> Any:
        symbol = params.symbol(rules, required=False)
        symbols = params.symbols(rules)
        if symbol is not None and symbols is not None:
            raise _bad_combination()
        if symbol is not None:
            return wire.rest_ticker_price(symbol, exchange.last_price(symbol), rules[symbol])
        names = symbols if symbols is not None else list(exchange.info.symbols)
        return [wire.rest_ticker_price(name, exchange.last_price(name), rules[name]) for name in names]

    def ticker_weight(params: Params) -> int:
        return 2 if params.has("symbol") else 4

    routes = [
        Route("/api/v3/ping", endpoint(1, ping)),
        Route("/api/v3/time", endpoint(1, server_time)),
        Route("/api/v3/exchangeInfo", endpoint(20, exchange_info)),
        Route("/api/v3/trades", endpoint(25, recent_trades)),
        Route("/api/v3/historicalTrades", endpoint(25, historical_trades)),
        Route("/api/v3/aggTrades", endpoint(4, agg_trades)),
        Route("/api/v3/klines", endpoint(2, klines)),
        Route("/api/v3/uiKlines", endpoint(2, klines)),
        Route("/api/v3/ticker/price", endpoint(ticker_weight, ticker_price)),
        *archive_routes(exchange),
        *control_routes(exchange, streams),
    ]
    return Starlette(routes=routes)


# --- data.binance.vision: the archive's files (fake_binance/archive.py), on the same port ----------

_NO_SUCH_KEY = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code>'
    "<Message>The specified key does not exist.</Message></Error>"
)


def archive_routes(exchange: Exchange) -> list[Route]:
    files = ArchiveFiles(exchange.past)
    settings = exchange.settings
    faults = exchange.faults
    requests_seen = 0

    def answer(path: str) -> Response:
        nonlocal requests_seen
        requests_seen += 1
        every = settings.archive_429_every
        if every and requests_seen % every == 0:
            return Response("rate limited", status_code=429, headers={"Retry-After": str(settings.rest_retry_after_s)})
        parsed = parse_path(path)
        if parsed is None:
            return Response(_NO_SUCH_KEY, status_code=404, media_type="application/xml")
        file, wants_checksum = parsed
        rules = exchange.info.rules.get(file.symbol)
        if rules is None or not is_published(file, exchange.past) or file.matches(settings.archive_missing_list):
            return Response(_NO_SUCH_KEY, status_code=404, media_type="application/xml")
        built = files.zip_file(file, rules)
        if wants_checksum:
            extra = b"tampered" if file.matches(settings.archive_bad_checksum_list) else b""
            return Response(checksum_line(built.checksum(extra), f"{file.name}.zip"), media_type="text/plain")
        length = built.size // 2 if file.matches(settings.archive_truncated_list) else built.size
        # Streamed from disk: a zip of a day of millions of trades is tens of MB.
        return StreamingResponse(
            built.chunks(length), media_type="application/zip", headers={"Content-Length": str(length)}
        )

    async def serve(request: Request) -> Response:
        response = answer(request.url.path)
        faults.log_request(request.url.path, request.url.query, response.status_code)
        return response

    return [Route("/data/{path:path}", serve, methods=["GET"])]


# --- /fake/: run-time control of the misbehaviours (not Binance paths) -------------------------


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    body = orjson.loads(raw)
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object")
    return body


def control_routes(exchange: Exchange, streams: StreamServer | None) -> list[Route]:
    faults = exchange.faults

    def need_streams() -> StreamServer:
        if streams is None:
            raise ValueError("no WebSocket server attached")
        return streams

    def control(action: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            try:
                result = action(await _body(request))
            except (ValueError, TypeError, KeyError) as error:
                return Response(orjson.dumps({"error": str(error)}), status_code=400, media_type=MEDIA_TYPE)
            return Response(orjson.dumps(result), media_type=MEDIA_TYPE)

        return run

    def drop(body: dict[str, Any]) -> dict[str, Any]:
        mode = str(body.get("mode", "abrupt"))
        if mode not in DROP_MODES:
            raise ValueError(f"mode must be one of {', '.join(DROP_MODES)}")
        return {"dropped": need_streams().drop_all(mode)}

    def freeze(_body: dict[str, Any]) -> dict[str, Any]:
        return {"frozen": need_streams().freeze_all()}

    def gap(body: dict[str, Any]) -> dict[str, Any]:
        faults.skip_trades += int(body.get("trades", 1))
        faults.skip_agg_trades += int(body.get("agg_trades", body.get("trades", 1)))
        return {"skip_trades": faults.skip_trades, "skip_agg_trades": faults.skip_agg_trades}

    def malformed(body: dict[str, Any]) -> dict[str, Any]:
        mode = str(body.get("mode", faults.malformed_mode))
        if mode not in MALFORMED_MODES:
            raise ValueError(f"mode must be one of {', '.join(MALFORMED_MODES)}")
        faults.malformed_mode = mode
        faults.malformed += int(body.get("count", 1))
        return {"malformed": faults.malformed, "mode": mode}

    def oversize(body: dict[str, Any]) -> dict[str, Any]:
        faults.oversize_bytes = int(body.get("bytes", faults.oversize_bytes))
        faults.oversize += int(body.get("count", 1))
        return {"oversize": faults.oversize, "bytes": faults.oversize_bytes}

    def error_reply(body: dict[str, Any]) -> dict[str, Any]:
        code = int(body.get("code", 2))
        msg = str(body.get("msg", "Invalid request: fake error reply"))
        return {"sent": need_streams().send_error_all(code, msg)}

    def rate_limit(body: dict[str, Any]) -> dict[str, Any]:
        status = int(body.get("status", 429))
        if status not in (429, 418):
            raise ValueError("status must be 429 or 418")
        faults.forced_status = status
        faults.forced_count = int(body.get("count", 1))
        faults.forced_retry_after_s = int(body.get("retry_after_s", faults.forced_retry_after_s))
        faults.forced_paths = frozenset(str(path) for path in body.get("paths", ()))
        return {
            "status": status,
            "count": faults.forced_count,
            "retry_after_s": faults.forced_retry_after_s,
            "paths": sorted(faults.forced_paths),
        }

    def symbol(body: dict[str, Any]) -> dict[str, Any]:
        name = str(body["symbol"]).upper()
        status = str(body.get("status", "TRADING")).upper()
        rate = body.get("trades_per_second")
        rate = None if rate is None else float(rate)
        if rate is not None and not rate >= 0:
            raise ValueError("trades_per_second must be a number at least 0")
        if name in exchange.info.rules:
            exchange.set_symbol_status(name, status, rate)
        elif "like" not in body:
            raise ValueError(f"{name} is not listed: give `like`, a listed symbol whose rules it copies")
        elif status != "TRADING":
            raise ValueError("a new symbol is listed TRADING")
        else:
            exchange.list_symbol(name, str(body["like"]).upper(), rate)
        return {"symbol": name, "status": exchange.info.rules[name].status}

    def page_cap(body: dict[str, Any]) -> dict[str, Any]:
        faults.page_cap = int(body.get("rows", 0))
        return {"page_cap": faults.page_cap}

    async def state(_request: Request) -> Response:
        body = faults.snapshot()
        body["trades_emitted"] = exchange.trades_emitted
        body["last_trade_ids"] = {
            symbol: history.trade_ids[-1] for symbol, history in exchange.histories.items() if history.trade_ids
        }
        body["last_agg_ids"] = {
            symbol: history.agg_ids[-1] for symbol, history in exchange.histories.items() if history.agg_ids
        }
        body["market_done"] = exchange.market_done.is_set()
        body["market_opened_at"] = exchange.market_opened_at
        body["burst_factor"] = exchange.burst_factor
        body["market_seconds_skipped"] = round(exchange.market_seconds_skipped, 3)
        if streams is not None:
            body["connections_open"] = len(streams.connections)
            body["connections_accepted"] = streams.connections_accepted
            body["connections_refused"] = streams.attempts.refused
            body["streams_subscribed"] = sum(len(c.streams) for c in streams.connections)
        return Response(orjson.dumps(body), media_type=MEDIA_TYPE)

    return [
        Route("/fake/drop-connections", control(drop), methods=["POST"]),
        Route("/fake/freeze-connections", control(freeze), methods=["POST"]),
        Route("/fake/gap", control(gap), methods=["POST"]),
        Route("/fake/malformed", control(malformed), methods=["POST"]),
        Route("/fake/oversize", control(oversize), methods=["POST"]),
        Route("/fake/error-reply", control(error_reply), methods=["POST"]),
        Route("/fake/rate-limit", control(rate_limit), methods=["POST"]),
        Route("/fake/page-cap", control(page_cap), methods=["POST"]),
        Route("/fake/symbol", control(symbol), methods=["POST"]),
        Route("/fake/state", state, methods=["GET"]),
    ]
