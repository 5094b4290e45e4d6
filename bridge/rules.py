"""The write rules of the consistency model (DESIGN "The consistency model"). Pure: no I/O.

- A CDC write (op c/u/d at LSN L) puts the full after-image, or a tombstone for a delete, under
  ``attribute_not_exists(pk) OR _src = "snapshot" OR _lsn < L``; a put also replaces a tombstone of
  the same LSN (``OR (_lsn = L AND attribute_exists(_deleted))``): a delete and a create of one item
  key at one LSN are a primary-key update whose old and new key map to the same item.
- A snapshot write (backfill row, Debezium op r) puts under ``attribute_not_exists(pk) OR
  _src = "snapshot"``: it never overwrites what the stream wrote.
- An update that changes a derived key writes a tombstone for the old key and the new item, both at L.

``accepts`` evaluates the same conditions in memory; property tests check the model against it and
contract tests check DynamoDB's real condition expressions against the model.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from bridge.codec import AttributeValue
from bridge.config import BookkeepingAttributes
from bridge.errors import CodecError, NeedsFullReplicaIdentity
from bridge.events import ChangeEvent
from bridge.mapping import ItemKey, Row, RowMapper

Kind = Literal["cdc", "snapshot"]
SNAPSHOT: Kind = "snapshot"
CDC: Kind = "cdc"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class WriteAction:
    """One conditional PutItem."""

    key: ItemKey
    item: dict[str, AttributeValue]
    kind: Kind
    lsn: int | None
    tombstone: bool = False

    def rank(self) -> tuple[int, int, int]:
        """Order of precedence for one key: CDC beats snapshot; a higher LSN beats a lower one; at one
        LSN a put beats a tombstone (a key rewritten to an equal item key, e.g. numeric 5.00 -> 5,
        arrives as a delete and a create at the same LSN: the create is the row's state)."""
        return (1, self.lsn or 0, 0 if self.tombstone else 1) if self.kind == CDC else (0, 0, 0)


class WriteRules:
    """Turns change events and snapshot rows into write actions for one table mapping."""

    def __init__(self, mapper: RowMapper, book: BookkeepingAttributes, tombstone_grace_s: float) -> None:
        self.mapper = mapper
        self.book = book
        self.grace_s = tombstone_grace_s
        self.derived = mapper.mapping.has_derived_key()
        self.key_columns = mapper.mapping.key_columns()

    # -- building actions ----------------------------------------------------------------------

    def snapshot(self, row: Row) -> WriteAction:
        """A backfill row (or a Debezium read event) as a snapshot write."""
        key, item = self.mapper.item(row)
        item[self.book.source] = {"S": SNAPSHOT}
        return WriteAction(key, item, SNAPSHOT, None)

    def cdc_put(self, row: Row, lsn: int) -> WriteAction:
        """The after-image of a CDC change at ``lsn``."""
        key, item = self.mapper.item(row)
        item[self.book.source] = {"S": CDC}
        item[self.book.lsn] = {"N": str(lsn)}
        return WriteAction(key, item, CDC, lsn)

    def tombstone(self, key: ItemKey, lsn: int, now_s: float) -> WriteAction:
        """A delete marker: key attributes and bookkeeping only, so it drops out of every GSI."""
        item: dict[str, AttributeValue] = key.as_dynamo()
        item[self.book.source] = {"S": CDC}
        item[self.book.lsn] = {"N": str(lsn)}
        item[self.book.deleted] = {"BOOL": True}
        item[self.book.ttl] = {"N": str(int(now_s + self.grace_s))}
        return WriteAction(key, item, CDC, lsn, tombstone=True)

    def _old_key(self, event: ChangeEvent) -> ItemKey:
        before = event.before or {}
        # Debezium sends every column of the old image; without REPLICA IDENTITY FULL the ones outside the
        # replica identity are NULL. A key column is never NULL, so NULL means "not sent".
        missing = [c for c in self.key_columns if before.get(c) is None]
        if missing:
            raise NeedsFullReplicaIdentity(
                f"table {event.table}: a {'delete' if event.op == 'd' else 'update'} at LSN {event.lsn} has no "
                f"old value of {missing}, which the DynamoDB key of {self.mapper.mapping.target} uses; "
                f"set REPLICA IDENTITY FULL on {event.table} (`ddbridge init` does), then restart the bridge — "
                "nothing was committed",
                table=event.table,
                column=", ".join(missing),
                lsn=event.lsn,
            )
        return self.mapper.key(before)

    def for_event(self, event: ChangeEvent, now_s: float) -> list[WriteAction]:
        """The writes one change event needs (empty for events that change nothing here)."""
        if event.op == "r":
            if event.after is None:
                return []
            return [self.snapshot(self._complete(event))]
        if event.op not in ("c", "u", "d"):
            return []
        if event.lsn is None:
            raise CodecError(f"a {event.op!r} event without source.lsn cannot be ordered")
        lsn = event.lsn
        if event.op == "d":
            return [self.tombstone(self._old_key(event), lsn, now_s)]
        put = self.cdc_put(self._complete(event), lsn)
        # A primary-key change arrives as d + c; only a derived key can move an item on update.
        if event.op == "u" and self.derived:
            old = self._old_key(event)
            if old != put.key:
                return [self.tombstone(old, lsn, now_s), put]
        return [put]

    def _complete(self, event: ChangeEvent) -> Row:
        """The after-image with Debezium's TOAST placeholders replaced from the old image."""
        after = event.after or {}
        if not event.unavailable:
            return after
        before = event.before or {}
        missing = sorted(c for c in event.unavailable if c not in before)
        if missing:
            raise CodecError(
                f"unchanged TOASTed value(s) of {missing} were not sent (Debezium placeholder); the table needs "
                "REPLICA IDENTITY FULL so the old image carries them — set it, then re-copy this row "
                "(`ddbridge reconcile --repair`)"
            )
        return {**after, **{c: before[c] for c in event.unavailable}}

    # -- conditions ----------------------------------------------------------------------------

    def condition(self, action: WriteAction) -> dict[str, Any]:
        """ConditionExpression and its names/values for a PutItem of ``action``."""
        names = {"#pk": self.mapper.mapping.partition_key.name, "#src": self.book.source}
        values: dict[str, AttributeValue] = {":snap": {"S": SNAPSHOT}}
        if action.kind == SNAPSHOT:
            expression = "attribute_not_exists(#pk) OR attribute_not_exists(#src) OR #src = :snap"
        else:
            names["#lsn"] = self.book.lsn
            values[":lsn"] = {"N": str(action.lsn)}
            expression = "attribute_not_exists(#pk) OR attribute_not_exists(#src) OR #src = :snap OR #lsn < :lsn"
            if not action.tombstone:  # a put replaces a tombstone of the same LSN (see WriteAction.rank)
                names["#del"] = self.book.deleted
                expression += " OR (#lsn = :lsn AND attribute_exists(#del))"
        return {
            "ConditionExpression": expression,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }

    def unchanged_since(self, observed: dict[str, AttributeValue] | None) -> dict[str, Any]:
        """A condition that holds only while the item is still the version ``observed`` (None: still
        absent), judged by its bookkeeping. The reconciler's repairs use it so that a write the bridge
        made after the observation is never overwritten."""
        names = {"#pk": self.mapper.mapping.partition_key.name}
        if observed is None:
            return {"ConditionExpression": "attribute_not_exists(#pk)", "ExpressionAttributeNames": names}
        names.update({"#src": self.book.source, "#lsn": self.book.lsn})
        values: dict[str, AttributeValue] = {}
        parts = ["attribute_exists(#pk)"]
        for placeholder, name in ((":src", self.book.source), (":lsn", self.book.lsn)):
            attribute = "#" + placeholder[1:]
            if name in observed:
                parts.append(f"{attribute} = {placeholder}")
                values[placeholder] = observed[name]
            else:
                parts.append(f"attribute_not_exists({attribute})")
        condition: dict[str, Any] = {"ConditionExpression": " AND ".join(parts), "ExpressionAttributeNames": names}
        if values:
            condition["ExpressionAttributeValues"] = values
        return condition


def accepts(existing: dict[str, AttributeValue] | None, action: WriteAction, book: BookkeepingAttributes) -> bool:
    """The in-memory model of the write conditions: would DynamoDB accept ``action`` over ``existing``?"""
    if existing is None or book.source not in existing:  # absent, or not written by ddbridge
        return True
    if existing.get(book.source) == {"S": SNAPSHOT}:
        return True
    if action.kind == SNAPSHOT:
        return False
    stored = existing.get(book.lsn)
    if stored is None:
        return False
    if int(stored["N"]) == (action.lsn or 0):
        return not action.tombstone and book.deleted in existing
    return int(stored["N"]) < (action.lsn or 0)


def coalesce(pairs: Iterable[tuple[WriteAction, T]]) -> list[tuple[WriteAction, T]]:
    """Keep, per item key, only the action that would win (the others would be rejected anyway).

    Each action travels with an origin (e.g. its Kafka message). CDC beats snapshot; among CDC the
    highest LSN wins, and at one LSN a put beats a tombstone; on a full tie the later action wins (a
    replayed duplicate carries the same item). Keys keep the order of their first appearance.
    """
    winners: dict[ItemKey, tuple[WriteAction, T]] = {}
    for action, origin in pairs:
        current = winners.get(action.key)
        if current is None or action.rank() >= current[0].rank():
            winners[action.key] = (action, origin)
    return list(winners.values())
