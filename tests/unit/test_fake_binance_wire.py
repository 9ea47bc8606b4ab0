"""The fake exchange's frames against real recorded Binance frames, and its pure logic.

No sockets here: the market model, wire formatting, kline bucketing, stream names, control
messages and history queries are all pure.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fake_binance import klines as kl
from fake_binance import wire
from fake_binance.exchange_info import SymbolRules, load_exchange_info
from fake_binance.history import SymbolHistory
from fake_binance.market import RandomWalkMarket, Trade
from fake_binance.streams import is_valid_stream, parse_served
from fake_binance.ws_server import BadRequestPath, handle_control, parse_request_path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "binance"
RECORDING = FIXTURES / "recorded-combined-stream-2021-10-12.jsonl"
RECORDED_EXCHANGE_INFO = FIXTURES / "recorded-exchangeInfo-2021-10-12.json"
T0 = 1633998523963  # the recorded kline frame's event time: 2021-10-12 00:28:43.963 UTC

# The trade payload of the official docs (web-socket-streams.md), keys in order, with value types.
DOCS_TRADE_SHAPE = [
    ("e", str), ("E", int), ("s", str), ("t", int), ("p", str), ("q", str), ("T", int), ("m", bool), ("M", bool)
]  # fmt: skip


@pytest.fixture(scope="module")
def info() -> Any:
    return load_exchange_info()


@pytest.fixture(scope="module")
def btc(info: Any) -> SymbolRules:
    rules: SymbolRules = info.rules["BTCUSDT"]
    return rules


def recorded_frames() -> dict[str, str]:
    """The first recorded frame text of every stream type."""
    if not RECORDING.exists():
        pytest.skip(f"{RECORDING} not available")
    first: dict[str, str] = {}
    for line in RECORDING.read_text().splitlines():
        frame = json.loads(line)["frame"]
        stream = json.loads(frame)["stream"]
        kind = stream.split("@", 1)[1]
        kind = "kline" if kind.startswith("kline_") else kind
        first.setdefault(kind, frame)
    return first


def shape(value: Any) -> Any:
    """Key order, value types, and the number of decimals of decimal strings."""
    if isinstance(value, dict):
        return [(key, shape(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [shape(item) for item in value]
    if isinstance(value, str):
        match = re.fullmatch(r"-?[0-9]+\.([0-9]+)", value)
        return ("decimal", len(match[1])) if match else ("str",)
    return (type(value).__name__,)


def make_fills(rules: SymbolRules, seed: int = 1, count: int = 50, start: int = T0) -> list[Any]:
    market = RandomWalkMarket(rules, seed)
    return [market.next_fill(start + 37 * i) for i in range(count)]


# --- frames against the recording --------------------------------------------------------------


def test_recorded_frames_are_what_our_encoder_writes() -> None:
    # Binance frames are compact JSON in key order: decoding and re-encoding one must give it back.
    for frame in recorded_frames().values():
        assert wire.encode(json.loads(frame)) == frame
        assert wire.combined_frame(json.loads(frame)["stream"], wire.encode(json.loads(frame)["data"])) == frame


def test_agg_trade_frame_matches_recording(btc: SymbolRules) -> None:
    recorded = json.loads(recorded_frames()["aggTrade"])
    fill = make_fills(btc, count=1)[0]
    text = wire.combined_frame("btcusdt@aggTrade", wire.encode(wire.agg_trade_payload(fill.agg_trade, btc)))
    ours = json.loads(text)
    assert list(ours) == ["stream", "data"]
    assert shape(ours["data"]) == shape(recorded["data"])


def test_kline_frame_matches_recording(btc: SymbolRules) -> None:
    recorded = json.loads(recorded_frames()["kline"])
    fills = make_fills(btc, count=5)
    trades = [t for fill in fills for t in fill.trades]
    open_ms = kl.open_time("1m", trades[0].trade_time)
    kline = kl.klines_between(trades, [t.trade_time for t in trades], "BTCUSDT", "1m", open_ms, open_ms)[0]
    ours = json.loads(wire.encode(wire.kline_payload(kline, btc, T0, closed=False)))
    assert shape(ours) == shape(recorded["data"])
    assert list(ours["k"]) == list(recorded["data"]["k"])


def test_book_ticker_frame_matches_recording(btc: SymbolRules) -> None:
    recorded = json.loads(recorded_frames()["bookTicker"])
    fill = make_fills(btc, count=1)[0]
    assert shape(wire.book_ticker_payload(fill.book, btc)) == shape(recorded["data"])


def test_trade_payload_matches_the_docs(btc: SymbolRules) -> None:
    trade = make_fills(btc, count=1)[0].trades[0]
    text = wire.encode(wire.trade_payload(trade, btc))
    payload = json.loads(text)
    assert [(key, type(value)) for key, value in payload.items()] == DOCS_TRADE_SHAPE
    assert " " not in text
    assert payload["e"] == "trade" and payload["s"] == "BTCUSDT" and payload["M"] is True


def test_microsecond_time_unit_scales_only_times(btc: SymbolRules) -> None:
    trade = make_fills(btc, count=1)[0].trades[0]
    millis, micros = wire.trade_payload(trade, btc), wire.trade_payload(trade, btc, wire.MICROSECONDS)
    assert micros["E"] == millis["E"] * 1000 and micros["T"] == millis["T"] * 1000
    assert micros["t"] == millis["t"]
    assert wire.scale_times(millis, wire.MICROSECONDS) == micros


# --- the market model ----------------------------------------------------------------------------


def test_trade_and_agg_ids_are_consecutive(btc: SymbolRules) -> None:
    fills = make_fills(btc, count=200)
    trade_ids = [t.trade_id for fill in fills for t in fill.trades]
    assert trade_ids == list(range(1, len(trade_ids) + 1))
    assert [fill.agg_trade.agg_id for fill in fills] == list(range(1, 201))
    for fill in fills:
        agg = fill.agg_trade
        assert (agg.first_trade_id, agg.last_trade_id) == (fill.trades[0].trade_id, fill.trades[-1].trade_id)
        assert agg.qty == sum(t.qty for t in fill.trades)
        assert {t.price for t in fill.trades} == {agg.price}
    assert any(len(fill.trades) > 1 for fill in fills)


def test_trade_ids_start_where_asked(btc: SymbolRules) -> None:
    market = RandomWalkMarket(btc, seed=1, first_trade_id=5_000_000_000)
    assert market.next_fill(T0).trades[0].trade_id == 5_000_000_000


@pytest.mark.parametrize("symbol", ["BTCUSDT", "ETHUSDT", "BNBBTC", "SHIBUSDT", "XRPUSDT"])
def test_prices_and_quantities_are_on_the_grid_with_symbol_precision(info: Any, symbol: str) -> None:
    rules: SymbolRules = info.rules[symbol]
    for fill in make_fills(rules, count=100):
        for trade in fill.trades:
            assert isinstance(trade.price, Decimal) and isinstance(trade.qty, Decimal)
            assert trade.price % rules.tick_size == 0 and trade.price >= rules.min_price
            assert trade.qty % rules.step_size == 0 and trade.qty >= rules.min_qty
            payload = wire.trade_payload(trade, rules)
            assert re.fullmatch(rf"[0-9]+\.[0-9]{{{rules.price_decimals}}}", payload["p"])
            assert re.fullmatch(rf"[0-9]+\.[0-9]{{{rules.qty_decimals}}}", payload["q"])
            assert Decimal(payload["p"]) == trade.price and Decimal(payload["q"]) == trade.qty
        book = fill.book
        assert book.bid_price < book.ask_price


def test_quantity_precision_follows_base_asset_precision(info: Any) -> None:
    # SHIBUSDT has baseAssetPrecision 2: its stepSize is recorded as "1.00".
    shib: SymbolRules = info.rules["SHIBUSDT"]
    trade = make_fills(shib, count=1)[0].trades[0]
    assert re.fullmatch(r"[0-9]+\.00", wire.trade_payload(trade, shib)["q"])
    assert re.fullmatch(r"0\.[0-9]{8}", wire.trade_payload(trade, shib)["p"])


def test_model_is_deterministic_for_a_seed(btc: SymbolRules) -> None:
    def run(seed: int) -> list[Any]:
        return [(t.trade_id, t.price, t.qty, t.buyer_is_maker) for f in make_fills(btc, seed) for t in f.trades]

    assert run(1) == run(1)
    assert run(1) != run(2)
    # Times come from the caller and do not change the random walk.
    shifted = [(t.trade_id, t.price, t.qty) for f in make_fills(btc, 1, start=T0 + 10**6) for t in f.trades]
    assert shifted == [(i, p, q) for i, p, q, _ in run(1)]


def test_max_trades_caps_a_fill(btc: SymbolRules) -> None:
    market = RandomWalkMarket(btc, seed=3)
    assert all(len(market.next_fill(T0, max_trades=1).trades) == 1 for _ in range(50))


# --- kline bucketing -------------------------------------------------------------------------------


def test_kline_boundaries_match_the_recorded_kline() -> None:
    recorded = json.loads(recorded_frames()["kline"])["data"]["k"]
    assert kl.open_time("1m", T0) == recorded["t"] == 1633998480000
    assert kl.close_time("1m", recorded["t"]) == recorded["T"] == 1633998539999


@pytest.mark.parametrize(
    ("interval", "time_ms", "open_ms", "close_ms"),
    [
        ("1s", T0, 1633998523000, 1633998523999),
        ("1m", 1633998480000, 1633998480000, 1633998539999),
        ("1m", 1633998539999, 1633998480000, 1633998539999),
        ("5m", T0, 1633998300000, 1633998599999),
        ("1h", T0, 1633996800000, 1634000399999),
        ("1d", T0, 1633996800000, 1634083199999),
        ("3d", T0, 1633996800000 - 1633996800000 % (3 * 86_400_000), None),
        # Weekly klines open on Monday 00:00 UTC (2021-10-11 was a Monday).
        ("1w", T0, 1633910400000, 1634515199999),
        # Monthly klines follow the calendar, leap years included.
        ("1M", T0, 1633046400000, 1635724799999),
        ("1M", 1707000000000, 1706745600000, 1709251199999),
    ],
)
def test_kline_boundaries(interval: str, time_ms: int, open_ms: int, close_ms: int | None) -> None:
    assert kl.open_time(interval, time_ms) == open_ms
    close = kl.close_time(interval, open_ms)
    assert close == kl.next_open_time(interval, open_ms) - 1
    if close_ms is not None:
        assert close == close_ms
    assert kl.open_time(interval, close) == open_ms
    assert kl.open_time(interval, close + 1) == close + 1


def test_kline_time_zone_offset_moves_day_boundaries() -> None:
    eight_hours = 8 * 3_600_000
    # 00:28 UTC is 08:28 in UTC+8: the day opened at 16:00 UTC the day before.
    assert kl.open_time("1d", T0, eight_hours) == 1633968000000
    assert kl.open_time("1m", T0, eight_hours) == kl.open_time("1m", T0)


def _trade(trade_id: int, time_ms: int, price: str, qty: str, buyer_is_maker: bool) -> Trade:
    return Trade("BTCUSDT", trade_id, Decimal(price), Decimal(qty), time_ms, time_ms, buyer_is_maker)


def test_klines_from_trades_with_gaps_filled() -> None:
    base = 1633998480000  # a minute boundary
    trades = [
        _trade(1, base + 100, "100.00", "1.0", False),
        _trade(2, base + 900, "101.00", "2.0", True),
        _trade(3, base + 999, "99.50", "0.5", False),
        _trade(4, base + 3000, "102.00", "1.0", True),  # seconds 1 and 2 have no trades
    ]
    times = [t.trade_time for t in trades]
    klines = kl.klines_between(trades, times, "BTCUSDT", "1s", base, base + 3000)
    assert [k.open_time for k in klines] == [base, base + 1000, base + 2000, base + 3000]
    first = klines[0]
    assert (first.open, first.high, first.low, first.close) == (Decimal("100.00"), Decimal("101.00"),
                                                                Decimal("99.50"), Decimal("99.50"))  # fmt: skip
    assert first.volume == Decimal("3.5") and first.trade_count == 3
    assert first.quote_volume == Decimal("100.00") + Decimal("202.00") + Decimal("49.75")
    # Taker buys are the trades where the buyer is not the maker.
    assert first.taker_buy_volume == Decimal("1.5")
    assert first.taker_buy_quote_volume == Decimal("149.75")
    assert (first.first_trade_id, first.last_trade_id, first.close_time) == (1, 3, base + 999)
    for empty in klines[1:3]:
        assert (empty.first_trade_id, empty.last_trade_id, empty.trade_count) == (-1, -1, 0)
        assert empty.open == empty.high == empty.low == empty.close == Decimal("99.50")
        assert empty.volume == 0
    assert klines[3].open == Decimal("102.00") and klines[3].first_trade_id == 4


def test_no_klines_before_the_first_trade() -> None:
    trade = _trade(1, T0, "100.00", "1", False)
    klines = kl.klines_between([trade], [T0], "BTCUSDT", "1s", T0 - 5000, kl.open_time("1s", T0))
    assert [k.open_time for k in klines] == [kl.open_time("1s", T0)]


def test_accumulator_closes_klines_by_trade_and_by_clock() -> None:
    base = 1633998480000
    accumulator = kl.KlineAccumulator("BTCUSDT", "1s")
    assert accumulator.advance_to(base) == []
    assert accumulator.add(_trade(1, base + 10, "100.00", "1", False)) == []
    closed = accumulator.add(_trade(2, base + 2500, "101.00", "1", False))
    assert [(k.open_time, k.trade_count) for k in closed] == [(base, 1), (base + 1000, 0)]
    assert accumulator.current is not None and accumulator.current.open_time == base + 2000
    closed = accumulator.advance_to(base + 3001)
    assert [(k.open_time, k.close, k.trade_count) for k in closed] == [(base + 2000, Decimal("101.00"), 1)]


def test_wire_kline_row_for_rest(btc: SymbolRules) -> None:
    base = 1633998480000
    trades = [_trade(1, base + 1, "56000.01", "0.00100", False)]
    kline = kl.klines_between(trades, [base + 1], "BTCUSDT", "1m", base, base)[0]
    assert wire.rest_kline_row(kline, btc) == [
        base, "56000.01000000", "56000.01000000", "56000.01000000", "56000.01000000", "0.00100000",
        base + 59_999, "56.00001000", 1, "0.00100000", "56.00001000", "0",
    ]  # fmt: skip


# --- history queries (REST semantics) --------------------------------------------------------------


def _history(btc: SymbolRules, count: int = 60) -> SymbolHistory:
    history = SymbolHistory("BTCUSDT")
    for fill in make_fills(btc, count=count):
        for trade in fill.trades:
            history.add_trade(trade)
        history.add_agg_trade(fill.agg_trade)
    return history


def test_trades_from_id_and_recent(btc: SymbolRules) -> None:
    history = _history(btc)
    assert [t.trade_id for t in history.trades_from_id(5, 3)] == [5, 6, 7]
    last = history.trades[-1].trade_id
    assert [t.trade_id for t in history.recent_trades(2)] == [last - 1, last]
    assert history.trades_from_id(last + 1, 10) == []


def test_agg_trades_by_id_and_time(btc: SymbolRules) -> None:
    history = _history(btc)
    aggs = history.agg_trades
    assert [a.agg_id for a in history.agg_trades_query(10, None, None, 3)] == [10, 11, 12]
    start, end = aggs[4].trade_time, aggs[8].trade_time
    assert [a.agg_id for a in history.agg_trades_query(None, start, end, 500)] == [5, 6, 7, 8, 9]
    assert [a.agg_id for a in history.agg_trades_query(None, start, None, 2)] == [5, 6]
    assert [a.agg_id for a in history.agg_trades_query(None, None, end, 2)] == [8, 9]
    assert [a.agg_id for a in history.agg_trades_query(None, None, None, 2)] == [59, 60]


def test_klines_query_selects_by_open_time(btc: SymbolRules) -> None:
    history = _history(btc)  # 60 fills, 37 ms apart: about 2.2 seconds of trading
    first_open = kl.open_time("1s", history.trade_times[0])
    now = history.trade_times[-1] + 10_000
    everything = history.klines_query("1s", None, None, 1000, now)
    assert everything[0].open_time == first_open
    assert everything[-1].open_time == kl.open_time("1s", now)
    assert sum(k.trade_count for k in everything) == len(history.trades)
    # python-binance asks for the earliest kline with startTime=0&limit=1.
    assert [k.open_time for k in history.klines_query("1s", 0, None, 1, now)] == [first_open]
    # startTime inside a kline selects the next one; endTime inside a kline keeps it.
    assert history.klines_query("1s", first_open + 1, None, 1, now)[0].open_time == first_open + 1000
    assert history.klines_query("1s", None, first_open + 1, 5, now)[-1].open_time == first_open
    assert len(history.klines_query("1s", None, None, 3, now)) == 3


# --- stream names, URLs and control messages -------------------------------------------------------


def test_stream_names() -> None:
    assert parse_served("btcusdt@trade") is not None
    kline = parse_served("ethusdt@kline_1M")
    assert kline is not None and (kline.symbol, kline.kind, kline.interval) == ("ETHUSDT", "kline", "1M")
    assert parse_served("btcusdt@depth") is None and is_valid_stream("btcusdt@depth@100ms")
    assert not is_valid_stream("btcusdt@nonsense") and not is_valid_stream("btcusdt@kline_2s")
    assert is_valid_stream("foobarbaz@trade")  # unknown symbols are accepted, and stay silent


def test_request_paths() -> None:
    raw = parse_request_path("/ws/btcusdt@trade")
    assert (raw.combined, raw.streams, raw.time_scale) == (False, ("btcusdt@trade",), 1)
    combined = parse_request_path("/stream?streams=btcusdt@trade/ethusdt@trade&timeUnit=MICROSECOND")
    assert (combined.combined, combined.streams, combined.time_scale) == (
        True, ("btcusdt@trade", "ethusdt@trade"), 1000
    )  # fmt: skip
    assert parse_request_path("/ws").streams == ()
    with pytest.raises(BadRequestPath):
        parse_request_path("/nothing")
    with pytest.raises(BadRequestPath):
        parse_request_path("/ws/btcusdt@trade?timeUnit=SECONDS")


def test_control_messages() -> None:
    outcome = handle_control('{"method":"SUBSCRIBE","params":["btcusdt@aggTrade"],"id":1}', [], True)
    assert outcome.reply == '{"result":null,"id":1}' and outcome.subscribe == ["btcusdt@aggTrade"]
    outcome = handle_control('{"method":"LIST_SUBSCRIPTIONS","id":3}', ["btcusdt@aggTrade"], True)
    assert outcome.reply == '{"result":["btcusdt@aggTrade"],"id":3}'
    outcome = handle_control('{"method":"UNSUBSCRIBE","params":["btcusdt@depth"],"id":312}', [], True)
    assert outcome.reply == '{"result":null,"id":312}' and outcome.unsubscribe == ["btcusdt@depth"]
    assert handle_control('{"method":"GET_PROPERTY","params":["combined"],"id":2}', [], True).reply == (
        '{"result":true,"id":2}'
    )
    outcome = handle_control('{"method":"SET_PROPERTY","params":["combined",false],"id":5}', [], True)
    assert outcome.reply == '{"result":null,"id":5}' and outcome.combined is False


@pytest.mark.parametrize(
    ("message", "code", "msg_start"),
    [
        ("{not json", 3, "Invalid JSON: "),
        ('{"params":[],"id":1}', 2, "Invalid request: missing field `method`"),
        ('{"method":"SUBSCRIB","params":[],"id":1}', 2, "Invalid request: unknown variant `SUBSCRIB`"),
        ('{"method":"SUBSCRIBE","params":["btcusdt@trade"]}', 2, "Invalid request: request ID must be"),
        ('{"method":"SUBSCRIBE","params":["btcusdt@bogus"],"id":1}', 2, "Invalid request: invalid stream"),
        ('{"method":"GET_PROPERTY","params":["combined","x"],"id":1}', 2, "Invalid request: too many parameters"),
        ('{"method":"GET_PROPERTY","params":[1],"id":1}', 2, "Invalid request: property name must be a string"),
        ('{"method":"SET_PROPERTY","params":["combined","yes"],"id":1}', 1, "Invalid value type: expected Boolean"),
        ('{"method":"GET_PROPERTY","params":["colour"],"id":1}', 0, "Unknown property"),
    ],
)
def test_control_message_errors(message: str, code: int, msg_start: str) -> None:
    outcome = handle_control(message, [], False)
    reply = json.loads(outcome.reply)
    assert reply["error"]["code"] == code
    assert reply["error"]["msg"].startswith(msg_start)
    assert outcome.subscribe == [] and outcome.unsubscribe == []


# --- replay input ---------------------------------------------------------------------------------


def test_recorded_lines_in_all_three_forms() -> None:
    payload = {"e": "trade", "E": 1, "s": "BTCUSDT", "t": 1, "p": "1.0", "q": "1.0", "T": 1, "m": True, "M": True}
    combined = {"stream": "btcusdt@trade", "data": payload}
    recorded = {"received_at": 1.5, "frame": json.dumps(combined, separators=(",", ":"))}
    for line in (json.dumps(payload), json.dumps(combined), json.dumps(recorded)):
        frame = wire.parse_recorded_line(line)
        assert frame is not None and frame.payload == payload
        assert (frame.stream or wire.stream_of_payload(frame.payload)) == "btcusdt@trade"
    assert wire.parse_recorded_line("   ") is None
    book = {"u": 1, "s": "NKNUSDT", "b": "1", "B": "1", "a": "1", "A": "1"}
    assert wire.stream_of_payload(book) == "nknusdt@bookTicker"


def test_shipped_exchange_info_entries_are_recorded_verbatim(info: Any) -> None:
    if not RECORDED_EXCHANGE_INFO.exists():
        pytest.skip("recorded exchangeInfo not available")
    recorded = json.loads(RECORDED_EXCHANGE_INFO.read_text())
    by_symbol = {entry["symbol"]: entry for entry in recorded["symbols"]}
    shipped = info.document(0)
    assert {"BTCUSDT", "ETHUSDT", "BNBBTC"} <= set(info.symbols) and len(info.symbols) >= 24
    assert list(shipped) == list(recorded)
    for entry in shipped["symbols"]:
        assert json.dumps(entry) == json.dumps(by_symbol[entry["symbol"]])
