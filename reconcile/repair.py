"""``reconcile --repair``: make confirmed differences right from PostgreSQL, never from the target.

Each differing key's row is re-read from PostgreSQL by primary key and written through the shared
sink, on condition that the item is still the version the re-check saw (so a newer write by the
bridge always wins). The repaired item keeps the ordering the write rules rely on: over an item the
stream wrote at LSN X it is a CDC write at X (older replays stay rejected, newer events apply); over
a snapshot, foreign or absent item it is a snapshot write. A row that no longer exists becomes a
tombstone at the observed LSN (0 when there was none), so no late backfill chunk resurrects it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bridge.config import Settings
from bridge.errors import CodecError
from bridge.mapping import ItemKey, Row
from bridge.rules import WriteAction, WriteRules
from bridge.sink import DynamoSink
from reconcile.canonical import Item, KeyTexts
from reconcile.recheck import Difference
from reconcile.source import SourceTable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

REPAIRABLE = ("missing", "extra", "different")


@dataclass
class RepairResult:
    attempted: int = 0
    repaired: int = 0
    conflicts: int = 0  # the item changed after the re-check: left to the bridge, verified again
    failed: list[str] = field(default_factory=list)


class Repairer:
    """Writes PostgreSQL's current rows over confirmed differences."""

    def __init__(self, settings: Settings, source: SourceTable, client: DynamoDBClient) -> None:
        m = settings.migration
        self.book = settings.bookkeeping
        self.source = source
        self.rules = WriteRules(source.mapper, self.book, m.tombstone_grace_days * 86400)
        self.sink = DynamoSink.for_settings(settings, self.rules, client)

    def repair(self, differences: Sequence[Difference]) -> RepairResult:
        result = RepairResult()
        todo = [d for d in differences if d.kind in REPAIRABLE]
        rows = self._current_rows([d.pk for d in todo if d.pk is not None])
        writes: list[tuple[WriteAction, dict[str, Any]]] = []
        keys: list[KeyTexts] = []
        for diff in todo:
            result.attempted += 1
            try:
                action = self._action(diff, rows.get(diff.key))
            except CodecError as exc:
                result.failed.append(f"{diff.key}: {exc}")
                continue
            writes.append((action, self.rules.unchanged_since(diff.actual)))
            keys.append(diff.key)
        for key, outcome in zip(keys, self.sink.write_conditional(writes), strict=True):  # concurrently
            if outcome.outcome == "applied":
                result.repaired += 1
            elif outcome.outcome == "stale":
                result.conflicts += 1
            else:
                result.failed.append(f"{key}: {outcome.reason}")
        self.sink.close()
        return result

    def _current_rows(self, pks: Sequence[tuple[str, ...]]) -> dict[KeyTexts, Row]:
        with self.source.connect() as conn:
            _, records = self.source.fetch(conn, pks)
        rows: dict[KeyTexts, Row] = {}
        for record in records:
            try:
                row = self.source.row(record)
                rows[self.source.item(row)[0]] = row
            except CodecError:
                continue  # reported as unstorable; nothing to write
        return rows

    def _action(self, diff: Difference, row: Row | None) -> WriteAction:
        observed: Item | None = diff.actual
        observed_lsn = int(observed[self.book.lsn]["N"]) if observed and self.book.lsn in observed else None
        from_stream = observed is not None and observed.get(self.book.source) == {"S": "cdc"}
        if row is None:
            mapper = self.source.mapper
            key = ItemKey(mapper.mapping.target, tuple(zip(mapper.key_names, mapper.key_types, diff.key, strict=True)))
            return self.rules.tombstone(key, observed_lsn or 0, time.time())
        if from_stream and observed_lsn is not None:
            return self.rules.cdc_put(row, observed_lsn)
        return self.rules.snapshot(row)
