"""A trade (or aggregate trade) re-sent with the same id but another price, quantity, time or side
keeps the first stored row, exactly once, and leaves a trace: its message is dead-lettered as
conflicting_duplicate. An exact re-send (a redelivery, a replay) leaves none.

Real Kafka, real PostgreSQL, the real consumer (RawConsumer in a thread, as in
test_consumer_poison.py); the re-sends are generated."""

import json
from contextlib import closing
from itertools import count

import psycopg2
import pytest
from confluent_kafka import Producer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import libpq_dsn, wait_until
from tests.integration.test_consumer_poison import ConsumerThread, OnePartition, consumer_db, dead_letters, raw_topic

pytestmark = pytest.mark.integration

__all__ = ["consumer_db", "raw_topic"]  # fixtures, used by name

T0_MS = 1_763_800_000_000
CHANGES: dict[str, list[object]] = {
    "p": ["123.45000000", "123.45000001"],
    "q": ["0.50000000", "0.5", "2.00000000"],
    "T": [T0_MS, T0_MS + 1],
    "m": [True, False],
}


def trade(symbol: str, trade_id: int, **fields: object) -> dict[str, object]:
    payload: dict[str, object] = {"e": "trade", "E": T0_MS + 5, "s": symbol, "t": trade_id, "p": "123.45000000"}
    payload.update({"q": "0.50000000", "T": T0_MS, "m": True, "M": True})
    payload.update(fields)
    return payload


def agg_trade(symbol: str, agg_id: int, **fields: object) -> dict[str, object]:
    payload: dict[str, object] = {"e": "aggTrade", "E": T0_MS + 5, "s": symbol, "a": agg_id, "p": "123.45000000"}
    payload.update({"q": "0.50000000", "f": 100, "l": 105, "T": T0_MS, "m": True, "M": True})
    payload.update(fields)
    return payload


def frame(payload: dict[str, object]) -> bytes:
    kind = payload["e"]
    stream = f"{str(payload['s']).lower()}@{kind}"
    return json.dumps({"stream": stream, "data": payload}, separators=(",", ":")).encode()


def send(raw_topic: OnePartition, payloads: list[dict[str, object]]) -> list[int]:
    """Produces the frames in order on partition 0; returns their offsets."""
    producer = Producer({"bootstrap.servers": raw_topic.bootstrap, "enable.idempotence": True, "linger.ms": 2})
    offsets: list[int] = []
    for payload in payloads:
        producer.produce(
            raw_topic.topic,
            frame(payload),
            key=str(payload["s"]).encode(),
            partition=0,
            headers=[("source", b"ws")],
            on_delivery=lambda error, message: offsets.append(message.offset() or 0),
        )
    assert producer.flush(30) == 0
    return sorted(offsets)


def stored(database_url: str, table: str, key: str, row_id: int) -> tuple[object, ...]:
    with closing(psycopg2.connect(libpq_dsn(database_url))) as connection, connection.cursor() as cursor:
        # Constant table and column names of this module.
        cursor.execute(
            f"SELECT price::text, quantity::text, trade_time, buyer_is_maker FROM {table} WHERE {key} = %s", (row_id,)
        )
        rows = cursor.fetchall()
        assert len(rows) == 1, rows  # exactly once
        return tuple(rows[0])


resends = st.lists(
    st.dictionaries(st.sampled_from(sorted(CHANGES)), st.none(), max_size=3).flatmap(
        lambda chosen: st.fixed_dictionaries({name: st.sampled_from(CHANGES[name]) for name in chosen})
    ),
    min_size=1,
    max_size=4,
)


def conflicts(original: dict[str, object], change: dict[str, object]) -> bool:
    """Whether a re-send differs from the original in a value (0.5 is 0.50000000 to NUMERIC)."""
    for name, value in change.items():
        if name in ("p", "q"):
            if float(str(value)) != float(str(original[name])):  # exact for these few short decimals
                return True
        elif value != original[name]:
            return True
    return False


def test_a_trade_resent_with_other_values_keeps_the_first_and_is_dead_lettered(
    raw_topic: OnePartition, consumer_db: str
) -> None:
    ids = count(1)
    expected: set[int] = set()
    with ConsumerThread(raw_topic, consumer_db) as running:

        @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
        @given(trade_changes=resends, agg_changes=resends, wait_between=st.booleans())
        def resent(
            trade_changes: list[dict[str, object]], agg_changes: list[dict[str, object]], wait_between: bool
        ) -> None:
            trade_id, agg_id = next(ids), next(ids)
            first_trade, first_agg = trade("BTCUSDT", trade_id), agg_trade("BTCUSDT", agg_id)
            later = [trade("BTCUSDT", trade_id, **change) for change in trade_changes]
            later += [agg_trade("BTCUSDT", agg_id, **change) for change in agg_changes]
            if wait_between:  # the originals stored by an earlier batch, or in the same batch
                send(raw_topic, [first_trade, first_agg])
                wait_until(lambda: running.committed() == raw_topic.end_offset(), 30, "the originals")
                offsets = send(raw_topic, later)
            else:
                offsets = send(raw_topic, [first_trade, first_agg, *later])[2:]
            changes = [*trade_changes, *agg_changes]
            originals = [first_trade] * len(trade_changes) + [first_agg] * len(agg_changes)
            expected.update(o for o, c, r in zip(offsets, changes, originals, strict=True) if conflicts(r, c))
            wait_until(lambda: running.committed() == raw_topic.end_offset(), 30, "every offset committed")
            running.assert_alive()
            assert stored(consumer_db, "trades", "trade_id", trade_id)[:2] == ("123.45000000", "0.50000000")
            assert stored(consumer_db, "agg_trades", "agg_trade_id", agg_id)[:2] == ("123.45000000", "0.50000000")
            recorded = dead_letters(consumer_db)
            assert {o for o, (reason, _, _) in recorded.items() if reason == "conflicting_duplicate"} == expected

        resent()
    assert expected, "some re-sends conflicted"
    assert running.consumer.counts["rejected.conflicting_duplicate"] == len(expected)
    detail = next(
        detail for reason, detail, _ in dead_letters(consumer_db).values() if reason == "conflicting_duplicate"
    )
    assert "is stored with price 123.45000000" in detail and "the stored one stays" in detail
