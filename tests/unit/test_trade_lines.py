"""The hot path for trade frames (consumer/trade_lines.py) must decide exactly as the general parser
does: it may only take what the general parser accepts, and must make the same row. Both run on
valid, broken and random frames, with every header and symbol-list case; valid frames in Binance's
own layout must take the hot path, or it would be no faster."""

import json
import re

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumer import trade_lines
from consumer.parse import TradeRow, parse_message
from schemas.messages import MAX_TIME_MS, DecimalText, Symbol
from tests.unit.test_parse import TRADE

# Values chosen to sit on the edges of each rule: types, signs, zeros, exponents, whitespace and
# newlines, non-ASCII digits, leading zeros, lengths and sizes at and past the limits.
ODD_VALUES: list[object] = [
    None,
    True,
    0,
    -1,
    1.5,
    10**14 - 1,
    10**14,
    10**18 - 1,
    10**18,
    2**63 - 1,
    2**63,
    MAX_TIME_MS,
    MAX_TIME_MS + 1,
    "",
    "0",
    "0.0",
    "00.000",
    "00.001",
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
    "BnBBTC",
    "BNBBTC\n",
    "BNB-BTC",
    "B",
    "A" * 20,
    "A" * 21,
    [],
    {},
]
STREAMS = ["bnbbtc@trade", "BNBBTC@trade", "bNbbtc@trade", "bnbbtc@aggTrade", "bnbbtc@trade@x", "bnbbtc", "@trade"]
HEADERS: list[dict[str, bytes | None]] = [
    {},
    {"source": b"ws", "stream": b"bnbbtc@trade", "received_at_ns": b"1", "connection_id": b"c"},
    {"source": b"rest"},
    {"source": b"coverage"},
    {"source": b"history"},
    {"source": None},
    {"time_unit": b"MICROSECOND"},
    {"time_unit": b"MILLISECOND"},
]
KNOWN: list[frozenset[str] | None] = [None, frozenset({"BNBBTC", "ETHBTC"}), frozenset({"ETHBTC"})]


def frame(payload: object, stream: str = "bnbbtc@trade") -> bytes:
    """Binance's layout: compact, keys in its order."""
    return json.dumps({"stream": stream, "data": payload}, separators=(",", ":")).encode()


def fields(line: bytes) -> tuple[object, ...]:
    """A COPY line's values (so 0 and 0000 are the same time, as they are to PostgreSQL)."""
    event, symbol, trade_id, price, quantity, trade_time, maker = line.decode().removesuffix("\n").split("\t")
    return (None if event == "\\N" else int(event), symbol, int(trade_id), price, quantity, int(trade_time), maker)


def assert_decides_like_the_general_parser(value: bytes) -> None:
    for headers in HEADERS:
        usable = {name: data for name, data in headers.items() if data is not None}  # as message_headers does
        for known in KNOWN:
            known_bytes = None if known is None else frozenset(symbol.encode() for symbol in known)
            line = trade_lines.from_frame(value, headers, known_bytes)
            # As confluent-kafka gives them: a list of pairs.
            assert trade_lines.from_frame(value, list(headers.items()), known_bytes) == line
            if line is None:
                continue
            general = parse_message(value, usable, known)
            assert isinstance(general, TradeRow), (value, headers, known, general)
            assert fields(line) == fields(trade_lines.from_row(general))


def variants() -> list[bytes]:
    frames = [frame(TRADE, stream) for stream in STREAMS]
    for name in TRADE:
        frames.append(frame({key: value for key, value in TRADE.items() if key != name}))
        frames.extend(frame({**TRADE, name: value}) for value in ODD_VALUES)
    # A bad symbol named by its own stream: only the symbol rule can refuse it.
    bad_symbols = ("B", "A" * 21, "BNB-BTC", "BNB\u00df")
    frames += [frame({**TRADE, "s": symbol}, f"{symbol.lower()}@trade") for symbol in bad_symbols]
    compact = frame(TRADE)
    frames += [
        json.dumps({"stream": "bnbbtc@trade", "data": TRADE}).encode(),  # with spaces
        compact + b"\n",
        compact.replace(b'"BNBBTC"', b'"BNB\\u0042TC"'),  # an escape
        frame({**TRADE, "extra": 1}),
        frame({"M": True, **TRADE}),  # another key order
        frame([TRADE]),
        compact[:-3],
        b'{"stream":"bnbbtc@trade","data":{"e":"trade","s":"BNBBTC","s":"ETHBTC"}}',
        b'{"stream":"bnbbtc@trade","data":{"e":"serverShutdown","E":1}}',
        compact[:-1] + b',"stream":"x@trade"}',
        b'{"stream":"bnbbtc@trade","data":{"e":"trade","s":"\xff"}}',
    ]
    return frames


@pytest.mark.parametrize("value", variants())
def test_hot_path_decides_like_the_general_parser(value: bytes) -> None:
    assert_decides_like_the_general_parser(value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3),
    max_leaves=6,
)


@settings(max_examples=400, deadline=None)
@given(name=st.sampled_from(sorted(TRADE)), value=json_values, stream=st.sampled_from(STREAMS))
def test_hot_path_agrees_on_random_field_values(name: str, value: object, stream: str) -> None:
    assert_decides_like_the_general_parser(frame({**TRADE, name: value}, stream))


decimals = st.from_regex(r"\A[0-9]{1,40}(\.[0-9]{1,30})?\Z").filter(lambda text: bool(text.strip("0.")))
symbols = st.from_regex(r"\A[A-Z0-9]{2,20}\Z")


@settings(max_examples=400, deadline=None)
@given(
    symbol=symbols,
    trade_id=st.integers(0, 10**18 - 1),
    price=decimals,
    quantity=decimals,
    times=st.tuples(st.integers(0, 10**14 - 1), st.integers(0, 10**14 - 1)),
    maker=st.booleans(),
)
def test_valid_frames_in_binances_layout_take_the_hot_path(
    symbol: str, trade_id: int, price: str, quantity: str, times: tuple[int, int], maker: bool
) -> None:
    payload = {"e": "trade", "E": times[0], "s": symbol, "t": trade_id, "p": price, "q": quantity}
    value = frame({**payload, "T": times[1], "m": maker, "M": True}, f"{symbol.lower()}@trade")
    line = trade_lines.from_frame(value, HEADERS[1], frozenset({symbol.encode()}))
    assert line is not None
    expected = TradeRow(symbol, trade_id, price, quantity, times[1] * 1000, maker, times[0] * 1000)
    assert fields(line) == fields(trade_lines.from_row(expected))
    assert_decides_like_the_general_parser(value)


def test_a_frame_as_binance_sends_it_becomes_its_copy_line() -> None:
    line = trade_lines.from_frame(frame(TRADE), HEADERS[1], frozenset({b"BNBBTC"}))
    assert line == b"1672515782136000\tBNBBTC\t12345\t0.00100000\t100.00000000\t1672515782134000\ttrue\n"
    assert trade_lines.COPY_COLUMNS.split(", ") == [
        "event_time_us",
        "symbol",
        "trade_id",
        "price",
        "quantity",
        "trade_time_us",
        "buyer_is_maker",
    ]


def test_rest_records_microsecond_times_and_unknown_symbols_are_left_to_the_general_parser() -> None:
    value = frame(TRADE)
    assert trade_lines.from_frame(value, {"source": b"rest"}, None) is None
    assert trade_lines.from_frame(value, {"time_unit": b"MICROSECOND"}, None) is None
    assert trade_lines.from_frame(value, {}, frozenset({b"ETHBTC"})) is None
    row = parse_message(value, {"time_unit": b"MICROSECOND"})
    assert isinstance(row, TradeRow) and row.trade_time_us == TRADE["T"]


def matches(annotated: object, text: str) -> bool:
    try:
        msgspec.convert(text, annotated)
    except msgspec.ValidationError:
        return False
    return True


def test_patterns_refuse_a_trailing_newline() -> None:
    # Python's $ matches before a final newline; such a value would break the COPY of its batch.
    assert re.search(r"^[0-9]$", "1\n") is not None
    assert not matches(DecimalText, "1.5\n") and matches(DecimalText, "1.5")
    assert not matches(Symbol, "BTCUSDT\n") and matches(Symbol, "BTCUSDT")


# --- archive trade rows (source `archive`) --------------------------------------------------------

ARCHIVE_ROW = b"1000000037538001,0.00530100,188.80000000,1.00082880,1621641600000,True,True"
ARCHIVE_HEADERS: list[dict[str, bytes | None]] = [
    {"stream": b"bnbbtc@trade", "source": b"archive"},
    {"stream": b"BNBBTC@trade", "source": b"archive", "received_at_ns": b"1"},
    {"stream": b"bnbbtc@trade", "source": b"archive", "time_unit": b"MICROSECOND"},
    {"stream": b"bnbbtc@trade", "source": b"archive", "time_unit": b"MILLISECOND"},
    {"stream": b"bnbbtc@aggTrade", "source": b"archive"},
    {"stream": b"bnb-btc@trade", "source": b"archive"},
    {"source": b"archive"},
]


def assert_archive_row_decided_like_the_general_parser(value: bytes) -> bytes | None:
    taken = None
    for headers in ARCHIVE_HEADERS:
        for known in KNOWN:
            known_bytes = None if known is None else frozenset(symbol.encode() for symbol in known)
            line = trade_lines.from_frame(value, list(headers.items()), known_bytes)
            if line is None:
                continue
            general = parse_message(value, {k: v for k, v in headers.items() if v is not None}, known)
            assert isinstance(general, TradeRow), (value, headers, known, general)
            assert fields(line) == fields(trade_lines.from_row(general))
            taken = line
    return taken


archive_fields = st.lists(
    st.one_of(
        st.sampled_from([b"", b"0", b"00", b"1", b"0.0", b"True", b"false", b"TRUE", b"1e5", b"-1"]),
        st.binary(max_size=6),
    ),
    min_size=1,
    max_size=9,
)


@settings(max_examples=400, deadline=None)
@given(columns=archive_fields)
def test_hot_path_decides_archive_rows_like_the_general_parser(columns: list[bytes]) -> None:
    assert_archive_row_decided_like_the_general_parser(b",".join(columns))


@settings(max_examples=300, deadline=None)
@given(
    trade_id=st.integers(0, 10**18 - 1),
    price=decimals,
    quantity=decimals,
    quote=st.from_regex(r"\A[0-9]{1,40}(\.[0-9]{1,30})?\Z"),
    trade_time=st.integers(0, 10**14 - 1),
    maker=st.sampled_from(["True", "False"]),
)
def test_valid_archive_rows_take_the_hot_path(
    trade_id: int, price: str, quantity: str, quote: str, trade_time: int, maker: str
) -> None:
    value = f"{trade_id},{price},{quantity},{quote},{trade_time},{maker},True".encode()
    assert trade_lines.from_frame(value, ARCHIVE_HEADERS[0], None) is not None
    assert assert_archive_row_decided_like_the_general_parser(value) is not None


def test_an_archive_row_becomes_its_copy_line() -> None:
    line = trade_lines.from_frame(ARCHIVE_ROW, ARCHIVE_HEADERS[0], frozenset({b"BNBBTC"}))
    assert line == b"\\N\tBNBBTC\t1000000037538001\t0.00530100\t188.80000000\t1621641600000000\ttrue\n"
    microseconds = ARCHIVE_ROW.replace(b"1621641600000", b"1621641600000123")
    line = trade_lines.from_frame(microseconds, ARCHIVE_HEADERS[2], None)
    assert line is not None and line.split(b"\t")[5] == b"1621641600000123"
