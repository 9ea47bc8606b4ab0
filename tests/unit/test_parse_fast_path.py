"""The consumer's fast path for trade frames must decide exactly as the general parser does: it may
only accept what the general path accepts, and must build the same row. Both are run on valid,
broken and random frames, and the code versions of the schema patterns on random strings."""

import json
import re

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumer import parse
from consumer.parse import Rejection, Row, Skipped, TradeRow, parse_message
from schemas.messages import DecimalText, Symbol, is_decimal_text, is_symbol
from tests.unit.test_parse import TRADE

# Values chosen to sit on the edges of each rule: types, signs, zeros, exponents, whitespace and
# newlines, non-ASCII digits, lengths at and past the limits, times past year 9999.
ODD_VALUES: list[object] = [
    None,
    True,
    0,
    -1,
    1.5,
    2**63,
    2**63 - 1,
    253_402_300_799_999,
    253_402_300_800_000,
    "",
    "0",
    "0.0",
    "00.000",
    "-1",
    "+1",
    "1e5",
    "1.",
    ".5",
    "1.5\n",
    " 1.5",
    "1.5 ",
    "\u0661\u0662",  # Arabic-Indic digits: str.isdigit() says yes
    "1" * 40,
    "1" * 41,
    "1." + "1" * 30,
    "1." + "1" * 31,
    "NaN",
    "trade",
    "aggTrade",
    "BNBBTC",
    "bnbbtc",
    "BNBBTC\n",
    "BNB-BTC",
    "B",
    "A" * 20,
    "A" * 21,
    [],
    {},
]
STREAMS = ["bnbbtc@trade", "BNBBTC@trade", "bnbbtc@aggTrade", "bnbbtc@trade@x", "bnbbtc", "ethbtc@trade", "@trade"]


def general_only(value: bytes, headers: dict[str, bytes]) -> Row | Rejection | Skipped:
    original = parse._fast_trade
    parse._fast_trade = lambda _value: None  # type: ignore[assignment]
    try:
        return parse_message(value, headers)
    finally:
        parse._fast_trade = original


def frame(payload: object, stream: str = "bnbbtc@trade") -> bytes:
    return json.dumps({"stream": stream, "data": payload}).encode()


def variants() -> list[bytes]:
    frames = [frame(TRADE, stream) for stream in STREAMS]
    for field in TRADE:
        frames.append(frame({key: value for key, value in TRADE.items() if key != field}))
        frames.extend(frame({**TRADE, field: value}) for value in ODD_VALUES)
    # A bad symbol named by its own stream: only the symbol rule can refuse it.
    bad_symbols = ("B", "A" * 21, "BNB-BTC", "BNB\u00df")
    frames += [frame({**TRADE, "s": symbol}, f"{symbol.lower()}@trade") for symbol in bad_symbols]
    frames += [
        frame({**TRADE, "extra": 1}),
        frame([TRADE]),
        b'{"stream":"bnbbtc@trade","data":' + json.dumps(TRADE).encode()[:-3],
        b'{"stream":"bnbbtc@trade","data":{"e":"trade","s":"BNBBTC","s":"ETHBTC"}}',
        b'{"stream":"bnbbtc@trade","data":{"e":"serverShutdown","E":1}}',
        b'{"stream":"bnbbtc@trade","data":' + json.dumps(TRADE).encode() + b',"stream":"x@trade"}',
        b'{"stream":"bnbbtc@trade","data":{"e":"trade","s":"\xff"}}',
    ]
    return frames


@pytest.mark.parametrize("value", variants())
def test_fast_path_decides_like_the_general_parser(value: bytes) -> None:
    assert parse_message(value, {}) == general_only(value, {})


def test_fast_path_takes_valid_trade_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    taken: list[TradeRow | None] = []
    original = parse._fast_trade

    def spy(value: bytes) -> TradeRow | None:
        taken.append(row := original(value))
        return row

    monkeypatch.setattr(parse, "_fast_trade", spy)
    row = parse_message(frame(TRADE), {"source": b"ws"})
    assert row == TradeRow("BNBBTC", 12345, "0.00100000", "100.00000000", 1672515782134000, True, 1672515782136000)
    assert taken == [row]


def test_rest_records_and_microsecond_times_skip_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parse, "_fast_trade", lambda value: pytest.fail("fast path used"))
    row = parse_message(frame(TRADE), {"time_unit": b"MICROSECOND"})
    assert isinstance(row, TradeRow) and row.trade_time_us == TRADE["T"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3),
    max_leaves=6,
)


@settings(max_examples=400, deadline=None)
@given(field=st.sampled_from(sorted(TRADE)), value=json_values, stream=st.sampled_from(STREAMS))
def test_fast_path_agrees_on_random_field_values(field: str, value: object, stream: str) -> None:
    raw = frame({**TRADE, field: value}, stream)
    assert parse_message(raw, {}) == general_only(raw, {})


def matches(annotated: object, text: str) -> bool:
    try:
        msgspec.convert(text, annotated)
    except msgspec.ValidationError:
        return False
    return True


decimalish = st.text(alphabet="0123456789.\n -+e\u0661", max_size=75) | st.from_regex(r"[0-9]{1,45}(\.[0-9]{0,35})?\n?")


@settings(max_examples=1000, deadline=None)
@given(decimalish)
def test_is_decimal_text_is_the_decimal_pattern(text: str) -> None:
    assert is_decimal_text(text) == matches(DecimalText, text)


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet="ABZabz09-_\n\u00df\u0661", max_size=24))
def test_is_symbol_is_the_symbol_pattern(text: str) -> None:
    assert is_symbol(text) == matches(Symbol, text)


def test_patterns_refuse_a_trailing_newline() -> None:
    # Python's $ matches before a final newline; such a value would break the COPY of its batch.
    assert re.search(r"^[0-9]$", "1\n") is not None
    assert not matches(DecimalText, "1.5\n") and not is_decimal_text("1.5\n")
    assert not matches(Symbol, "BTCUSDT\n") and not is_symbol("BTCUSDT\n")
