"""Dead letters fit Kafka's limit and the dead_letters table, whatever the rejected message held."""

from hypothesis import given, settings
from hypothesis import strategies as st

from consumer.dead_letters import (
    DLQ_MAX_MESSAGE_BYTES,
    MAX_DETAIL_CHARS,
    MAX_STREAM_CHARS,
    Headers,
    Rejected,
    headers_size,
    storable_text,
)
from consumer.parse import Rejection
from schemas.topics import Header

SIZES = st.sampled_from([0, 1, 100, 500_000, 999_000, 1_040_000])


def rejected(
    value: bytes | None, key: bytes | None, headers: Headers | None, detail: str = "why", stream: bytes | None = None
) -> Rejected:
    if stream is not None and headers is not None:
        headers = [*headers, (Header.STREAM, stream)]
    return Rejected("binance.raw", 2, 41, value, key, headers, Rejection("invalid_json", detail))


def record_size(record: tuple[bytes | None, bytes | None, Headers]) -> int:
    value, key, headers = record
    return len(value or b"") + len(key or b"") + headers_size(headers)


@settings(max_examples=200, deadline=None)
@given(
    value_size=SIZES,
    key_size=SIZES,
    header_sizes=st.lists(SIZES, max_size=4),
    many=st.sampled_from([0, 10, 50_000]),
    detail=st.text(max_size=5000),
)
def test_a_dead_letter_never_exceeds_kafkas_limit_and_says_what_it_cut(
    value_size: int, key_size: int, header_sizes: list[int], many: int, detail: str
) -> None:
    headers: Headers = [(f"h{index}", b"x" * size) for index, size in enumerate(header_sizes)]
    headers += [("m", b"")] * many
    item = rejected(b"v" * value_size, b"k" * key_size, headers, detail)
    value, key, fitted = item.record()
    names = [name for name, _ in fitted]
    assert record_size((value, key, fitted)) <= DLQ_MAX_MESSAGE_BYTES
    assert names.count(Header.DLQ_REASON) == 1 and Header.DLQ_SOURCE_OFFSET in names
    assert (len(value or b"") < value_size) == (Header.DLQ_TRUNCATED_FROM in names)
    assert (len(key or b"") < key_size) == (Header.DLQ_KEY_CUT_FROM in names)
    kept = [header for header in fitted if header in headers]
    assert (len(kept) < len(headers)) == (Header.DLQ_HEADERS_CUT in names)
    assert record_size(item.minimal_record()) < 10_000


def test_a_dead_letter_that_fits_is_the_original_with_reasons() -> None:
    headers: Headers = [("stream", b"bnbbtc@trade"), ("source", b"ws")]
    value, key, fitted = rejected(b"{}", b"BNBBTC", headers).record()
    assert (value, key, fitted[:2]) == (b"{}", b"BNBBTC", headers)
    assert dict(fitted[2:]) == {
        "dlq_reason": b"invalid_json",
        "dlq_detail": b"why",
        "dlq_source_topic": b"binance.raw",
        "dlq_source_partition": b"2",
        "dlq_source_offset": b"41",
    }


def test_unreadable_headers_are_named_as_such() -> None:
    _, _, fitted = rejected(b"{}", None, None).record()
    assert dict(fitted)[Header.DLQ_HEADERS_CUT] == b"unreadable (a header name is not valid UTF-8)"
    assert rejected(b"{}", None, None).row().stream is None


@settings(max_examples=300, deadline=None)
@given(stream=st.binary(max_size=2000), detail=st.text(max_size=3000))
def test_the_table_row_is_storable_as_postgresql_text(stream: bytes, detail: str) -> None:
    row = rejected(b"{}", None, [("source", b"ws")], detail, stream=stream).row()
    for text in (row.detail, row.stream or ""):
        assert "\x00" not in text
        text.encode()  # valid UTF-8: no lone surrogate
    assert len(row.stream or "") <= MAX_STREAM_CHARS
    assert len(row.detail) <= MAX_DETAIL_CHARS + 200
    if b"\x00" in stream:
        assert "stream header NUL escaped" in row.detail


def test_storable_text_says_what_it_did() -> None:
    assert storable_text("btc\x00usdt", 100) == ("btc\\x00usdt", ["NUL escaped as \\x00"])
    assert storable_text("a\udcffb", 100)[0] == "a\\udcffb"
    assert storable_text("x" * 10, 4) == ("xxxx", ["cut from 10 characters"])
    assert storable_text("plain", 100) == ("plain", [])
