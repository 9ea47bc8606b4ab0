"""Archive CSV rows (source `archive`) in the consumer: the fake archive's rows become exact rows, and
every class of broken row is dead-lettered with its reason, whatever its members look like."""

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumer.parse import AggTradeRow, CoverageRow, KlineRow, Rejection, Row, Skipped, TradeRow, parse_message

TRADE_ROW = b"1000000037538001,0.00530100,188.80000000,1.00082880,1621641600000,True,True"
AGG_ROW = b"1000000037538001,0.00530100,379.30000000,1000000037538001,1000000037538002,1621641600000,False,True"
KLINE_ROW = (
    b"1621641600000,0.00530100,0.00530300,0.00529900,0.00530000,4161.40000000,1621641899999,"
    b"22.05712730,8,1950.10000000,10.33638070,0"
)
US_KLINE_ROW = (
    b"1735689600000000,0.00530100,0.00530300,0.00529900,0.00530000,4161.40000000,1735689899999999,"
    b"22.05712730,8,1950.10000000,10.33638070,0"
)
STREAMS = {"trade": b"adabnb@trade", "aggTrade": b"adabnb@aggTrade", "kline": b"adabnb@kline_5m"}
ROWS = {"trade": TRADE_ROW, "aggTrade": AGG_ROW, "kline": KLINE_ROW}


def archive(kind: str, microseconds: bool = False) -> dict[str, bytes]:
    headers = {"source": b"archive", "stream": STREAMS[kind], "received_at_ns": b"1700000000000000000"}
    if microseconds:
        headers["time_unit"] = b"MICROSECOND"
    return headers


def parse(kind: str, value: bytes, microseconds: bool = False) -> Row | Rejection | Skipped:
    return parse_message(value, archive(kind, microseconds), known_symbols={"ADABNB"})


def test_a_trade_row_becomes_the_row_a_live_trade_makes() -> None:
    assert parse("trade", TRADE_ROW) == TradeRow(
        symbol="ADABNB",
        trade_id=1000000037538001,
        price="0.00530100",
        quantity="188.80000000",
        trade_time_us=1621641600000000,
        buyer_is_maker=True,
        event_time_us=None,
    )


def test_an_agg_trade_row_becomes_an_exact_row() -> None:
    assert parse("aggTrade", AGG_ROW) == AggTradeRow(
        symbol="ADABNB",
        agg_trade_id=1000000037538001,
        price="0.00530100",
        quantity="379.30000000",
        first_trade_id=1000000037538001,
        last_trade_id=1000000037538002,
        trade_time_us=1621641600000000,
        buyer_is_maker=False,
        event_time_us=None,
    )


def test_a_kline_row_is_a_closed_archive_kline() -> None:
    row = parse("kline", KLINE_ROW)
    assert isinstance(row, KlineRow)
    assert (row.interval, row.open_time_us, row.close_time_us, row.is_closed, row.source) == (
        "5m",
        1621641600000000,
        1621641899999000,
        True,
        "archive",
    )
    assert (row.open, row.high, row.low, row.close, row.trade_count) == (
        "0.00530100",
        "0.00530300",
        "0.00529900",
        "0.00530000",
        8,
    )


def test_microsecond_files_keep_their_microseconds() -> None:
    row = parse("kline", US_KLINE_ROW, microseconds=True)
    assert isinstance(row, KlineRow)
    assert (row.open_time_us, row.close_time_us) == (1735689600000000, 1735689899999999)


def test_an_imported_files_coverage_marker_is_a_coverage_row() -> None:
    marker = b'{"kind":"held","start_ms":0,"end_ms":1,"origin":"archive","detail":""}'
    parsed = parse_message(marker, {"source": b"coverage", "stream": b"adabnb@trade"}, key=b"ADABNB")
    assert parsed == CoverageRow("ADABNB", "trade", "held", 0, 1, "archive", "")


def test_an_unknown_symbol_is_rejected() -> None:
    headers = {**archive("trade"), "stream": b"nopeusdt@trade"}
    result = parse_message(TRADE_ROW, headers, known_symbols={"ADABNB"})
    assert isinstance(result, Rejection) and result.reason == "unknown_symbol"


# --- classes of broken rows, many members each ---------------------------------------------------

KINDS = st.sampled_from(sorted(ROWS))


def fields(kind: str) -> list[bytes]:
    return ROWS[kind].split(b",")


def rejected_as(reason: str, kind: str, value: bytes, microseconds: bool = False) -> None:
    result = parse(kind, value, microseconds)
    assert isinstance(result, Rejection), f"{value!r} was accepted as {result!r}"
    assert result.reason == reason, f"{value!r}: {result}"
    assert result.detail


@given(kind=KINDS, data=st.data())
def test_a_row_with_another_number_of_columns_is_invalid(kind: str, data: st.DataObject) -> None:
    columns = fields(kind)
    count = data.draw(st.integers(1, 20).filter(lambda n: n != len(columns)))
    extended = (columns * 3)[:count]
    rejected_as("invalid_csv_row", kind, b",".join(extended))


# Which columns of each kind hold integers, plain decimals and booleans.
INTEGER_COLUMNS = {"trade": [0, 4], "aggTrade": [0, 3, 4, 5], "kline": [0, 6, 8]}
DECIMAL_COLUMNS = {"trade": [1, 2, 3], "aggTrade": [1, 2], "kline": [1, 2, 3, 4, 5, 7, 9, 10]}
BOOLEAN_COLUMNS = {"trade": [5, 6], "aggTrade": [6, 7], "kline": []}
NOT_AN_INTEGER = st.one_of(
    st.text(min_size=1, max_size=12).filter(lambda t: not t.isdigit() or (t.startswith("0") and len(t) > 1)),
    st.integers(2**63, 2**70).map(str),
    st.integers(-(10**12), -1).map(str),
).filter(lambda t: "," not in t and "\n" not in t and "\r" not in t)
NOT_A_DECIMAL = st.one_of(
    st.sampled_from(["", "1e-7", "-0.1", "+1", "1.", ".5", "NaN", "Infinity", "0x10", "1,5", " 1", "1 "]),
    st.text(min_size=1, max_size=12).filter(lambda t: any(not (c.isdigit() or c == ".") for c in t)),
).filter(lambda t: "," not in t and "\n" not in t and "\r" not in t)
NOT_A_BOOLEAN = st.text(max_size=8).filter(lambda t: t not in ("True", "False", "true", "false") and "," not in t)


def with_column(kind: str, index: int, text: str) -> bytes:
    columns = fields(kind)
    columns[index] = text.encode()
    return b",".join(columns)


@given(kind=KINDS, data=st.data())
def test_a_column_that_is_not_an_integer_is_invalid(kind: str, data: st.DataObject) -> None:
    index = data.draw(st.sampled_from(INTEGER_COLUMNS[kind]))
    rejected_as("invalid_csv_row", kind, with_column(kind, index, data.draw(NOT_AN_INTEGER)))


@given(kind=KINDS, data=st.data())
def test_a_price_or_quantity_that_is_not_a_plain_decimal_is_invalid(kind: str, data: st.DataObject) -> None:
    index = data.draw(st.sampled_from(DECIMAL_COLUMNS[kind]))
    rejected_as("invalid_csv_row", kind, with_column(kind, index, data.draw(NOT_A_DECIMAL)))


@given(kind=st.sampled_from(["trade", "aggTrade"]), data=st.data())
def test_a_flag_that_is_not_a_boolean_is_invalid(kind: str, data: st.DataObject) -> None:
    index = data.draw(st.sampled_from(BOOLEAN_COLUMNS[kind]))
    rejected_as("invalid_csv_row", kind, with_column(kind, index, data.draw(NOT_A_BOOLEAN)))


ZEROS = st.builds(
    lambda whole, places: "0" * whole + ("." + "0" * places if places else ""), st.integers(1, 5), st.integers(0, 8)
)
PRICE_COLUMNS: dict[str, list[tuple[int, str]]] = {
    "trade": [(1, "price"), (2, "quantity")],
    "aggTrade": [(1, "price"), (2, "quantity")],
    "kline": [(1, "open"), (2, "high"), (3, "low"), (4, "close")],
}


@given(kind=KINDS, data=st.data())
def test_a_zero_price_or_quantity_is_non_positive(kind: str, data: st.DataObject) -> None:
    index, name = data.draw(st.sampled_from(PRICE_COLUMNS[kind]))
    rejected_as(f"non_positive_{name}", kind, with_column(kind, index, data.draw(ZEROS)))


@given(kind=KINDS, data=st.data(), microseconds=st.booleans())
def test_a_time_past_year_9999_is_invalid(kind: str, data: st.DataObject, microseconds: bool) -> None:
    column = {"trade": 4, "aggTrade": 5, "kline": 0}[kind]
    limit = 253_402_300_799_999 * (1000 if microseconds else 1)
    late = data.draw(st.integers(limit + 1000, 2**63 - 1))
    rejected_as("invalid_time", kind, with_column(kind, column, str(late)), microseconds)


@given(raw=st.binary(min_size=1, max_size=200).filter(lambda b: not b.isascii()))
def test_bytes_that_are_not_ascii_are_invalid(raw: bytes) -> None:
    rejected_as("invalid_csv_row", "trade", raw)


@given(first=st.integers(1, 10**15), step=st.integers(1, 10**6))
def test_an_agg_trade_whose_first_id_is_after_its_last_is_inconsistent(first: int, step: int) -> None:
    columns = fields("aggTrade")
    columns[3], columns[4] = str(first + step).encode(), str(first).encode()
    rejected_as("inconsistent_agg_trade", "aggTrade", b",".join(columns))


KLINE_BREAKS: dict[str, Callable[[list[bytes], int], None]] = {
    # high below low, or open/close outside them
    "high": lambda c, n: c.__setitem__(2, f"0.00529{n % 90:02d}".encode()),
    "close": lambda c, n: c.__setitem__(4, f"0.0054{n % 1000:03d}".encode()),
    # a close time that is not the interval's end
    "close_time": lambda c, n: c.__setitem__(6, str(1621641899999 + (n % 10**6) + 1).encode()),
}


@given(which=st.sampled_from(sorted(KLINE_BREAKS)), n=st.integers(0, 10**9))
def test_an_inconsistent_kline_is_rejected(which: str, n: int) -> None:
    columns = fields("kline")
    KLINE_BREAKS[which](columns, n)
    rejected_as("inconsistent_kline", "kline", b",".join(columns))


@pytest.mark.parametrize("stream", [b"adabnb@bookTicker", b"adabnb@depth", b"no-at-sign"])
def test_an_archive_row_of_a_stream_not_stored_is_unsupported(stream: bytes) -> None:
    result = parse_message(TRADE_ROW, {**archive("trade"), "stream": stream}, known_symbols={"ADABNB"})
    assert isinstance(result, Rejection) and result.reason == "unsupported_stream"
