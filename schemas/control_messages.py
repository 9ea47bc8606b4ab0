"""Binance's control messages on a stream connection, answered as Binance answers them: the one
home of those rules, for the fake exchange (fake_binance/ws_server.py) and the replay
(replay/control.py), which differ only in which stream names they take. Pure.

`{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":1}` -> `{"result":null,"id":1}`; also
UNSUBSCRIBE, LIST_SUBSCRIPTIONS, SET_PROPERTY and GET_PROPERTY (`combined`). A refused request is
answered `{"error":{"code":<n>,"msg":"…"},"id":…}`: 0 unknown property, 1 a value of the wrong
type, 2 an invalid request, 3 invalid JSON (then without an id). Binance's message texts are its
JSON parser's (serde's) words, kept here because clients match them.
"""

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import orjson

METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
# An id is a signed 64-bit integer, an alphanumeric string of up to 36 characters, or null.
_REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{1,36}")
TOO_MANY_STREAMS = "Invalid request: too many streams"

# What a stream name is to the side answering: the replay's parsed StreamName, the fake's name.
Stream = TypeVar("Stream")


@dataclass(slots=True)
class ControlOutcome(Generic[Stream]):
    reply: str
    subscribe: list[Stream] = field(default_factory=list)
    unsubscribe: list[str] = field(default_factory=list)
    combined: bool | None = None


def result(value: Any, request_id: Any) -> str:
    return orjson.dumps({"result": value, "id": request_id}).decode()


def error(code: int, msg: str, request_id: Any = None, *, with_id: bool = True) -> str:
    body: dict[str, Any] = {"error": {"code": code, "msg": msg}}
    if with_id:
        body["id"] = request_id
    return orjson.dumps(body).decode()


def valid_request_id(request: dict[str, Any]) -> bool:
    """Whether the request carries an id Binance takes (see _REQUEST_ID); a missing id is not one."""
    if "id" not in request:
        return False
    value = request["id"]
    if value is None:
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    return isinstance(value, str) and _REQUEST_ID.fullmatch(value) is not None


def handle_control(
    text: str,
    subscribed: list[str],
    combined: bool,
    max_streams: int,
    parse_stream: Callable[[str], Stream | None],
    name_of: Callable[[Stream], str],
) -> ControlOutcome[Stream]:
    """Binance's answer to one control message, and what it changes. `parse_stream` takes a
    stream name the side serves (None for one it refuses), `name_of` gives it back its name."""
    try:
        request = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as problem:
        return ControlOutcome(error(3, f"Invalid JSON: {_parser_words(problem)}", with_id=False))
    if not isinstance(request, dict):
        return ControlOutcome(error(2, "Invalid request: expected a JSON object"))
    if "method" not in request:
        lines = text.split("\n")
        return ControlOutcome(
            error(2, f"Invalid request: missing field `method` at line {len(lines)} column {len(lines[-1])}")
        )
    method = request["method"]
    if method not in METHODS:
        variant = method if isinstance(method, str) else json.dumps(method)
        expected = ", ".join(f"`{name}`" for name in METHODS)
        return ControlOutcome(error(2, f"Invalid request: unknown variant `{variant}`, expected one of {expected}"))
    if not valid_request_id(request):
        return ControlOutcome(error(2, "Invalid request: request ID must be an unsigned integer"))
    request_id = request["id"]
    params = request.get("params", [])
    if not isinstance(params, list):
        return ControlOutcome(error(2, "Invalid request: invalid type: expected a sequence", request_id))
    if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
        return _subscription(method, params, request_id, subscribed, max_streams, parse_stream, name_of)
    if method == "LIST_SUBSCRIPTIONS":
        if params:
            return ControlOutcome(error(2, "Invalid request: too many parameters", request_id))
        return ControlOutcome(result(list(subscribed), request_id))
    return _property(method, params, request_id, combined)


def _parser_words(problem: Exception) -> str:
    if not isinstance(problem, json.JSONDecodeError):
        return "recursion limit exceeded"
    detail = "expected value" if problem.msg.startswith("Expecting value") else problem.msg[0].lower() + problem.msg[1:]
    return f"{detail} at line {problem.lineno} column {problem.colno}"


def _subscription(
    method: str,
    params: list[Any],
    request_id: Any,
    subscribed: list[str],
    max_streams: int,
    parse_stream: Callable[[str], Stream | None],
    name_of: Callable[[Stream], str],
) -> ControlOutcome[Stream]:
    streams = [parse_stream(name) if isinstance(name, str) else None for name in params]
    valid = [stream for stream in streams if stream is not None]
    if len(valid) < len(streams):
        return ControlOutcome(error(2, "Invalid request: invalid stream", request_id))
    unique = list({name_of(stream): stream for stream in valid}.values())
    if method == "UNSUBSCRIBE":
        return ControlOutcome(result(None, request_id), unsubscribe=[name_of(stream) for stream in unique])
    if len(set(subscribed) | {name_of(stream) for stream in unique}) > max_streams:
        return ControlOutcome(error(2, TOO_MANY_STREAMS, request_id))
    return ControlOutcome(result(None, request_id), subscribe=unique)


def _property(method: str, params: list[Any], request_id: Any, combined: bool) -> ControlOutcome[Any]:
    wanted = 2 if method == "SET_PROPERTY" else 1
    if len(params) > wanted:
        return ControlOutcome(error(2, "Invalid request: too many parameters", request_id))
    if not params or not isinstance(params[0], str):
        return ControlOutcome(error(2, "Invalid request: property name must be a string", request_id))
    if params[0] != "combined":
        return ControlOutcome(error(0, "Unknown property", request_id))
    if method == "GET_PROPERTY":
        return ControlOutcome(result(combined, request_id))
    if len(params) < 2 or not isinstance(params[1], bool):
        return ControlOutcome(error(1, "Invalid value type: expected Boolean", request_id))
    return ControlOutcome(result(None, request_id), combined=params[1])
