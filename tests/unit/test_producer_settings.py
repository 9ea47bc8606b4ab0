"""Producer settings from the environment and flags, and the start-up symbol check."""

import asyncio
import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from binance.exceptions import BinanceAPIException
from pydantic import ValidationError
from pydantic_settings import CliApp

from producer.backfill import (
    MAX_RETRY_AFTER_S,
    SymbolError,
    check_symbols,
    request_weight_limit,
    retry_after_s,
    startup_exchange_info,
)
from producer.settings import (
    KAFKA_HEADER_ROOM_BYTES,
    KAFKA_MESSAGE_MAX_BYTES,
    KLINE_INTERVALS,
    ProducerSettings,
    parse_duration_s,
)

EXCHANGE_INFO = Path(__file__).resolve().parents[1] / "fixtures/binance/recorded-exchangeInfo-2021-10-12.json"


def test_every_stream_type_and_kline_interval_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    types = ["trade", "aggTrade", "bookTicker", *(f"kline_{interval}" for interval in KLINE_INTERVALS)]
    monkeypatch.setenv("PRODUCER_STREAM_TYPES", ",".join(types))
    monkeypatch.setenv("PRODUCER_SYMBOLS", "btcusdt, ETHUSDT")
    settings = ProducerSettings()
    assert settings.stream_types == types
    assert settings.symbols == ["BTCUSDT", "ETHUSDT"]
    assert "btcusdt@kline_1s" in settings.stream_names()
    assert "ethusdt@kline_1M" in settings.stream_names()
    assert settings.kline_intervals() == list(KLINE_INTERVALS)


@pytest.mark.parametrize("bad", ["kline_2m", "depth", "Trade", "kline_1S"])
def test_unknown_stream_types_are_refused_by_name(bad: str) -> None:
    with pytest.raises(ValidationError, match=bad):
        ProducerSettings(stream_types=[bad])


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRODUCER_SYMBOLS", "BTCUSDT")
    monkeypatch.setenv("PRODUCER_WS_BASE_URL", "wss://data-stream.binance.vision")
    settings = CliApp.run(
        ProducerSettings,
        cli_args=["--symbols", "ethusdt,bnbbtc", "--stream-types", "trade,kline_1m", "--backfill", "1h30m"],
    )
    assert settings.symbols == ["ETHUSDT", "BNBBTC"]
    assert settings.stream_types == ["trade", "kline_1m"]
    assert settings.ws_base_url == "wss://data-stream.binance.vision"
    assert settings.backfill == 5400.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1h", 3600.0), ("90s", 90.0), ("30m", 1800.0), ("1h30m", 5400.0), ("2d", 172800.0), ("0", 0.0), ("45", 45.0)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration_s(text) == seconds


def test_bad_durations_are_refused() -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration_s("an hour")
    with pytest.raises(ValidationError):
        ProducerSettings.model_validate({"connection_max_age_s": "1x"})


def test_defaults_respect_binance_limits() -> None:
    settings = ProducerSettings()
    assert settings.connection_max_age_s < 24 * 3600
    assert settings.max_streams_per_connection <= 1024
    assert settings.max_connection_attempts_per_5min <= 300
    with pytest.raises(ValidationError):
        ProducerSettings(max_streams_per_connection=1025)


def test_a_frame_accepted_from_the_websocket_fits_in_a_kafka_message() -> None:
    assert ProducerSettings().ws_max_frame_bytes + KAFKA_HEADER_ROOM_BYTES <= KAFKA_MESSAGE_MAX_BYTES
    with pytest.raises(ValidationError):
        ProducerSettings(ws_max_frame_bytes=KAFKA_MESSAGE_MAX_BYTES)


def test_symbol_check_names_unknown_and_halted_symbols() -> None:
    info = json.loads(EXCHANGE_INFO.read_text())
    check_symbols(info, ["BTCUSDT", "ETHBTC"])
    halted = next(entry["symbol"] for entry in info["symbols"] if entry["status"] != "TRADING")
    with pytest.raises(SymbolError) as error:
        check_symbols(info, ["BTCUSDT", "NOSUCHPAIR", halted])
    assert "NOSUCHPAIR" in str(error.value)
    assert halted in str(error.value)
    assert "BTCUSDT" not in str(error.value)


def test_weight_limit_comes_from_exchange_info() -> None:
    info = json.loads(EXCHANGE_INFO.read_text())
    assert request_weight_limit(info) == 1200
    assert request_weight_limit({}) == 6000


def test_retry_after_is_read_from_the_response() -> None:
    class Response:
        headers: ClassVar[dict[str, str]] = {"Retry-After": "7"}

    class Error:
        response = Response()

    assert retry_after_s(Error(), default=1.0) == 7.0
    Response.headers = {}
    assert retry_after_s(Error(), default=1.0) == 1.0


class RefusingRest:
    """exchangeInfo refused with each of `refusals` ((status, Retry-After or None)), then answered."""

    def __init__(self, refusals: list[tuple[int, str | None]]) -> None:
        self.refusals = refusals

    def exchange_info(self) -> dict[str, Any]:
        if not self.refusals:
            return {"symbols": []}
        status, retry_after = self.refusals.pop(0)

        class Response:
            headers = {"Retry-After": retry_after} if retry_after is not None else {}
            text = '{"code":-1003,"msg":"Too much request weight used"}'

        raise BinanceAPIException(Response(), status, Response.text)


def test_refusals_of_the_first_exchange_info_are_waited_out(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    rest = RefusingRest([(429, "7"), (418, None), (429, "0"), (429, "999999999")])
    info = asyncio.run(startup_exchange_info(rest, 0.5, 30.0))  # type: ignore[arg-type]
    assert info == {"symbols": []}
    # Retry-After in full; a ban without one: Binance's shortest (2 min); 0: a backoff; absurd: capped.
    assert waits[0] == 7.0 and waits[1] == 120.0 and 0.5 <= waits[2] <= 30.0
    assert waits[3] == MAX_RETRY_AFTER_S
    with pytest.raises(BinanceAPIException):
        asyncio.run(startup_exchange_info(RefusingRest([(400, None)]), 0.5, 30.0))  # type: ignore[arg-type]
