"""Coverage markers into the coverage table on a real PostgreSQL: whatever the order of the
markers and however often they are replayed, the table holds the union of the held periods, the
holes that no held period covers, each kind merged where periods touch."""

import random
import uuid
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime

import psycopg2
import pytest
from confluent_kafka import Producer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bootstrap.__main__ import migrate
from consumer import trade_lines
from consumer.parse import CoverageRow, TradeRow
from consumer.sink import RowsByTable, Sink
from schemas.coverage import CoverageKind, CoverageMarker, encode_marker
from tests.conftest import Services, libpq_dsn, wait_until
from tests.integration.test_consumer import Feed, exchange_rest_url, feed, start_consumer  # noqa: F401

pytestmark = pytest.mark.integration

T0_MS = 1_763_800_000_000


@pytest.fixture()
def owner_url(database: dict[str, str]) -> Iterator[str]:
    migrate(database["owner"], api_role="")
    yield database["owner"]


def stored(url: str, symbol: str) -> list[tuple[str, int, int]]:
    """(kind, start, end) in ms after T0, by kind and start."""
    with closing(psycopg2.connect(libpq_dsn(url))) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT kind, start_time, end_time FROM coverage WHERE symbol = %s AND stream = 'trade' ORDER BY 1, 2",
            (symbol,),
        )
        return [(kind, _ms(start) - T0_MS, _ms(end) - T0_MS) for kind, start, end in cursor.fetchall()]


def _ms(time: datetime) -> int:
    return (time - datetime(1970, 1, 1, tzinfo=UTC)) // datetime.resolution // 1000


def marker(symbol: str, kind: str, start: int, end: int) -> CoverageRow:
    return CoverageRow(symbol, "trade", kind, T0_MS + start, T0_MS + end, "ws", "" if kind == "held" else "down")


def expected(markers: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """The rule on a grid of milliseconds: held is the union of held periods; a hole is any
    millisecond some hole names and no held period covers; touching periods of a kind are one."""
    held = {ms for kind, start, end in markers if kind == "held" for ms in range(start, end)}
    holes = {ms for kind, start, end in markers if kind == "hole" for ms in range(start, end)} - held
    return [*_periods("held", held), *_periods("hole", holes)]


def _periods(kind: str, points: set[int]) -> list[tuple[str, int, int]]:
    periods: list[tuple[str, int, int]] = []
    for ms in sorted(points):
        if periods and periods[-1][2] == ms:
            periods[-1] = (kind, periods[-1][1], ms + 1)
        else:
            periods.append((kind, ms, ms + 1))
    return periods


PERIOD = st.tuples(st.sampled_from(["held", "hole"]), st.integers(0, 40), st.integers(1, 15)).map(
    lambda m: (m[0], m[1], m[1] + m[2])
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(PERIOD, min_size=1, max_size=12), st.randoms(use_true_random=False), st.integers(1, 3))
def test_markers_in_any_order_and_batching_leave_the_union(
    owner_url: str, markers: list[tuple[str, int, int]], shuffle: random.Random, batches: int
) -> None:
    symbol = f"S{uuid.uuid4().hex[:12].upper()}"  # hypothesis seeds `random`: not that
    sink = Sink(owner_url)
    try:
        # Each marker at least once; some again (a replay), in another order, over several batches.
        sent = [*markers, *shuffle.sample(markers, k=len(markers) // 2)]
        shuffle.shuffle(sent)
        for part in range(batches):
            sink.write(RowsByTable(coverage=[marker(symbol, *m) for m in sent[part::batches]]))
        assert stored(owner_url, symbol) == expected(markers)
    finally:
        sink.dispose()


def test_a_held_period_closes_the_hole_it_covers_and_keeps_the_rest(owner_url: str) -> None:
    sink = Sink(owner_url)
    try:
        sink.write(RowsByTable(coverage=[marker("BTCUSDT", "held", 0, 10), marker("BTCUSDT", "hole", 10, 100)]))
        sink.write(RowsByTable(coverage=[marker("BTCUSDT", "held", 10, 40), marker("BTCUSDT", "held", 60, 70)]))
        assert stored(owner_url, "BTCUSDT") == [("held", 0, 40), ("held", 60, 70), ("hole", 40, 60), ("hole", 70, 100)]
    finally:
        sink.dispose()


def test_a_marker_commits_with_the_records_before_it_or_not_at_all(owner_url: str) -> None:
    trade = TradeRow("BTCUSDT", 1, "1.5", "2", T0_MS * 1000, False, None)
    sink = Sink(owner_url)
    try:
        # A trade line COPY refuses (its price is not a number) fails the whole batch.
        broken = RowsByTable(
            trades=[trade_lines.from_row(trade._replace(price="x"))], coverage=[marker("BTCUSDT", "held", 0, 5)]
        )
        with pytest.raises(psycopg2.Error):
            sink.write(broken)
        assert stored(owner_url, "BTCUSDT") == []
        written = sink.write(
            RowsByTable(trades=[trade_lines.from_row(trade)], coverage=[marker("BTCUSDT", "held", 0, 5)])
        )
        assert (written.trades, written.coverage) == (1, 1)
        assert stored(owner_url, "BTCUSDT") == [("held", 0, 5)]
    finally:
        sink.dispose()


def dead_letter_reasons(url: str) -> list[str]:
    with closing(psycopg2.connect(libpq_dsn(url))) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT reason FROM dead_letters ORDER BY source_offset")
        return [row[0] for row in cursor.fetchall()]


def test_the_consumer_stores_markers_after_their_trades_and_dead_letters_bad_ones(
    feed: Feed,  # noqa: F811
    database: dict[str, str],
    services: Services,
    exchange_rest_url: str,  # noqa: F811
) -> None:
    migrate(database["owner"], api_role="")
    group = f"coverage-{uuid.uuid4().hex[:6]}"
    start_consumer(services, "consumer", feed, database["owner"], group, exchange_rest_url)
    feed.send(range(1, 201), symbols=("BTCUSDT",))
    producer = Producer({"bootstrap.servers": feed.bootstrap, "enable.idempotence": True})
    headers: list[tuple[str, str | bytes | None]] = [("source", b"coverage"), ("stream", b"btcusdt@trade")]
    good = encode_marker(CoverageMarker(CoverageKind.HELD, T0_MS, T0_MS + 1_400, "ws"))
    bad = b'{"kind":"held","start_ms":5,"end_ms":5,"origin":"ws"}'
    for value in (good, bad, good):  # the second good one is a redelivery: it changes nothing
        producer.produce(feed.topic, value, key=b"BTCUSDT", headers=headers)
    assert producer.flush(30) == 0
    wait_until(lambda: feed.committed(group) == 203, 60, "every message committed")
    assert stored(database["owner"], "BTCUSDT") == [("held", 0, 1_400)]
    assert dead_letter_reasons(database["owner"]) == ["invalid_coverage_period"]
