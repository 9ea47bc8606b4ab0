"""Batched, idempotent writes to PostgreSQL: COPY into staging tables, then one statement per table.

COPY is PostgreSQL's fastest way in, but it can't skip or merge conflicting rows, so each batch
lands in session-local staging tables first (ON COMMIT DELETE ROWS empties them with every
transaction) and moves to the real tables with ON CONFLICT. Everything in a batch commits in one
transaction, which is what lets the caller commit Kafka offsets right after it.
"""

import contextlib
import io
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import psycopg2
from psycopg2.extras import execute_values
from sqlalchemy.engine import make_url

from consumer import trade_lines
from consumer.dead_letters import DeadLetterRow, Rejected
from consumer.parse import AggTradeRow, BookTickerRow, CoverageRow, KlineRow, Row, TradeRow

log = logging.getLogger(__name__)

# Times travel as integer microseconds since the epoch and become timestamptz in SQL exactly.
# `interval * bigint` multiplies in float8, exact only below 2**53 µs (year 2255): beyond it, a
# time late in 9999 rounds into year 10000. Whole seconds (below 2**38) and the remaining
# microseconds (below 10**6) each multiply exactly, and the sum of intervals is integer arithmetic.
_US = "(timestamptz 'epoch' + ({0} / 1000000) * interval '1 second' + ({0} % 1000000) * interval '1 microsecond')"

_CREATE_STAGING = """
CREATE TEMPORARY TABLE IF NOT EXISTS trades_staging (
    symbol text, trade_id bigint, price numeric, quantity numeric,
    trade_time_us bigint, buyer_is_maker boolean, event_time_us bigint
) ON COMMIT DELETE ROWS;
CREATE TEMPORARY TABLE IF NOT EXISTS agg_trades_staging (
    symbol text, agg_trade_id bigint, price numeric, quantity numeric, first_trade_id bigint,
    last_trade_id bigint, trade_time_us bigint, buyer_is_maker boolean, event_time_us bigint
) ON COMMIT DELETE ROWS;
CREATE TEMPORARY TABLE IF NOT EXISTS klines_staging (
    symbol text, interval text, open_time_us bigint, close_time_us bigint, open numeric,
    high numeric, low numeric, close numeric, volume numeric, quote_volume numeric,
    trade_count bigint, taker_buy_base_volume numeric, taker_buy_quote_volume numeric,
    first_trade_id bigint, last_trade_id bigint, is_closed boolean, event_time_us bigint,
    source text
) ON COMMIT DELETE ROWS;
CREATE TEMPORARY TABLE IF NOT EXISTS book_tickers_staging (
    symbol text, update_id bigint, bid_price numeric, bid_quantity numeric, ask_price numeric,
    ask_quantity numeric, received_at_us bigint
) ON COMMIT DELETE ROWS;
"""


_CANDLE_COLUMNS = """symbol, open_time, open, high, low, close, volume, quote_volume, trade_count,
    taker_buy_base_volume, taker_buy_quote_volume, first_trade_id, last_trade_id, price_sum"""


def _merge_candle(table: str, rows: str) -> str:
    """Merges a batch's candles into a rollup. Open and close are the prices of the smallest and
    largest trade id, so batches arriving in any order merge to the same row."""
    return f"""
    INSERT INTO {table} AS c ({_CANDLE_COLUMNS})
    {rows}
    ON CONFLICT (symbol, open_time) DO UPDATE SET
        open = CASE WHEN excluded.first_trade_id < c.first_trade_id THEN excluded.open ELSE c.open END,
        high = greatest(c.high, excluded.high),
        low = least(c.low, excluded.low),
        close = CASE WHEN excluded.last_trade_id > c.last_trade_id THEN excluded.close ELSE c.close END,
        volume = c.volume + excluded.volume,
        quote_volume = c.quote_volume + excluded.quote_volume,
        trade_count = c.trade_count + excluded.trade_count,
        taker_buy_base_volume = c.taker_buy_base_volume + excluded.taker_buy_base_volume,
        taker_buy_quote_volume = c.taker_buy_quote_volume + excluded.taker_buy_quote_volume,
        first_trade_id = least(c.first_trade_id, excluded.first_trade_id),
        last_trade_id = greatest(c.last_trade_id, excluded.last_trade_id),
        price_sum = c.price_sum + excluded.price_sum
    RETURNING 1"""


_MINUTES_FROM_SECONDS = """
    SELECT symbol, date_trunc('minute', open_time),
        (min(ARRAY[first_trade_id::numeric, open]))[2], max(high), min(low),
        (max(ARRAY[last_trade_id::numeric, close]))[2], sum(volume), sum(quote_volume), sum(trade_count),
        sum(taker_buy_base_volume), sum(taker_buy_quote_volume), min(first_trade_id), max(last_trade_id),
        sum(price_sum)
    FROM seconds
    GROUP BY 1, 2"""


# Trade ids are unique per symbol, but the trades primary key (symbol, trade_id, trade_time) holds
# the partition key and so is unique per partition only: the same id sent again with another time
# would be a second row in another partition. So a batch is inserted plainly only when it cannot
# repeat a stored id anywhere: its ids are distinct and lie, symbol by symbol, outside the id range
# stored so far (stored_id_ranges, one probe per symbol of the batch). Live data always does (ids
# grow); a redelivery, a replay, or a REST backfill overlapping the stream does not, and takes the
# merge, which looks every staged id up in every partition (the primary key's (symbol, trade_id)
# prefix) and keeps the first of the batch's own repeats. Only the trades really inserted
# (RETURNING) reach the rollups: a replay adds nothing.
# The batch is aggregated once, by second; the minutes are aggregated from those seconds (a few
# rows each), not from the trades again: that second pass over the trades was a fifth of the
# statement's cost.
def _id_overlap(kind: str, staging: str, id_column: str) -> str:
    """A CTE `overlap` with one boolean: may the staged rows repeat a stored id (or one another)?"""
    return f"""
batch_ids AS MATERIALIZED (
    SELECT symbol, min({id_column}) AS first_id, max({id_column}) AS last_id,
        count(*) <> count(DISTINCT {id_column}) AS repeats
    FROM {staging} GROUP BY symbol
),
overlap AS (
    SELECT EXISTS (
        SELECT 1 FROM batch_ids b LEFT JOIN stored_id_ranges r ON r.kind = '{kind}' AND r.symbol = b.symbol
        WHERE b.repeats OR (b.first_id <= r.last_id AND b.last_id >= r.first_id)
    ) AS found
)"""


def _id_ranges(kind: str, ids: str) -> str:
    """Widens stored_id_ranges by `ids` (symbol, first_id, last_id) and stamps each symbol's row
    with the batch's time (/v1/status's last ingestion; the row is rewritten anyway)."""
    return f"""
    INSERT INTO stored_id_ranges AS r (kind, symbol, first_id, last_id)
    SELECT '{kind}', symbol, min(first_id), max(last_id) FROM ({ids}) AS ids GROUP BY symbol
    ON CONFLICT (kind, symbol) DO UPDATE SET
        first_id = least(r.first_id, excluded.first_id), last_id = greatest(r.last_id, excluded.last_id),
        updated_at = now()"""


def _new_rows(merge: bool, staging: str, table: str, id_column: str) -> tuple[str, str]:
    """The FROM ... WHERE of the staged rows to insert, and the overlap CTE (if any): plainly, all
    of them unless `overlap` found one that may repeat a stored id (then none: the caller merges);
    merging, the first staged row of each id whose id no partition holds."""
    if not merge:
        return f"{staging} WHERE NOT (SELECT found FROM overlap)", _id_overlap(table, staging, id_column) + ","
    rows = f"""(
        SELECT DISTINCT ON (symbol, {id_column}) * FROM {staging} ORDER BY symbol, {id_column}, ctid
    ) AS s
    WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.symbol = s.symbol AND t.{id_column} = s.{id_column})
    ON CONFLICT DO NOTHING"""
    return rows, "overlap AS (SELECT false AS found),"


def _move_trades(merge: bool) -> str:
    rows, overlap = _new_rows(merge, "trades_staging", "trades", "trade_id")
    return f"""
WITH {overlap}
inserted AS (
    INSERT INTO trades (symbol, trade_id, price, quantity, trade_time, buyer_is_maker, event_time)
    SELECT symbol, trade_id, price, quantity, {_US.format("trade_time_us")}, buyer_is_maker,
        {_US.format("event_time_us")}
    FROM {rows}
    RETURNING symbol, trade_id, price, quantity, trade_time, buyer_is_maker
),
seconds AS MATERIALIZED (
    SELECT symbol, date_trunc('second', trade_time) AS open_time,
        -- Arrays compare element by element, so the smallest [trade id, price] holds the first
        -- trade's price: the open, found without sorting the batch.
        (min(ARRAY[trade_id::numeric, price]))[2] AS open, max(price) AS high, min(price) AS low,
        (max(ARRAY[trade_id::numeric, price]))[2] AS close, sum(quantity) AS volume,
        sum(price * quantity) AS quote_volume, count(*) AS trade_count,
        -- Binance's "taker buy" volume: trades where the buyer took liquidity (not the maker).
        coalesce(sum(quantity) FILTER (WHERE NOT buyer_is_maker), 0) AS taker_buy_base_volume,
        coalesce(sum(price * quantity) FILTER (WHERE NOT buyer_is_maker), 0) AS taker_buy_quote_volume,
        min(trade_id) AS first_trade_id, max(trade_id) AS last_trade_id, sum(price) AS price_sum
    FROM inserted
    GROUP BY 1, 2
),
candles_1s AS ({_merge_candle("trade_candles_1s", f"SELECT {_CANDLE_COLUMNS} FROM seconds")}),
candles_1m AS ({_merge_candle("trade_candles_1m", _MINUTES_FROM_SECONDS)}),
ranges AS ({_id_ranges("trades", "SELECT symbol, first_trade_id AS first_id, last_trade_id AS last_id FROM seconds")})
SELECT (SELECT count(*) FROM inserted), (SELECT found FROM overlap)
"""


def _move_agg_trades(merge: bool) -> str:
    rows, overlap = _new_rows(merge, "agg_trades_staging", "agg_trades", "agg_trade_id")
    return f"""
WITH {overlap}
inserted AS (
    INSERT INTO agg_trades (symbol, agg_trade_id, price, quantity, first_trade_id, last_trade_id,
        trade_time, buyer_is_maker, event_time)
    SELECT symbol, agg_trade_id, price, quantity, first_trade_id, last_trade_id,
        {_US.format("trade_time_us")}, buyer_is_maker, {_US.format("event_time_us")}
    FROM {rows}
    RETURNING symbol, agg_trade_id
),
ranges AS ({_id_ranges("agg_trades", "SELECT symbol, agg_trade_id AS first_id, agg_trade_id AS last_id FROM inserted")})
SELECT (SELECT count(*) FROM inserted), (SELECT found FROM overlap)
"""


# An open kline is pushed again and again until it closes: keep the newest of a batch, update the
# stored row while it is open, and never touch it once closed (the closed kline is final).
_MOVE_KLINES = f"""
INSERT INTO klines AS k (symbol, interval, open_time, close_time, open, high, low, close, volume,
    quote_volume, trade_count, taker_buy_base_volume, taker_buy_quote_volume, first_trade_id,
    last_trade_id, is_closed, event_time, source, updated_at)
SELECT DISTINCT ON (symbol, interval, open_time_us)
    symbol, interval, {_US.format("open_time_us")}, {_US.format("close_time_us")}, open, high, low,
    close, volume, quote_volume, trade_count, taker_buy_base_volume, taker_buy_quote_volume,
    first_trade_id, last_trade_id, is_closed, {_US.format("event_time_us")}, source, now()
FROM klines_staging
ORDER BY symbol, interval, open_time_us, is_closed DESC, event_time_us DESC NULLS LAST, trade_count DESC
ON CONFLICT (symbol, interval, open_time) DO UPDATE SET
    close_time = excluded.close_time, open = excluded.open, high = excluded.high,
    low = excluded.low, close = excluded.close, volume = excluded.volume,
    quote_volume = excluded.quote_volume, trade_count = excluded.trade_count,
    taker_buy_base_volume = excluded.taker_buy_base_volume,
    taker_buy_quote_volume = excluded.taker_buy_quote_volume,
    first_trade_id = excluded.first_trade_id, last_trade_id = excluded.last_trade_id,
    is_closed = excluded.is_closed, event_time = excluded.event_time, source = excluded.source,
    updated_at = now()
WHERE NOT k.is_closed
    AND (excluded.is_closed OR excluded.trade_count >= k.trade_count)
"""


def _move_book_tickers(merge: bool, sampled: bool) -> str:
    """Book tickers in: every update (sample_us 0), or the first update of each symbol in each
    period of sample_us by receive time (Kafka keeps every update for its retention). The first,
    not the last: a stored row is never updated (no dead rows at thousands of updates a second),
    and a replay picks the same rows again, so a sample is stored once. Sampled, the period is
    the prepared statement's parameter $1, so that the statement's text is a constant."""
    if not sampled:
        return f"""
WITH inserted AS (
    INSERT INTO book_tickers (symbol, update_id, bid_price, bid_quantity, ask_price, ask_quantity, received_at)
    SELECT symbol, update_id, bid_price, bid_quantity, ask_price, ask_quantity, {_US.format("received_at_us")}
    FROM book_tickers_staging
    {_MERGE if merge else _INSERT_NEW}
    RETURNING 1
)
SELECT (SELECT count(*) FROM inserted), false
"""
    # The period's start, rounding down below the epoch too (% keeps the dividend's sign).
    start = "(received_at_us - (received_at_us % $1 + $1) % $1)"
    return f"""
WITH sampled AS (
    SELECT DISTINCT ON (symbol, {start}) *, {start} AS period_us
    FROM book_tickers_staging
    ORDER BY symbol, {start}, received_at_us, update_id
),
inserted AS (
    INSERT INTO book_tickers (symbol, update_id, bid_price, bid_quantity, ask_price, ask_quantity, received_at)
    SELECT symbol, update_id, bid_price, bid_quantity, ask_price, ask_quantity, {_US.format("received_at_us")}
    FROM sampled s
    WHERE NOT EXISTS (
        SELECT 1 FROM book_tickers b
        WHERE b.symbol = s.symbol AND b.received_at >= {_US.format("s.period_us")}
            AND b.received_at < {_US.format("(s.period_us + $1)")}
    )
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM inserted), false
"""


# psycopg2 reads a COPY's input in chunks of this size, taking the GIL back for each one. At its
# 8 KiB default a batch took dozens of hand-overs, each waiting for the parsing thread to let go
# of the GIL (up to its 5 ms switch interval): one read per batch instead.
_COPY_CHUNK = 16 * 1024 * 1024

# Rows that can only be inserted once (trades, aggregate trades, book tickers) move in one of two
# ways. Almost every batch is all new, and a plain INSERT of it costs about 6 µs per trade where
# INSERT ... ON CONFLICT DO NOTHING costs about 9 (docs/benchmarks.md): ON CONFLICT probes the
# primary key before each row and confirms each insertion afterwards. So a batch is first inserted
# plainly inside a savepoint; a unique violation (a redelivery, a replay, a REST backfill overlapping
# the stream, or the same row twice in the batch) rolls back to the savepoint and the batch merges
# with ON CONFLICT DO NOTHING instead. Both ways store the same rows and feed the rollups only with
# rows that are new.
_INSERT_NEW = ""
_MERGE = "ON CONFLICT DO NOTHING"


# Statement names (with their parameters' types) for PREPARE: this module's SQL, planned once per
# connection. Each insert-once statement answers (rows inserted, whether the batch must merge instead).
PREPARED_STATEMENTS = {
    "insert_new_trades": _move_trades(merge=False),
    "merge_trades": _move_trades(merge=True),
    "insert_new_agg_trades": _move_agg_trades(merge=False),
    "merge_agg_trades": _move_agg_trades(merge=True),
    "insert_new_book_tickers": _move_book_tickers(merge=False, sampled=False),
    "merge_book_tickers": _move_book_tickers(merge=True, sampled=False),
    "insert_new_sampled_book_tickers(bigint)": _move_book_tickers(merge=False, sampled=True),
    "merge_sampled_book_tickers(bigint)": _move_book_tickers(merge=True, sampled=True),
    "move_klines": _MOVE_KLINES,
}


# Per table: the plain insert in a savepoint (one round trip: the savepoint is set before the
# insert runs, whatever it meets), and the merge after rolling back to it.
_INSERT_ONCE = {
    "trades": (
        "SAVEPOINT insert_new; EXECUTE insert_new_trades",
        "ROLLBACK TO SAVEPOINT insert_new; EXECUTE merge_trades",
    ),
    "agg_trades": (
        "SAVEPOINT insert_new; EXECUTE insert_new_agg_trades",
        "ROLLBACK TO SAVEPOINT insert_new; EXECUTE merge_agg_trades",
    ),
    "book_tickers": (
        "SAVEPOINT insert_new; EXECUTE insert_new_book_tickers",
        "ROLLBACK TO SAVEPOINT insert_new; EXECUTE merge_book_tickers",
    ),
    # The sampling period in microseconds is the one parameter, bound as any value is.
    "sampled_book_tickers": (
        "SAVEPOINT insert_new; EXECUTE insert_new_sampled_book_tickers(%(sample_us)s)",
        "ROLLBACK TO SAVEPOINT insert_new; EXECUTE merge_sampled_book_tickers(%(sample_us)s)",
    ),
}

# After a merge: the staged rows whose id is stored with other values (a trade re-sent with another
# price, quantity, time or side), looked up in every partition (a different time is another one).
# The stored row stays; these are dead-lettered as conflicting_duplicate. Run only on the merge
# path, so an all-new batch costs nothing more.
_CONFLICTS = {
    "trades": f"""
SELECT s.symbol, s.trade_id, s.price::text, s.quantity::text, s.trade_time_us, s.buyer_is_maker,
    t.price::text, t.quantity::text, (extract(epoch FROM t.trade_time) * 1000000)::bigint, t.buyer_is_maker
FROM trades_staging s JOIN trades t USING (symbol, trade_id)
WHERE (s.price, s.quantity, {_US.format("s.trade_time_us")}, s.buyer_is_maker)
    IS DISTINCT FROM (t.price, t.quantity, t.trade_time, t.buyer_is_maker)
""",
    "agg_trades": f"""
SELECT s.symbol, s.agg_trade_id, s.price::text, s.quantity::text, s.first_trade_id, s.last_trade_id,
    s.trade_time_us, s.buyer_is_maker,
    t.price::text, t.quantity::text, t.first_trade_id, t.last_trade_id,
    (extract(epoch FROM t.trade_time) * 1000000)::bigint, t.buyer_is_maker
FROM agg_trades_staging s JOIN agg_trades t USING (symbol, agg_trade_id)
WHERE (s.price, s.quantity, s.first_trade_id, s.last_trade_id, {_US.format("s.trade_time_us")}, s.buyer_is_maker)
    IS DISTINCT FROM (t.price, t.quantity, t.first_trade_id, t.last_trade_id, t.trade_time, t.buyer_is_maker)
""",
}

# The hot path's lines (consumer/trade_lines.py) carry the columns in the order of a trade frame.
_COPY_TRADES = f"COPY trades_staging ({trade_lines.COPY_COLUMNS}) FROM STDIN"
# The other rows are consumer/parse.py's named tuples, in their fields' order: named, so that no
# table's column order matters. Spelled out, so that every statement is a literal the project's SQL
# scan can read; tests/unit/test_sink_copy_columns.py holds each list to its tuple's fields.
AGG_TRADE_COPY_COLUMNS = (
    "symbol, agg_trade_id, price, quantity, first_trade_id, last_trade_id, trade_time_us, buyer_is_maker, event_time_us"
)
KLINE_COPY_COLUMNS = (
    "symbol, interval, open_time_us, close_time_us, open, high, low, close, volume, quote_volume, trade_count,"
    " taker_buy_base_volume, taker_buy_quote_volume, first_trade_id, last_trade_id, is_closed, event_time_us, source"
)
BOOK_TICKER_COPY_COLUMNS = "symbol, update_id, bid_price, bid_quantity, ask_price, ask_quantity, received_at_us"
_COPY_AGG_TRADES = f"COPY agg_trades_staging ({AGG_TRADE_COPY_COLUMNS}) FROM STDIN"
_COPY_KLINES = f"COPY klines_staging ({KLINE_COPY_COLUMNS}) FROM STDIN"
_COPY_BOOK_TICKERS = f"COPY book_tickers_staging ({BOOK_TICKER_COPY_COLUMNS}) FROM STDIN"


def copy_text(rows: Iterable[tuple[object, ...]]) -> io.StringIO:
    """Rows in COPY's text format. Text fields are validated symbols, intervals and decimal
    strings, so none contains a tab, newline or backslash that would need escaping."""
    buffer = io.StringIO()
    write = buffer.write
    for row in rows:
        write("\t".join(map(_copy_field, row)))
        write("\n")
    buffer.seek(0)
    return buffer


def _copy_field(value: object) -> str:
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    return str(value)


class Conflict(NamedTuple):
    """A staged row whose id is stored with other values: `sent` are the staged row's values after
    its symbol and id (prices and quantities as text, times in microseconds), `stored` the stored
    row's."""

    table: str
    symbol: str
    row_id: int
    sent: tuple[Any, ...]
    stored: tuple[Any, ...]


# Given a batch's conflicts, the messages that sent them, as dead letters (the loop knows messages).
ConflictFinder = Callable[[Sequence[Conflict]], list[Rejected]]


@dataclass
class Written:
    """How many rows of a batch were new (the rest were already stored), and the messages whose
    row conflicted with a stored one, dead-lettered in the same transaction."""

    trades: int = 0
    agg_trades: int = 0
    klines: int = 0
    book_tickers: int = 0
    coverage: int = 0
    conflicts: list[Rejected] = field(default_factory=list)


@dataclass
class RowsByTable:
    # Trades as COPY lines (consumer/trade_lines.py): the hot path makes them from the frame's bytes.
    trades: list[bytes] = field(default_factory=list)
    agg_trades: list[AggTradeRow] = field(default_factory=list)
    klines: list[KlineRow] = field(default_factory=list)
    book_tickers: list[BookTickerRow] = field(default_factory=list)
    # Coverage markers, in the order they were read; applied after every row of the batch.
    coverage: list[CoverageRow] = field(default_factory=list)

    def add(self, row: Row) -> None:
        if isinstance(row, TradeRow):
            self.trades.append(trade_lines.from_row(row))
        elif isinstance(row, AggTradeRow):
            self.agg_trades.append(row)
        elif isinstance(row, KlineRow):
            self.klines.append(row)
        elif isinstance(row, CoverageRow):
            self.coverage.append(row)
        else:
            self.book_tickers.append(row)

    def __len__(self) -> int:
        return len(self.trades) + len(self.agg_trades) + len(self.klines) + len(self.book_tickers) + len(self.coverage)


class LagRow(NamedTuple):
    group_id: str
    topic: str
    partition: int
    next_offset: int
    high_watermark: int
    lag: int


# A marker vouches for the records before it on its partition: it is applied after the batch's
# rows, in their transaction, so it is never stored without them. coverage_apply (migration 0006)
# is a union whatever the order, so the markers of a batch are applied in one statement.
# (%% is a literal % beside execute_values' placeholder.)
_MS = "(timestamptz 'epoch' + ({0} / 1000) * interval '1 second' + ({0} %% 1000) * interval '1 millisecond')"
_APPLY_COVERAGE = f"""
SELECT count(coverage_apply(symbol, stream, kind, {_MS.format("start_ms")}, {_MS.format("end_ms")}, origin, detail))
FROM (VALUES %s) AS marker (symbol, stream, kind, start_ms, end_ms, origin, detail)
"""

# Dead letters are rare and their detail is free text, so plain bound parameters, not COPY. The
# primary key holds recorded_at (the partition key), which a replay sets anew: where a message
# came from is looked up in every partition, so a replayed dead letter is still recorded once.
_INSERT_DEAD_LETTERS = """
INSERT INTO dead_letters (source_topic, source_partition, source_offset, reason, detail, stream)
SELECT * FROM (VALUES %s) AS v (source_topic, source_partition, source_offset, reason, detail, stream)
WHERE NOT EXISTS (
    SELECT 1 FROM dead_letters d
    WHERE d.source_topic = v.source_topic AND d.source_partition = v.source_partition
        AND d.source_offset = v.source_offset
)
ON CONFLICT DO NOTHING
"""
_UPSERT_LAG = """
INSERT INTO consumer_lag (group_id, topic, partition, next_offset, high_watermark, lag)
VALUES %s
ON CONFLICT (group_id, topic, partition) DO UPDATE SET
    next_offset = excluded.next_offset, high_watermark = excluded.high_watermark,
    lag = excluded.lag, updated_at = now()
"""


class Sink:
    """One long-lived connection: staging tables are created and the statements prepared once per
    connection, so a batch costs a COPY and an EXECUTE per table, not a re-plan of each statement."""

    def __init__(self, database_url: str, book_ticker_sample_ms: int = 0) -> None:
        self._dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._book_ticker_sample_us = book_ticker_sample_ms * 1000
        self._connection: Any = None
        # Batches that held an already stored row and so took the ON CONFLICT way, per table.
        self.merged_batches: Counter[str] = Counter()

    def _connect(self) -> Any:
        if self._connection is None:
            connection = psycopg2.connect(self._dsn)
            with connection.cursor() as cursor:
                cursor.execute(_CREATE_STAGING)
                for name, statement in PREPARED_STATEMENTS.items():
                    # Both are this module's constants (no input reaches them): PREPARE takes no
                    # bound parameters for a statement's name or text.
                    cursor.execute(f"PREPARE {name} AS {statement}")
            connection.commit()
            self._connection = connection
        return self._connection

    def write(
        self,
        rows: RowsByTable,
        dead_letters: Sequence[DeadLetterRow] = (),
        find_conflicts: ConflictFinder | None = None,
    ) -> Written:
        """Writes the batch, and the index rows of its dead letters, in one transaction. Raises on
        any database error with nothing committed, so the caller can retry the same batch.
        `find_conflicts` names the messages behind rows that conflict with stored ones."""
        written = Written()
        if not len(rows) and not dead_letters:
            return written
        try:
            connection = self._connect()
            with connection.cursor() as cursor:
                if dead_letters:
                    execute_values(cursor, _INSERT_DEAD_LETTERS, dead_letters)
                conflicts: list[Conflict] = []
                if rows.trades:
                    cursor.copy_expert(_COPY_TRADES, io.BytesIO(b"".join(rows.trades)), _COPY_CHUNK)
                    written.trades, merged = self._insert_once(cursor, "trades")
                    conflicts += self._conflicts(cursor, "trades") if merged else []
                if rows.agg_trades:
                    cursor.copy_expert(_COPY_AGG_TRADES, copy_text(rows.agg_trades), _COPY_CHUNK)
                    written.agg_trades, merged = self._insert_once(cursor, "agg_trades")
                    conflicts += self._conflicts(cursor, "agg_trades") if merged else []
                if rows.klines:
                    cursor.copy_expert(_COPY_KLINES, copy_text(rows.klines), _COPY_CHUNK)
                    cursor.execute("EXECUTE move_klines")
                    written.klines = cursor.rowcount
                if rows.book_tickers:
                    cursor.copy_expert(_COPY_BOOK_TICKERS, copy_text(rows.book_tickers), _COPY_CHUNK)
                    if self._book_ticker_sample_us:
                        written.book_tickers, _ = self._insert_once(
                            cursor, "sampled_book_tickers", {"sample_us": self._book_ticker_sample_us}
                        )
                    else:
                        written.book_tickers, _ = self._insert_once(cursor, "book_tickers")
                if rows.coverage:
                    execute_values(
                        cursor, _APPLY_COVERAGE, rows.coverage, template="(%s, %s, %s, %s::bigint, %s::bigint, %s, %s)"
                    )
                    written.coverage = len(rows.coverage)
                if conflicts:
                    written.conflicts = self._dead_letter_conflicts(cursor, conflicts, find_conflicts)
            connection.commit()
            return written
        except BaseException:
            self.dispose()  # a broken or half-used connection is not reused: start clean
            raise

    def _insert_once(self, cursor: Any, table: str, parameters: dict[str, int] | None = None) -> tuple[int, bool]:
        """Moves the staged rows of `table` in, the fast way when none is stored yet (see
        _INSERT_ONCE). Returns the rows inserted, and True if it took the merge."""
        insert_new, merge = _INSERT_ONCE[table]
        try:
            cursor.execute(insert_new, parameters)
            inserted, must_merge = cursor.fetchone()
        except psycopg2.errors.UniqueViolation:
            must_merge = True
        if not must_merge:
            return inserted, False
        cursor.execute(merge, parameters)
        self.merged_batches[table.removeprefix("sampled_")] += 1
        return cursor.fetchone()[0], True

    def _conflicts(self, cursor: Any, table: str) -> list[Conflict]:
        cursor.execute(_CONFLICTS[table])
        half = (len(cursor.description) - 2) // 2
        return [Conflict(table, row[0], row[1], row[2 : 2 + half], row[2 + half :]) for row in cursor.fetchall()]

    def _dead_letter_conflicts(
        self, cursor: Any, conflicts: list[Conflict], find_conflicts: ConflictFinder | None
    ) -> list[Rejected]:
        rejected = find_conflicts(conflicts) if find_conflicts is not None else []
        if len(rejected) < len(conflicts):  # a caller without messages (a benchmark, a tool)
            log.warning("conflicting duplicates not traced to a message", extra={"count": len(conflicts)})
        if rejected:
            execute_values(cursor, _INSERT_DEAD_LETTERS, [item.row() for item in rejected])
        return rejected

    def write_lag(self, rows: Sequence[LagRow]) -> None:
        try:
            connection = self._connect()
            with connection.cursor() as cursor:
                execute_values(cursor, _UPSERT_LAG, rows)
            connection.commit()
        except BaseException:
            self.dispose()
            raise

    def dispose(self) -> None:
        """Closes the connection (e.g. after the database went away); the next write reconnects."""
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(psycopg2.Error):
                connection.close()
