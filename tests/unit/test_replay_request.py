"""A replay's URL: what it asks for, and a RequestError naming the parameter for anything else."""

import re
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from replay.request import PARAMETERS, NotFoundError, ReplayRequest, RequestError, parse_request
from replay.streams import StreamKind


def parse(target: str) -> ReplayRequest:
    return parse_request(target, max_speed=1000.0, max_streams=1024)


def test_combined_streams_with_a_range_and_a_speed():
    request = parse("/stream?streams=btcusdt@trade/ethusdt@aggTrade&start=2025-11-22&end=1763856000000&speed=10")
    assert request.combined
    assert [(s.symbol, s.kind) for s in request.streams] == [
        ("BTCUSDT", StreamKind.TRADE),
        ("ETHUSDT", StreamKind.AGG_TRADE),
    ]
    assert request.start == datetime(2025, 11, 22, tzinfo=UTC)
    assert request.end == datetime(2025, 11, 23, tzinfo=UTC)
    assert (request.speed, request.live) == (10.0, False)


def test_raw_path_and_parameters_in_a_path_segment():
    request = parse("/replay/start=2025-11-22&speed=0/ws/btcusdt@kline_1M")
    assert not request.combined
    assert request.streams[0].interval == "1M"
    assert request.speed == 0.0


def test_live_needs_no_start():
    request = parse("/ws/btcusdt@trade?live=true")
    assert request.start is None and request.live


@pytest.mark.parametrize(
    ("target", "parameter"),
    [
        ("/ws/btcusdt@trade", "start"),
        ("/ws/btcusdt@trade?start=yesterday", "start"),
        ("/ws/btcusdt@trade?start=20251122", "start"),
        ("/ws/btcusdt@trade?start=2025-11-22&end=2025-11-21", "end"),
        ("/ws/btcusdt@trade?start=2025-11-22&speed=-1", "speed"),
        ("/ws/btcusdt@trade?start=2025-11-22&speed=1e3", "speed"),
        ("/ws/btcusdt@trade?start=2025-11-22&speed=5000", "speed"),
        ("/ws/btcusdt@trade?start=2025-11-22&live=yes", "live"),
        ("/ws/btcusdt@trade?start=2025-11-22&start=2025-11-23", "start"),
        ("/ws/btcusdt@trade?start=2025-11-22&timeUnit=MICROSECOND", "timeUnit"),
        ("/ws/BTCUSDT@trade?start=2025-11-22", "streams"),
        ("/ws/btcusdt@depth?start=2025-11-22", "streams"),
        ("/ws/btcusdt@kline_2M?start=2025-11-22", "streams"),
        ("/ws/btcusdt@trade?start=2025-11-22&streams=ethusdt@trade", "streams"),
    ],
)
def test_a_bad_request_names_its_parameter(target, parameter):
    with pytest.raises(RequestError, match=f"^{parameter}: "):
        parse(target)


def test_an_unknown_parameter_is_named():
    with pytest.raises(RequestError, match=r"^unknown parameter 'limit'"):
        parse("/ws/btcusdt@trade?start=2025-11-22&limit=5")


def test_an_unknown_path_is_not_found():
    with pytest.raises(NotFoundError):
        parse("/api/v3/trades")


@given(
    st.sampled_from(["/ws/btcusdt@trade", "/stream", "/ws", "/replay/x/ws/btcusdt@trade", "/other"]),
    st.lists(st.tuples(st.sampled_from([*PARAMETERS, "x", ""]), st.text(max_size=30)), max_size=5),
)
def test_any_query_is_parsed_or_refused_with_a_reason(path, pairs):
    query = "&".join(f"{quote(name)}={quote(value)}" for name, value in pairs)
    try:
        parse(f"{path}?{query}")
    except RequestError as problem:
        # "<parameter>: <why>", or which path is unknown.
        assert re.fullmatch(r"[^:]{1,40}: .+|unknown parameter .+|no such path .+", str(problem), re.DOTALL)
