"""coverage: the periods of each stream the store holds complete, and the holes it knows of.

coverage_apply() merges one coverage marker into the table. It is a union: held periods of a
stream are merged with those they overlap or touch; a hole is stored only where no held period
covers it (merged with the holes it touches); a held period removes what it covers of any hole.
The result is the same in any order and after any replay, which is what makes a redelivered
marker harmless. An advisory lock per stream serialises two consumers during a rebalance.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MERGE_PERIOD = """
CREATE FUNCTION coverage_merge_period(
    p_symbol text, p_stream text, p_kind text, p_start timestamptz, p_end timestamptz,
    p_origin text, p_detail text
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    merged_start timestamptz;
    merged_end timestamptz;
BEGIN
    -- Overlapping or touching periods of the same kind become one.
    SELECT least(p_start, min(start_time)), greatest(p_end, max(end_time))
        INTO merged_start, merged_end
        FROM coverage
        WHERE symbol = p_symbol AND stream = p_stream AND kind = p_kind
            AND start_time <= p_end AND end_time >= p_start;
    DELETE FROM coverage
        WHERE symbol = p_symbol AND stream = p_stream AND kind = p_kind
            AND start_time <= p_end AND end_time >= p_start;
    INSERT INTO coverage (symbol, stream, kind, start_time, end_time, origin, detail)
        VALUES (p_symbol, p_stream, p_kind, merged_start, merged_end, p_origin, p_detail);
END $$
"""

_APPLY = """
CREATE FUNCTION coverage_apply(
    p_symbol text, p_stream text, p_kind text, p_start timestamptz, p_end timestamptz,
    p_origin text, p_detail text
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    period record;
    uncovered_from timestamptz := p_start;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('coverage:' || p_symbol || '@' || p_stream, 0));
    IF p_kind = 'held' THEN
        PERFORM coverage_merge_period(p_symbol, p_stream, 'held', p_start, p_end, p_origin, '');
        -- Holes never overlap a held period, so only [p_start, p_end) can cut into them.
        FOR period IN
            DELETE FROM coverage
                WHERE symbol = p_symbol AND stream = p_stream AND kind = 'hole'
                    AND start_time < p_end AND end_time > p_start
                RETURNING start_time, end_time, origin, detail
        LOOP
            IF period.start_time < p_start THEN
                INSERT INTO coverage (symbol, stream, kind, start_time, end_time, origin, detail)
                    VALUES (p_symbol, p_stream, 'hole', period.start_time, p_start, period.origin, period.detail);
            END IF;
            IF period.end_time > p_end THEN
                INSERT INTO coverage (symbol, stream, kind, start_time, end_time, origin, detail)
                    VALUES (p_symbol, p_stream, 'hole', p_end, period.end_time, period.origin, period.detail);
            END IF;
        END LOOP;
    ELSE
        -- A hole only where nothing held covers it: what was stored stays stored.
        FOR period IN
            SELECT start_time, end_time FROM coverage
                WHERE symbol = p_symbol AND stream = p_stream AND kind = 'held'
                    AND start_time < p_end AND end_time > p_start
                ORDER BY start_time
        LOOP
            IF period.start_time > uncovered_from THEN
                PERFORM coverage_merge_period(
                    p_symbol, p_stream, 'hole', uncovered_from, period.start_time, p_origin, p_detail);
            END IF;
            uncovered_from := greatest(uncovered_from, period.end_time);
        END LOOP;
        IF uncovered_from < p_end THEN
            PERFORM coverage_merge_period(p_symbol, p_stream, 'hole', uncovered_from, p_end, p_origin, p_detail);
        END IF;
    END IF;
END $$
"""

_ARGUMENTS = "text, text, text, timestamptz, timestamptz, text, text"


def upgrade() -> None:
    op.create_table(
        "coverage",
        sa.Column("symbol", sa.Text(), nullable=False),
        sa.Column("stream", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("origin", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("symbol", "stream", "kind", "start_time", name="coverage_pkey"),
        sa.CheckConstraint("kind IN ('held', 'hole')", name="coverage_kind_check"),
        sa.CheckConstraint("start_time < end_time", name="coverage_period_check"),
    )
    op.execute(_MERGE_PERIOD)
    op.execute(_APPLY)


def downgrade() -> None:
    op.execute(f"DROP FUNCTION coverage_apply({_ARGUMENTS})")
    op.execute(f"DROP FUNCTION coverage_merge_period({_ARGUMENTS})")
    op.drop_table("coverage")
