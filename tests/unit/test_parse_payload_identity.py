"""Valid Binance input is never dead-lettered, and conflicting input always is.

A bare payload names itself (its event type, symbol and kline interval; a bookTicker by its
fields), so it needs no stream header; a combined-stream frame is the same message in any key order
or spacing; a header that is present must agree with the payload; duplicate keys, klines whose
prices or close time don't add up, aggregate trades whose first id is after the last and crossed
books are rejected, each with its own reason. Many members of each class, generated."""

import json
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from consumer.parse import Rejection, _has_duplicate_keys, parse_message
from schemas.kline_intervals import FIXED_INTERVAL_MS, KLINE_INTERVALS, kline_close_time

WS = {"source": b"ws", "received_at_ns": b"1700000000000000000"}
REST = {"source": b"rest", "received_at_ns": b"1800000000000000000"}

symbols = st.from_regex(r"\A[A-Z0-9]{2,20}\Z")
ids = st.integers(0, 2**63 - 1)
times_ms = st.integers(0, 253_402_300_799_999 - 40 * 86_400_000)
positive_decimals = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal(10**12), places=8)


def text(number: Decimal) -> str:
    return f"{number:f}"


@st.composite
def trades(draw: st.DrawFn) -> dict[str, object]:
    return {
        "e": "trade",
        "E": draw(times_ms),
        "s": draw(symbols),
        "t": draw(ids),
        "p": text(draw(positive_decimals)),
        "q": text(draw(positive_decimals)),
        "T": draw(times_ms),
        "m": draw(st.booleans()),
        "M": True,
    }


@st.composite
def agg_trades(draw: st.DrawFn) -> dict[str, object]:
    first, last = sorted(draw(st.tuples(ids, ids)))
    return {
        "e": "aggTrade",
        "E": draw(times_ms),
        "s": draw(symbols),
        "a": draw(ids),
        "p": text(draw(positive_decimals)),
        "q": text(draw(positive_decimals)),
        "f": first,
        "l": last,
        "T": draw(times_ms),
        "m": draw(st.booleans()),
        "M": True,
    }


def aligned_open(interval: str, time_ms: int) -> int:
    """The open time of the fixed `interval` kline holding `time_ms`."""
    return time_ms - time_ms % FIXED_INTERVAL_MS[interval]


MONTH_OPENS_MS = [0, 2_678_400_000, 1_698_796_800_000]  # 1970-01-01, 1970-02-01, 2023-11-01


@st.composite
def klines(draw: st.DrawFn) -> dict[str, object]:
    interval = draw(st.sampled_from(sorted(KLINE_INTERVALS)))
    open_ms = draw(st.sampled_from(MONTH_OPENS_MS)) if interval == "1M" else aligned_open(interval, draw(times_ms))
    low, high = sorted(draw(st.tuples(positive_decimals, positive_decimals)))
    inside = st.decimals(min_value=low, max_value=high, places=8)
    symbol = draw(symbols)
    first = draw(st.integers(-1, 2**62))
    return {
        "e": "kline",
        "E": open_ms + 1,
        "s": symbol,
        "k": {
            "t": open_ms,
            "T": kline_close_time(interval, open_ms),
            "s": symbol,
            "i": interval,
            "f": first,
            "L": first if first < 0 else first + draw(st.integers(0, 1000)),
            "o": text(draw(inside)),
            "c": text(draw(inside)),
            "h": text(high),
            "l": text(low),
            "v": "1.00000000",
            "n": draw(st.integers(0, 10**6)),
            "x": draw(st.booleans()),
            "q": "2.00000000",
            "V": "0.50000000",
            "Q": "1.00000000",
            "B": "0",
        },
    }


@st.composite
def book_tickers(draw: st.DrawFn) -> dict[str, object]:
    bid, ask = sorted(draw(st.tuples(positive_decimals, positive_decimals)))
    return {
        "u": draw(ids),
        "s": draw(symbols),
        "b": text(bid),
        "B": text(draw(positive_decimals)),
        "a": text(ask),
        "A": text(draw(positive_decimals)),
    }


payloads = trades() | agg_trades() | klines() | book_tickers()


def stream_of(payload: dict[str, object]) -> str:
    symbol = str(payload["s"]).lower()
    if "e" not in payload:
        return f"{symbol}@bookTicker"
    if payload["e"] == "kline":
        return f"{symbol}@kline_{payload['k']['i']}"  # type: ignore[index]
    return f"{symbol}@{payload['e']}"


def binance_frame(payload: dict[str, object]) -> bytes:
    """A combined-stream frame exactly as Binance lays it out."""
    return json.dumps({"stream": stream_of(payload), "data": payload}, separators=(",", ":")).encode()


@settings(max_examples=400, deadline=None)
@given(payload=payloads)
def test_the_payloads_generated_are_valid_in_binances_own_layout(payload: dict[str, object]) -> None:
    assert not isinstance(parse_message(binance_frame(payload), WS), Rejection)


@settings(max_examples=400, deadline=None)
@given(payload=payloads, spaced=st.booleans())
def test_a_bare_payload_without_a_stream_header_is_the_message_it_names(
    payload: dict[str, object], spaced: bool
) -> None:
    """What kcat or kafka-console-producer writes: the payload alone, no headers but what it had."""
    bare = json.dumps(payload, separators=(", ", ": ") if spaced else (",", ":")).encode()
    for headers in (WS, {"received_at_ns": WS["received_at_ns"]}):
        assert parse_message(bare, headers) == parse_message(binance_frame(payload), WS)


@settings(max_examples=400, deadline=None)
@given(
    payload=payloads,
    data_first=st.booleans(),
    indent=st.sampled_from([None, 0, 2]),
    lead=st.sampled_from(["", " ", "\n\t"]),
)
def test_a_combined_frame_in_any_key_order_or_spacing_is_the_same_message(
    payload: dict[str, object], data_first: bool, indent: int | None, lead: str
) -> None:
    envelope = {"stream": stream_of(payload), "data": payload}
    if data_first:
        envelope = {"data": payload, "stream": stream_of(payload)}
    frame = (lead + json.dumps(envelope, indent=indent)).encode()
    assert parse_message(frame, WS) == parse_message(binance_frame(payload), WS)


@settings(max_examples=300, deadline=None)
@given(payload=payloads, other=symbols, kind=st.sampled_from(["trade", "aggTrade", "bookTicker", "kline_1m"]))
def test_a_stream_header_that_disagrees_with_the_bare_payload_is_rejected(
    payload: dict[str, object], other: str, kind: str
) -> None:
    header = f"{other.lower()}@{kind}"
    if header == stream_of(payload):
        return
    result = parse_message(json.dumps(payload).encode(), {**WS, "stream": header.encode()})
    assert isinstance(result, Rejection), (header, payload)


def repeat_a_key(frame: bytes, payload: dict[str, Any], data: st.DataObject) -> bytes:
    """The frame with one key written twice in one object: the envelope, the payload or a kline's k."""
    draw = data.draw
    objects: list[tuple[str, dict[str, Any]]] = [("envelope", {"stream": 1, "data": 1}), ("data", payload)]
    if isinstance(payload.get("k"), dict):
        objects.append(("k", payload["k"]))
    where, members = draw(st.sampled_from(objects))
    key = draw(st.sampled_from(sorted(members)))
    value = draw(st.sampled_from(['"XRPUSDT"', "1", json.dumps(members[key]) if where != "envelope" else '"x@trade"']))
    pair = f'"{key}":{value},'.encode()
    if where == "envelope":
        return frame[:1] + pair + frame[1:]
    marker = b'"data":{' if where == "data" else b'"k":{'
    at = frame.index(marker) + len(marker)
    return frame[:at] + pair + frame[at:]


@settings(max_examples=400, deadline=None)
@given(payload=payloads, data=st.data())
def test_a_key_written_twice_in_one_object_is_rejected(payload: dict[str, object], data: st.DataObject) -> None:
    frame = repeat_a_key(binance_frame(payload), payload, data)
    result = parse_message(frame, WS)
    assert isinstance(result, Rejection)
    # Anything a last-wins decoder would have accepted is rejected for the duplicate itself.
    assert result.reason in {"duplicate_key", "invalid_field", "stream_symbol_mismatch", "unsupported_stream"}


def test_the_duplicate_symbol_of_the_issue_is_rejected_as_such() -> None:
    frame = b'{"stream":"bnbbtc@trade","data":{"e":"trade","E":1,"s":"BNBBTC","t":1,"p":"1","q":"1","T":1,"m":true,"M":true,"s":"XRPUSDT"}}'  # noqa: E501
    assert parse_message(frame, WS) == Rejection("duplicate_key", "a JSON object names the same key twice")
    escaped = frame.replace(b',"s":"XRPUSDT"', b',"\\u0073":"BNBBTC"')  # the same key, escaped
    assert isinstance(parse_message(escaped, WS), Rejection)


def reason(frame: bytes, headers: dict[str, bytes] = WS) -> str | None:
    result = parse_message(frame, headers)
    return result.reason if isinstance(result, Rejection) else None


@settings(max_examples=300, deadline=None)
@given(payload=klines(), data=st.data())
def test_a_kline_whose_prices_do_not_add_up_is_inconsistent(payload: dict[str, object], data: st.DataObject) -> None:
    k: dict[str, object] = dict(payload["k"])  # type: ignore[call-overload]
    low, high = Decimal(str(k["l"])), Decimal(str(k["h"]))
    above, below = text(high + Decimal("0.00000001")), text(low / 2)
    field, value = data.draw(
        st.sampled_from([("h", below), ("l", above), ("o", above), ("c", above), ("o", below), ("c", below)])
    )
    k[field] = value
    assert reason(binance_frame({**payload, "k": k})) == "inconsistent_kline"


@settings(max_examples=300, deadline=None)
@given(payload=klines(), shift=st.integers(-(10**9), 10**9).filter(bool))
def test_a_kline_that_does_not_close_at_its_intervals_end_is_inconsistent(
    payload: dict[str, object], shift: int
) -> None:
    k: dict[str, object] = dict(payload["k"])  # type: ignore[call-overload]
    k["T"] = max(0, int(str(k["T"])) + shift)
    if k["T"] == payload["k"]["T"]:  # type: ignore[index]
        return
    assert reason(binance_frame({**payload, "k": k})) == "inconsistent_kline"


def test_a_month_kline_must_open_on_the_first() -> None:
    open_ms = 1_698_883_200_000  # 2023-11-02
    frame = {"e": "kline", "E": 1, "s": "BNBBTC", "k": {"t": open_ms, "T": open_ms + 30 * 86_400_000 - 1, "s": "BNBBTC",
             "i": "1M", "f": -1, "L": -1, "o": "1", "c": "1", "h": "1", "l": "1", "v": "0", "n": 0, "x": False,
             "q": "0", "V": "0", "Q": "0", "B": "0"}}  # fmt: skip
    assert reason(binance_frame(frame)) == "inconsistent_kline"


@settings(max_examples=200, deadline=None)
@given(low=positive_decimals, high=positive_decimals, open_ms=times_ms)
def test_a_rest_kline_is_checked_alike(low: Decimal, high: Decimal, open_ms: int) -> None:
    open_ms -= open_ms % 60_000
    record = [open_ms, text(low), text(high), text(low), text(low), "1", open_ms + 59_999, "1", 1, "1", "1", "0"]
    expected = "inconsistent_kline" if high < low else None
    assert reason(json.dumps(record).encode(), {**REST, "stream": b"bnbbtc@kline_1m"}) == expected


@settings(max_examples=300, deadline=None)
@given(payload=agg_trades(), first=ids, last=ids)
def test_an_agg_trade_whose_first_id_is_after_its_last_is_inconsistent(
    payload: dict[str, object], first: int, last: int
) -> None:
    expected = "inconsistent_agg_trade" if first > last else None
    assert reason(binance_frame({**payload, "f": first, "l": last})) == expected
    record = {key: payload[key] for key in ("a", "p", "q", "T", "m", "M")}
    rest = json.dumps({**record, "f": first, "l": last}).encode()
    assert reason(rest, {**REST, "stream": f"{str(payload['s']).lower()}@aggTrade".encode()}) == expected


@settings(max_examples=300, deadline=None)
@given(payload=book_tickers(), bid=positive_decimals, ask=positive_decimals)
def test_a_crossed_book_is_rejected(payload: dict[str, object], bid: Decimal, ask: Decimal) -> None:
    expected = "crossed_book" if bid > ask else None
    assert reason(binance_frame({**payload, "b": text(bid), "a": text(ask)})) == expected


def test_an_empty_side_of_the_book_is_not_a_cross() -> None:
    # Binance sends zeros for a side without orders.
    payload = {"u": 1, "s": "BNBBTC", "b": "5.00000000", "B": "1.00000000", "a": "0.00000000", "A": "0.00000000"}
    assert reason(binance_frame(payload)) is None


def reference_has_duplicate_keys(value: bytes) -> bool:
    def unique(pairs: list[tuple[str, object]]) -> None:
        if len({key for key, _ in pairs}) != len(pairs):
            raise KeyError

    try:
        json.loads(value, object_pairs_hook=unique)
    except KeyError:
        return True
    return False


# JSON objects written as lists of pairs, so a key may repeat; keys with colons, quotes, escapes.
KEY_TEXT = st.text(alphabet=st.sampled_from(["a", "s", ":", '"', "\\", " ", "\u0073", ","]), max_size=4)
objects_with_pairs = st.recursive(
    st.integers(-5, 5) | st.text(alphabet=st.sampled_from(["x", ":", '"', ",", "{"]), max_size=4),
    lambda children: (
        st.lists(st.tuples(KEY_TEXT, children), max_size=4).map(lambda pairs: ("object", pairs))
        | st.lists(children, max_size=3)
    ),
    max_leaves=10,
)


def write(value: object, colon: str, comma: str) -> str:
    if isinstance(value, tuple):
        pairs = value[1]
        return "{" + comma.join(json.dumps(key) + colon + write(item, colon, comma) for key, item in pairs) + "}"
    if isinstance(value, list):
        return "[" + comma.join(write(item, colon, comma) for item in value) + "]"
    return json.dumps(value)


@settings(max_examples=1000, deadline=None)
@given(value=objects_with_pairs, colon=st.sampled_from([":", " : ", ": "]), comma=st.sampled_from([",", ", "]))
def test_the_duplicate_key_scan_agrees_with_a_full_decode(value: object, colon: str, comma: str) -> None:
    text = write(value, colon, comma).encode()
    assert _has_duplicate_keys(text) == reference_has_duplicate_keys(text), text


def test_a_microsecond_kline_closes_at_either_end_of_its_last_millisecond() -> None:
    open_us = 1_698_796_800_000_000
    payload = {"e": "kline", "E": 1, "s": "BNBBTC", "k": {"t": open_us, "T": 0, "s": "BNBBTC", "i": "1m", "f": -1,
               "L": -1, "o": "1", "c": "1", "h": "1", "l": "1", "v": "0", "n": 0, "x": False, "q": "0", "V": "0",
               "Q": "0", "B": "0"}}  # fmt: skip
    micro = {**WS, "time_unit": b"MICROSECOND"}
    bad = "inconsistent_kline"
    cases = [(59_999_999, None), (59_999_000, None), (59_998_999, bad), (60_000_000, bad)]
    for offset_us, expected in cases:
        close_us = open_us + offset_us
        payload["k"]["T"] = close_us  # type: ignore[index]
        assert reason(binance_frame(payload), micro) == expected, close_us
