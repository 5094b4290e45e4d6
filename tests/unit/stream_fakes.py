"""Fakes of what the stream loop talks to (``stream.ports``), and Debezium records of the payments
example, for the unit tests of the batch planner and the loop. No fake opens a connection."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any, Literal

from confluent_kafka import KafkaError, TopicPartition

from bridge.config import Settings, load_settings
from bridge.events import BUILTIN_TYPES
from bridge.mapping import RowMapper
from bridge.rules import WriteAction, WriteRules
from bridge.schemas import Columns, SchemaChange
from bridge.sink import WriteResult
from stream.batch import TableRoute
from stream.loop import Bridge
from stream.ports import Rebalance

EXAMPLE = Path(__file__).parents[2] / "examples" / "payments" / "ddbridge.toml"
TOPIC = "ddbridge.public.payments"
GRACE_S = 7 * 86400


class FakeMessage:
    """A consumed record of ``TOPIC``, partition 0."""

    def __init__(
        self, offset: int, error: KafkaError | None = None, value: bytes | None = None, topic: str = TOPIC
    ) -> None:
        self._offset, self._error, self._value, self._topic = offset, error, value, topic

    def error(self) -> KafkaError | None:
        return self._error

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes | None:
        return self._value  # None: a Kafka tombstone, nothing to write

    def key(self) -> bytes | None:
        return None

    def headers(self) -> list[tuple[str, str | bytes | None]]:
        return []


# column -> (Kafka Connect type, Debezium semantic name, PostgreSQL type), as the connector reports them
PAYMENT_COLUMNS: dict[str, tuple[str, str | None, str]] = {
    "payment_id": ("int64", None, "INT8"),
    "customer_id": ("int64", None, "INT8"),
    "payment_date": ("int32", "io.debezium.time.Date", "DATE"),
    "payment_amount": ("string", None, "NUMERIC"),  # decimal.handling.mode=string
    "payment_status": ("string", None, "VARCHAR"),
}


def payment(payment_id: int = 7, payment_date: str = "2024-05-01", **columns: Any) -> dict[str, Any]:
    """A payments row as Debezium's JSON carries it (a DATE as days since 1970-01-01)."""
    days = (date.fromisoformat(payment_date) - date(1970, 1, 1)).days
    row = {"payment_id": payment_id, "customer_id": 3, "payment_date": days, "payment_amount": "12.50"}
    return row | {"payment_status": "completed"} | columns


def change(
    op: str,
    lsn: int | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    ts_ms: int = 1_700_000_000_000,
) -> bytes:
    """A Debezium change event of public.payments, as the JSON converter with schemas writes it."""
    fields = [
        {"field": c, "type": kind, "parameters": {"__debezium.source.column.type": pg}}
        | ({"name": name} if name else {})
        for c, (kind, name, pg) in PAYMENT_COLUMNS.items()
    ]
    return json.dumps(
        {
            "schema": {"fields": [{"field": "before", "fields": fields}, {"field": "after", "fields": fields}]},
            "payload": {
                "op": op,
                "before": before,
                "after": after,
                "source": {"schema": "public", "table": "payments", "lsn": lsn, "ts_ms": ts_ms},
            },
        }
    ).encode()


class FakeConsumer:
    """A consumer with nothing to hand out: one partition whose committed offset is ``committed_at``."""

    def __init__(self, committed_at: int = 41) -> None:
        self.committed_at = committed_at
        self.commits: list[list[tuple[str, int, int]]] = []
        self.callbacks: dict[str, Rebalance | None] = {}

    def subscribe(
        self,
        topics: list[str],
        on_assign: Rebalance | None = None,
        on_revoke: Rebalance | None = None,
        on_lost: Rebalance | None = None,
    ) -> None:
        self.callbacks = {"on_assign": on_assign, "on_revoke": on_revoke, "on_lost": on_lost}

    def poll(self, timeout: float = -1) -> FakeMessage | None:
        return None

    def consume(self, num_messages: int = 1, timeout: float = -1) -> Sequence[FakeMessage]:
        return []

    def commit(self, *, offsets: list[TopicPartition], asynchronous: Literal[False]) -> list[TopicPartition]:
        self.commits.append([(tp.topic, tp.partition, tp.offset) for tp in offsets])
        return offsets

    def committed(self, partitions: list[TopicPartition], timeout: float = -1) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, self.committed_at) for tp in partitions]

    def get_watermark_offsets(
        self, partition: TopicPartition, timeout: float = -1, cached: bool = False
    ) -> tuple[int, int]:
        return 0, 100

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return partitions

    def assign(self, partitions: list[TopicPartition]) -> None:
        pass

    def resume(self, partitions: list[TopicPartition]) -> None:
        pass

    def unassign(self) -> None:
        pass

    def close(self) -> None:
        pass


class ScriptedConsumer(FakeConsumer):
    """Hands out ``first`` to the blocking poll, then ``during`` to the first non-blocking poll (the one
    made while the batch is being written), then nothing."""

    def __init__(self, first: FakeMessage | None, during: FakeMessage | None) -> None:
        super().__init__()
        self.first, self.during = first, during
        self.handed_during = threading.Event()

    def poll(self, timeout: float = -1) -> FakeMessage | None:
        if self.first is not None:
            first, self.first = self.first, None
            return first
        if timeout == 0 and not self.handed_during.is_set():
            self.handed_during.set()
            return self.during
        return None


class NoProducer:
    """The dead-letter producer: nothing may be dead-lettered."""

    def produce(
        self,
        topic: str,
        value: str | bytes | None = None,
        key: str | bytes | None = None,
        *,
        on_delivery: Any = None,
        headers: Any = None,
    ) -> None:
        raise AssertionError("nothing should be dead-lettered")

    def flush(self, timeout: float = -1) -> int:
        return 0

    def poll(self, timeout: float = -1) -> int:
        return 0


class RecordingProducer(NoProducer):
    """The dead-letter producer, keeping what it was given."""

    def __init__(self) -> None:
        self.produced: list[dict[str, Any]] = []

    def produce(
        self,
        topic: str,
        value: str | bytes | None = None,
        key: str | bytes | None = None,
        *,
        on_delivery: Any = None,
        headers: Any = None,
    ) -> None:
        self.produced.append({"topic": topic, "value": value, "key": key, "headers": headers})
        on_delivery(None, None)


class MemoryPositions:
    """The bridge's position record, kept in memory."""

    def __init__(self) -> None:
        self.saved: dict[tuple[str, int], int] = {}

    def load(self) -> dict[tuple[str, int], int]:
        return dict(self.saved)

    def save(self, positions: dict[tuple[str, int], int]) -> None:
        self.saved.update(positions)


class MemoryFloors:
    """The LSN floors, kept in memory; records the TRUNCATEs the bridge saw."""

    def __init__(self, floors: dict[str, int] | None = None) -> None:
        self.values = floors or {}
        self.truncates: list[tuple[str, int]] = []

    def floors(self, sources: list[str]) -> dict[str, int]:
        return {s: self.values[s] for s in sources if s in self.values}

    def record_truncate(self, source: str, lsn: int) -> None:
        self.truncates.append((source, lsn))


class MemorySchemas:
    """The schema history, kept in memory."""

    def __init__(self) -> None:
        self.recorded: list[tuple[str, int, Columns, SchemaChange | None]] = []

    def current(self, table: str) -> tuple[Columns, int] | None:
        mine = [(columns, lsn) for t, lsn, columns, _ in self.recorded if t == table]
        return mine[-1] if mine else None

    def record(self, table: str, lsn: int, columns: Columns, change: SchemaChange | None) -> None:
        self.recorded.append((table, lsn, columns, change))


class RecordingSink:
    """A sink that applies every action, keeping them."""

    def __init__(self) -> None:
        self.written: list[WriteAction] = []

    def write(self, actions: Sequence[WriteAction]) -> list[WriteResult]:
        self.written.extend(actions)
        return [WriteResult(a, "applied") for a in actions]

    def stopping(self) -> None:
        pass

    def close(self) -> None:
        pass


def example_settings() -> Settings:
    return load_settings(EXAMPLE)


def payment_routes(settings: Settings, sink: RecordingSink | None = None) -> dict[str, TableRoute]:
    """The payments example's one route, writing to ``sink``."""
    mapping = settings.mapping("public.payments")
    rules = WriteRules(RowMapper(mapping), settings.bookkeeping, GRACE_S)
    return {TOPIC: TableRoute(mapping, rules, sink or RecordingSink())}


def fake_bridge(
    consumer: FakeConsumer,
    producer: NoProducer | None = None,
    *,
    sink: RecordingSink | None = None,
    floors: MemoryFloors | None = None,
    positions: MemoryPositions | None = None,
) -> Bridge:
    """A bridge over the payments example, talking only to fakes."""
    settings = example_settings()
    return Bridge(
        settings,
        payment_routes(settings, sink),
        consumer=consumer,
        producer=producer or NoProducer(),
        floor_store=floors or MemoryFloors(),
        positions=positions or MemoryPositions(),
        schema_history=MemorySchemas(),
        types=BUILTIN_TYPES,
    )
