"""The api's rules that its OpenAPI document does not state, told to schemathesis as a
`map_query` hook so that positive requests obey them (tests/integration/test_api_fuzz.py).

Each rule is written once here, named after what it mirrors in the api, and takes its limits
from the api's settings and modules rather than copies of their numbers. A rule only moves a
generated query into the accepted set (swapping two times, shortening a range, dropping an
optional parameter that may not be combined with another, or bringing an /api/v3 value the
document leaves unconstrained into Binance's range); the rest stays as schemathesis generated it.
A /v1 time the api's own parser refuses is left as generated, for the check to report.
"""

import inspect
import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from api.binance_params import MAX_SYMBOLS, BinanceParams
from api.intervals import Interval
from api.params import EPOCH, MAX_INT64, parse_timestamp
from api.settings import ApiSettings

Query = dict[str, Any]
Rule = Callable[[Query], None]


def _iso(moment: datetime) -> str:
    # The OpenAPI time pattern wants a four-digit year from 1970; the rules never leave that range.
    return f"{moment:%Y-%m-%dT%H:%M:%S.%f}Z"


def _times(query: Query) -> tuple[datetime, datetime] | None:
    if query.get("start") is None or query.get("end") is None:
        return None
    try:
        return parse_timestamp(query["start"]), parse_timestamp(query["end"])
    except ValueError:
        return None


def end_after_start(query: Query) -> None:
    """api.params.check_range and /v1/candles: an exclusive end after the start (else 422 `end`)."""
    times = _times(query)
    if times is None:
        return
    start, end = times
    if end < start:
        query["start"], query["end"] = query["end"], query["start"]
    elif end == start:
        if start > EPOCH:
            query["start"] = _iso(start - timedelta(milliseconds=1))
        else:
            query["end"] = _iso(end + timedelta(milliseconds=1))


def span_at_most(max_span: timedelta) -> Rule:
    """api.params.check_range's max_span: at most the endpoint's setting from start to end (else 422
    `end`). Runs after end_after_start; moves the start up, since the end is below year 9000."""

    def rule(query: Query) -> None:
        times = _times(query)
        if times is not None and times[1] - times[0] > max_span:
            query["start"] = _iso(times[1] - max_span)

    return rule


# /api/v3: BinanceParams reads every parameter itself (api/binance_params.py), and its OpenAPI
# parameters are plain strings, some with a pattern, none with a range or an enum.


def _present(query: Query, name: str) -> bool:
    # An empty parameter counts as not sent, as on Binance.
    return query.get(name) not in (None, "")


def unsigned_within_int64(*names: str) -> Rule:
    """BinanceParams.unsigned: at most MAX_INT64 (else -1100), though the pattern allows 20 digits."""

    def rule(query: Query) -> None:
        for name in names:
            if _present(query, name) and int(query[name]) > MAX_INT64:
                query[name] = str(int(query[name]) % (MAX_INT64 + 1))

    return rule


# BinanceParams.limit's default maximum (Binance's own, 1000), which these endpoints use.
BINANCE_MAX_LIMIT: int = inspect.signature(BinanceParams.limit).parameters["maximum"].default


def binance_limit_in_range(query: Query) -> None:
    """BinanceParams.limit: 1 to 1000 (else -1130), though the pattern allows any 20 digits."""
    if _present(query, "limit"):
        query["limit"] = str(1 + int(query["limit"]) % BINANCE_MAX_LIMIT)


_INTERVALS = [interval.value for interval in Interval]


def known_interval(query: Query) -> None:
    """BinanceParams.interval: one of api.intervals.Interval (else -1120)."""
    if query.get("interval") not in _INTERVALS:
        query["interval"] = _INTERVALS[len(str(query.get("interval"))) % len(_INTERVALS)]


_TIME_ZONE = re.compile(r"([+-]?)([0-9]{1,2})(?::([0-5][0-9]))?")


def time_zone_in_range(query: Query) -> None:
    """BinanceParams.time_zone_offset_ms: hours or hours:minutes, -12:00 to +14:00 (else -1130)."""
    if not _present(query, "timeZone"):
        return
    match = _TIME_ZONE.fullmatch(str(query["timeZone"]))
    minutes = 0
    if match is not None:
        minutes = (-1 if match[1] == "-" else 1) * (int(match[2]) * 60 + int(match[3] or 0))
    if match is None or not -12 * 60 <= minutes <= 14 * 60:
        del query["timeZone"]


_SYMBOLS = re.compile(r'\[("[A-Za-z0-9-_.]{1,20}"(,"[A-Za-z0-9-_.]{1,20}")*)?\]')


def symbols_a_json_array(query: Query) -> None:
    """BinanceParams.symbols: a JSON array of distinct symbols (case-insensitively), at most
    MAX_SYMBOLS (else -1100, -1151 or -1130)."""
    if not _present(query, "symbols"):
        return
    value = str(query["symbols"])
    if not _SYMBOLS.fullmatch(value):
        del query["symbols"]
        return
    names = [str(name).upper() for name in json.loads(value)]
    if len(set(names)) != len(names) or len(names) > MAX_SYMBOLS:
        del query["symbols"]


def symbol_or_symbols(query: Query) -> None:
    """exchangeInfo and ticker/price: `symbol` or `symbols`, not both (else -1128)."""
    if _present(query, "symbol") and _present(query, "symbols"):
        del query["symbols"]


# api.routes.binance_compat.exchange_info: TRADING, HALT or BREAK (else -1122).
_SYMBOL_STATUSES = ("TRADING", "HALT", "BREAK")


def symbol_status_alone(query: Query) -> None:
    """exchangeInfo: a known symbolStatus, and only without `symbol` and `symbols` (else -1122, -1128)."""
    if not _present(query, "symbolStatus"):
        return
    if query["symbolStatus"] not in _SYMBOL_STATUSES or _present(query, "symbol") or _present(query, "symbols"):
        del query["symbolStatus"]


def from_id_or_times(query: Query) -> None:
    """aggTrades: fromId cannot be combined with startTime or endTime (else -1128)."""
    if _present(query, "fromId") and (_present(query, "startTime") or _present(query, "endTime")):
        del query["fromId"]


def rules_by_path(settings: ApiSettings) -> dict[str, list[Rule]]:
    """The rules of each operation, in order; an operation not listed has none beyond its schema."""
    klines = [
        known_interval,
        unsigned_within_int64("startTime", "endTime"),
        binance_limit_in_range,
        time_zone_in_range,
    ]
    return {
        "/v1/candles": [end_after_start],
        "/v1/coverage": [end_after_start],
        "/v1/indicators/sma": [end_after_start],
        "/v1/stats": [end_after_start, span_at_most(timedelta(days=settings.stats_max_range_days))],
        "/v1/trades": [end_after_start, span_at_most(timedelta(days=settings.export_max_range_days))],
        "/v1/reconcile": [end_after_start, span_at_most(timedelta(seconds=settings.reconcile_max_range_s))],
        "/api/v3/klines": klines,
        "/api/v3/uiKlines": klines,
        "/api/v3/trades": [binance_limit_in_range],
        "/api/v3/historicalTrades": [unsigned_within_int64("fromId"), binance_limit_in_range],
        "/api/v3/aggTrades": [
            unsigned_within_int64("fromId", "startTime", "endTime"),
            binance_limit_in_range,
            from_id_or_times,
        ],
        "/api/v3/exchangeInfo": [symbols_a_json_array, symbol_or_symbols, symbol_status_alone],
        "/api/v3/ticker/price": [symbols_a_json_array, symbol_or_symbols],
    }
