"""The bridge's loop with a scripted consumer: records a poll returns while a batch is written are
checked like any other, so a data gap reported then still stops the bridge before anything past it
is committed. Every part of the bridge is a fake (tests/unit/stream_fakes.py): no server is involved."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any, Literal

import pytest
from botocore.exceptions import ClientError
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from bridge.dlq import Record
from bridge.errors import TransientError
from stream.errors import CommitOrderError, DataGapError, TruncateError
from stream.loop import BatchResult, Bridge
from tests.unit.stream_fakes import (
    TOPIC,
    FakeConsumer,
    FakeMessage,
    MemoryFloors,
    MemoryPositions,
    NoProducer,
    RecordingProducer,
    RecordingSink,
    ScriptedConsumer,
    change,
    fake_bridge,
    payment,
)


def _bridge(consumer: ScriptedConsumer, producer: NoProducer | None = None, **parts: Any) -> Bridge:
    bridge = fake_bridge(consumer, producer, **parts)
    apply_batch = bridge.apply_batch

    def slow_batch(messages: Sequence[Record]) -> BatchResult:  # the writes last until a poll was made meanwhile
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

    def poll(self, timeout: float = -1) -> FakeMessage | None:
        if self.first is not None:
            first, self.first = self.first, None
            return first
        if self.rebalanced and self.during is not None and timeout > 0:
            during, self.during = self.during, None
            return during
        return None

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[FakeMessage]:
        if not self.rebalanced:
            self.rebalanced = True
            partitions = [TopicPartition(TOPIC, 0)]
            revoke, assign = self.callbacks["on_revoke"], self.callbacks["on_assign"]
            assert revoke is not None and assign is not None
            revoke(self, partitions)
            assign(self, partitions)
        return []


def test_a_record_taken_just_before_a_rebalance_is_left_to_the_reassigned_position() -> None:
    stale, refetched = FakeMessage(41), FakeMessage(41)
    consumer = RebalancingConsumer(stale, refetched)
    bridge = _bridge(consumer)
    applied: list[list[Any]] = []
    apply_batch = bridge.apply_batch

    def recording(messages: Sequence[Record]) -> BatchResult:
        applied.append(list(messages))
        return apply_batch(messages)

    bridge.apply_batch = recording  # type: ignore[method-assign]
    assert _run_until(bridge, consumer, commits=1) is None
    assert consumer.rebalanced
    assert all(stale not in batch for batch in applied)  # the record from before the revoke was dropped
    assert applied[0] == [refetched] and consumer.commits[0] == [(TOPIC, 0, 42)]


def test_a_value_that_cannot_be_stored_is_dead_lettered_and_committed() -> None:
    consumer = ScriptedConsumer(
        FakeMessage(41, value=change("c", 100, after=payment(payment_amount=["not", "a", "number"]))), FakeMessage(42)
    )
    producer = RecordingProducer()
    assert _run_until(_bridge(consumer, producer), consumer, commits=1) is None
    assert len(producer.produced) == 1 and consumer.commits[0] == [(TOPIC, 0, 42)]
    headers = dict(producer.produced[0]["headers"])
    assert (
        headers["ddbridge.error.class"] == b"CodecError"
        and b"column payment_amount" in headers["ddbridge.error.message"]
    )


@pytest.mark.parametrize("bug", [TypeError, KeyError, ValueError, AttributeError])
def test_a_programming_error_stops_the_bridge_with_nothing_committed_or_dead_lettered(bug: type[Exception]) -> None:
    consumer = ScriptedConsumer(FakeMessage(41, value=change("c", 100, after=payment())), FakeMessage(42))
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
    poison = change(
        "c", 100, after=payment(payment_amount=["not", "a", "number"])
    )  # would be dead-lettered in a batch that may commit
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
    bridge._on_assign(consumer, partitions)
    assert bridge.commit_floor == {(TOPIC, 0): 41}
    bridge._on_revoke(consumer, partitions)
    assert bridge.commit_floor == {}
    bridge._on_assign(consumer, partitions)
    bridge._on_lost(consumer, partitions)
    assert bridge.commit_floor == {}


class BatchConsumer(ScriptedConsumer):
    """Hands out ``records`` as one batch (a blocking poll, then a consume of the rest), then nothing."""

    def __init__(self, *records: FakeMessage) -> None:
        super().__init__(records[0], None)
        self.handed_during.set()
        self.rest = list(records[1:])

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[FakeMessage]:
        rest, self.rest = self.rest, []
        return rest


def test_a_batch_is_written_through_the_sink_one_winner_per_item_then_committed() -> None:
    sink = RecordingSink()
    consumer = BatchConsumer(
        FakeMessage(41, value=change("c", 100, after=payment(7))),
        FakeMessage(42, value=change("u", 110, before=payment(7), after=payment(7, payment_amount="99.00"))),
        FakeMessage(43, value=change("c", 105, after=payment(8))),
    )
    assert _run_until(_bridge(consumer, sink=sink), consumer, commits=1) is None
    assert [(a.item["PaymentId"], a.item["PaymentAmount"], a.lsn) for a in sink.written] == [
        ({"N": "7"}, {"N": "99"}, 110),
        ({"N": "8"}, {"N": "12.5"}, 105),
    ]
    assert consumer.commits == [[(TOPIC, 0, 44)]]


def test_a_truncate_is_recorded_and_stops_the_bridge_with_nothing_of_its_batch_written_or_committed() -> None:
    sink, floors = RecordingSink(), MemoryFloors()
    consumer = BatchConsumer(
        FakeMessage(41, value=change("c", 100, after=payment(7))),
        FakeMessage(42, value=change("t", 200)),
    )
    failure = _run_until(_bridge(consumer, sink=sink, floors=floors), consumer, commits=1)
    assert isinstance(failure, TruncateError)
    assert failure.context == {"table": "public.payments", "lsn": 200}
    assert floors.truncates == [("public.payments", 200)]
    assert sink.written == [] and consumer.commits == []


def test_readiness_follows_the_assignment_and_a_stop_or_failure_makes_it_fail() -> None:
    consumer = RebalancingConsumer(FakeMessage(41), FakeMessage(41))
    bridge = _bridge(consumer)
    partitions = [TopicPartition(TOPIC, 0)]
    bridge.health.turned()
    assert not bridge.health.readiness().ok  # nothing assigned yet
    bridge._on_assign(consumer, partitions)
    assert bridge.health.readiness().ok
    bridge._on_revoke(consumer, partitions)
    assert not bridge.health.readiness().ok
    bridge._on_assign(consumer, partitions)
    bridge._on_lost(consumer, partitions)
    assert not bridge.health.readiness().ok
    bridge._on_assign(consumer, partitions)
    bridge.stop()
    assert bridge.health.readiness().reason == "failing: stopping: finishing the last batch"


def test_a_failing_loop_is_not_ready() -> None:
    consumer = BatchConsumer(FakeMessage(41, error=KafkaError(KafkaError.OFFSET_OUT_OF_RANGE)))
    bridge = fake_bridge(consumer)
    bridge.health.assigned(1)
    with pytest.raises(DataGapError):
        bridge.run()
    verdict = bridge.health.readiness()
    assert not verdict.ok and verdict.reason.startswith("failing: DataGapError: data gap:"), verdict


class FlakyPositions(MemoryPositions):
    """A control table that answers the first saves with the given error codes."""

    def __init__(self, *codes: str) -> None:
        super().__init__()
        self.codes = list(codes)

    def save(self, positions: dict[tuple[str, int], int]) -> None:
        if self.codes:
            code = self.codes.pop(0)
            raise ClientError({"Error": {"Code": code, "Message": code}}, "PutItem")
        super().save(positions)


def test_positions_the_control_table_could_not_take_are_kept_for_the_next_save() -> None:
    positions = FlakyPositions("ProvisionedThroughputExceededException")
    bridge = fake_bridge(FakeConsumer(), positions=positions)
    bridge.applied = {(TOPIC, 0): 44}
    bridge.save_positions()  # throttled beyond botocore's retries: the bridge goes on
    assert positions.saved == {}
    bridge.applied[(TOPIC, 1)] = 7
    bridge.save_positions()
    assert positions.saved == {(TOPIC, 0): 44, (TOPIC, 1): 7}


def test_a_malformed_positions_write_is_a_bug_that_stops_the_bridge() -> None:
    bridge = fake_bridge(FakeConsumer(), positions=FlakyPositions("ValidationException"))
    bridge.applied = {(TOPIC, 0): 44}
    with pytest.raises(ClientError):
        bridge.save_positions()


class FlakyCommits(BatchConsumer):
    """A batch whose first commits fail with the given Kafka error codes."""

    def __init__(self, codes: list[int], *records: FakeMessage) -> None:
        super().__init__(*records)
        self.codes = codes

    def commit(self, *, offsets: list[TopicPartition], asynchronous: Literal[False]) -> list[TopicPartition]:
        if self.codes:
            raise KafkaException(KafkaError(self.codes.pop(0)))
        return super().commit(offsets=offsets, asynchronous=asynchronous)


def test_a_commit_refused_while_the_coordinator_is_unreachable_is_retried_until_it_lands() -> None:
    consumer = FlakyCommits(
        [KafkaError._WAIT_COORD, KafkaError.COORDINATOR_NOT_AVAILABLE],
        FakeMessage(41, value=change("c", 100, after=payment(7))),
    )
    assert _run_until(_bridge(consumer), consumer, commits=1) is None
    assert consumer.commits == [[(TOPIC, 0, 42)]] and consumer.codes == []


def test_a_commit_after_the_group_moved_the_partitions_is_dropped_without_stopping_the_bridge() -> None:
    consumer = FlakyCommits([KafkaError.ILLEGAL_GENERATION], FakeMessage(41, value=change("c", 100, after=payment(7))))
    bridge = _bridge(consumer)
    assert _run_until(bridge, consumer, commits=1) is None  # ran until the deadline, never failed
    assert consumer.commits == [] and bridge.applied == {}


def test_a_commit_refused_for_another_reason_stops_the_bridge_with_a_one_line_error() -> None:
    consumer = FlakyCommits(
        [KafkaError.GROUP_AUTHORIZATION_FAILED], FakeMessage(41, value=change("c", 100, after=payment(7)))
    )
    failure = _run_until(_bridge(consumer), consumer, commits=1)
    assert isinstance(failure, TransientError) and "could not commit offsets" in str(failure)
    assert consumer.commits == []
