"""``ddbridge backfill`` / ``resume``: copy the history through the shared sink as snapshot writes.

Each range of the plan is read in primary-key order with keyset pagination (``WHERE key > last
ORDER BY key LIMIT n``: never OFFSET), one short autocommit query per chunk (no long-running
snapshot), mapped by the shared codec and written as snapshot puts, which never overwrite what the
stream wrote. A range's checkpoint (last key copied, counters) is saved every
``progress_save_interval`` chunks and on every stop; a resumed range continues right after its last
checkpointed key, and rows re-written after that point are harmless by the write rules.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from psycopg import sql

from backfill.checkpoints import MigrationStore, RangeCheckpoint, now_iso
from backfill.errors import BackfillFailed
from backfill.plan import Plan, compute_boundaries, fingerprint, greatest_key
from bridge import metrics, pgrows
from bridge.config import Settings, TableMapping
from bridge.dynamo import make_client
from bridge.errors import CodecError, ConfigError, TerminalError
from bridge.keyset import KeyColumn, date_filter, range_condition, row_key
from bridge.mapping import RowMapper
from bridge.pacing import WritePacer
from bridge.postgres import connect, key_columns, slot_state
from bridge.rules import WriteAction, WriteRules
from bridge.sink import DynamoSink
from bridge.tables import write_capacity
from connectors.debezium import ConnectClient

log = logging.getLogger("ddbridge.backfill")


@dataclass
class BackfillOptions:
    """What the user asked for (CLI flags)."""

    table: str | None = None
    start_date: date | None = None
    end_date: date | None = None
    workers: int = 4
    segments: int = 1
    segment: int = 0
    ranges_per_segment: int = 16
    migration_id: str | None = None
    max_errors: int | None = None
    detailed_errors: bool = False
    require_stream: bool = True
    force: bool = False
    errors_file: Path | None = None
    resume_only: bool = False


@dataclass
class Summary:
    """The outcome of one backfill process."""

    migration_id: str
    status: str
    rows_read: int = 0
    rows_written: int = 0
    rows_stale: int = 0
    rows_failed: int = 0
    seconds: float = 0.0
    errors_file: str | None = None
    errors: list[str] = field(default_factory=list)
    failure: str | None = None

    @property
    def rate(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0


def new_migration_id() -> str:
    """``migration-YYYYMMDD-HHMMSS`` (UTC), like the original guide."""
    return datetime.now(UTC).strftime("migration-%Y%m%d-%H%M%S")


def check_stream_first(settings: Settings) -> str | None:
    """Refuse unless the connector is RUNNING and its slot active; returns the slot's position."""
    why = (
        "the stream must be capturing before history is copied: a change made while a chunk is being copied is "
        "only guaranteed to reach DynamoDB if the replication slot already existed. Run `ddbridge init` and "
        "`ddbridge stream`, or pass --no-stream for an offline copy of a source nobody writes to"
    )
    status = ConnectClient(settings.connect).status(settings.connect.connector_name)
    if status is None or not status.running:
        state = "not registered" if status is None else f"{status.state}, tasks {[t['state'] for t in status.tasks]}"
        raise TerminalError(f"connector {settings.connect.connector_name} is {state}; {why}")
    slot = slot_state(settings)
    if slot is None or not slot.active:
        raise TerminalError(f"replication slot {settings.connect.slot_name} is not active; {why}")
    return slot.confirmed_flush_lsn


class ErrorLog:
    """Bad rows, one JSON line each (key, column, reason), plus a bounded in-memory sample."""

    def __init__(self, path: Path, migration_id: str, table: str, keep: int = 20) -> None:
        self.path = path
        self.migration_id = migration_id
        self.table = table
        self.keep = keep
        self.sample: list[str] = []
        self.count = 0
        self.lock = threading.Lock()

    def record(self, key: dict[str, str], column: str | None, reason: str) -> None:
        line = {
            "migration": self.migration_id,
            "table": self.table,
            "key": key,
            "column": column,
            "reason": reason,
            "at": now_iso(),
        }
        with self.lock:
            self.count += 1
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(line) + "\n")
            if len(self.sample) < self.keep:
                self.sample.append(f"{self.table} key {key}: {reason}")


class Backfill:
    """One backfill process: the ranges of one segment, copied by a pool of workers."""

    def __init__(
        self, settings: Settings, options: BackfillOptions, on_progress: Callable[[int], None] = lambda _: None
    ) -> None:
        if not 0 <= options.segment < options.segments:
            raise ConfigError(
                f"--segment must be between 0 and {options.segments - 1} (with --segments {options.segments})"
            )
        if options.start_date and options.end_date and options.start_date > options.end_date:
            raise ConfigError("--start-date is after --end-date")
        self.settings = settings
        self.options = options
        self.mapping: TableMapping = settings.mapping(options.table)
        self.on_progress = on_progress
        m = settings.migration
        self.max_errors = m.max_errors if options.max_errors is None else options.max_errors
        self.client = make_client(settings.dynamodb, pool_size=m.write_concurrency + 4, max_attempts=1)
        # The plan and the checkpoints: retried by botocore (a checkpoint write may be repeated, and a
        # lost answer, a 500 or a throttle must not stop the copy).
        self.control = make_client(settings.dynamodb, max_attempts=8)
        self.rules = WriteRules(RowMapper(self.mapping), settings.bookkeeping, m.tombstone_grace_days * 86400)
        self.pacer = self._pacer()
        self.sink = DynamoSink.for_settings(settings, self.rules, self.client, self.pacer)
        self.stop_event = threading.Event()
        self.failure: BaseException | None = None
        self.lock = threading.Lock()
        self.owner = f"{socket.gethostname()}:{os.getpid()}"

    def _pacer(self) -> WritePacer | None:
        """The write budget asked for: ``max_write_units_per_s``, or ``target_utilization`` of the
        target's write capacity (DescribeTable); None without either."""
        m = self.settings.migration
        if m.max_write_units_per_s is not None:
            budget = m.max_write_units_per_s
            log.info("write budget: %.0f table write units a second", budget)
            return WritePacer(budget)
        if m.target_utilization is None:
            return None
        try:
            table = self.control.describe_table(TableName=self.mapping.target)["Table"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            raise ConfigError(
                f"DynamoDB table {self.mapping.target} does not exist: run `ddbridge init` first"
            ) from exc
        capacity, source = write_capacity(table)
        budget = m.target_utilization * capacity
        log.info(
            "write budget: %.0f table write units a second (%.0f%% of the %s, %.0f)",
            budget,
            m.target_utilization * 100,
            source,
            capacity,
        )
        return WritePacer(budget)

    # -- preparation ---------------------------------------------------------------------------

    def prepare(self) -> tuple[Plan, MigrationStore, dict[int, RangeCheckpoint]]:
        """Check the preconditions, create or join the migration's plan, load its checkpoints."""
        o = self.options
        with connect(self.settings) as conn:  # refused column types stop the copy before anything is planned
            pgrows.copied_columns(conn, self.mapping.schema_name, self.mapping.table_name, self.mapping.exclude_columns)
        position = check_stream_first(self.settings) if o.require_stream else None
        migration_id = o.migration_id or new_migration_id()
        store = MigrationStore(self.control, self.settings.dynamodb.control_table, migration_id)
        existing = store.load_plan()
        if existing is None and o.resume_only:
            store.require_plan()
        if existing is not None:
            plan = existing
            self._check_compatible(plan)
        else:
            ours = self._new_plan(migration_id, position)
            plan = store.create_plan(ours)
            if plan is not ours:
                self._check_compatible(plan)  # another process created it first
        return plan, store, store.load_ranges()

    def _check_compatible(self, plan: Plan) -> None:
        o = self.options
        if plan.source != self.mapping.source:
            raise ConfigError(f"migration {plan.migration_id} copies {plan.source}, not {self.mapping.source}")
        if o.segments != plan.segments:
            raise ConfigError(f"migration {plan.migration_id} was planned with --segments {plan.segments}")
        if o.resume_only:  # the plan's date range is authoritative on resume
            o.start_date = date.fromisoformat(plan.start_date) if plan.start_date else None
            o.end_date = date.fromisoformat(plan.end_date) if plan.end_date else None
        now = fingerprint(self.mapping, o.start_date, o.end_date, plan.segments)
        if now != plan.fingerprint and not o.force:
            raise ConfigError(
                f"migration {plan.migration_id} was started with another configuration (mapping or date range "
                f"changed: fingerprint {plan.fingerprint}, now {now}); resuming could leave rows copied under two "
                "different mappings. Start a new migration, or pass --force if you know the change is harmless"
            )

    def _new_plan(self, migration_id: str, position: str | None) -> Plan:
        o = self.options
        with connect(self.settings) as conn:
            pgrows.configure(conn)  # boundaries are key text, read back by the copy's session: same output settings
            columns = key_columns(conn, self.mapping)
            last_key = greatest_key(conn, self.mapping, columns)  # before the cuts: they all lie below it
            boundaries = compute_boundaries(conn, self.mapping, columns, o.segments * o.ranges_per_segment)
            plan = Plan(
                migration_id=migration_id,
                source=self.mapping.source,
                target=self.mapping.target,
                key_columns=columns,
                boundaries=boundaries,
                segments=o.segments,
                start_date=o.start_date.isoformat() if o.start_date else None,
                end_date=o.end_date.isoformat() if o.end_date else None,
                fingerprint=fingerprint(self.mapping, o.start_date, o.end_date, o.segments),
                created_at=datetime.now(UTC).isoformat(timespec="microseconds"),
                stream_position=position,
                last_key=last_key,
                bounded=True,
            )
            plan.range_rows = [self._count(conn, plan, r) for r in range(plan.range_count)]
            plan.total_rows = sum(plan.range_rows)
        return plan

    def _where(self, plan: Plan, index: int, after: list[str] | None) -> tuple[sql.Composable, list[Any]]:
        lower, upper = plan.bounds(index)
        if plan.empty_at_plan():
            return sql.SQL("FALSE"), []
        keys, params = range_condition(plan.key_columns, lower, upper, after, plan.last_of(index))
        dates, date_params = date_filter(self.mapping, self._start(plan), self._end(plan))
        return sql.Composed([keys, dates]), params + date_params

    @staticmethod
    def _start(plan: Plan) -> date | None:
        return date.fromisoformat(plan.start_date) if plan.start_date else None

    @staticmethod
    def _end(plan: Plan) -> date | None:
        return date.fromisoformat(plan.end_date) if plan.end_date else None

    def _count(self, conn: Any, plan: Plan, index: int) -> int:
        where, params = self._where(plan, index, None)
        table = sql.Identifier(self.mapping.schema_name, self.mapping.table_name)
        row = conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE {}").format(table, where), params).fetchone()
        return int(row[0]) if row else 0

    # -- copying ---------------------------------------------------------------------------------

    def run(
        self, plan: Plan, store: MigrationStore, checkpoints: dict[int, RangeCheckpoint], errors: ErrorLog
    ) -> Summary:
        """Copy this segment's unfinished ranges; returns the summary (status Completed/Stopped/Failed)."""
        started = time.monotonic()
        mine = plan.ranges_of(self.options.segment)
        todo = [checkpoints.get(r) or RangeCheckpoint(r) for r in mine]
        todo = [cp for cp in todo if not cp.done]
        self.errors = errors
        workers = max(1, min(self.options.workers, len(todo) or 1))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ddbridge-backfill") as pool:
            futures = [pool.submit(self._copy_range, plan, store, cp) for cp in todo]
            for future in futures:
                try:
                    future.result()
                except BaseException as exc:
                    if self.failure is None:
                        self.failure = exc
                    self.stop_event.set()
        self.sink.close()
        final = store.load_ranges()
        mine_cps = [final.get(r) or RangeCheckpoint(r) for r in mine]
        if self.failure is not None:
            status = "Failed"
        elif all(cp.done for cp in mine_cps):
            status = "Completed"
        else:
            status = "Stopped"
        summary = Summary(
            migration_id=plan.migration_id,
            status=status,
            rows_read=sum(cp.rows_read for cp in mine_cps),
            rows_written=sum(cp.rows_written for cp in mine_cps),
            rows_stale=sum(cp.rows_stale for cp in mine_cps),
            rows_failed=sum(cp.rows_failed for cp in mine_cps),
            seconds=time.monotonic() - started,
            errors_file=str(errors.path) if errors.count else None,
            errors=list(errors.sample),
            failure=str(self.failure) if self.failure is not None else None,
        )
        if self.failure is not None and not isinstance(self.failure, BackfillFailed):
            raise self.failure
        return summary

    def _copy_range(self, plan: Plan, store: MigrationStore, cp: RangeCheckpoint) -> None:
        cp.status = "InProgress"
        cp.started_at = cp.started_at or now_iso()
        cp.owner = self.owner
        store.save(cp)
        save_every = self.settings.migration.progress_save_interval
        batch = self.settings.migration.batch_size
        table = sql.Identifier(self.mapping.schema_name, self.mapping.table_name)
        try:
            with connect(self.settings) as conn:
                pgrows.configure(conn)
                m = self.mapping
                read = pgrows.copied_columns(conn, m.schema_name, m.table_name, m.exclude_columns)
                columns = [c.name for c in read]
                type_list = pgrows.codec_types(read)
                keys = [
                    sql.SQL("{}::text AS {}").format(sql.Identifier(k.name), sql.Identifier(f"__ddbridge_key{i}"))
                    for i, k in enumerate(plan.key_columns)
                ]
                select = sql.SQL(", ").join([pgrows.select_list(read), *keys])
                rows = pgrows.text_cursor(conn)
                while not self.stop_event.is_set():
                    where, params = self._where(plan, cp.index, cp.last_key)
                    query = sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY {} LIMIT {}").format(
                        select, table, where, row_key(plan.key_columns), sql.Literal(batch)
                    )
                    records = rows.execute(query, params).fetchall()
                    if not records:
                        cp.status = "Completed"
                        break
                    self._write_chunk(plan.key_columns, columns, type_list, records, cp)
                    cp.last_key = [str(v) for v in records[-1][len(columns) :]]
                    cp.seq += 1
                    self.on_progress(len(records))
                    if cp.seq % save_every == 0:
                        store.save(cp)
                    if self.errors.count > self.max_errors:
                        raise BackfillFailed(
                            f"{self.errors.count} rows could not be copied, more than max_errors={self.max_errors}; "
                            f"see {self.errors.path} (key, column and reason of each)"
                        )
                else:
                    cp.status = "Stopped"
        except BaseException:
            cp.status = "Failed"
            store.save(cp)
            raise
        store.save(cp)

    def _write_chunk(
        self,
        keys: list[KeyColumn],
        columns: list[str],
        types: list[str],
        records: list[tuple[Any, ...]],
        cp: RangeCheckpoint,
    ) -> None:
        actions: list[WriteAction] = []
        n = len(columns)
        outcomes = {"written": 0, "stale": 0, "failed": 0}
        decode = pgrows.RowDecoder(columns, types)
        for record in records:
            try:
                actions.append(self.rules.snapshot(decode(record[:n])))
            except CodecError as exc:
                key = {k.name: str(v) for k, v in zip(keys, record[n:], strict=True)}
                self.errors.record(key, exc.column, str(exc))
                outcomes["failed"] += 1
        for result in self.sink.write(actions):
            if result.outcome == "applied":
                outcomes["written"] += 1
            elif result.outcome == "stale":
                outcomes["stale"] += 1
            else:
                key = {name: text for name, _, text in result.action.key.parts}
                self.errors.record(key, None, result.reason)
                outcomes["failed"] += 1
        cp.rows_written += outcomes["written"]
        cp.rows_stale += outcomes["stale"]
        cp.rows_failed += outcomes["failed"]
        cp.rows_read += len(records)
        for outcome, count in outcomes.items():
            metrics.BACKFILL_ROWS.labels(self.mapping.source, outcome).inc(count)

    def install_signal_handlers(self) -> None:
        """SIGINT/SIGTERM: finish the current chunks, checkpoint, mark Stopped."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.stop_event.set())
