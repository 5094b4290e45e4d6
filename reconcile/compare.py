"""The full comparison: every source row against every DynamoDB item, matched by item key.

Both sides are read at the same time (PostgreSQL COPY in one snapshot, DynamoDB parallel Scan),
reduced to (item key, content digest) and spilled to partition files by key hash; partitions are
then compared one at a time, so memory stays bounded by ``partition_rows`` whatever the table size.
What differs becomes a *candidate*: it is reported only if it survives the in-flight re-check.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from bridge.codec import CodecError
from bridge.config import Settings
from reconcile.canonical import KeyTexts, bookkeeping_names, content, digest, key_texts
from reconcile.source import SourceTable
from reconcile.spill import Spill, partitions_for
from reconcile.target import scan

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

Kind = Literal["missing", "extra", "different", "unstorable"]


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
    client: DynamoDBClient,
    *,
    workdir: Path | None = None,
    on_progress: Progress = lambda side, n: None,
) -> FullPass:
    """Compare every row with every item; returns counts and candidates."""
    options = settings.reconcile
    book = settings.bookkeeping
    hidden = bookkeeping_names(book)
    key_specs = source.mapper.key_attributes
    started = time.monotonic()
    result = FullPass(limit=options.max_candidates)
    with source.connect() as conn:
        estimate = source.count(conn)
    result.partitions = partitions_for(estimate, options.partition_rows)
    with tempfile.TemporaryDirectory(prefix="ddbridge-reconcile-", dir=workdir) as tmp:
        src = Spill(Path(tmp), "source", result.partitions)
        dst = Spill(Path(tmp), "target", result.partitions)
        lock = threading.Lock()

        def on_record(record: Sequence[Any]) -> None:
            try:
                row = source.row(record)
            except CodecError as exc:
                _unencodable(source, record, exc, src, result)
                return
            try:
                key, item = source.item(row)
            except CodecError as exc:  # a NULL or unusable key column
                result.source_rows += 1
                result.add(Candidate((), "unstorable", source.primary_key(row), str(exc)))
                return
            src.add(key, (key, digest(item), source.primary_key(row), None))
            if src.count % 5000 == 0:
                on_progress("source", 5000)

        def read_source() -> str:
            with source.connect() as conn:
                return source.copy_all(conn, on_record)

        def on_page(items: list[Any]) -> None:
            for item in items:
                key = key_texts(item, key_specs)
                tombstone = book.deleted in item
                dst.add(key, (key, None if tombstone else digest(content(item, hidden))))
            with lock:
                on_progress("target", len(items))

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ddbridge-copy") as pool:
            copying = pool.submit(read_source)
            scan(client, source.mapping.target, options.scan_segments, on_page)
            result.snapshot_lsn = copying.result()
        src.close()
        dst.close()
        on_progress("source", src.count % 5000)
        for index in range(result.partitions):
            _compare_partition(src, dst, index, result)
    result.seconds = time.monotonic() - started
    return result


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


def _compare_partition(src: Spill, dst: Spill, index: int, result: FullPass) -> None:
    expected: dict[KeyTexts, tuple[bytes | None, tuple[str, ...], str | None]] = {}
    for key, dig, pk, reason in src.read(index):
        result.source_rows += 1
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
