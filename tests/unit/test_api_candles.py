"""Candle assembly, the scan cap, moving averages, Binance formatting and reconciliation: pure."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from api.binance_format import Precision, format_decimal, format_decimal_text, kline_row, precision_from_info
from api.candles import RollupRow, assemble, cap_by_rollup_rows, moving_average
from api.intervals import Interval
from api.models import Agreement
from api.reconcile import compare


def row(open_time: int, price: str, count: int = 1) -> RollupRow:
    # As api/queries/candles.py selects a rollup row: open time, open, high, low, close, volume,
    # quote volume, trade count, taker buy base and quote volume, first and last trade id.
    return (open_time, price, price, price, price, "1", price, count, "0", "0", 1, count)


def test_gaps_are_flat_at_the_previous_close_and_nothing_exists_before_the_first_trade() -> None:
    opens = [0, 1000, 2000, 3000]
    candles = assemble(Interval.S1, opens, {1000: row(1000, "10.5"), 3000: row(3000, "11")}, previous_close=None)
    assert [(c.open_time, c.close, c.trade_count, c.first_trade_id) for c in candles] == [
        (1000, "10.5", 1, 1),
        (2000, "10.5", 0, None),
        (3000, "11", 1, 1),
    ]
    assert candles[1].close_time == 2999 and candles[1].volume == "0"
    carried = assemble(Interval.S1, [0], {}, previous_close="9.00")
    assert carried[0].open == carried[0].high == carried[0].low == carried[0].close == "9.00"


def test_inside_a_known_hole_no_candle_is_invented_and_none_carries_its_close() -> None:
    opens = [0, 1000, 2000, 3000, 4000, 5000, 6000]
    rows = {0: row(0, "10"), 2000: row(2000, "12"), 5000: row(5000, "15")}
    # A hole from 1.5 s to 2.5 s: second 1 and 2 touch it; 3 and 4 follow it, before a new trade.
    candles = assemble(Interval.S1, opens, rows, previous_close=None, holes=[(1500, 2500)])
    assert [(c.open_time, c.close, c.trade_count) for c in candles] == [
        (0, "10", 1),
        (2000, "12", 1),  # stored trades inside the hole are still shown (the answer lists the hole)
        (5000, "15", 1),
        (6000, "15", 0),
    ]


def test_a_stored_kline_answers_where_no_trade_is_and_trades_win_where_both_are() -> None:
    rows = {1000: row(1000, "10")}
    klines = {0: row(0, "9"), 1000: row(1000, "99"), 3000: row(3000, "12")}
    candles = assemble(Interval.S1, [0, 1000, 2000, 3000], rows, None, holes=[(3200, 3500)], klines=klines)
    assert [(c.open_time, c.close, c.source) for c in candles] == [
        (0, "9", "klines"),
        (1000, "10", "trades"),
        (2000, "10", "trades"),  # flat at the trades' close
        (3000, "12", "klines"),  # Binance's kline is whole, even inside a hole of the trades
    ]


@given(
    st.lists(st.integers(0, 30), unique=True).map(sorted),
    st.lists(st.tuples(st.integers(0, 30_000), st.integers(1, 5_000)), max_size=4),
)
def test_no_flat_candle_ever_touches_a_hole_nor_follows_one(traded: list[int], holes: list[tuple[int, int]]) -> None:
    periods = sorted((start, start + length) for start, length in holes)
    rows = {second * 1000: row(second * 1000, f"{second}.5") for second in traded}
    candles = assemble(Interval.S1, [s * 1000 for s in range(31)], rows, "1.0", holes=periods)
    for candle in candles:
        touches = [p for p in periods if p[0] <= candle.close_time and p[1] > candle.open_time]
        if candle.trade_count == 0:
            assert not touches
            # Its close is the last traded candle's, and no hole lies since that candle.
            earlier = [c for c in candles if c.trade_count and c.open_time < candle.open_time]
            since = earlier[-1].open_time if earlier else 0
            assert not [p for p in periods if p[1] > since and p[0] < candle.open_time]


def test_the_scan_cap_keeps_the_requested_end_of_the_range() -> None:
    hour = 3_600_000
    opens = [i * hour for i in range(10)]
    assert cap_by_rollup_rows(Interval.H1, opens, 180, keep_oldest=True) == opens[:3]
    assert cap_by_rollup_rows(Interval.H1, opens, 180, keep_oldest=False) == opens[-3:]
    # Never empty: one candle is always allowed.
    assert cap_by_rollup_rows(Interval.H1, opens, 10, keep_oldest=True) == opens[:1]


def test_moving_average_is_exact_and_null_until_the_window_fills() -> None:
    values = [Decimal(v) for v in ("1", "2", "3", "4.5")]
    assert moving_average(values, 2) == [None, Decimal("1.5"), Decimal("2.5"), Decimal("3.75")]
    assert moving_average(values, 5) == [None] * 4


def test_binance_formatting_uses_the_symbol_precision() -> None:
    assert format_decimal(Decimal("0.3528"), 8) == "0.35280000"
    assert format_decimal(Decimal("58.000000005"), 8) == "58.00000000"  # half to even
    assert format_decimal(Decimal("58.000000015"), 8) == "58.00000002"
    assert format_decimal_text("58.00000000", 8) == "58.00000000"
    assert format_decimal_text("58.0000000150000000", 8) == "58.00000002"
    assert format_decimal_text("0", 8) == "0.00000000"
    assert precision_from_info({"quotePrecision": 2, "baseAssetPrecision": 5, "quoteAssetPrecision": 3}) == Precision(
        2, 5, 3
    )
    assert precision_from_info(None) == Precision(8, 8, 8)
    candle = assemble(Interval.M1, [60_000], {60_000: row(60_000, "10.5")}, None)[0]
    assert kline_row(candle, Precision(2, 3, 4)) == [
        60_000, "10.50", "10.50", "10.50", "10.50", "1.000", 119_999, "10.5000", 1, "0.000", "0.0000", "0",
    ]  # fmt: skip


def test_reconcile_carries_the_websocket_price_through_quiet_seconds() -> None:
    ws = {1000: (Decimal("10"), 2), 3000: (Decimal("12"), 1), 5000: (Decimal("13"), 1)}
    rest = {0: (Decimal("9"), 1), 1000: (Decimal("10"), 2), 2000: (Decimal("10"), 0), 3000: (Decimal("11"), 1)}
    result = compare(ws, rest, ws_close_before=None)
    assert [(c.second_ms, c.ws_close, c.agreement) for c in result] == [
        (0, None, Agreement.MISSING_WS),
        (1000, Decimal("10"), Agreement.MATCH),
        (2000, Decimal("10"), Agreement.MATCH),
        (3000, Decimal("12"), Agreement.CLOSE_DIFFERS),
        (5000, Decimal("13"), Agreement.MISSING_REST),
    ]
    assert result[3].difference == Decimal("1")
    assert compare({}, {0: (Decimal("9"), 0)}, ws_close_before=Decimal("9"))[0].agreement is Agreement.MATCH
