"""Property tests of the consistency model (DESIGN "The consistency model") over random histories.

Each test draws a PostgreSQL history (tests/model.py), the table mapping (derived key: updates move
items; plain: key = primary key) and one arbitrary delivery of the captured CDC events and snapshot
writes, and checks what the in-memory store (conditional puts through ``accepts``) ends up holding.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.mapping import ItemKey
from bridge.rules import CDC, SNAPSHOT, WriteAction, accepts, coalesce
from tests.conditions import evaluate
from tests.model import (
    BOOK,
    MAPPINGS,
    NOW_S,
    Message,
    Scenario,
    Store,
    actions_for,
    apply_model,
    batch_actions,
    deliver,
    deliveries,
    expected_items,
    histories,
    live_items,
    make_rules,
)

mappings = st.sampled_from(sorted(MAPPINGS))
examples = settings(max_examples=300, deadline=None)


@examples
@given(mapping=mappings, scenario=histories(), data=st.data())
def test_any_delivery_converges_to_the_final_postgres_state(
    mapping: str, scenario: Scenario, data: st.DataObject
) -> None:
    """Duplicates, reordering, replays and batching never change the outcome: DynamoDB == PostgreSQL."""
    rules = make_rules(MAPPINGS[mapping])
    store = deliver({}, data.draw(deliveries(scenario), label="batches"), rules)
    assert live_items(store) == expected_items(scenario.final_rows(), rules)


@examples
@given(mapping=mappings, scenario=histories(), data=st.data())
def test_the_cdc_item_holds_the_highest_lsn_delivered_for_its_key(
    mapping: str, scenario: Scenario, data: st.DataObject
) -> None:
    """After every batch, a key that received CDC writes holds exactly the highest-LSN one of them."""
    rules = make_rules(MAPPINGS[mapping])
    store: Store = {}
    best: dict[ItemKey, WriteAction] = {}
    for batch in data.draw(deliveries(scenario), label="batches"):
        for message in batch:
            for action in actions_for(message, rules):
                if action.kind == CDC and (action.key not in best or (action.lsn or 0) > (best[action.key].lsn or 0)):
                    best[action.key] = action
        apply_model(store, batch_actions(batch, rules))
        for key, action in best.items():
            assert store[key] == action.item, key


@examples
@given(mapping=mappings, scenario=histories(), data=st.data())
def test_a_snapshot_write_never_overwrites_a_cdc_item(mapping: str, scenario: Scenario, data: st.DataObject) -> None:
    """Every snapshot write that meets a CDC-written item (live or tombstone) leaves it untouched."""
    rules = make_rules(MAPPINGS[mapping])
    store: Store = {}
    for batch in data.draw(deliveries(scenario), label="batches"):
        for action in batch_actions(batch, rules):
            before = store.get(action.key)
            apply_model(store, [action])
            if action.kind == SNAPSHOT and before is not None and before[BOOK.source] == {"S": CDC}:
                assert store[action.key] is before


@examples
@given(
    mapping=mappings,
    existing_lsn=st.integers(1, 10**12),
    tombstone=st.booleans(),
    scenario=histories(max_changes=4),
    data=st.data(),
)
def test_accepts_rejects_every_snapshot_over_a_cdc_item(
    mapping: str, existing_lsn: int, tombstone: bool, scenario: Scenario, data: st.DataObject
) -> None:
    """The model's condition alone: no snapshot action is accepted over any CDC item."""
    rules = make_rules(MAPPINGS[mapping])
    snapshots = [a for m in scenario.late_reads() for a in actions_for(m, rules)]
    if not snapshots:
        return
    snapshot = data.draw(st.sampled_from(snapshots), label="snapshot")
    if tombstone:
        existing = rules.tombstone(snapshot.key, existing_lsn, NOW_S).item
    else:
        existing = {**snapshot.item, BOOK.source: {"S": CDC}, BOOK.lsn: {"N": str(existing_lsn)}}
    assert not accepts(existing, snapshot, BOOK)


@examples
@given(mapping=mappings, scenario=histories(), data=st.data())
def test_a_late_snapshot_never_resurrects_a_deleted_row(mapping: str, scenario: Scenario, data: st.DataObject) -> None:
    """Once caught up, re-writing any row state read since the stream's start (backfill or 'r') changes
    nothing: deleted rows and moved-away keys stay tombstones, live items keep their values."""
    rules = make_rules(MAPPINGS[mapping])
    store = deliver({}, data.draw(deliveries(scenario), label="batches"), rules)
    settled = dict(store)
    late = data.draw(st.permutations(scenario.late_reads()), label="late reads")
    deliver(store, [late[i : i + 5] for i in range(0, len(late), 5)], rules)
    assert store == settled
    live = live_items(store)
    assert live == expected_items(scenario.final_rows(), rules)
    for key, item in live.items():
        assert int(item["Id"]["N"]) in scenario.final, f"{key} resurrected"


@examples
@given(mapping=mappings, scenario=histories(), data=st.data())
def test_coalescing_a_batch_equals_applying_it_action_by_action(
    mapping: str, scenario: Scenario, data: st.DataObject
) -> None:
    """For any prior store and any batch (any order, duplicates, both write kinds), writing only the
    coalesced winners leaves exactly the store (bookkeeping included) that every write in order would."""
    rules = make_rules(MAPPINGS[mapping])
    messages: list[Message] = [*scenario.cdc_events(), *scenario.snapshot_messages(), *scenario.late_reads()]
    if not messages:
        return
    prior = data.draw(st.lists(st.sampled_from(messages), max_size=8), label="prior")
    store = apply_model({}, [a for m in prior for a in actions_for(m, rules)])
    batch = data.draw(st.lists(st.sampled_from(messages), min_size=1, max_size=16), label="batch")
    actions = [a for m in batch for a in actions_for(m, rules)]
    one_by_one = apply_model(dict(store), actions)
    winners = coalesce((a, i) for i, a in enumerate(actions))
    assert len({a.key for a, _ in winners}) == len(winners)
    assert [a.key for a, _ in winners] == list(dict.fromkeys(a.key for a in actions))
    assert apply_model(dict(store), [a for a, _ in winners]) == one_by_one


@examples
@given(mapping=mappings, scenario=histories(), data=st.data())
def test_the_condition_sent_to_dynamodb_means_what_accepts_models(
    mapping: str, scenario: Scenario, data: st.DataObject
) -> None:
    """The condition expression of every action, evaluated by an evaluator written from DynamoDB's
    documentation (tests/conditions.py), accepts exactly when ``accepts`` does, over any store state,
    items not written by ddbridge included."""
    rules = make_rules(MAPPINGS[mapping])
    store: Store = {}
    for batch in data.draw(deliveries(scenario), label="batches"):
        for action in batch_actions(batch, rules):
            existing = store.get(action.key)
            if existing is not None and data.draw(st.booleans(), label="foreign"):
                existing = {k: v for k, v in existing.items() if k not in (BOOK.source, BOOK.lsn)}
            assert evaluate(rules.condition(action), existing) == accepts(existing, action, BOOK)
            if accepts(store.get(action.key), action, BOOK):
                store[action.key] = dict(action.item)


@examples
@given(mapping=mappings, scenario=histories(), data=st.data())
def test_a_repair_applies_only_over_the_version_it_observed(
    mapping: str, scenario: Scenario, data: st.DataObject
) -> None:
    """``unchanged_since(observed)`` holds over the observed item itself and over nothing the bridge
    wrote after it (CDC at a higher LSN, a tombstone, a first write where the item was absent)."""
    rules = make_rules(MAPPINGS[mapping])
    store: Store = {}
    for batch in data.draw(deliveries(scenario), label="batches"):
        for action in batch_actions(batch, rules):
            observed = store.get(action.key)
            condition = rules.unchanged_since(observed)
            assert evaluate(condition, observed)
            if accepts(observed, action, BOOK):
                store[action.key] = dict(action.item)
                newer = store[action.key]
                changed = observed is None or (newer.get(BOOK.source), newer.get(BOOK.lsn)) != (
                    observed.get(BOOK.source),
                    observed.get(BOOK.lsn),
                )
                if changed:
                    assert not evaluate(condition, newer), (observed, newer)


def test_a_cdc_write_at_a_higher_lsn_than_observed_refuses_the_repair() -> None:
    rules = make_rules(MAPPINGS["plain"])
    row = {"id": {"N": "1"}, "grp": {"N": "1"}, "d": {"S": "2024-01-01"}, "v": {"N": "5"}, "note": None}
    observed = rules.cdc_put(row, 10).item
    later = rules.cdc_put({**row, "v": {"N": "6"}}, 11).item
    condition = rules.unchanged_since(observed)
    assert evaluate(condition, observed) and not evaluate(condition, later)
    snapshot = rules.snapshot(row).item
    assert evaluate(rules.unchanged_since(snapshot), snapshot)
    assert not evaluate(rules.unchanged_since(snapshot), observed)
    assert not evaluate(rules.unchanged_since(None), observed)
