"""What the stream loop needs from the outside world, as protocols: the Kafka consumer, the sink of each
table, and the control table's records. ``Bridge.for_settings`` plugs in the real ones; the unit tests
plug in scripted fakes, so the loop is tested without any server."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, Protocol

from confluent_kafka import TopicPartition

from bridge.dlq import Record
from bridge.rules import WriteAction
from bridge.schemas import Columns, SchemaChange
from bridge.sink import WriteResult
from connectors.debezium import ConnectorStatus

Rebalance = Callable[["EventConsumer", list[TopicPartition]], None]


class EventConsumer(Protocol):
    """The consumer methods the loop uses (``confluent_kafka.Consumer`` is one)."""

    def subscribe(
        self,
        topics: list[str],
        on_assign: Rebalance | None = None,
        on_revoke: Rebalance | None = None,
        on_lost: Rebalance | None = None,
    ) -> None: ...
    def poll(self, timeout: float = -1) -> Record | None: ...
    def consume(self, num_messages: int = 1, timeout: float = -1) -> Sequence[Record]: ...
    def commit(self, *, offsets: list[TopicPartition], asynchronous: Literal[False]) -> list[TopicPartition]: ...
    def committed(self, partitions: list[TopicPartition], timeout: float = -1) -> list[TopicPartition]: ...
    def get_watermark_offsets(
        self, partition: TopicPartition, timeout: float = -1, cached: bool = False
    ) -> tuple[int, int]: ...
    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]: ...
    def assign(self, partitions: list[TopicPartition]) -> None: ...
    def resume(self, partitions: list[TopicPartition]) -> None: ...
    def unassign(self) -> None: ...
    def close(self) -> None: ...


class Sink(Protocol):
    """Applies one table's write actions (``bridge.sink.DynamoSink`` is one)."""

    def write(self, actions: Sequence[WriteAction]) -> list[WriteResult]: ...
    def stopping(self) -> None: ...
    def close(self) -> None: ...


class Floors(Protocol):
    """The per-table LSN floors set by ``truncate recover`` (``bridge.floors.FloorStore``)."""

    def floors(self, sources: list[str]) -> dict[str, int]: ...
    def record_truncate(self, source: str, lsn: int) -> None: ...


class Positions(Protocol):
    """The bridge's own record of the applied offsets (``bridge.positions.PositionStore``)."""

    def load(self) -> dict[tuple[str, int], int]: ...
    def save(self, positions: dict[tuple[str, int], int]) -> None: ...


class Schemas(Protocol):
    """The row schemas applied per table, for ``reconcile`` (``bridge.schemas.SchemaHistory``)."""

    def current(self, table: str) -> tuple[Columns, int] | None: ...
    def record(self, table: str, lsn: int, columns: Columns, change: SchemaChange | None) -> None: ...


class ConnectorControl(Protocol):
    """The Kafka Connect REST calls the connector watch makes (``connectors.debezium.ConnectClient``)."""

    def status(self, name: str) -> ConnectorStatus | None: ...
    def restart(self, name: str, *, only_failed: bool = True) -> bool: ...
