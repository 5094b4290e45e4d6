"""The full comparison: every source row against every DynamoDB item, matched by item key.

Both sides are read at the same time (PostgreSQL COPY in one snapshot, DynamoDB parallel Scan),
reduced to (item key, content digest) and spilled to partition files by key hash; partitions are
then compared one at a time, so memory stays bounded by ``partition_rows`` whatever the table size.
What differs becomes a *candidate*: it is reported only if it survives the in-flight re-check.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import psycopg
from psycopg import Connection
from psycopg.pq import TransactionStatus

from bridge.config import Settings, TableMapping
from bridge.errors import CodecError, DdbridgeError, TerminalError
from reconcile.canonical import KeyTexts, bookkeeping_names, content, digest, key_texts
from reconcile.source import BlockRange, SourceTable, block_ranges
from reconcile.spill import Spill, partitions_for
from reconcile.target import scan

Kind = Literal["missing", "extra", "different", "unstorable"]
DUPLICATE_HINT = "make the key templates unique (every primary-key column, separators that cannot occur in values)"


@dataclass
class Candidate:
    """A key whose two sides differed in the full pass (maybe only because a change was in flight)."""

    key: KeyTexts
    kind: Kind
    pk: tuple[str, ...] | None = None  # the source row's primary key, when known
    detail: str = ""


@dataclass
class FullPass:
    """Counts of the full comparison, and the candidates to re-check."""

    source_rows: int = 0
    target_live: int = 0
    target_tombstones: int = 0
    matched: int = 0
    tombstones_pending: int = 0  # tombstones of rows PostgreSQL no longer has: purge after the grace
    snapshot_lsn: str = ""
    partitions: int = 1
    seconds: float = 0.0
    candidates: list[Candidate] = field(default_factory=list)
    overflow: int = 0  # candidates beyond reconcile.max_candidates (counted, not kept)
    by_kind: dict[str, int] = field(default_factory=dict)
    limit: int = 100_000  # reconcile.max_candidates

    def add(self, candidate: Candidate) -> None:
        self.by_kind[candidate.kind] = self.by_kind.get(candidate.kind, 0) + 1
        if len(self.candidates) < self.limit:
            self.candidates.append(candidate)
        else:
            self.overflow += 1


Progress = Callable[[str, int], None]


def full_compare(
    settings: Settings,
    source: SourceTable,
    scan_page: Callable[..., Any],
    *,
    workdir: Path | None = None,
    on_progress: Progress = lambda side, n: None,
) -> FullPass:
    """Compare every row with every item (DynamoDB read through ``scan_page``, see ``scan``);
    returns counts and candidates.

    The source side (COPY, codec, digest, spill) runs in ``reconcile.source_readers`` child
    processes, each reading its own range of heap blocks in one snapshot this process exports,
    while this one scans DynamoDB: each side is CPU-bound Python, and processes use cores where
    threads share one.
    """
    options = settings.reconcile
    book = settings.bookkeeping
    hidden = bookkeeping_names(book)
    key_specs = source.mapper.key_attributes
    started = time.monotonic()
    result = FullPass(limit=options.max_candidates)
    with source.connect() as conn:
        estimate = source.count(conn)
    result.partitions = partitions_for(estimate, options.partition_rows)
    with (
        tempfile.TemporaryDirectory(prefix="ddbridge-reconcile-", dir=workdir) as tmp,
        source.connect() as exporter,  # holds the shared snapshot open until every reader imported it
    ):
        snapshot, result.snapshot_lsn, blocks = source.export_snapshot(exporter)
        ranges = block_ranges(blocks, options.source_readers)
        readers = [
            SourceReader(settings, source.mapping, Path(tmp) / f"reader{i}", result.partitions, result.limit)
            for i in range(len(ranges))
        ]
        for reader, block_range in zip(readers, ranges, strict=True):
            reader.start(snapshot, block_range)
        done = threading.Event()
        releaser = threading.Thread(
            target=release_snapshot, args=(exporter, readers, done), name="ddbridge-release-snapshot", daemon=True
        )
        releaser.start()
        dst = Spill(Path(tmp), "target", result.partitions)
        lock = threading.Lock()

        def report() -> None:
            for reader in readers:
                reader.report(on_progress)

        def on_page(items: list[Any]) -> None:
            for item in items:
                key = key_texts(item, key_specs)
                tombstone = book.deleted in item
                dst.add(key, (key, None if tombstone else digest(content(item, hidden))))
            with lock:
                on_progress("target", len(items))
                report()

        try:
            scan(scan_page, source.mapping.target, options.scan_segments, on_page)
            dst.close()
            sides = [reader.finish(report) for reader in readers]
        finally:
            done.set()
            releaser.join()
            for reader in readers:
                reader.stop()
        if exporter.info.transaction_status != TransactionStatus.IDLE:
            exporter.execute("ROLLBACK")
        for side in sides:
            result.source_rows += side.source_rows
            result.overflow += side.overflow
            for candidate in side.candidates:
                result.add(candidate)
        srcs = [Spill.existing(reader.directory, "source", result.partitions) for reader in readers]
        for index in range(result.partitions):
            _compare_partition(srcs, dst, index, result)
    result.seconds = time.monotonic() - started
    return result


def release_snapshot(exporter: Connection, readers: Sequence[SourceReader], done: threading.Event) -> None:
    """End the exporting transaction as soon as every reader has imported its snapshot: from then on
    only the readers' own transactions hold back vacuum, not this one for the whole full pass. Gives
    up, leaving it to the caller, when a reader dies first or ``done`` is set."""
    for reader in readers:
        while not reader.imported.wait(0.1):
            if done.is_set() or not reader.process.is_alive():
                return
    with contextlib.suppress(psycopg.Error):  # a broken exporter no longer matters: the readers hold it
        exporter.execute("ROLLBACK")


@dataclass
class SourceSide:
    """What a source reader hands back besides its spill files."""

    source_rows: int = 0  # rows whose key could not even be encoded (not spilled)
    candidates: list[Candidate] = field(default_factory=list)
    overflow: int = 0
    error: str | None = None


class SourceReader:
    """Part of the source side of the full pass in a child process (spawned: no fork of a threaded
    parent), spilling into its own ``directory``."""

    def __init__(self, settings: Settings, mapping: TableMapping, directory: Path, partitions: int, limit: int):
        self.table = mapping.source
        self.directory = directory
        directory.mkdir()
        self.context = multiprocessing.get_context("spawn")
        self.rows = self.context.Value("q", 0, lock=False)
        self.imported = self.context.Event()  # set once the child imported the exported snapshot
        self.results = self.context.Queue()
        self.reported = 0
        self.args = (settings, mapping, directory, partitions, limit, self.rows, self.results)
        self.process: Any = None

    def start(self, snapshot: str | None, blocks: BlockRange = (0, None)) -> None:
        """Read ``blocks`` of the table in ``snapshot`` (an exported one; None: a new snapshot)."""
        self.process = self.context.Process(
            target=_read_source,
            args=(*self.args, self.imported, snapshot, blocks),
            name="ddbridge-reconcile-source",
            daemon=True,
        )
        self.process.start()

    def report(self, on_progress: Progress) -> None:
        """Pass on the rows read since the last report."""
        rows = int(self.rows.value)
        if rows > self.reported:
            on_progress("source", rows - self.reported)
            self.reported = rows

    def finish(self, report: Callable[[], None]) -> SourceSide:
        """Wait for the child, calling ``report`` meanwhile; raises what it failed with."""
        while True:
            try:
                side: SourceSide = self.results.get(timeout=0.2)
                break
            except queue.Empty:
                report()
                if not self.process.is_alive() and self.results.empty():
                    raise TerminalError(
                        f"the reconcile's source reader died (exit code {self.process.exitcode}); see its output above"
                    ) from None
        self.process.join()
        report()
        if side.error is not None:
            raise TerminalError(f"reading {self.table} for the comparison failed: {side.error}")
        return side

    def stop(self) -> None:
        if self.process is not None and self.process.is_alive():
            self.process.terminate()
            self.process.join(10)


def _read_source(
    settings: Settings,
    mapping: TableMapping,
    directory: Path,
    partitions: int,
    limit: int,
    rows: Any,
    results: Any,
    imported: Any,
    snapshot: str | None,
    blocks: BlockRange,
) -> None:
    """The child: COPY its rows in the shared snapshot, encode, digest and spill them by key partition."""
    side = SourceSide()
    try:
        source = SourceTable(settings, mapping)
        src = Spill(directory, "source", partitions)
        part = FullPass(limit=limit)

        def on_record(record: Sequence[Any]) -> None:
            try:
                row = source.row(record)
            except CodecError as exc:
                _unencodable(source, record, exc, src, part)
                return
            try:
                key, item = source.item(row)
            except CodecError as exc:  # a NULL or unusable key column
                part.source_rows += 1
                part.add(Candidate((), "unstorable", source.primary_key(row), str(exc)))
                return
            src.add(key, (key, digest(item), source.primary_key(row), None))
            if src.count % 1000 == 0:
                rows.value = src.count

        with source.connect() as conn:
            source.copy_all(conn, on_record, snapshot=snapshot, blocks=blocks, on_snapshot=imported.set)
        src.close()
        rows.value = src.count + part.source_rows
        side.source_rows, side.candidates, side.overflow = part.source_rows, part.candidates, part.overflow
    except BaseException as exc:  # handed to the parent, which raises it
        side.error = str(exc) if isinstance(exc, DdbridgeError) else f"{type(exc).__name__}: {exc}"
    results.put(side)


def _unencodable(source: SourceTable, record: Sequence[Any], exc: CodecError, src: Spill, result: FullPass) -> None:
    """A row the codec refuses: spilled with its reason, so DynamoDB's item for its key is matched to it."""
    try:
        key, pk = source.key_only(record)
    except CodecError:  # not even the key can be encoded (e.g. a NULL key column)
        result.source_rows += 1
        pk = tuple(str(v) for c, v in zip(source.columns, record, strict=True) if c in source.mapping.primary_key)
        result.add(Candidate((), "unstorable", pk, str(exc)))
        return
    src.add(key, (key, None, pk, str(exc)))


def _compare_partition(srcs: Sequence[Spill], dst: Spill, index: int, result: FullPass) -> None:
    expected: dict[KeyTexts, tuple[bytes | None, tuple[str, ...], str | None]] = {}
    for src in srcs:
        for key, dig, pk, reason in src.read(index):
            result.source_rows += 1
            first = expected.get(key)
            if first is not None:  # two rows, one item: whichever was written last hid the other
                shared = f"rows ({', '.join(first[1])}) and ({', '.join(pk)}) map to one item key: {DUPLICATE_HINT}"
                result.add(Candidate(key, "unstorable", pk, shared))
                expected[key] = (first[0], first[1], shared)
                continue
            expected[key] = (dig, pk, reason)
    for key, dig in dst.read(index):
        entry = expected.pop(key, None)
        if dig is None:
            result.target_tombstones += 1
            if entry is None:
                result.tombstones_pending += 1
            elif entry[2] is not None:
                result.add(Candidate(key, "unstorable", entry[1], entry[2]))
            else:
                result.add(Candidate(key, "missing", entry[1], "DynamoDB holds a tombstone (deleted)"))
            continue
        result.target_live += 1
        if entry is None:
            result.add(Candidate(key, "extra"))
        elif entry[2] is not None:
            result.add(Candidate(key, "unstorable", entry[1], entry[2]))
        elif entry[0] == dig:
            result.matched += 1
        else:
            result.add(Candidate(key, "different", entry[1]))
    for key, (_, pk, reason) in expected.items():
        if reason is not None:
            result.add(Candidate(key, "unstorable", pk, reason))
        else:
            result.add(Candidate(key, "missing", pk))
