"""A model of the consistency argument of DESIGN "The consistency model", shared by tests.

A *scenario* is a PostgreSQL history over a few rows plus what the migration saw of it: the CDC
stream (changes from the stream's start on) and backfill/Debezium snapshot reads taken at or after
that start. A *delivery* is one arbitrary way those messages reach the writers: duplicated, reordered,
replayed after a crash, split into consumer batches. Applying a delivery to an in-memory store through
``bridge.rules.accepts`` must always end with the items of the final PostgreSQL state.

The property tests (tests/unit/test_write_rules_properties.py) use the model alone; contract tests
replay the same scenarios against real DynamoDB servers and compare with :func:`apply_model`.
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from hypothesis import strategies as st

from bridge.codec import AttributeValue
from bridge.config import BookkeepingAttributes, KeyAttribute, TableMapping
from bridge.events import ChangeEvent
from bridge.mapping import ItemKey, Row, RowMapper
from bridge.rules import WriteAction, WriteRules, accepts, coalesce

Item: TypeAlias = dict[str, AttributeValue]
Store: TypeAlias = dict[ItemKey, Item]

SOURCE = "public.items"
TARGET = "Items"
IDS = (1, 2, 3, 4)
GROUPS = (1, 2)
DATES = ("2024-01-01", "2024-01-02")
VALUES = (0, 1, 2)
NOTES = (None, "a", "b")
NOW_S = 1_700_000_000.0
GRACE_S = 7 * 24 * 3600.0
BOOK = BookkeepingAttributes()

DERIVED = TableMapping(
    source=SOURCE,
    target=TARGET,
    primary_key=["id"],
    partition_key=KeyAttribute(name="Grp", template="{grp}", type="N"),
    sort_key=KeyAttribute(name="DateId", template="{d}#{id}", type="S"),
)
"""Item key from non-PK columns ``grp`` and ``d``: an UPDATE of them moves the item."""

PLAIN = TableMapping(
    source=SOURCE,
    target=TARGET,
    primary_key=["id"],
    partition_key=KeyAttribute(name="Id", template="{id}", type="N"),
)
"""Item key = the primary key: only a PK change (Debezium d + c) moves a row."""

MAPPINGS: dict[str, TableMapping] = {"derived": DERIVED, "plain": PLAIN}


def make_rules(mapping: TableMapping = DERIVED, book: BookkeepingAttributes = BOOK) -> WriteRules:
    """The write rules of a mapping with the model's tombstone grace."""
    return WriteRules(RowMapper(mapping), book, GRACE_S)


# -- PostgreSQL side ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PgRow:
    """One row of ``public.items (id int PK, grp int, d date, v int, note text NULL)``."""

    id: int
    grp: int
    d: str
    v: int
    note: str | None

    def row(self) -> Row:
        """The row as codec values (what both the backfill and Debezium produce)."""
        return {
            "id": {"N": str(self.id)},
            "grp": {"N": str(self.grp)},
            "d": {"S": self.d},
            "v": {"N": str(self.v)},
            "note": None if self.note is None else {"S": self.note},
        }


@dataclass(frozen=True, slots=True)
class Change:
    """One committed row change. An UPDATE of the primary key has ``before.id != after.id``."""

    op: Literal["c", "u", "d"]
    lsn: int
    before: PgRow | None
    after: PgRow | None
    toast: bool = False  # ``note`` unchanged and sent as Debezium's unavailable placeholder

    def events(self) -> list[ChangeEvent]:
        """The Debezium events of this change (REPLICA IDENTITY FULL: ``before`` is the whole old row)."""
        before = self.before.row() if self.before else None
        after = self.after.row() if self.after else None
        if self.op == "u" and self.before and self.after and self.before.id != self.after.id:
            # A primary-key UPDATE arrives as DELETE(old key) + CREATE(new key) at the same LSN.
            return [_event("d", self.lsn, before, None), _event("c", self.lsn, None, after)]
        unavailable: set[str] = set()
        if self.toast and after is not None:
            del after["note"]
            unavailable = {"note"}
        return [_event(self.op, self.lsn, before, after, unavailable)]

    def apply(self, state: dict[int, PgRow]) -> None:
        """Apply the change to a table state (id -> row)."""
        if self.before is not None:
            del state[self.before.id]
        if self.after is not None:
            state[self.after.id] = self.after


def _event(
    op: str, lsn: int | None, before: Row | None, after: Row | None, unavailable: set[str] | None = None
) -> ChangeEvent:
    return ChangeEvent(op, SOURCE, lsn, None, before, after, unavailable or set())


@dataclass(frozen=True, slots=True)
class Read:
    """A snapshot read of one row as of time ``t`` (after the first ``t`` changes committed)."""

    t: int
    row: PgRow
    via: Literal["backfill", "debezium"]  # a backfill chunk, or a Debezium op 'r' event


@dataclass(frozen=True, slots=True)
class BackfillRow:
    """A row read by a backfill chunk, as delivered to the writer."""

    row: Row


Message: TypeAlias = ChangeEvent | BackfillRow


@dataclass(frozen=True)
class Scenario:
    """A PostgreSQL history (changes in commit order) and what the migration captured of it."""

    changes: tuple[Change, ...]
    stream_start: int  # changes[:stream_start] happened before the replication slot existed
    reads: tuple[Read, ...]  # every read has t >= stream_start
    states: tuple[dict[int, PgRow], ...] = field(repr=False)  # states[t]: the table after t changes

    @property
    def final(self) -> dict[int, PgRow]:
        """The table once every change has committed."""
        return self.states[-1]

    def final_rows(self) -> list[Row]:
        """The final table as codec rows."""
        return [r.row() for r in self.final.values()]

    def cdc_events(self) -> list[ChangeEvent]:
        """The captured change events, in commit order."""
        return [e for c in self.changes[self.stream_start :] for e in c.events()]

    def snapshot_messages(self) -> list[Message]:
        """The snapshot writes of the reads: backfill rows and Debezium 'r' events."""
        return [snapshot_message(r.row, r.via) for r in self.reads]

    def late_reads(self) -> list[Message]:
        """Every row state that existed at any time since the stream's start, by both snapshot paths."""
        rows = {r for state in self.states[self.stream_start :] for r in state.values()}
        ordered = sorted(rows, key=lambda r: (r.id, r.grp, r.d, r.v, r.note or ""))
        return [snapshot_message(r, via) for r in ordered for via in ("backfill", "debezium")]


def snapshot_message(row: PgRow, via: Literal["backfill", "debezium"]) -> Message:
    """A snapshot read of ``row`` as the writer receives it."""
    return BackfillRow(row.row()) if via == "backfill" else _event("r", None, None, row.row())


# -- strategies --------------------------------------------------------------------------------


def pg_rows(id_: int) -> st.SearchStrategy[PgRow]:
    """Any row with this id (small domains so that updates often revisit old values and keys)."""
    return st.builds(
        PgRow,
        st.just(id_),
        st.sampled_from(GROUPS),
        st.sampled_from(DATES),
        st.sampled_from(VALUES),
        st.sampled_from(NOTES),
    )


@st.composite
def histories(draw: st.DrawFn, ids: tuple[int, ...] = IDS, max_changes: int = 12) -> Scenario:
    """A random history: inserts, value updates, moves (derived-key updates), PK changes, deletes and
    re-inserts over a few ids; a random stream start; snapshot reads at times >= the stream start.

    LSNs increase per row in commit order (row locks serialise writers). Across rows they may be
    out of commit order, as when a transaction that wrote earlier commits later.
    """
    state: dict[int, PgRow] = {}
    states = [dict(state)]
    changes: list[Change] = []
    last_lsn: dict[int, int] = {}
    used: set[int] = set()
    for i in range(draw(st.integers(0, max_changes))):
        id_ = draw(st.sampled_from(ids))
        old = state.get(id_)
        toast = False
        if old is None:
            change = Change("c", 0, None, draw(pg_rows(id_)))
        else:
            kind = draw(st.sampled_from(["value", "move", "delete", "rekey"]))
            free = [j for j in ids if j not in state]
            if kind == "delete":
                change = Change("d", 0, old, None)
            elif kind == "rekey" and free:
                new_id = draw(st.sampled_from(free))
                change = Change("u", 0, old, PgRow(new_id, old.grp, old.d, old.v, old.note))
            else:
                if kind == "move":
                    grp, d = draw(st.sampled_from(GROUPS)), draw(st.sampled_from(DATES))
                else:
                    grp, d = old.grp, old.d
                new = PgRow(id_, grp, d, draw(st.sampled_from(VALUES)), draw(st.sampled_from(NOTES)))
                toast = new.note is not None and new.note == old.note and draw(st.booleans())
                change = Change("u", 0, old, new, toast)
        touched = {r.id for r in (change.before, change.after) if r is not None}
        lsn = max([100 + 10 * i - draw(st.sampled_from((0, 5, 15, 25)))] + [last_lsn.get(j, 0) + 1 for j in touched])
        while lsn in used:
            lsn += 1
        used.add(lsn)
        last_lsn.update(dict.fromkeys(touched, lsn))
        change = Change(change.op, lsn, change.before, change.after, toast)
        change.apply(state)
        changes.append(change)
        states.append(dict(state))
    n = len(changes)
    start = draw(st.integers(0, n))
    reads: list[Read] = []
    for id_ in ids:  # the backfill reads every id once, each chunk at its own time
        t = draw(st.integers(start, n))
        if id_ in states[t]:
            reads.append(Read(t, states[t][id_], "backfill"))
    extra = draw(
        st.lists(
            st.tuples(st.sampled_from(ids), st.integers(start, n), st.sampled_from(["backfill", "debezium"])),
            max_size=4,
        )
    )
    for id_, t, via in extra:  # resumed chunks re-read rows; incremental snapshots send 'r' events
        if id_ in states[t]:
            reads.append(Read(t, states[t][id_], "backfill" if via == "backfill" else "debezium"))
    return Scenario(tuple(changes), start, tuple(reads), tuple(states))


def _event_id(message: Message) -> int:
    row = message.row if isinstance(message, BackfillRow) else (message.after or message.before or {})
    value = row["id"]
    assert value is not None
    return int(value["N"])


@st.composite
def deliveries(draw: st.DrawFn, scenario: Scenario, max_batches: int = 6) -> list[list[Message]]:
    """One arbitrary delivery of a scenario, as consumer batches.

    Every captured event arrives at least once; crashes between write and offset commit replay an older
    stretch; random duplicates; snapshot writes anywhere; then the order is kept, merged from per-key
    partitions, or fully permuted (reordering even within a key).
    """
    events = scenario.cdc_events()
    stream: list[Message] = list(events)
    for _ in range(draw(st.integers(0, 2)) if events else 0):
        crash = draw(st.integers(1, len(stream)))
        resume = draw(st.integers(max(0, crash - len(events)), crash))
        stream = stream[:crash] + stream[resume:]
    if events:
        for duplicate in draw(st.lists(st.sampled_from(events), max_size=3)):
            stream.insert(draw(st.integers(0, len(stream))), duplicate)
    for snapshot in scenario.snapshot_messages():
        stream.insert(draw(st.integers(0, len(stream))), snapshot)
    order = draw(st.sampled_from(["commit", "partitions", "any"]))
    if order == "partitions":
        partition_of = {i: draw(st.integers(0, 2)) for i in sorted({_event_id(m) for m in stream})}
        queues: dict[int, list[Message]] = {}
        for message in stream:
            p = 3 if isinstance(message, BackfillRow) else partition_of[_event_id(message)]
            queues.setdefault(p, []).append(message)
        stream = []
        while queues:
            p = draw(st.sampled_from(sorted(queues)))
            stream.append(queues[p].pop(0))
            if not queues[p]:
                del queues[p]
    elif order == "any":
        stream = list(draw(st.permutations(stream)))
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(stream) - 1)), max_size=max_batches - 1))))
    bounds = [0, *cuts, len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds) if b > a]


# -- the writer side ---------------------------------------------------------------------------


def actions_for(message: Message, rules: WriteRules, now_s: float = NOW_S) -> list[WriteAction]:
    """The write actions of one delivered message."""
    if isinstance(message, BackfillRow):
        return [rules.snapshot(message.row)]
    return rules.for_event(message, now_s)


def apply_model(store: Store, actions: Iterable[WriteAction], book: BookkeepingAttributes = BOOK) -> Store:
    """Apply conditional puts in order: a put replaces the whole item when ``accepts`` allows it."""
    for action in actions:
        if accepts(store.get(action.key), action, book):
            store[action.key] = dict(action.item)
    return store


def batch_actions(batch: Iterable[Message], rules: WriteRules, now_s: float = NOW_S) -> list[WriteAction]:
    """The actions one consumer batch writes: every message's actions, coalesced per item key."""
    pairs = [(a, i) for i, m in enumerate(batch) for a in actions_for(m, rules, now_s)]
    return [a for a, _ in coalesce(pairs)]


def deliver(store: Store, batches: Iterable[Iterable[Message]], rules: WriteRules, now_s: float = NOW_S) -> Store:
    """Apply a whole delivery, batch by batch, as the sink does."""
    for batch in batches:
        apply_model(store, batch_actions(batch, rules, now_s), rules.book)
    return store


def strip(item: Mapping[str, AttributeValue], book: BookkeepingAttributes = BOOK) -> Item:
    """An item without its bookkeeping attributes."""
    bookkeeping = {book.source, book.lsn, book.deleted, book.ttl}
    return {k: v for k, v in item.items() if k not in bookkeeping}


def live_items(store: Mapping[ItemKey, Item], book: BookkeepingAttributes = BOOK) -> Store:
    """The items that are not tombstones, bookkeeping stripped: what readers see."""
    return {k: strip(item, book) for k, item in store.items() if item.get(book.deleted) != {"BOOL": True}}


def expected_items(final_rows: Iterable[Row], rules: WriteRules) -> Store:
    """The items the final PostgreSQL rows map to."""
    return dict(rules.mapper.item(row) for row in final_rows)


def store_from_items(items: Iterable[Item], mapper: RowMapper) -> Store:
    """A store keyed like the model's from raw items (e.g. a Scan of a real DynamoDB table)."""
    store: Store = {}
    for item in items:
        parts = tuple((s.name, s.type, _key_text(item[s.name][s.type])) for s in mapper.key_attributes)
        store[ItemKey(mapper.mapping.target, parts)] = dict(item)
    return store


def _key_text(value: object) -> str:
    """A key attribute's text as in ``ItemKey`` (binary keys are base64, as ``scalar_text`` makes them)."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    return str(value)
