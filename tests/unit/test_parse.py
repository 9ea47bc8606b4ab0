"""Cleaning rules of consumer/parse.py, on the documented trade payload and on broken variants."""

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest

from consumer.parse import Rejection, parse_message
from schemas.messages import JSON_SCHEMA_DIR, Trade

# The example from Binance's web-socket-streams.md, with a real-looking price.
TRADE = {
    "e": "trade",
    "E": 1672515782136,
    "s": "BNBBTC",
    "t": 12345,
    "p": "0.00100000",
    "q": "100.00000000",
    "T": 1672515782136,
    "m": True,
    "M": True,
}
RECORDED = Path(__file__).resolve().parents[3] / "shared/binance/recorded-combined-stream-2021-10-12.jsonl"


def combined(payload: object, stream: str = "bnbbtc@trade") -> bytes:
    return json.dumps({"stream": stream, "data": payload}).encode()


def test_combined_trade_frame_becomes_an_exact_trade() -> None:
    result = parse_message(combined(TRADE))
    assert result == Trade(
        symbol="BNBBTC",
        trade_id=12345,
        price=Decimal("0.00100000"),
        quantity=Decimal("100.00000000"),
        trade_time=datetime(2022, 12, 31, 19, 43, 2, 136000, tzinfo=UTC),
        buyer_is_maker=True,
        event_time=datetime(2022, 12, 31, 19, 43, 2, 136000, tzinfo=UTC),
    )


def test_bare_payload_is_accepted_too() -> None:
    result = parse_message(json.dumps(TRADE).encode())
    assert isinstance(result, Trade)
    assert result.price == Decimal("0.00100000")


def test_price_keeps_every_digit() -> None:
    payload = {**TRADE, "p": "84517.28000001"}
    result = parse_message(combined(payload))
    assert isinstance(result, Trade)
    assert str(result.price) == "84517.28000001"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"p": "0.00000000"}, "non_positive_price"),
        ({"q": "0"}, "non_positive_quantity"),
        ({"p": "-1.5"}, "invalid_price"),
        ({"p": "1e5"}, "invalid_price"),
        ({"p": "NaN"}, "invalid_price"),
        ({"p": 0.001}, "invalid_price"),
        ({"q": None}, "invalid_quantity"),
        ({"t": "12345"}, "invalid_t"),
        ({"t": True}, "invalid_t"),
        ({"t": 2**63}, "invalid_t"),
        ({"T": -1}, "invalid_T"),
        ({"T": 10**20}, "invalid_T"),
        ({"m": "true"}, "invalid_m"),
        ({"s": "btc-usdt"}, "invalid_symbol"),
        ({"e": "aggTrade"}, "unsupported_event"),
    ],
)
def test_bad_fields_are_rejected_with_a_reason(change: dict[str, object], reason: str) -> None:
    result = parse_message(combined({**TRADE, **change}))
    assert isinstance(result, Rejection)
    assert result.reason == reason
    assert result.detail


@pytest.mark.parametrize("missing", ["s", "t", "p", "q", "T", "m", "E"])
def test_missing_field_is_rejected(missing: str) -> None:
    payload = {key: value for key, value in TRADE.items() if key != missing}
    result = parse_message(combined(payload))
    assert isinstance(result, Rejection)
    assert missing in result.detail or "symbol" in result.detail


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"", "empty_message"),
        (None, "empty_message"),
        (b'{"stream":"bnbbtc@trade","data":{"e":"tra', "invalid_json"),
        (b"[1,2,3]", "not_an_object"),
        (b'{"stream":"bnbbtc@trade","data":[1]}', "invalid_wrapper"),
    ],
)
def test_unusable_bytes_are_rejected(value: bytes | None, reason: str) -> None:
    result = parse_message(value)
    assert isinstance(result, Rejection)
    assert result.reason == reason


def test_stream_and_symbol_must_agree() -> None:
    result = parse_message(combined(TRADE, stream="ethusdt@trade"))
    assert isinstance(result, Rejection)
    assert result.reason == "stream_symbol_mismatch"


def test_every_accepted_trade_matches_the_json_schema() -> None:
    schema = json.loads((JSON_SCHEMA_DIR / "trade.schema.json").read_text())
    jsonschema.validate(TRADE, schema)
    wrapper = json.loads((JSON_SCHEMA_DIR / "combined_stream.schema.json").read_text())
    jsonschema.validate(json.loads(combined(TRADE)), wrapper)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**TRADE, "p": "-1"}, schema)


def test_recorded_frames_of_other_types_are_rejected_not_crashed() -> None:
    """Real Binance frames the skeleton does not store yet go to the DLQ with a reason."""
    lines = RECORDED.read_text().splitlines()
    assert len(lines) == 265
    wrapper = json.loads((JSON_SCHEMA_DIR / "combined_stream.schema.json").read_text())
    reasons = set()
    for line in lines:
        frame = json.loads(line)["frame"]
        jsonschema.validate(json.loads(frame), wrapper)
        result = parse_message(frame.encode())
        assert isinstance(result, Rejection)
        reasons.add(result.reason)
    assert reasons == {"unsupported_event"}
