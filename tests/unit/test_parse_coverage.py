"""Coverage markers on the raw topic: a good one becomes a CoverageRow, every class of bad one a
rejection with its reason (dead-lettered by the loop like any other)."""

import json

from hypothesis import given
from hypothesis import strategies as st

from consumer.parse import MAX_COVERAGE_DETAIL_CHARS, CoverageRow, Rejection, parse_message
from schemas.coverage import CoverageKind, CoverageMarker, encode_marker
from schemas.messages import MAX_TIME_MS

HEADERS = {"source": b"coverage", "stream": b"btcusdt@trade"}
KEY = b"BTCUSDT"
START_MS, END_MS = 1_763_800_000_000, 1_763_800_060_000
GOOD = {"kind": "held", "start_ms": START_MS, "end_ms": END_MS, "origin": "ws", "detail": ""}


def parse(marker: object, headers: dict[str, bytes] = HEADERS, key: bytes | None = KEY) -> object:
    value = marker if isinstance(marker, bytes) else json.dumps(marker).encode()
    return parse_message(value, headers, frozenset({"BTCUSDT", "ETHUSDT"}), key)


def reason(result: object) -> str:
    assert isinstance(result, Rejection), result
    return result.reason


def test_a_marker_from_the_contract_becomes_its_row() -> None:
    marker = CoverageMarker(CoverageKind.HOLE, 5, 9, "rest", "REST answered 429")
    row = parse_message(encode_marker(marker), {"source": b"coverage", "stream": b"ethusdt@kline_5m"}, None, b"ETHUSDT")
    assert row == CoverageRow("ETHUSDT", "kline_5m", "hole", 5, 9, "rest", "REST answered 429")


def test_a_held_marker_without_detail_is_stored() -> None:
    assert parse(GOOD) == CoverageRow("BTCUSDT", "trade", "held", START_MS, END_MS, "ws", "")


@given(st.integers(0, MAX_TIME_MS), st.integers(0, 10**6))
def test_a_period_that_does_not_end_after_it_starts_is_refused(start: int, shorter_by: int) -> None:
    assert reason(parse({**GOOD, "start_ms": start, "end_ms": start - shorter_by})) == "invalid_coverage_period"


@given(st.integers(max_value=-1))
def test_a_negative_start_is_refused(start: int) -> None:
    assert reason(parse({**GOOD, "start_ms": start})) == "invalid_coverage_period"


@given(st.integers(MAX_TIME_MS + 2, 2**63))
def test_a_period_ending_past_year_9999_is_refused(end: int) -> None:
    assert reason(parse({**GOOD, "end_ms": end})) == "invalid_time"


@given(st.text().filter(lambda kind: kind not in ("held", "hole")))
def test_an_unknown_kind_is_refused(kind: str) -> None:
    assert reason(parse({**GOOD, "kind": kind})) == "invalid_field"


@given(st.text().filter(lambda origin: origin not in ("ws", "rest", "history", "archive")))
def test_an_origin_that_is_not_a_market_data_source_is_refused(origin: str) -> None:
    assert reason(parse({**GOOD, "origin": origin})) == "invalid_field"


@given(st.sampled_from(["kind", "start_ms", "end_ms", "origin"]))
def test_a_marker_without_a_required_field_is_refused(field: str) -> None:
    assert reason(parse({name: value for name, value in GOOD.items() if name != field})) == "missing_field"


@given(
    st.sampled_from(["kind", "start_ms", "end_ms", "origin", "detail"]),
    st.one_of(
        st.none(), st.floats(allow_nan=False, allow_infinity=False), st.lists(st.integers(), max_size=2), st.booleans()
    ),
)
def test_a_field_of_the_wrong_type_is_refused(field: str, value: object) -> None:
    assert reason(parse({**GOOD, field: value})) == "invalid_field"


@given(st.text(min_size=1).filter(lambda name: name not in GOOD), st.integers())
def test_an_unknown_field_is_refused(field: str, value: int) -> None:
    assert reason(parse({**GOOD, field: value})) == "invalid_field"


@given(st.one_of(st.text(min_size=MAX_COVERAGE_DETAIL_CHARS + 1), st.text().map(lambda text: text + "\x00")))
def test_a_detail_postgresql_cannot_hold_or_too_long_is_refused(detail: str) -> None:
    assert reason(parse({**GOOD, "kind": "hole", "detail": detail})) == "invalid_field"


@given(
    st.one_of(
        st.just(""),
        st.text().filter(lambda stream: "@" not in stream),
        st.sampled_from(["btcusdt@depth", "btcusdt@kline_7m", "BTCUSDT@trade", "btc-usdt@trade", "@trade"]),
        st.text(min_size=1)
        .map(lambda kind: f"btcusdt@{kind}")
        .filter(
            lambda stream: (
                stream.split("@", 1)[1] not in ("trade", "aggTrade", "bookTicker")
                and not stream.split("@", 1)[1].startswith("kline_")
            )
        ),
    )
)
def test_a_marker_for_a_stream_that_is_not_stored_is_refused(stream: str) -> None:
    headers = {"source": b"coverage", "stream": stream.encode()} if stream else {"source": b"coverage"}
    assert reason(parse(GOOD, headers)) == "unsupported_stream"


@given(st.binary().filter(lambda key: key != KEY))
def test_a_marker_keyed_other_than_by_its_symbol_is_refused(key: bytes) -> None:
    # It may sit on another partition than its records, and be stored before them.
    assert reason(parse(GOOD, key=key)) == "stream_symbol_mismatch"


def test_a_marker_for_a_symbol_the_exchange_does_not_list_is_refused() -> None:
    headers = {"source": b"coverage", "stream": b"nopeusdt@trade"}
    assert reason(parse(GOOD, headers, key=b"NOPEUSDT")) == "unknown_symbol"


@given(st.binary().filter(lambda value: value.strip()[:1] != b"{"))
def test_a_marker_that_is_not_a_json_object_is_refused(value: bytes) -> None:
    assert reason(parse(value)) in {"invalid_json", "invalid_field", "empty_message", "duplicate_key"}


def test_a_trade_frame_sent_as_coverage_is_not_stored_as_a_trade() -> None:
    payload = b'{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"1","q":"1","T":1,"m":true,"M":true}'
    frame = b'{"stream":"btcusdt@trade","data":' + payload + b"}"
    assert reason(parse(frame)) == "invalid_field"
