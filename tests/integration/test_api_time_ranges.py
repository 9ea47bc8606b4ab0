"""Time questions answered through the rollups (no index on trades' times), at their edges.

The price at a time, a range's statistics and a range's trades are found through the 1-second
and 1-minute rollups and the trades primary key. Their edges are where that can go wrong: a time
inside a second with trades before and after it in the same second, a range starting or ending
inside a second or a minute, a symbol whose last trade is days before the time asked about,
ranges without trades. Every answer here is compared with a plain computation over the inserted
trades: in Python with Decimal, and for the statistics also with the plain SQL aggregate over the
trades table that the api ran before the rollups (same digits, same scale).
"""

import asyncio
import csv
import io
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import psycopg2
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from api.app import async_database_url
from api.queries import prices, stats, trades
from tests.integration.api_helpers import TradeRow, asgi_client, migrated, ms_time, to_ms

pytestmark = pytest.mark.integration

T0 = to_ms(datetime(2025, 7, 3, 8, 30, tzinfo=UTC))  # a whole minute
DAY_MS = 86_400_000
Result = TypeVar("Result")


def generated_trades() -> list[TradeRow]:
    """BTCUSDT: about three minutes of trades, several per second at the edges of seconds (0, 1,
    499-501, 998, 999 ms), several in one millisecond, some seconds without trades. ETHUSDT: one
    trade two days before and one right after BTCUSDT's trades. Ids grow with time, with gaps."""
    rng = random.Random(20251122)
    rows = []
    trade_id = 5_000_000_000
    for second in range(185):
        if rng.random() < 0.3:
            continue
        offsets = sorted(rng.choice([0, 1, 250, 499, 500, 501, 998, 999]) for _ in range(rng.choice([1, 2, 3, 6])))
        for offset in offsets:
            trade_id += rng.choice([1, 1, 1, 3])
            price = Decimal(84_000 + rng.randrange(-5_000, 5_000)) / 100
            quantity = Decimal(rng.randrange(1, 200_000)) / 100_000
            rows.append(
                TradeRow(
                    "BTCUSDT",
                    trade_id,
                    price.quantize(Decimal("0.00000001")),
                    quantity.quantize(Decimal("0.00000001")),
                    T0 + second * 1000 + offset,
                    rng.random() < 0.5,
                )
            )
    rows.append(TradeRow("ETHUSDT", 70, Decimal("2611.82000000"), Decimal("1.00000000"), T0 - 2 * DAY_MS + 123, True))
    rows.append(TradeRow("ETHUSDT", 71, Decimal("2609.47000000"), Decimal("2.00000000"), T0 + 200_000, False))
    return rows


TRADES = generated_trades()
BTC = [t for t in TRADES if t.symbol == "BTCUSDT"]
_OFFSETS: dict[int, set[int]] = {}
for _trade in BTC:
    _OFFSETS.setdefault(_trade.trade_time_ms // 1000 * 1000, set()).add(_trade.trade_time_ms % 1000)
# Seconds with trades in both halves, and within one of them a range with trades just before and
# after it but none in it (trades fall on 0, 1, 250, 499-501, 998 and 999 ms only).
BOTH_HALVES = sorted(s for s, offsets in _OFFSETS.items() if min(offsets) <= 501 and max(offsets) >= 998)
QUIET = (BOTH_HALVES[0] + 502, BOTH_HALVES[0] + 998)
LAST_BEFORE_QUIET = BOTH_HALVES[0] + max(o for o in _OFFSETS[BOTH_HALVES[0]] if o <= 501)


def at_us(milliseconds: int, microseconds: int = 0) -> datetime:
    return ms_time(milliseconds) + timedelta(microseconds=microseconds)


def interesting_times() -> list[datetime]:
    """Around BTCUSDT's trades: whole minutes and seconds, the middle of seconds and minutes, one
    millisecond and one microsecond either side of trades, before the first and after the last."""
    times = {at_us(T0 - 60_000), at_us(T0), at_us(T0 + 30_000), at_us(T0 + 60_000), at_us(T0 + 90_500)}
    times |= {at_us(T0 + 120_000), at_us(T0 + 150_250), at_us(T0 + 180_000), at_us(T0 + 186_000)}
    for trade in BTC[::9]:
        times |= {at_us(trade.trade_time_ms, us) for us in (-1000, -1, 0, 1, 1000)}
        times |= {at_us(trade.trade_time_ms // 1000 * 1000), at_us(trade.trade_time_ms // 1000 * 1000 + 500)}
    return sorted(times)


def in_range(symbol: str, start: datetime, end: datetime) -> list[TradeRow]:
    return [t for t in TRADES if t.symbol == symbol and start <= ms_time(t.trade_time_ms) < end]


def with_connection(database: dict[str, str], work: Callable[[AsyncConnection], Awaitable[Result]]) -> Result:
    """Runs `work` on one connection of the api's read-only role, as the routes run queries."""

    async def run() -> Result:
        engine = create_async_engine(async_database_url(database["api"]))
        try:
            async with engine.connect() as connection:
                return await work(connection)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_price_in_effect_at_any_time_is_the_last_trade_strictly_before_it(database: dict[str, str]) -> None:
    migrated(database).trades(TRADES)
    # Days after ETHUSDT's first trade, with BTCUSDT trading in between; and days after the last.
    asked = [(symbol, moment) for symbol in ("BTCUSDT", "ETHUSDT", "BNBUSDT") for moment in interesting_times()]
    asked += [("BTCUSDT", at_us(T0 + 3 * DAY_MS + 250)), ("ETHUSDT", at_us(T0 + 5 * DAY_MS))]

    async def answers(connection: AsyncConnection) -> list[Any]:
        return [await prices.trade_at_or_before(connection, symbol, moment) for symbol, moment in asked]

    for (symbol, moment), row in zip(asked, with_connection(database, answers), strict=True):
        before = [t for t in TRADES if t.symbol == symbol and ms_time(t.trade_time_ms) < moment]
        if not before:
            assert row is None, (symbol, moment, row)
            continue
        expected = max(before, key=lambda t: (t.trade_time_ms, t.trade_id))
        assert row is not None, (symbol, moment)
        assert (row["trade_id"], row["price"], row["quantity"]) == (
            expected.trade_id,
            expected.price,
            expected.quantity,
        )
        assert row["trade_time"] == ms_time(expected.trade_time_ms), (symbol, moment)


def test_price_at_a_second_in_the_api_days_after_the_last_trade(database: dict[str, str]) -> None:
    migrated(database).trades(TRADES)
    with asgi_client(database) as client:
        # ETHUSDT's trade two days earlier is in effect, although BTCUSDT traded since.
        days_later = client.get("/v1/prices/at", params={"symbol": "ETHUSDT", "timestamp": str(T0 + 1000)})
        assert days_later.status_code == 200, days_later.text
        assert days_later.json()["trade_id"] == 70
        assert days_later.json()["actual_timestamp"] == "2025-07-01T08:30:00.123000Z"
        last = BTC[-1]
        weeks_later = client.get("/v1/prices/at", params={"symbol": "BTCUSDT", "timestamp": "2025-07-20T00:00:00"})
        assert weeks_later.json()["trade_id"] == last.trade_id and weeks_later.json()["price"] == str(last.price)
        # The second of BTCUSDT's first trade ends after it; the second before has nothing.
        first_second = BTC[0].trade_time_ms // 1000 * 1000
        assert client.get("/v1/prices/at", params={"symbol": "BTCUSDT", "timestamp": str(first_second)}).json()[
            "trade_id"
        ] == max(t.trade_id for t in BTC if t.trade_time_ms < first_second + 1000)
        assert (
            client.get("/v1/prices/at", params={"symbol": "BTCUSDT", "timestamp": str(first_second - 1)}).status_code
            == 404
        )


# The statistics as the api computed them before the rollups: one aggregate over the trades.
PLAIN_STATS = """
SELECT count(*) AS trade_count, avg(price) AS mean_price,
    sum(price * quantity) / nullif(sum(quantity), 0) AS vwap, max(price) AS high, min(price) AS low,
    coalesce(sum(quantity), 0) AS volume, coalesce(sum(price * quantity), 0) AS quote_volume,
    min(trade_time) AS first_trade_time, max(trade_time) AS last_trade_time
FROM trades WHERE symbol = %s AND trade_time >= %s AND trade_time < %s
"""


def stat_ranges() -> list[tuple[datetime, datetime]]:
    times = interesting_times()
    pairs = [(start, end) for i, start in enumerate(times) for end in times[i + 1 :]]
    ranges = random.Random(4).sample(pairs, 600)
    # Within one second, across one second boundary, across a minute boundary, and long ones.
    ranges += [(at_us(T0 + 36_100), at_us(T0 + 36_900)), (at_us(T0 + 59_500), at_us(T0 + 60_500))]
    ranges += [(at_us(T0 - DAY_MS), at_us(T0 + DAY_MS)), (at_us(T0 + 1), at_us(T0 + 184_999))]
    return ranges


def test_stats_of_any_range_equal_the_plain_aggregate_over_its_trades(database: dict[str, str]) -> None:
    store = migrated(database)
    store.trades(TRADES)
    ranges = stat_ranges()
    with psycopg2.connect(store.dsn) as connection, connection.cursor() as cursor:
        plain = []
        for start, end in ranges:
            cursor.execute(PLAIN_STATS, ("BTCUSDT", start, end))
            plain.append(cursor.fetchone())
    connection.close()

    async def answers(connection: AsyncConnection) -> list[Any]:
        return [await stats.trade_stats(connection, "BTCUSDT", start, end) for start, end in ranges]

    names = ("trade_count", "mean_price", "vwap", "high", "low", "volume", "quote_volume")
    for (start, end), expected, row in zip(ranges, plain, with_connection(database, answers), strict=True):
        # Exact digits and scale, as str() of each Decimal shows them; the mean and VWAP are
        # divided more exactly than PostgreSQL's avg() and numeric division (which round to 16
        # significant digits or the inputs' scale): equal to those up to their rounding.
        exact_names = [i for i, name in enumerate(names) if name not in ("mean_price", "vwap")]
        assert [str(row[names[i]]) for i in exact_names] == [str(expected[i]) for i in exact_names], (start, end)
        for i in (1, 2):
            assert row[names[i]] == pytest.approx(expected[i], abs=Decimal("1e-15")), (start, end)
        assert (row["first_trade_time"], row["last_trade_time"]) == expected[7:], (start, end)
        chosen = in_range("BTCUSDT", start, end)
        assert row["trade_count"] == len(chosen)
        if chosen:
            assert row["high"] == max(t.price for t in chosen) and row["low"] == min(t.price for t in chosen)
            assert row["volume"] == sum(t.quantity for t in chosen)
            assert row["quote_volume"] == sum(t.price * t.quantity for t in chosen)
            assert row["mean_price"] == pytest.approx(sum(t.price for t in chosen) / len(chosen), abs=Decimal("1e-15"))
            assert row["first_trade_time"] == ms_time(min(t.trade_time_ms for t in chosen))
            assert row["last_trade_time"] == ms_time(max(t.trade_time_ms for t in chosen))


def test_stats_in_the_api_mid_second_and_mid_minute_and_empty(database: dict[str, str]) -> None:
    migrated(database).trades(TRADES)
    with asgi_client(database) as client:
        start, end = T0 + 10_500, T0 + 125_250  # mid-second and mid-minute at both ends
        body = client.get("/v1/stats", params={"symbol": "BTCUSDT", "start": start, "end": end}).json()
        chosen = in_range("BTCUSDT", ms_time(start), ms_time(end))
        assert body["trade_count"] == len(chosen) > 0
        assert Decimal(body["volume"]) == sum(t.quantity for t in chosen)
        assert body["first_trade_time"] == ms_time(chosen[0].trade_time_ms).isoformat().replace("+00:00", "Z")
        # Inside a second with trades before and after the range, none in it.
        for start, end in (QUIET, (LAST_BEFORE_QUIET, QUIET[1])):
            body = client.get("/v1/stats", params={"symbol": "BTCUSDT", "start": start, "end": end}).json()
            assert body["trade_count"] == len(in_range("BTCUSDT", ms_time(start), ms_time(end)))
        assert body["trade_count"] > 0
        none = client.get("/v1/stats", params={"symbol": "ETHUSDT", "start": T0, "end": T0 + 60_000}).json()
        assert none == {
            "symbol": "ETHUSDT",
            "start": "2025-07-03T08:30:00Z",
            "end": "2025-07-03T08:31:00Z",
            "trade_count": 0,
            "mean_price": None,
            "vwap": None,
            "high": None,
            "low": None,
            "volume": "0",
            "quote_volume": "0",
            "first_trade_time": None,
            "last_trade_time": None,
            "holes": [],
        }


def test_trade_id_bounds_of_any_range(database: dict[str, str]) -> None:
    migrated(database).trades(TRADES)
    ranges = stat_ranges()

    async def answers(connection: AsyncConnection) -> list[Any]:
        return [await trades.trade_id_bounds(connection, "BTCUSDT", start, end) for start, end in ranges]

    for (start, end), bounds in zip(ranges, with_connection(database, answers), strict=True):
        chosen = in_range("BTCUSDT", start, end)
        assert bounds == ((chosen[0].trade_id, chosen[-1].trade_id) if chosen else None), (start, end)


def csv_line(trade: TradeRow) -> list[str]:
    moment = ms_time(trade.trade_time_ms)
    return [
        moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{trade.trade_time_ms % 1000:03d}000Z",
        str(trade.price),
        str(trade.quantity),
        trade.symbol,
        str(trade.trade_id),
        "sell" if trade.buyer_is_maker else "buy",
    ]


def test_export_of_ranges_starting_and_ending_inside_seconds_and_minutes(database: dict[str, str]) -> None:
    migrated(database).trades(TRADES)
    busy = BOTH_HALVES
    ranges = [
        (T0 + 10_500, T0 + 125_250),  # mid-second and mid-minute at both ends
        (busy[0] + 1, busy[-1] + 999),  # one millisecond in, one before the end
        (busy[1] + 250, busy[1] + 501),  # within one second
        QUIET,  # within a second with trades before and after, none in the range
        (T0 + 185_000, T0 + 3 * DAY_MS),  # after the last trade
    ]
    with asgi_client(database) as client:
        for start, end in ranges:
            chosen = in_range("BTCUSDT", ms_time(start), ms_time(end))
            params: dict[str, Any] = {"symbol": "BTCUSDT", "start": start, "end": end}
            exported = client.get("/v1/trades", params={**params, "format": "csv"})
            assert exported.status_code == 200, exported.text
            assert list(csv.reader(io.StringIO(exported.text)))[1:] == [csv_line(t) for t in chosen], (start, end)
            # Pages of 7, and one page exactly full: the last page says there is no next one.
            for limit in (7, max(1, len(chosen))):
                paged: list[int] = []
                requests = 0
                page_params: dict[str, Any] = {**params, "format": "json", "limit": limit}
                while True:
                    body = client.get("/v1/trades", params=page_params).json()
                    requests += 1
                    paged += [trade["trade_id"] for trade in body["trades"]]
                    if body["next_from_id"] is None:
                        break
                    page_params["from_id"] = body["next_from_id"]
                assert paged == [t.trade_id for t in chosen], (start, end, limit)
                assert requests == max(1, -(-len(chosen) // limit)), (start, end, limit)
