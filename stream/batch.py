"""Planning one batch of Kafka records, as a pure function: parse each record, turn it into write
actions by the table's write rules, and keep per item key only the action that would win. Nothing
here writes, commits, counts metrics or reads a store; the loop (``stream.loop``) does that with the
plan. A data error (``CodecError``) dead-letters its record; any other exception escapes, so a bug
stops the bridge before anything of the batch is written or committed."""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from bridge.config import TableMapping
from bridge.dlq import DeadLetter, Record
from bridge.errors import CodecError
from bridge.events import ChangeEvent, Envelope, json_envelope, parse_envelope
from bridge.pgtypes import TypeRegistry
from bridge.rules import WriteAction, WriteRules, coalesce
from bridge.sink import oversize_reason
from stream.ports import Sink

log = logging.getLogger("ddbridge.stream")


@dataclass
class TableRoute:
    """Everything needed to apply one topic's events."""

    mapping: TableMapping
    rules: WriteRules
    sink: Sink
    decode: Callable[[bytes], Envelope] = json_envelope  # a record value to its envelope (JSON or Avro)

    @functools.cached_property
    def excluded(self) -> frozenset[str]:
        return frozenset(self.mapping.exclude_columns)


@dataclass
class BatchPlan:
    """What one batch asks for. ``writes`` holds, per topic, one winning action per item key with the
    record it came from; ``truncate`` is the first TRUNCATE that must stop the bridge (nothing after it
    was planned, and nothing of the batch may be written)."""

    writes: dict[str, list[tuple[WriteAction, Record]]] = field(default_factory=dict)
    dead: list[DeadLetter] = field(default_factory=list)
    events: int = 0  # records that carried a change event (Kafka tombstones do not)
    consumed: Counter[tuple[str, str]] = field(default_factory=Counter)  # (table, op or "tombstone")
    coalesced: Counter[str] = field(default_factory=Counter)  # per table, actions a later one superseded
    below_floor: int = 0  # actions from before a recovered TRUNCATE, dropped
    newest_ts_ms: dict[str, int] = field(default_factory=dict)
    schemas: list[tuple[str, ChangeEvent]] = field(default_factory=list)  # planned events, in order
    truncate: tuple[str, ChangeEvent] | None = None  # (table, its TRUNCATE event)


def plan_batch(
    records: Sequence[Record],
    routes: Mapping[str, TableRoute],
    types: TypeRegistry,
    *,
    floors: Mapping[str, int],
    truncate_policy: Literal["stop", "skip"],
    now_s: float,
) -> BatchPlan:
    """The plan of one batch. ``floors`` are the tables' LSN floors (changes at or below a recovered
    TRUNCATE are dropped); ``truncate_policy`` says whether a new TRUNCATE stops the bridge or is skipped."""
    plan = BatchPlan()
    pairs: dict[str, list[tuple[WriteAction, Record]]] = {}
    for record in records:
        topic = record.topic() or ""
        route = routes.get(topic)
        if route is None:
            continue
        source = route.mapping.source
        value = record.value()
        if value is None:  # the Kafka tombstone after a delete (log compaction): nothing to apply
            plan.consumed[(source, "tombstone")] += 1
            continue
        plan.events += 1
        try:
            event = parse_envelope(route.decode(value), types, route.excluded)
            plan.consumed[(source, event.op)] += 1
            actions = _actions(route, event, floors.get(source, 0), truncate_policy, now_s, plan)
        except CodecError as exc:  # the one data error
            plan.dead.append(DeadLetter(record, source, type(exc).__name__, str(exc)))
            continue
        if plan.truncate is not None:
            break
        plan.schemas.append((source, event))
        too_big = next(filter(None, map(oversize_reason, actions)), None)
        if too_big:  # rejected before coalescing, so older versions of the item in the batch still apply
            plan.dead.append(DeadLetter(record, source, "ItemRejected", too_big))
            continue
        if event.ts_ms:
            plan.newest_ts_ms[source] = max(plan.newest_ts_ms.get(source, 0), event.ts_ms)
        pairs.setdefault(topic, []).extend((a, record) for a in actions)
    for topic, planned in pairs.items():
        winners = coalesce(planned)
        plan.coalesced[routes[topic].mapping.source] += len(planned) - len(winners)
        plan.writes[topic] = winners
    return plan


def _actions(
    route: TableRoute,
    event: ChangeEvent,
    floor: int,
    truncate_policy: Literal["stop", "skip"],
    now_s: float,
    plan: BatchPlan,
) -> list[WriteAction]:
    """The write actions of one event; a TRUNCATE that must stop the bridge is noted in ``plan``."""
    if event.op == "t":
        if event.lsn is not None and event.lsn <= floor:
            log.info("TRUNCATE of %s at LSN %s was recovered (floor %s): passed", event.table, event.lsn, floor)
        elif truncate_policy == "skip":
            log.warning("TRUNCATE of %s at LSN %s skipped (stream.truncate_policy=skip)", event.table, event.lsn)
        else:
            plan.truncate = (route.mapping.source, event)
        return []
    actions = route.rules.for_event(event, now_s)
    if floor and actions and (event.lsn or 0) < floor:  # a change from before a recovered TRUNCATE
        plan.below_floor += len(actions)
        return []
    return actions
