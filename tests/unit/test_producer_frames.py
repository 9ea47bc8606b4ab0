"""The hot path's cheap reads of raw frames, checked against a full JSON parse of real frames."""

import json
from pathlib import Path

import orjson
import pytest

from fake_binance import wire
from fake_binance.exchange_info import load_exchange_info
from fake_binance.market import RandomWalkMarket
from producer.frames import SERVER_SHUTDOWN_STREAM, TRACKED_ID_FIELDS, encode_record, stream_of, tracked_id

RECORDING = Path(__file__).resolve().parents[1] / "fixtures/binance/recorded-combined-stream-2021-10-12.jsonl"


def recorded_frames() -> list[bytes]:
    return [json.loads(line)["frame"].encode() for line in RECORDING.read_text().splitlines() if line.strip()]


def fake_frames() -> list[bytes]:
    info = load_exchange_info()
    market = RandomWalkMarket(info.rules["BTCUSDT"], seed=5, first_trade_id=10**12 - 50)
    rules = info.rules["BTCUSDT"]
    frames = []
    for n in range(50):
        fill = market.next_fill(1_700_000_000_000 + n)
        for trade in fill.trades:
            frames.append(wire.combined_frame("btcusdt@trade", wire.encode(wire.trade_payload(trade, rules))))
        agg = wire.agg_trade_payload(fill.agg_trade, rules)
        frames.append(wire.combined_frame("btcusdt@aggTrade", wire.encode(agg)))
    return [frame.encode() for frame in frames]


def test_stream_names_match_a_full_parse_of_recorded_binance_frames() -> None:
    frames = recorded_frames()
    assert len(frames) > 200
    for frame in frames:
        assert stream_of(frame) == orjson.loads(frame)["stream"]


@pytest.mark.parametrize("frames", [recorded_frames(), fake_frames()], ids=["recorded", "fake"])
def test_ids_match_a_full_parse(frames: list[bytes]) -> None:
    checked = 0
    for frame in frames:
        stream = stream_of(frame)
        kind = stream.partition("@")[2]
        if kind not in TRACKED_ID_FIELDS:
            continue
        data = orjson.loads(frame)["data"]
        assert tracked_id(frame, TRACKED_ID_FIELDS[kind]) == data["t" if kind == "trade" else "a"]
        checked += 1
    assert checked > 0


def test_truncated_and_foreign_frames_yield_nothing() -> None:
    frame = fake_frames()[0]
    for cut in range(1, len(frame)):
        assert tracked_id(frame[:cut], b'"t":') is None
    assert stream_of(b'{"code":2,"msg":"Invalid request"}') == ""
    assert stream_of(b"not json at all") == ""
    assert stream_of(b'{"stream":"btcusdt@tr') == ""
    assert tracked_id(b'{"code":2,"msg":"x"}', b'"t":') is None


def test_server_shutdown_is_recognised_combined_or_raw() -> None:
    assert stream_of(b'{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1}}') == SERVER_SHUTDOWN_STREAM
    assert stream_of(b'{"e":"serverShutdown","E":1}') == SERVER_SHUTDOWN_STREAM


def test_rest_records_are_re_encoded_compact_in_binance_order() -> None:
    text = (
        '{"id":28457,"price":"4.00000100","qty":"12.00000000","quoteQty":"48.000012",'
        '"time":1499865549590,"isBuyerMaker":true,"isBestMatch":true}'
    )
    assert encode_record(json.loads(text)) == text.encode()
    row = (
        '[1499040000000,"0.01634790","0.80000000","0.01575800","0.01577100","148976.11427815",'
        '1499644799999,"2434.19055334",308,"1756.87402397","28.46694368","0"]'
    )
    assert encode_record(json.loads(row)) == row.encode()
