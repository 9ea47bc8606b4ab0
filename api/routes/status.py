"""The pipeline's status for the web page and for people: consumer lag, dead letters, freshness.

The api has no Kafka access: the consumer records its lag and every dead letter in PostgreSQL
(tables consumer_lag and dead_letters), and this reads them."""

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import DbConnection
from api.queries import status

router = APIRouter(prefix="/v1", tags=["status"])


class PartitionLag(BaseModel):
    group_id: str
    topic: str
    partition: int
    next_offset: int = Field(description="the group's next offset to read (its committed position)")
    high_watermark: int = Field(description="the partition's end offset when the consumer last looked")
    lag: int = Field(description="messages written but not yet consumed")
    updated_at: datetime = Field(description="when the consumer last recorded this row")


class GroupLag(BaseModel):
    group_id: str
    topic: str
    lag: int = Field(description="sum over the partitions")
    partitions: int
    oldest_update: datetime = Field(description="the least recently recorded partition's time")


class DeadLetterReason(BaseModel):
    reason: str
    total: int
    last_24h: int
    newest_at: datetime


class DeadLetters(BaseModel):
    total: int
    last_24h: int
    newest_at: datetime | None = Field(description="null when there are none")
    by_reason: list[DeadLetterReason]


class SymbolFreshness(BaseModel):
    symbol: str
    last_trade_id: int
    last_trade_time: datetime = Field(description="the newest stored trade's time on the exchange")
    last_ingested_at: datetime = Field(description="when the consumer last stored trades of this symbol")


class PipelineStatus(BaseModel):
    server_time: datetime
    lag_by_group: list[GroupLag]
    consumer_lag: list[PartitionLag]
    dead_letters: DeadLetters
    symbols: list[SymbolFreshness]


def group_lags(partitions: Sequence[PartitionLag]) -> list[GroupLag]:
    """Per (group, topic): total lag, partition count and the oldest report, in input order."""
    groups: dict[tuple[str, str], list[PartitionLag]] = {}
    for row in partitions:
        groups.setdefault((row.group_id, row.topic), []).append(row)
    return [
        GroupLag(
            group_id=group_id,
            topic=topic,
            lag=sum(row.lag for row in rows),
            partitions=len(rows),
            oldest_update=min(row.updated_at for row in rows),
        )
        for (group_id, topic), rows in groups.items()
    ]


def dead_letter_summary(rows: Sequence[Mapping[Any, Any]]) -> DeadLetters:
    reasons = [DeadLetterReason.model_validate(dict(row)) for row in rows]
    return DeadLetters(
        total=sum(reason.total for reason in reasons),
        last_24h=sum(reason.last_24h for reason in reasons),
        newest_at=max((reason.newest_at for reason in reasons), default=None),
        by_reason=reasons,
    )


@router.get("/status", response_model=PipelineStatus)
async def pipeline_status(connection: DbConnection) -> PipelineStatus:
    """Consumer lag per group and partition, dead-letter counts (all, last 24 h, by reason) and
    each symbol's newest trade, as recorded in the database by the consumer."""
    partitions = [PartitionLag.model_validate(dict(row)) for row in await status.consumer_lag_rows(connection)]
    return PipelineStatus(
        server_time=datetime.now(UTC),
        lag_by_group=group_lags(partitions),
        consumer_lag=partitions,
        dead_letters=dead_letter_summary(await status.dead_letter_counts(connection)),
        symbols=[
            SymbolFreshness(
                symbol=row["symbol"],
                last_trade_id=row["trade_id"],
                last_trade_time=row["trade_time"],
                last_ingested_at=row["ingested_at"],
            )
            for row in await status.newest_trade_per_symbol(connection)
        ],
    )
