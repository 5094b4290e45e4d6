"""The bridge's loop with a scripted consumer: records a poll returns while a batch is written are
checked like any other, so a data gap reported then still stops the bridge before anything past it
is committed."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, TopicPartition

from bridge.config import load_settings
from stream.errors import CommitOrderError, DataGapError
from stream.loop import Bridge

EXAMPLE = Path(__file__).parents[2] / "examples" / "payments" / "ddbridge.toml"
TOPIC = "ddbridge.public.payments"


class FakeMessage:
    def __init__(self, offset: int, error: KafkaError | None = None, value: bytes | None = None) -> None:
        self._offset, self._error, self._value = offset, error, value

    def error(self) -> KafkaError | None:
        return self._error

    def topic(self) -> str:
        return TOPIC

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes | None:
        return self._value  # None: a Kafka tombstone, nothing to write

    def key(self) -> bytes | None:
        return None

    def headers(self) -> list[tuple[str, bytes]]:
        return []


class ScriptedConsumer:
    """Hands out ``first`` to the blocking poll, then ``during`` to the first non-blocking poll (the one
    made while the batch is being written), then nothing."""

    def __init__(self, first: FakeMessage, during: FakeMessage) -> None:
        self.first, self.during = first, during
        self.handed_during = threading.Event()
        self.commits: list[list[tuple[str, int, int]]] = []

    def subscribe(self, topics: list[str], **callbacks: Any) -> None:
        pass

    def poll(self, timeout: float) -> FakeMessage | None:
        if self.first is not None:
            first, self.first = self.first, None  # type: ignore[assignment]
            return first
        if timeout == 0 and not self.handed_during.is_set():
            self.handed_during.set()
            return self.during
        return None

    def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
        return []

    def commit(self, offsets: list[Any], asynchronous: bool) -> None:
        self.commits.append([(tp.topic, tp.partition, tp.offset) for tp in offsets])

    def close(self) -> None:
        pass


class NoProducer:
    """The dead-letter producer: nothing is dead-lettered in these tests."""

    def produce(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("nothing should be dead-lettered")

    def flush(self, timeout: float = 0) -> int:
        return 0

    def poll(self, timeout: float = 0) -> int:
        return 0


class RecordingProducer(NoProducer):
    """The dead-letter producer, keeping what it was given."""

    def __init__(self) -> None:
        self.produced: list[dict[str, Any]] = []

    def produce(self, *args: Any, **kwargs: Any) -> None:
        self.produced.append(kwargs)
        kwargs["on_delivery"](None, None)


class NoPositions:
    """The bridge's position record, kept in memory."""

    def __init__(self) -> None:
        self.saved: dict[tuple[str, int], int] = {}

    def load(self) -> dict[tuple[str, int], int]:
        return dict(self.saved)

    def save(self, positions: dict[tuple[str, int], int]) -> None:
        self.saved.update(positions)


def _bridge(consumer: ScriptedConsumer, producer: NoProducer | None = None) -> Bridge:
    settings = load_settings(EXAMPLE)
    bridge = Bridge(settings, consumer=consumer, producer=producer or NoProducer())  # type: ignore[arg-type]
    bridge.floors = {}  # no control table here
    bridge.positions = NoPositions()  # type: ignore[assignment]
    apply_batch = bridge.apply_batch

    def slow_batch(messages: list[Any]) -> Any:  # the writes last until a poll was made meanwhile
        assert consumer.handed_during.wait(10), "the bridge did not poll while the batch was written"
        return apply_batch(messages)

    bridge.apply_batch = slow_batch  # type: ignore[method-assign]
    return bridge


def _run_until(bridge: Bridge, consumer: ScriptedConsumer, commits: int) -> BaseException | None:
    """Run the loop in a thread until it fails or has made ``commits`` commits (5 s at most)."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            bridge.run()
        except BaseException as exc:
            failure.append(exc)

    runner = threading.Thread(target=run)
    runner.start()
    deadline = time.monotonic() + 5
    while runner.is_alive() and len(consumer.commits) < commits and time.monotonic() < deadline:
        time.sleep(0.02)
    bridge.stop()
    runner.join(10)
    return failure[0] if failure else None


@pytest.mark.parametrize("code", [KafkaError.OFFSET_OUT_OF_RANGE, KafkaError._AUTO_OFFSET_RESET])
def test_a_data_gap_returned_while_a_batch_is_written_stops_the_bridge(code: int) -> None:
    consumer = ScriptedConsumer(FakeMessage(41), FakeMessage(42, KafkaError(code, "offset out of range")))
    failure = _run_until(_bridge(consumer), consumer, commits=2)
    assert isinstance(failure, DataGapError) and "data gap" in str(failure)
    assert failure.to_dict() | {"message": ""} == {
        "error": "DataGapError",
        "message": "",
        "topic": TOPIC,
        "partition": 0,
        "offset": 42,
    }
    # The batch being written when the gap was seen completed and was committed; nothing after it was.
    assert consumer.commits == [[(TOPIC, 0, 42)]]


def test_a_record_returned_while_a_batch_is_written_goes_to_the_next_batch() -> None:
    consumer = ScriptedConsumer(FakeMessage(41), FakeMessage(42))
    assert _run_until(_bridge(consumer), consumer, commits=2) is None
    assert consumer.commits[:2] == [[(TOPIC, 0, 42)], [(TOPIC, 0, 43)]]


class RebalancingConsumer(ScriptedConsumer):
    """The blocking poll hands out ``stale``; the consume() right after it serves a rebalance that revokes
    the partition and assigns it back at the committed offset (41), from which the next poll reads
    ``refetched`` again."""

    def __init__(self, stale: FakeMessage, refetched: FakeMessage) -> None:
        super().__init__(stale, refetched)
        self.handed_during.set()  # no write needs to wait for a poll here
        self.rebalanced = False
        self.callbacks: dict[str, Any] = {}

    def subscribe(self, topics: list[str], **callbacks: Any) -> None:
        self.callbacks = callbacks

    def poll(self, timeout: float) -> FakeMessage | None:
        if self.first is not None:
            first, self.first = self.first, None  # type: ignore[assignment]
            return first
        if self.rebalanced and self.during is not None and timeout > 0:
            during, self.during = self.during, None
            return during
        return None

    def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
        if not self.rebalanced:
            self.rebalanced = True
            partitions = [TopicPartition(TOPIC, 0)]
            self.callbacks["on_revoke"](self, partitions)
            self.callbacks["on_assign"](self, partitions)
        return []

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, 41) for tp in partitions]

    def get_watermark_offsets(self, partition: TopicPartition, timeout: float) -> tuple[int, int]:
        return 0, 100

    def assign(self, partitions: list[TopicPartition]) -> None:
        pass

    def unassign(self) -> None:
        pass

    def resume(self, partitions: list[TopicPartition]) -> None:
        pass


def test_a_record_taken_just_before_a_rebalance_is_left_to_the_reassigned_position() -> None:
    stale, refetched = FakeMessage(41), FakeMessage(41)
    consumer = RebalancingConsumer(stale, refetched)
    bridge = _bridge(consumer)
    applied: list[list[Any]] = []
    apply_batch = bridge.apply_batch

    def recording(messages: list[Any]) -> Any:
        applied.append(list(messages))
        return apply_batch(messages)

    bridge.apply_batch = recording  # type: ignore[method-assign]
    assert _run_until(bridge, consumer, commits=1) is None
    assert consumer.rebalanced
    assert all(stale not in batch for batch in applied)  # the record from before the revoke was dropped
    assert applied[0] == [refetched] and consumer.commits[0] == [(TOPIC, 0, 42)]


def _payment_event(amount: Any) -> bytes:
    """A Debezium insert of one payments row (only the columns the test needs)."""
    columns = {"payment_id": ("INT8", 7), "amount": ("NUMERIC", amount)}
    fields = [
        {"field": c, "type": "string", "parameters": {"__debezium.source.column.type": t}}
        for c, (t, _) in columns.items()
    ]
    return json.dumps(
        {
            "schema": {"fields": [{"field": "before", "fields": fields}, {"field": "after", "fields": fields}]},
            "payload": {
                "op": "c",
                "before": None,
                "after": {c: v for c, (_, v) in columns.items()},
                "source": {"schema": "public", "table": "payments", "lsn": 100, "ts_ms": 1},
            },
        }
    ).encode()


def test_a_value_that_cannot_be_stored_is_dead_lettered_and_committed() -> None:
    consumer = ScriptedConsumer(FakeMessage(41, value=_payment_event(["not", "a", "number"])), FakeMessage(42))
    producer = RecordingProducer()
    assert _run_until(_bridge(consumer, producer), consumer, commits=1) is None
    assert len(producer.produced) == 1 and consumer.commits[0] == [(TOPIC, 0, 42)]
    headers = dict(producer.produced[0]["headers"])
    assert headers["ddbridge.error.class"] == b"CodecError" and b"column amount" in headers["ddbridge.error.message"]


@pytest.mark.parametrize("bug", [TypeError, KeyError, ValueError, AttributeError])
def test_a_programming_error_stops_the_bridge_with_nothing_committed_or_dead_lettered(bug: type[Exception]) -> None:
    consumer = ScriptedConsumer(FakeMessage(41, value=_payment_event("12.50")), FakeMessage(42))
    producer = RecordingProducer()
    bridge = _bridge(consumer, producer)

    def broken(*args: Any) -> Any:
        raise bug("a bug in the write rules")

    for route in bridge.routes.values():
        route.rules.for_event = broken  # type: ignore[method-assign,assignment]
    failure = _run_until(bridge, consumer, commits=1)
    assert isinstance(failure, bug)
    assert consumer.commits == [] and producer.produced == []


def test_a_commit_below_where_the_partition_resumed_is_refused_with_nothing_committed() -> None:
    poison = _payment_event(["not", "a", "number"])  # would be dead-lettered in a batch that may commit
    consumer = ScriptedConsumer(FakeMessage(41, value=poison), FakeMessage(42))
    producer = RecordingProducer()
    bridge = _bridge(consumer, producer)
    bridge.commit_floor[(TOPIC, 0)] = 50  # the assignment resumed at 50: a record at 41 is stale
    failure = _run_until(bridge, consumer, commits=1)
    assert isinstance(failure, CommitOrderError) and "never go backwards" in str(failure)
    assert failure.context == {"topic": TOPIC, "partition": 0, "offset": 42}
    assert consumer.commits == [] and producer.produced == []


def test_commits_move_the_floor_forward() -> None:
    consumer = ScriptedConsumer(FakeMessage(41), FakeMessage(42))
    bridge = _bridge(consumer)
    bridge.commit_floor[(TOPIC, 0)] = 41
    assert _run_until(bridge, consumer, commits=2) is None
    assert consumer.commits[:2] == [[(TOPIC, 0, 42)], [(TOPIC, 0, 43)]]
    assert bridge.commit_floor[(TOPIC, 0)] == 43


def test_an_assignment_sets_the_commit_floor_at_the_resume_offset_and_a_revoke_drops_it() -> None:
    consumer = RebalancingConsumer(FakeMessage(41), FakeMessage(41))  # Kafka's committed offset: 41
    bridge = _bridge(consumer)
    partitions = [TopicPartition(TOPIC, 0)]
    bridge._on_assign(consumer, partitions)  # type: ignore[arg-type]
    assert bridge.commit_floor == {(TOPIC, 0): 41}
    bridge._on_revoke(consumer, partitions)  # type: ignore[arg-type]
    assert bridge.commit_floor == {}
    bridge._on_assign(consumer, partitions)  # type: ignore[arg-type]
    bridge._on_lost(consumer, partitions)  # type: ignore[arg-type]
    assert bridge.commit_floor == {}
