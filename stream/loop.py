"""``ddbridge stream``: the Kafka consumer loop that applies Debezium change events to DynamoDB.

Commit protocol (at-least-once, exact by the write rules):

1. Take a batch: wait for one record, then whatever else has arrived, up to ``batch_size``
   (``enable.auto.commit=false``, ``enable.auto.offset.store=false``).
2. Parse every record through the codec; plan write actions; keep, per item key, only the winner.
3. Apply the writes concurrently; while they run, poll about once a second so rebalance callbacks are
   served (records it returns wait for the next batch; no pause: it cost a refetch per batch).
4. Dead letters are checked against the limits, then produced and flushed.
5. Only then are the batch's offsets committed (synchronously). A crash anywhere before 5 replays
   the batch, which the LSN guard makes harmless. On partition revoke, 3-5 are finished first.

Never silently skipped: a partition whose committed offset fell below the log start (retention) is
a data gap and stops the bridge; a truncate stops it unless ``stream.truncate_policy=skip`` or it was
recovered (``ddbridge truncate recover``): then changes below the table's LSN floor are dropped.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from confluent_kafka import OFFSET_INVALID, Consumer, KafkaError, KafkaException, Producer, TopicPartition

from bridge import metrics
from bridge.avro import AvroEnvelopes
from bridge.config import Settings
from bridge.dlq import DeadLetter, DeadLetterProducer, DeadLetterQueue, Record
from bridge.dynamo import make_client, retry_cause
from bridge.errors import DdbridgeError, KafkaAccessError, TerminalError, TransientError
from bridge.events import ChangeEvent, Envelope, json_envelope
from bridge.floors import FloorStore
from bridge.health import Health
from bridge.kafka_config import AccessErrors, access_problem, client_config
from bridge.mapping import RowMapper
from bridge.pgtypes import PgType, TypeRegistry, load_types
from bridge.positions import PositionStore
from bridge.postgres import connect
from bridge.registry import RegistrySchemas
from bridge.rules import WriteRules
from bridge.schemas import Columns, SchemaHistory, compare
from bridge.sink import STOP_GRACE_S, DynamoSink
from bridge.topics import topic_for
from stream.batch import TableRoute, plan_batch
from stream.errors import CommitOrderError, DataGapError, TruncateError
from stream.ports import EventConsumer, Floors, Positions, Schemas

log = logging.getLogger("ddbridge.stream")
# Commit errors while the coordinator is unreachable (retried), and when the group took the partitions
# away meanwhile (the batch is written; whoever owns them now replays it from the last commit).
COMMIT_RETRIABLE = {
    KafkaError._WAIT_COORD,
    KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError._TIMED_OUT,
    KafkaError.REQUEST_TIMED_OUT,
    KafkaError.NETWORK_EXCEPTION,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
}
COMMIT_LOST = {
    KafkaError.REBALANCE_IN_PROGRESS,
    KafkaError.ILLEGAL_GENERATION,
    KafkaError.UNKNOWN_MEMBER_ID,
    KafkaError.FENCED_INSTANCE_ID,
    KafkaError._ASSIGNMENT_LOST,
}


@dataclass
class BatchResult:
    """What applying one batch did."""

    messages: Sequence[Record]
    dead: list[DeadLetter] = field(default_factory=list)
    events: int = 0
    newest_ts_ms: dict[str, int] = field(default_factory=dict)


@dataclass
class Totals:
    consumed: int = 0
    applied: int = 0
    stale: int = 0
    dead: int = 0
    batches: int = 0
    below_floor: int = 0  # changes from before a recovered TRUNCATE, dropped


def consumer_config(settings: Settings, access: AccessErrors | None = None) -> dict[str, Any]:
    """The consumer's librdkafka settings (offsets are stored and committed by the bridge only)."""
    owned = {
        "group.id": settings.kafka.consumer_group,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        # Never jump silently: a missing or out-of-range position is resolved explicitly (on_assign) or stops.
        "auto.offset.reset": "error",
        "partition.assignment.strategy": "range",
        "max.poll.interval.ms": 300_000,
        # A killed member holds its partitions until its session expires: keep that short.
        "session.timeout.ms": settings.stream.session_timeout_ms,
        "heartbeat.interval.ms": max(500, settings.stream.session_timeout_ms // 4),
        "fetch.wait.max.ms": 100,
        "topic.metadata.refresh.interval.ms": 10_000,
        **({"group.instance.id": settings.stream.instance_id} if settings.stream.instance_id else {}),
    }
    return client_config(settings.kafka, "ddbridge-stream", owned, access)


class Bridge:
    """One ``ddbridge stream`` process: a member of the bridge's consumer group."""

    def __init__(
        self,
        settings: Settings,
        routes: Mapping[str, TableRoute],
        *,
        consumer: EventConsumer,
        producer: DeadLetterProducer,
        floor_store: Floors,
        positions: Positions,
        schema_history: Schemas,
        types: TypeRegistry,
        access: AccessErrors | None = None,
        health: Health | None = None,
    ) -> None:
        """A bridge over the given parts (``for_settings`` builds the real ones): ``routes`` maps each
        change topic to its table's mapping, write rules and sink."""
        self.settings = settings
        self.routes = dict(routes)
        self.consumer = consumer
        self.producer = producer
        self.floor_store = floor_store
        self.floors: dict[str, int] | None = None  # loaded when the loop starts (tests may preset them)
        self.positions = positions
        self.applied: dict[tuple[str, int], int] = {}  # committed since the last save of the record
        # Per assigned partition, the offset a commit may not go below: where the assignment resumed,
        # then the last commit. A commit below it would make Kafka replay or skip: refused.
        self.commit_floor: dict[tuple[str, int], int] = {}
        self.schema_history = schema_history
        self.known_schemas: dict[str, tuple[Columns, int]] = {}
        self.types = types
        self.access = access  # what Kafka refused (credentials, TLS, ACLs): stops the loop
        m, s = settings.migration, settings.stream
        self.dlq = DeadLetterQueue(
            producer,
            settings.kafka.dead_letter_topic,
            max_errors=m.max_errors,
            max_ratio=s.max_dlq_ratio,
            window=s.dlq_ratio_window,
        )
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ddbridge-batch")
        self.inflight: tuple[Future[BatchResult], Sequence[Record]] | None = None
        self.carry: list[Record] = []
        self.revocations = 0  # counts revokes and losses: a record taken before one must not be applied
        self.assignment: list[TopicPartition] = []
        self.stopping = threading.Event()
        self.totals = Totals()
        self.failure: BaseException | None = None
        self.health = health or Health(settings.stream.stall_limit_s)  # what /livez and /readyz answer

    @classmethod
    def for_settings(cls, settings: Settings, tables: list[str] | None = None, health: Health | None = None) -> Bridge:
        """The bridge of ``settings`` (all mapped tables, or ``tables``): a Kafka consumer in the group, the
        dead-letter producer, a DynamoDB sink per table and the control table's records."""
        mappings = [settings.mapping(t) for t in tables] if tables else list(settings.tables)
        m = settings.migration
        client = make_client(settings.dynamodb, pool_size=m.write_concurrency + 4, max_attempts=1)
        control = make_client(settings.dynamodb, max_attempts=8)  # the control table: floors, positions, schemas
        table = settings.dynamodb.control_table
        grace_s = m.tombstone_grace_days * 86400
        decode: Callable[[bytes], Envelope] = json_envelope
        if settings.connect.converter == "avro":  # one cache of writer schemas for every table's topic
            decode = AvroEnvelopes(RegistrySchemas(settings.registry))
        routes = {}
        for mapping in mappings:
            rules = WriteRules(RowMapper(mapping), settings.bookkeeping, grace_s)
            routes[topic_for(settings, mapping.source)] = TableRoute(
                mapping,
                rules,
                DynamoSink.for_settings(settings, rules, client, retry_for_s=settings.stream.outage_tolerance_s),
                decode,
            )
        access = AccessErrors(settings.kafka)
        dlq_owned = {"enable.idempotence": True, "acks": "all"}
        producer = Producer(client_config(settings.kafka, "ddbridge-dlq", dlq_owned, access))
        return cls(
            settings,
            routes,
            consumer=Consumer(consumer_config(settings, access)),
            producer=producer,
            floor_store=FloorStore(control, table),
            positions=PositionStore(control, table, settings.kafka.consumer_group),
            schema_history=SchemaHistory(control, table),
            # Built-in type names decode without a database; domains and enums are looked up in the catalog.
            types=TypeRegistry(lambda: _catalog(settings)),
            access=access,
            health=health,
        )

    # -- group membership ------------------------------------------------------------------------

    def _on_assign(self, consumer: EventConsumer, partitions: list[TopicPartition]) -> None:
        """Resolve each partition's start explicitly: Kafka's committed offset, else the bridge's own record
        (Kafka expires committed offsets of a group idle for ``offsets.retention.minutes``), else
        ``start_from`` on the group's first start, else the partition's first offset (a partition added
        later). A start below the log start is a data gap."""
        committed = consumer.committed(partitions, timeout=30)
        recorded = self.positions.load()
        first_start = not recorded
        fresh: dict[tuple[str, int], int] = {}
        for tp in committed:
            if tp.error:
                raise TerminalError(f"cannot read committed offsets of {tp.topic}[{tp.partition}]: {tp.error}")
            low, high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=30)
            key = (tp.topic, tp.partition)
            mine = recorded.get(key)
            if tp.offset != OFFSET_INVALID and tp.offset >= 0:
                resume, origin = tp.offset, "the committed offset"
            elif mine is not None:
                resume, origin = mine, "ddbridge's record of the applied position"
                log.warning(
                    "%s[%d] has no committed offset in Kafka (expired after offsets.retention.minutes?): "
                    "resuming at ddbridge's record, offset %d",
                    tp.topic,
                    tp.partition,
                    mine,
                )
            elif first_start:
                resume = low if self.settings.stream.start_from == "earliest" else high
                origin = f"stream.start_from={self.settings.stream.start_from}"
            else:
                resume, origin = 0, "its first offset (the group never applied this partition)"
            if resume < low:
                raise DataGapError(
                    f"data gap: {tp.topic}[{tp.partition}] resumes at offset {resume} ({origin}) but the log now "
                    f"starts at {low} — {low - resume} change events were deleted by retention before they were "
                    "applied. Re-run the backfill for this table (`ddbridge backfill`), then reset the group's "
                    "offsets to the current end and start the bridge again",
                    topic=tp.topic,
                    partition=tp.partition,
                    offset=resume,
                )
            tp.offset = resume
            self.commit_floor[key] = resume
            if mine is None:
                fresh[key] = resume
        self.positions.save(fresh)  # from now on a lost commit cannot send this partition elsewhere
        self.assignment = list(committed)
        consumer.assign(committed)
        # librdkafka keeps a pause across unassign/assign: a partition paused before a rebalance would be
        # owned and never read again. Nothing pauses today; every assignment starts resumed all the same.
        consumer.resume(committed)
        self.health.assigned(len(self.assignment))
        log.info("assigned %s", ", ".join(f"{t.topic}[{t.partition}]@{t.offset}" for t in committed))

    def _on_revoke(self, consumer: EventConsumer, partitions: list[TopicPartition]) -> None:
        """Finish in-flight writes and commit before the partitions move to another member."""
        self._finish_inflight()
        self.save_positions()
        self.revocations += 1
        revoked = {(p.topic, p.partition) for p in partitions}
        for key in revoked:
            self.commit_floor.pop(key, None)
        self.carry = [m for m in self.carry if (m.topic(), m.partition()) not in revoked]
        self.assignment = [p for p in self.assignment if (p.topic, p.partition) not in revoked]
        self.health.assigned(len(self.assignment))
        consumer.unassign()
        log.info("revoked %d partition(s)", len(partitions))

    def _on_lost(self, consumer: EventConsumer, partitions: list[TopicPartition]) -> None:
        """Partitions lost without a clean revoke: let writes finish, commit nothing (a replay is harmless)."""
        if self.inflight is not None:
            future, _ = self.inflight
            self.inflight = None
            future.result()
        self.carry = []
        self.revocations += 1
        self.assignment = []
        self.health.assigned(0)
        self.commit_floor.clear()
        consumer.unassign()
        log.warning("lost %d partition(s); their uncommitted batch will be replayed by the new owner", len(partitions))

    # -- the batch pipeline ------------------------------------------------------------------------

    def apply_batch(self, messages: Sequence[Record]) -> BatchResult:
        """Plan one batch (``stream.batch.plan_batch``) and write it; returns the dead letters (not yet produced)."""
        plan = plan_batch(
            messages,
            self.routes,
            self.types,
            floors=self.floors or {},
            truncate_policy=self.settings.stream.truncate_policy,
            now_s=time.time(),
        )
        for (source, op), count in plan.consumed.items():
            metrics.EVENTS_CONSUMED.labels(source, op).inc(count)
        for source, event in plan.schemas:
            self._note_schema(source, event)
        if plan.truncate is not None:
            self._stop_at_truncate(*plan.truncate)
        self.totals.below_floor += plan.below_floor
        result = BatchResult(messages, plan.dead, plan.events, plan.newest_ts_ms)
        for topic, winners in plan.writes.items():
            route = self.routes[topic]
            metrics.WRITES_COALESCED.labels(route.mapping.source).inc(plan.coalesced[route.mapping.source])
            results = route.sink.write([a for a, _ in winners])
            for (_, msg), res in zip(winners, results, strict=True):
                if res.outcome == "applied":
                    self.totals.applied += 1
                elif res.outcome == "stale":
                    self.totals.stale += 1
                else:
                    result.dead.append(DeadLetter(msg, route.mapping.source, "ItemRejected", res.reason))
        return result

    def _stop_at_truncate(self, source: str, event: ChangeEvent) -> None:
        """Record the TRUNCATE (``truncate recover`` needs its LSN) and stop with nothing of the batch written."""
        if event.lsn is not None:
            self.floor_store.record_truncate(source, event.lsn)
        raise TruncateError(
            f"table {event.table} was TRUNCATEd (LSN {event.lsn}); the bridge stopped without committing. "
            f"To recover exactly: stop every `ddbridge stream` of group {self.settings.kafka.consumer_group}, "
            f"run `ddbridge truncate recover --table {source}` (it removes what the truncate deleted and sets "
            "an LSN floor below which no change is applied again), then start the bridges again",
            table=source,
            lsn=event.lsn,
        )

    def _note_schema(self, source: str, event: ChangeEvent) -> None:
        """Notice a row schema that differs from the last one applied (a column added, dropped, renamed or
        retyped): log what to do, count it, record it for ``reconcile``. Events from before the change that
        arrive later (other partitions) carry a lower LSN and are not a change."""
        if not event.columns or event.lsn is None or event.op not in ("c", "u", "d"):
            return
        known = self.known_schemas.get(source)
        if known is None:
            known = self.schema_history.current(source)
            if known is None:
                self.schema_history.record(source, event.lsn, event.columns, None)
                self.known_schemas[source] = (event.columns, event.lsn)
                return
            self.known_schemas[source] = known
        columns, since = known
        if event.columns == columns or event.lsn <= since:
            return
        change = compare(source, event.lsn, columns, event.columns)
        log.warning(
            "schema change of %s at LSN %d: %s. Rows the application does not change again keep their old "
            "shape in DynamoDB (ADD COLUMN writes no WAL for existing rows): once the bridge has caught up, run "
            "`ddbridge reconcile --repair --table %s`",
            source,
            event.lsn,
            change.describe(),
            source,
        )
        metrics.SCHEMA_CHANGES.labels(source).inc()
        self.schema_history.record(source, event.lsn, event.columns, change)
        self.known_schemas[source] = (event.columns, event.lsn)

    def _complete(self, result: BatchResult) -> None:
        """Dead letters (within limits) then the offset commit: the last step of a batch. The offsets
        are checked first: a batch whose commit would go backwards sends no dead letters either."""
        offsets: dict[tuple[str, int], int] = {}
        for msg in result.messages:
            key = (msg.topic() or "", msg.partition() or 0)
            offsets[key] = max(offsets.get(key, -1), (msg.offset() or 0) + 1)
        backwards = [(k, o) for k, o in offsets.items() if o < self.commit_floor.get(k, o)]
        if backwards:
            (topic, partition), offset = backwards[0]
            raise CommitOrderError(
                f"refusing to commit offset {offset} of {topic}[{partition}]: offset "
                f"{self.commit_floor[(topic, partition)]} was already resumed from or committed, and a commit "
                "must never go backwards; nothing was committed. This is a bug in ddbridge: restart the bridge "
                "(it resumes at the last commit) and report it with this log",
                topic=topic,
                partition=partition,
                offset=offset,
            )
        self.dlq.admit(result.dead, result.events)
        self.dlq.send(result.dead)
        self.totals.dead += len(result.dead)
        if offsets and self._commit(offsets):
            self.applied.update(offsets)
            self.commit_floor.update(offsets)
        now = time.time()
        for source, ts_ms in result.newest_ts_ms.items():
            metrics.REPLICATION_LAG.labels(source).set(max(0.0, now - ts_ms / 1000))
        metrics.BATCH_SIZE.observe(len(result.messages))
        self.totals.consumed += len(result.messages)
        self.totals.batches += 1

    def _commit(self, offsets: Mapping[tuple[str, int], int]) -> bool:
        """Commit a written batch's offsets. While the group coordinator cannot be reached (a broker
        outage) the commit is retried, polling meanwhile so the consumer stays in its group, for up to
        ``stream.outage_tolerance_s`` (20 s once stopping). False when the group gave the partitions to
        someone else meanwhile: the batch is written, and its replay from the last commit is harmless."""
        parts = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        started = time.monotonic()
        delay, warned = 0.5, float("-inf")
        while True:
            try:
                self.consumer.commit(offsets=parts, asynchronous=False)
                return True
            except KafkaException as exc:
                error = exc.args[0]
                code = error.code() if isinstance(error, KafkaError) else None
                if code in COMMIT_LOST:
                    log.warning("the group moved the partitions during the commit (%s): the batch is written "
                                "and will be replayed harmlessly from the last commit", error.str())  # fmt: skip
                    return False
                waited = time.monotonic() - started
                tolerance = STOP_GRACE_S if self.stopping.is_set() else self.settings.stream.outage_tolerance_s
                if code not in COMMIT_RETRIABLE or waited >= tolerance:
                    raise TransientError(
                        f"Kafka: could not commit offsets for {waited:.0f} s ({error}); the batch is written and is "
                        "replayed harmlessly from the last commit when the bridge restarts; check the brokers"
                    ) from exc
                if time.monotonic() - warned >= 10:
                    warned = time.monotonic()
                    log.warning("Kafka: commit failed (%s) for %.0f s; retrying, nothing is lost", error.str(), waited)
                self._poll_for(delay)
                delay = min(delay * 2, 10.0)

    def _poll_for(self, seconds: float) -> None:
        """Serve the consumer (heartbeats, rebalance callbacks) for ``seconds``, keeping what it hands out."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            msg = self.consumer.poll(min(0.2, max(0.0, deadline - time.monotonic())))
            if msg is not None:
                self.carry.append(msg)

    def _finish_inflight(self) -> None:
        if self.inflight is None:
            return
        future, _ = self.inflight
        self.inflight = None
        self._complete(future.result())

    def _wait_writes(self, future: Future[BatchResult]) -> None:
        """Wait for a batch's writes, polling Kafka about once a second meanwhile so that rebalance
        callbacks are served (a revoke finishes and commits the batch first). Partitions are not paused:
        librdkafka drops a paused partition's prefetched records and backs its fetcher off, which cost
        about 0.6 s per batch; the few records a poll returns meanwhile are carried to the next batch."""
        while not wait([future], timeout=1.0).done:  # returns the moment the writes finish
            msg = self.consumer.poll(0)
            if msg is not None:
                self.carry.append(msg)
            if self.inflight is None:  # a revoke callback finished the batch
                return

    def _check_errors(self, messages: Sequence[Record]) -> list[Record]:
        good = []
        for msg in messages:
            err = msg.error()
            if err is None:
                good.append(msg)
                continue
            code = err.code()
            if code in (KafkaError.OFFSET_OUT_OF_RANGE, KafkaError._AUTO_OFFSET_RESET):
                raise DataGapError(
                    f"data gap: {msg.topic()}[{msg.partition()}]: {err.str()} — change events were deleted before "
                    "they were applied. Re-run the backfill for this table, then restart the bridge",
                    topic=msg.topic(),
                    partition=msg.partition(),
                    offset=msg.offset(),
                )
            if code in (KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART):
                continue
            denied = access_problem(err, self.settings.kafka)
            if denied is not None:
                raise KafkaAccessError(denied)
            if err.fatal():
                raise TerminalError(f"Kafka consumer failed: {err.str()}")
            log.warning("Kafka: %s", err.str())
        return good

    # -- the loop ------------------------------------------------------------------------------------

    def run(self, on_status: Callable[[Bridge], None] | None = None) -> Totals:
        """Consume until ``stop()`` (or SIGTERM/SIGINT via ``install_signal_handlers``)."""
        topics = list(self.routes)
        if self.floors is None:
            self.floors = self.floor_store.floors([r.mapping.source for r in self.routes.values()])
        self.consumer.subscribe(topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost)
        log.info("consuming %s as group %s", ", ".join(topics), self.settings.kafka.consumer_group)
        batch_size = self.settings.migration.batch_size
        last_status = last_saved = 0.0
        try:
            while not self.stopping.is_set():
                self.health.turned()
                if self.access is not None:
                    self.access.check()
                messages = self._check_errors(self.carry + self._fetch(batch_size))
                self.carry = []
                if messages:
                    future = self.worker.submit(self.apply_batch, messages)
                    self.inflight = (future, messages)
                    self._wait_writes(future)
                    self._finish_inflight()
                now = time.monotonic()
                if now - last_saved >= self.settings.stream.status_interval_s:
                    last_saved = now
                    self.save_positions()
                if on_status and now - last_status >= self.settings.stream.status_interval_s:
                    last_status = now
                    self.update_lag()
                    on_status(self)
        except BaseException as exc:
            self.failure = exc
            self.health.failing(f"{type(exc).__name__}: {exc}")
            raise
        finally:
            self.close()
        return self.totals

    def _fetch(self, batch_size: int) -> list[Record]:
        """The next batch: wait (up to ``poll_timeout_s``) for one record, then take whatever else is already
        fetched, up to ``batch_size``. Never waits to fill a batch: under load batches fill by themselves
        while the previous one is written, and a quiet source gets each change applied at once."""
        first = self.consumer.poll(self.settings.stream.poll_timeout_s)
        if first is None:
            return []
        if batch_size == 1:
            return [first]
        revocations = self.revocations
        rest = self.consumer.consume(num_messages=batch_size - 1, timeout=0)
        # A rebalance served inside consume() revoked what ``first`` came from: the new owner (or this
        # member, re-assigned at the committed offset) reads it again. Applying and committing it here
        # would commit past records the revoke dropped from the carry.
        return list(rest) if self.revocations != revocations else [first, *rest]

    def save_positions(self) -> None:
        """Write the offsets committed since the last save to the bridge's own record."""
        if self.applied:
            applied, self.applied = self.applied, {}
            try:
                self.positions.save(applied)
            except (ClientError, BotoCoreError) as exc:
                if isinstance(exc, ClientError) and retry_cause(exc) is None:
                    raise
                # The bridge's own record of its offsets (Kafka holds the commits): kept for the next save.
                log.warning("could not record positions in the control table (%s); will retry", exc)
                self.applied = {**applied, **self.applied}

    def update_lag(self) -> int:
        """Refresh the consumer-lag gauges; returns the total lag of the assigned partitions."""
        total = 0
        try:
            positions = self.consumer.position(self.assignment) if self.assignment else []
        except Exception:
            return -1
        for tp in positions:
            try:
                _low, high = self.consumer.get_watermark_offsets(tp, timeout=2, cached=False)
            except Exception:
                continue
            lag = max(0, high - tp.offset) if tp.offset >= 0 else high
            metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(lag)
            total += lag
        return total

    def stop(self) -> None:
        """Ask the loop to finish the current batch, commit and leave the group."""
        self.health.failing("stopping: finishing the last batch")
        self.stopping.set()
        for route in self.routes.values():
            route.sink.stopping()

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT drain the in-flight batch, commit and exit cleanly."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop())

    def close(self) -> None:
        """Finish and commit what is in flight (unless failing), then leave the group."""
        try:
            if self.inflight is not None and self.failure is None:
                self._finish_inflight()
            self.save_positions()
        except DdbridgeError as exc:
            log.error("could not finish the last batch: %s", exc)
        finally:
            self.inflight = None
            with contextlib.suppress(RuntimeError):
                self.consumer.close()
            try:  # every batch's dead letters were flushed before its commit: nothing here is owed
                self.producer.flush(10)
            except KafkaException as exc:  # e.g. a producer fatally refused (idempotence not allowed)
                log.error("the dead-letter producer failed while closing: %s", exc)
            self.worker.shutdown(wait=True)
            for route in self.routes.values():
                route.sink.close()


def _catalog(settings: Settings) -> dict[int, PgType]:
    with connect(settings) as conn:
        return load_types(conn)
