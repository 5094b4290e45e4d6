"""Example-based tests of the row mapping, the write rules, their conditions and ``coalesce``."""

from __future__ import annotations

import pytest

from bridge.config import BookkeepingAttributes, KeyAttribute, TableMapping
from bridge.errors import CodecError, NeedsFullReplicaIdentity
from bridge.events import ChangeEvent
from bridge.mapping import ItemKey, Row, RowMapper
from bridge.rules import CDC, SNAPSHOT, WriteAction, WriteRules, accepts, coalesce
from tests.model import (
    BOOK,
    DERIVED,
    GRACE_S,
    NOW_S,
    PLAIN,
    SOURCE,
    BackfillRow,
    Message,
    apply_model,
    deliver,
    expected_items,
    live_items,
    make_rules,
    store_from_items,
)

TTL = {"N": str(int(NOW_S + GRACE_S))}


def row(id_: int = 1, grp: int = 5, d: str = "2024-01-02", v: int = 10, note: str | None = "hi") -> Row:
    """A row of public.items as codec values."""
    return {
        "id": {"N": str(id_)},
        "grp": {"N": str(grp)},
        "d": {"S": d},
        "v": {"N": str(v)},
        "note": None if note is None else {"S": note},
    }


def event(op: str, lsn: int | None, before: Row | None = None, after: Row | None = None) -> ChangeEvent:
    """A change event of public.items."""
    return ChangeEvent(op, SOURCE, lsn, 1_700_000_000_000, before, after)


def dkey(grp: int = 5, d: str = "2024-01-02", id_: int = 1) -> ItemKey:
    """An item key of the derived-key mapping."""
    return ItemKey("Items", (("Grp", "N", str(grp)), ("DateId", "S", f"{d}#{id_}")))


def cdc_item(lsn: int, **extra: dict[str, object]) -> dict[str, dict[str, object]]:
    """A stored CDC item (only what the conditions look at)."""
    return {"Grp": {"N": "5"}, BOOK.source: {"S": CDC}, BOOK.lsn: {"N": str(lsn)}, **extra}


SNAPSHOT_ITEM = {"Grp": {"N": "5"}, BOOK.source: {"S": SNAPSHOT}}


@pytest.fixture
def rules() -> WriteRules:
    return make_rules(DERIVED)


# -- mapping -----------------------------------------------------------------------------------


def test_item_has_key_and_pascal_attributes_and_omits_nulls() -> None:
    key, item = RowMapper(DERIVED).item(row(note=None))
    assert key == dkey()
    assert str(key) == "Grp=5, DateId=2024-01-02#1"
    assert item == {
        "Id": {"N": "1"},
        "Grp": {"N": "5"},
        "D": {"S": "2024-01-02"},
        "V": {"N": "10"},
        "DateId": {"S": "2024-01-02#1"},
    }


def test_item_honours_attribute_overrides_and_excluded_columns() -> None:
    mapping = PLAIN.model_copy(update={"attributes": {"v": "Amount"}, "exclude_columns": ["note"]})
    key, item = RowMapper(mapping).item(row())
    assert key.as_dynamo() == {"Id": {"N": "1"}}
    assert item == {"Id": {"N": "1"}, "Grp": {"N": "5"}, "D": {"S": "2024-01-02"}, "Amount": {"N": "10"}}


def test_key_needs_only_key_columns() -> None:
    assert RowMapper(DERIVED).key({"id": {"N": "1"}, "grp": {"N": "5"}, "d": {"S": "2024-01-02"}}) == dkey()


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"grp": None}, "NULL"),
        ({"grp": {"S": "5"}}, "not a number"),
    ],
)
def test_invalid_key_values_are_codec_errors(bad: Row, message: str) -> None:
    with pytest.raises(CodecError, match=message) as raised:
        RowMapper(DERIVED).key({**row(), **bad})
    assert raised.value.column == "grp"  # the dead letter and the errors file name the column


def test_empty_string_key_is_a_codec_error() -> None:
    mapping = PLAIN.model_copy(update={"partition_key": KeyAttribute(name="Code", template="{id}")})
    assert RowMapper(mapping).key(row()).as_dynamo() == {"Code": {"S": "1"}}
    with pytest.raises(CodecError, match="empty"):
        RowMapper(mapping).key({"id": {"S": ""}})


def test_missing_key_column_is_a_codec_error() -> None:
    with pytest.raises(CodecError, match="missing") as raised:
        RowMapper(DERIVED).key({"id": {"N": "1"}, "grp": {"N": "5"}})
    assert raised.value.column == "d"


def test_has_derived_key() -> None:
    assert DERIVED.has_derived_key()
    assert DERIVED.key_columns() == ["grp", "d", "id"]
    assert not PLAIN.has_derived_key()


def test_mapping_must_key_every_primary_key_column() -> None:
    with pytest.raises(ValueError, match="every primary-key column"):
        TableMapping(
            source=SOURCE,
            target="Items",
            primary_key=["id"],
            partition_key=KeyAttribute(name="Grp", template="{grp}", type="N"),
            sort_key=KeyAttribute(name="D", template="{d}"),
        )


# -- building actions --------------------------------------------------------------------------


def test_snapshot_write(rules: WriteRules) -> None:
    action = rules.snapshot(row())
    assert (action.key, action.kind, action.lsn, action.tombstone) == (dkey(), SNAPSHOT, None, False)
    assert action.item[BOOK.source] == {"S": "snapshot"}
    assert BOOK.lsn not in action.item


def test_insert_is_a_cdc_put(rules: WriteRules) -> None:
    [put] = rules.for_event(event("c", 42, after=row()), NOW_S)
    assert (put.key, put.kind, put.lsn, put.tombstone) == (dkey(), CDC, 42, False)
    assert put.item == {**RowMapper(DERIVED).item(row())[1], "_src": {"S": "cdc"}, "_lsn": {"N": "42"}}


def test_update_keeping_the_key_is_one_put(rules: WriteRules) -> None:
    [put] = rules.for_event(event("u", 43, before=row(v=1), after=row(v=2)), NOW_S)
    assert put.key == dkey()
    assert put.item["V"] == {"N": "2"}


def test_update_moving_a_derived_key_tombstones_the_old_key_at_the_same_lsn(rules: WriteRules) -> None:
    tomb, put = rules.for_event(event("u", 44, before=row(grp=5), after=row(grp=6, d="2024-02-01")), NOW_S)
    assert tomb.tombstone and tomb.key == dkey()
    assert tomb.item == {
        "Grp": {"N": "5"},
        "DateId": {"S": "2024-01-02#1"},
        "_src": {"S": "cdc"},
        "_lsn": {"N": "44"},
        "_deleted": {"BOOL": True},
        "_ttl": TTL,
    }
    assert not put.tombstone and put.key == dkey(6, "2024-02-01") and put.lsn == tomb.lsn == 44


def test_update_of_non_key_columns_never_moves_a_plain_key() -> None:
    [put] = make_rules(PLAIN).for_event(event("u", 45, before=row(grp=5), after=row(grp=6)), NOW_S)
    assert put.key.as_dynamo() == {"Id": {"N": "1"}}


def test_delete_is_a_tombstone_of_the_old_row(rules: WriteRules) -> None:
    [tomb] = rules.for_event(event("d", 46, before=row()), NOW_S)
    assert tomb.tombstone and tomb.key == dkey() and tomb.lsn == 46 and tomb.kind == CDC
    assert set(tomb.item) == {"Grp", "DateId", "_src", "_lsn", "_deleted", "_ttl"}


def test_delete_with_only_the_primary_key_needs_full_replica_identity(rules: WriteRules) -> None:
    with pytest.raises(NeedsFullReplicaIdentity, match="REPLICA IDENTITY FULL"):
        rules.for_event(event("d", 47, before={"id": {"N": "1"}}), NOW_S)
    [tomb] = make_rules(PLAIN).for_event(event("d", 47, before={"id": {"N": "1"}}), NOW_S)
    assert tomb.key.as_dynamo() == {"Id": {"N": "1"}}


def test_a_delete_as_debezium_sends_it_under_replica_identity_default_needs_full(rules: WriteRules) -> None:
    # Debezium sends every column of the old image: the ones outside the replica identity as NULL.
    before = {"id": {"N": "1"}, "grp": None, "d": None, "v": None, "note": None}
    with pytest.raises(NeedsFullReplicaIdentity, match=r"no old value of \['grp', 'd'\]") as raised:
        rules.for_event(event("d", 47, before=before), NOW_S)
    assert raised.value.context == {"table": SOURCE, "column": "grp, d", "lsn": 47}  # for --json
    with pytest.raises(NeedsFullReplicaIdentity):
        rules.for_event(event("u", 47, before=before, after=row()), NOW_S)


def test_update_without_old_image_needs_full_replica_identity(rules: WriteRules) -> None:
    with pytest.raises(NeedsFullReplicaIdentity):
        rules.for_event(event("u", 48, after=row()), NOW_S)
    assert len(make_rules(PLAIN).for_event(event("u", 48, after=row()), NOW_S)) == 1


@pytest.mark.parametrize("op", ["c", "u", "d"])
def test_change_without_lsn_is_a_codec_error(rules: WriteRules, op: str) -> None:
    with pytest.raises(CodecError, match=r"source\.lsn"):
        rules.for_event(event(op, None, before=row(), after=None if op == "d" else row()), NOW_S)


def test_read_event_is_a_snapshot_write(rules: WriteRules) -> None:
    [action] = rules.for_event(event("r", 49, after=row()), NOW_S)
    assert action == rules.snapshot(row())
    assert rules.for_event(event("r", None), NOW_S) == []


@pytest.mark.parametrize("op", ["t", "m"])
def test_other_ops_write_nothing(rules: WriteRules, op: str) -> None:
    assert rules.for_event(event(op, 50), NOW_S) == []


def test_toast_placeholder_is_filled_from_the_old_image(rules: WriteRules) -> None:
    after = {k: v for k, v in row(v=2).items() if k != "note"}
    change = ChangeEvent("u", SOURCE, 51, None, row(v=1, note="big"), after, {"note"})
    [put] = rules.for_event(change, NOW_S)
    assert put.item["Note"] == {"S": "big"} and put.item["V"] == {"N": "2"}


def test_toast_placeholder_without_old_value_is_a_codec_error(rules: WriteRules) -> None:
    after = {k: v for k, v in row().items() if k != "note"}
    with pytest.raises(CodecError, match="REPLICA IDENTITY FULL"):
        make_rules(PLAIN).for_event(ChangeEvent("u", SOURCE, 52, None, {"id": {"N": "1"}}, after, {"note"}), NOW_S)


def test_custom_bookkeeping_names() -> None:
    book = BookkeepingAttributes(source="src", lsn="pos", deleted="gone", ttl="expires")
    rules = WriteRules(RowMapper(DERIVED), book, 10.0)
    [tomb] = rules.for_event(event("d", 7, before=row()), 100.0)
    assert {k: tomb.item[k] for k in ("src", "pos", "gone", "expires")} == {
        "src": {"S": "cdc"},
        "pos": {"N": "7"},
        "gone": {"BOOL": True},
        "expires": {"N": "110"},
    }
    assert rules.condition(tomb)["ExpressionAttributeNames"] == {"#pk": "Grp", "#src": "src", "#lsn": "pos"}
    assert not accepts(tomb.item, rules.snapshot(row()), book)


# -- conditions --------------------------------------------------------------------------------


def test_snapshot_condition(rules: WriteRules) -> None:
    assert rules.condition(rules.snapshot(row())) == {
        "ConditionExpression": "attribute_not_exists(#pk) OR attribute_not_exists(#src) OR #src = :snap",
        "ExpressionAttributeNames": {"#pk": "Grp", "#src": "_src"},
        "ExpressionAttributeValues": {":snap": {"S": "snapshot"}},
    }


def test_cdc_condition(rules: WriteRules) -> None:
    [tomb] = rules.for_event(event("d", 123456789012, before=row()), NOW_S)
    assert rules.condition(tomb) == {
        "ConditionExpression": "attribute_not_exists(#pk) OR attribute_not_exists(#src) OR #src = :snap OR #lsn < :lsn",
        "ExpressionAttributeNames": {"#pk": "Grp", "#src": "_src", "#lsn": "_lsn"},
        "ExpressionAttributeValues": {":snap": {"S": "snapshot"}, ":lsn": {"N": "123456789012"}},
    }


@pytest.mark.parametrize(
    ("existing", "snapshot_ok", "cdc_ok"),
    [
        (None, True, True),
        (SNAPSHOT_ITEM, True, True),
        (cdc_item(99), False, True),
        (cdc_item(100), False, False),
        (cdc_item(101), False, False),
        (cdc_item(99, _deleted={"BOOL": True}), False, True),
        (cdc_item(100, _deleted={"BOOL": True}), False, True),  # a put replaces a tombstone of its own LSN
        (cdc_item(1_000_000_000_000), False, False),  # numeric, not text, comparison
    ],
)
def test_accepts(
    existing: dict[str, dict[str, object]] | None, snapshot_ok: bool, cdc_ok: bool, rules: WriteRules
) -> None:
    cdc = rules.cdc_put(row(), 100)
    assert accepts(existing, rules.snapshot(row()), BOOK) is snapshot_ok
    assert accepts(existing, cdc, BOOK) is cdc_ok


def test_accepts_compares_lsns_as_numbers(rules: WriteRules) -> None:
    assert accepts(cdc_item(99), rules.cdc_put(row(), 100), BOOK)
    assert not accepts(cdc_item(100), rules.cdc_put(row(), 99), BOOK)


# -- coalesce ----------------------------------------------------------------------------------


def test_coalesce_keeps_one_winner_per_key_in_first_appearance_order(rules: WriteRules) -> None:
    a_snap = rules.snapshot(row(1))
    a_10, a_12, a_11 = (rules.cdc_put(row(1, v=v), v) for v in (10, 12, 11))
    b_snap1, b_snap2 = rules.snapshot(row(2, v=1)), rules.snapshot(row(2, v=2))
    c_5 = rules.cdc_put(row(3), 5)
    pairs = [(a_10, "m0"), (b_snap1, "m1"), (a_12, "m2"), (c_5, "m3"), (a_snap, "m4"), (a_11, "m5"), (b_snap2, "m6")]
    assert coalesce(pairs) == [(a_12, "m2"), (b_snap2, "m6"), (c_5, "m3")]


def test_coalesce_cdc_beats_snapshot_in_either_order(rules: WriteRules) -> None:
    snap, cdc = rules.snapshot(row()), rules.cdc_put(row(v=3), 7)
    assert coalesce([(snap, 0), (cdc, 1)]) == [(cdc, 1)]
    assert coalesce([(cdc, 0), (snap, 1)]) == [(cdc, 0)]


def test_coalesce_tie_keeps_the_later_duplicate(rules: WriteRules) -> None:
    first, again = rules.cdc_put(row(), 7), rules.cdc_put(row(), 7)
    assert coalesce([(first, "old"), (again, "replay")]) == [(again, "replay")]
    assert coalesce([]) == []


def test_rank() -> None:
    key = dkey()
    assert WriteAction(key, {}, CDC, 1).rank() > WriteAction(key, {}, SNAPSHOT, None).rank()
    assert WriteAction(key, {}, CDC, 9).rank() > WriteAction(key, {}, CDC, 8).rank()


# -- model helpers -----------------------------------------------------------------------------


def test_move_then_late_snapshot_of_the_old_state(rules: WriteRules) -> None:
    """The worked example: backfill reads the row, the stream moves it, the old read lands last."""
    batches: list[list[Message]] = [
        [event("u", 60, before=row(grp=5), after=row(grp=6))],
        [BackfillRow(row(grp=5)), event("u", 60, before=row(grp=5), after=row(grp=6))],
    ]
    store = deliver({}, batches, rules)
    assert store[dkey(5)][BOOK.deleted] == {"BOOL": True}
    assert live_items(store) == expected_items([row(grp=6)], rules)


def test_late_snapshot_of_a_deleted_row_stays_deleted(rules: WriteRules) -> None:
    store = apply_model({}, rules.for_event(event("d", 70, before=row()), NOW_S))
    apply_model(store, [rules.snapshot(row())])
    assert live_items(store) == {}
    assert store[dkey()][BOOK.lsn] == {"N": "70"}


def test_store_from_items_rebuilds_model_keys(rules: WriteRules) -> None:
    store = apply_model({}, [rules.cdc_put(row(), 1), rules.snapshot(row(2))])
    assert store_from_items(store.values(), rules.mapper) == store


def test_at_one_lsn_a_put_beats_a_tombstone_in_coalesce_and_in_the_conditions() -> None:
    rules = make_rules(PLAIN)
    row = {"id": {"N": "5"}, "grp": {"N": "1"}, "d": {"S": "2024-01-01"}, "v": {"N": "5"}, "note": None}
    put = rules.cdc_put(row, 900)
    tombstone = rules.tombstone(put.key, 900, 1_700_000_000)
    for pairs in ([(tombstone, "d"), (put, "c")], [(put, "c"), (tombstone, "d")]):
        assert coalesce(pairs) == [(put, "c")]
    assert accepts(tombstone.item, put, BOOK) and not accepts(put.item, tombstone, BOOK)
    assert not accepts(put.item, put, BOOK)  # a replay of the put itself is stale, as before
    assert not accepts(tombstone.item, tombstone, BOOK)
    assert "(#lsn = :lsn AND attribute_exists(#del))" in rules.condition(put)["ConditionExpression"]
    assert "#del" not in rules.condition(tombstone)["ExpressionAttributeNames"]


def test_a_cdc_put_names_the_bookkeeping_attributes_its_condition_reads(rules: WriteRules) -> None:
    [put] = rules.for_event(event("c", 50, after=row()), NOW_S)
    names = rules.condition(put)["ExpressionAttributeNames"]
    assert names == {"#pk": "Grp", "#src": BOOK.source, "#lsn": BOOK.lsn, "#del": BOOK.deleted}
