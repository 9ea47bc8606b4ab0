"""Cleaning rules of consumer/parse.py, on Binance's documented payloads, the real recorded frames,
and broken variants of them."""

import json
from pathlib import Path

import jsonschema
import pytest

from consumer.parse import (
    AggTradeRow,
    BookTickerRow,
    KlineRow,
    Rejection,
    Skipped,
    TradeRow,
    parse_message,
)
from schemas.messages import JSON_SCHEMA_DIR

# The example from Binance's web-socket-streams.md, with a real-looking price.
TRADE = {
    "e": "trade",
    "E": 1672515782136,
    "s": "BNBBTC",
    "t": 12345,
    "p": "0.00100000",
    "q": "100.00000000",
    "T": 1672515782134,
    "m": True,
    "M": True,
}
WS = {"source": b"ws", "received_at_ns": b"1672515782200000000"}
RECORDED = Path(__file__).resolve().parents[1] / "fixtures/binance/recorded-combined-stream-2021-10-12.jsonl"


def combined(payload: object, stream: str = "bnbbtc@trade") -> bytes:
    return json.dumps({"stream": stream, "data": payload}).encode()


def recorded_frames() -> list[tuple[str, bytes, int]]:
    """(stream, frame, received_at_ns) of every real recorded frame."""
    frames = []
    for line in RECORDED.read_text().splitlines():
        record = json.loads(line)
        frames.append(
            (json.loads(record["frame"])["stream"], record["frame"].encode(), int(record["received_at"] * 1e9))
        )
    return frames


def test_combined_trade_frame_becomes_an_exact_row() -> None:
    assert parse_message(combined(TRADE), WS) == TradeRow(
        symbol="BNBBTC",
        trade_id=12345,
        price="0.00100000",
        quantity="100.00000000",
        trade_time_us=1672515782134000,
        buyer_is_maker=True,
        event_time_us=1672515782136000,
    )


def test_bare_payload_takes_its_stream_from_the_header() -> None:
    result = parse_message(json.dumps(TRADE).encode(), {**WS, "stream": b"bnbbtc@trade"})
    assert isinstance(result, TradeRow)
    assert result.price == "0.00100000"


def test_microsecond_times_are_kept_to_the_microsecond() -> None:
    payload = {**TRADE, "T": 1672515782134567, "E": 1672515782136001}
    result = parse_message(combined(payload), {**WS, "time_unit": b"MICROSECOND"})
    assert isinstance(result, TradeRow)
    assert (result.trade_time_us, result.event_time_us) == (1672515782134567, 1672515782136001)


def test_price_keeps_every_digit() -> None:
    result = parse_message(combined({**TRADE, "p": "84517.28000001"}), WS)
    assert isinstance(result, TradeRow)
    assert result.price == "84517.28000001"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"p": "0.00000000"}, "non_positive_price"),
        ({"q": "0"}, "non_positive_quantity"),
        ({"p": "-1.5"}, "invalid_field"),
        ({"p": "1e5"}, "invalid_field"),
        ({"p": "NaN"}, "invalid_field"),
        ({"p": 0.001}, "invalid_field"),
        ({"q": None}, "invalid_field"),
        ({"t": "12345"}, "invalid_field"),
        ({"t": True}, "invalid_field"),
        ({"t": 2**63}, "invalid_field"),
        ({"T": -1}, "invalid_field"),
        ({"T": 10**15}, "invalid_time"),
        ({"m": "true"}, "invalid_field"),
        ({"s": "btc-usdt"}, "invalid_field"),
        ({"e": "aggTrade"}, "event_stream_mismatch"),
        ({"s": "ETHBTC"}, "stream_symbol_mismatch"),
    ],
)
def test_bad_fields_are_rejected_with_a_reason(change: dict[str, object], reason: str) -> None:
    result = parse_message(combined({**TRADE, **change}), WS)
    assert isinstance(result, Rejection)
    assert result.reason == reason
    assert result.detail


@pytest.mark.parametrize("missing", ["e", "s", "t", "p", "q", "T", "m", "E"])
def test_missing_field_is_rejected_and_named(missing: str) -> None:
    payload = {key: value for key, value in TRADE.items() if key != missing}
    result = parse_message(combined(payload), WS)
    assert isinstance(result, Rejection)
    assert result.reason == "missing_field"
    assert f"`{missing}`" in result.detail


@pytest.mark.parametrize(
    ("value", "headers", "reason"),
    [
        (b"", WS, "empty_message"),
        (None, WS, "empty_message"),
        (b'{"stream":"bnbbtc@trade","data":{"e":"tra', WS, "invalid_json"),
        (b'{"stream":"bnbbtc@trade","data":[1]}', WS, "invalid_field"),
        (b"[1,2,3]", WS, "unsupported_stream"),
        (combined({"x": 1}, stream="bnbbtc@depth@100ms"), WS, "unsupported_stream"),
        (combined(TRADE, stream="nonsense"), WS, "unsupported_stream"),
    ],
)
def test_unusable_messages_are_rejected(value: bytes | None, headers: dict[str, bytes], reason: str) -> None:
    result = parse_message(value, headers)
    assert isinstance(result, Rejection)
    assert result.reason == reason


def test_unknown_symbols_are_rejected_only_when_a_symbol_list_is_given() -> None:
    assert isinstance(parse_message(combined(TRADE), WS, known_symbols={"BNBBTC"}), TradeRow)
    result = parse_message(combined(TRADE), WS, known_symbols={"BTCUSDT"})
    assert result == Rejection("unknown_symbol", "symbol 'BNBBTC' is not listed by the exchange")


def test_server_shutdown_is_skipped_not_dead_lettered() -> None:
    frame = combined({"e": "serverShutdown", "E": 1672515782136}, stream="!serverShutdown")
    assert parse_message(frame, WS) == Skipped("server_shutdown")


def test_every_recorded_frame_is_stored_or_rejected_with_a_reason() -> None:
    """The real frames: aggTrade, kline and bookTicker are stored; depth is not stored (yet)."""
    kinds: dict[str, set[type]] = {}
    for stream, frame, received_at_ns in recorded_frames():
        result = parse_message(frame, {"source": b"ws", "received_at_ns": str(received_at_ns).encode()})
        kinds.setdefault(stream.split("@")[1], set()).add(type(result))
    assert kinds == {
        "aggTrade": {AggTradeRow},
        "kline_1m": {KlineRow},
        "bookTicker": {BookTickerRow},
        "depth": {Rejection},
    }


def test_recorded_kline_fields_land_in_the_right_columns() -> None:
    _stream, frame, received_at_ns = next(f for f in recorded_frames() if "@kline_1m" in f[0])
    kline = json.loads(frame)["data"]["k"]
    row = parse_message(frame, {"source": b"ws", "received_at_ns": str(received_at_ns).encode()})
    assert isinstance(row, KlineRow)
    assert (row.open, row.high, row.low, row.close) == (kline["o"], kline["h"], kline["l"], kline["c"])
    assert (row.volume, row.quote_volume, row.trade_count) == (kline["v"], kline["q"], kline["n"])
    assert (row.taker_buy_base_volume, row.taker_buy_quote_volume) == (kline["V"], kline["Q"])
    assert (row.open_time_us, row.close_time_us) == (kline["t"] * 1000, kline["T"] * 1000)
    assert row.is_closed is kline["x"]
    assert row.source == "ws"


def test_book_ticker_takes_the_receive_time_from_the_header() -> None:
    _stream, frame, received_at_ns = next(f for f in recorded_frames() if "@bookTicker" in f[0])
    row = parse_message(frame, {"source": b"ws", "received_at_ns": str(received_at_ns).encode()})
    assert isinstance(row, BookTickerRow)
    assert row.received_at_us == received_at_ns // 1000
    assert isinstance(parse_message(frame, {"source": b"ws"}), Rejection)


REST = {"source": b"rest", "received_at_ns": b"1700000000000000000"}


def test_rest_trade_record() -> None:
    record = {
        "id": 28457,
        "price": "4.00000100",
        "qty": "12.00000000",
        "quoteQty": "48.000012",
        "time": 1499865549590,
        "isBuyerMaker": True,
        "isBestMatch": True,
    }
    row = parse_message(json.dumps(record).encode(), {**REST, "stream": b"bnbbtc@trade"})
    assert row == TradeRow("BNBBTC", 28457, "4.00000100", "12.00000000", 1499865549590000, True, None)


def test_rest_agg_trade_record() -> None:
    record = {"a": 26129, "p": "0.01633102", "q": "4.70443515", "f": 27781, "l": 27781, "T": 1498793709153, "m": True}
    row = parse_message(json.dumps(record).encode(), {**REST, "stream": b"bnbbtc@aggTrade"})
    assert row == AggTradeRow("BNBBTC", 26129, "0.01633102", "4.70443515", 27781, 27781, 1498793709153000, True, None)


def test_rest_kline_is_closed_only_once_its_close_time_has_passed() -> None:
    record = [1499040000000, "0.01634790", "0.80000000", "0.01575800", "0.01577100", "148976.11427815",
              1499644799999, "2434.19055334", 308, "1756.87402397", "28.46694368", "0"]  # fmt: skip
    row = parse_message(json.dumps(record).encode(), {**REST, "stream": b"bnbbtc@kline_1w"})
    assert isinstance(row, KlineRow)
    assert (row.interval, row.open, row.close, row.trade_count, row.source) == (
        "1w",
        "0.01634790",
        "0.01577100",
        308,
        "rest",
    )
    assert row.is_closed is True
    still_open = parse_message(
        json.dumps(record).encode(), {**REST, "stream": b"bnbbtc@kline_1w", "received_at_ns": b"1499040000000000000"}
    )
    assert isinstance(still_open, KlineRow)
    assert still_open.is_closed is False


def test_rest_kline_with_a_bad_interval_is_rejected() -> None:
    record = [1499040000000, "1", "1", "1", "1", "1", 1499644799999, "1", 1, "1", "1", "0"]
    result = parse_message(json.dumps(record).encode(), {**REST, "stream": b"bnbbtc@kline_7m"})
    assert isinstance(result, Rejection)
    assert result.reason == "invalid_interval"


def test_payloads_the_parser_accepts_match_the_json_schema() -> None:
    schema = json.loads((JSON_SCHEMA_DIR / "trade.schema.json").read_text())
    jsonschema.validate(TRADE, schema)
    wrapper = json.loads((JSON_SCHEMA_DIR / "combined_stream.schema.json").read_text())
    jsonschema.validate(json.loads(combined(TRADE)), wrapper)
    for _, frame, _ in recorded_frames():
        jsonschema.validate(json.loads(frame), wrapper)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**TRADE, "p": "-1"}, schema)


@pytest.mark.parametrize(
    "value",
    [
        b'{"stream":"bnbbtc@trade","data":{"e":"trade","s":"\xff\xfe"}}',  # invalid UTF-8 in a string
        b"[" * 1000 + b"]" * 1000,  # nesting deeper than Python's recursion limit
        b'{"stream":"bnbbtc@trade","data":' + b'{"a":' * 1000 + b"1" + b"}" * 1001,
    ],
)
def test_inputs_that_used_to_crash_the_consumer_are_rejected(value: bytes) -> None:
    result = parse_message(value, WS)
    assert isinstance(result, Rejection)
    assert result.reason in {"invalid_json", "invalid_field", "unsupported_stream"}
