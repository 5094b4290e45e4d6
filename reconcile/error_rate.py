"""The error rate the guide gates on: records the bridge dead-lettered plus rows the latest backfill
could not copy, per source row."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from confluent_kafka import Consumer, KafkaException, TopicPartition

from backfill.checkpoints import all_migrations
from bridge.config import Settings, TableMapping
from bridge.dlq import HEADER_PREFIX
from bridge.kafka_config import client_config
from bridge.topics import topic_for

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

DLQ_READ_LIMIT = 200_000  # beyond this the dead letters are counted without reading their headers


@dataclass
class ErrorRate:
    dead_letters: int | None  # None: the dead-letter topic could not be read
    backfill_failed: int
    migration_id: str | None
    source_rows: int

    @property
    def errors(self) -> int:
        return (self.dead_letters or 0) + self.backfill_failed

    @property
    def rate(self) -> float:
        return self.errors / self.source_rows if self.source_rows else float(self.errors > 0)


def dead_letters(settings: Settings, mapping: TableMapping, timeout_s: float = 30.0) -> int | None:
    """Dead letters of this table (by their ``ddbridge.source.topic`` header)."""
    topic = settings.kafka.dead_letter_topic
    wanted = topic_for(settings, mapping.source).encode()
    owned = {"group.id": "ddbridge-reconcile-dlq", "enable.auto.commit": False, "enable.partition.eof": True}
    consumer = Consumer(client_config(settings.kafka, "ddbridge-reconcile", owned))
    try:
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None:
            return 0
        ends: dict[int, tuple[int, int]] = {}
        for partition in meta.partitions:
            ends[partition] = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        total = sum(high - low for low, high in ends.values())
        if total == 0 or total > DLQ_READ_LIMIT:
            return total
        consumer.assign([TopicPartition(topic, p, low) for p, (low, high) in ends.items() if high > low])
        remaining = {p for p, (low, high) in ends.items() if high > low}
        count = 0
        while remaining:
            msg = consumer.poll(timeout_s)
            if msg is None:
                return None
            if msg.error():
                remaining.discard(msg.partition() or 0)
                continue
            headers = dict(msg.headers() or [])
            if headers.get(HEADER_PREFIX + "source.topic") == wanted:
                count += 1
            if (msg.offset() or 0) + 1 >= ends[msg.partition() or 0][1]:
                remaining.discard(msg.partition() or 0)
        return count
    except KafkaException:
        return None
    finally:
        consumer.close()


def backfill_failures(client: DynamoDBClient, control_table: str, source: str) -> tuple[str | None, int]:
    """(migration id, rows it failed) of the latest backfill of ``source``."""
    mine = [(plan, cps) for plan, cps in all_migrations(client, control_table) if plan.source == source]
    if not mine:
        return None, 0
    plan, cps = mine[-1]
    return plan.migration_id, sum(cp.rows_failed for cp in cps.values())


def error_rate(settings: Settings, mapping: TableMapping, client: DynamoDBClient, source_rows: int) -> ErrorRate:
    migration, failed = backfill_failures(client, settings.dynamodb.control_table, mapping.source)
    return ErrorRate(dead_letters(settings, mapping), failed, migration, source_rows)
