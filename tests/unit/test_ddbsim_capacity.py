"""The service-like DynamoDB layer's capacity accounting against AWS's documented rules and examples
(developer guide: "DynamoDB item sizes and formats", "DynamoDB read and write operations", "Global
secondary indexes: writes"). Every expected value is worked out by hand from those pages."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from ops.ddbsim.capacity import (
    Index,
    Throughput,
    TokenBucket,
    item_bytes,
    number_bytes,
    partitions_for,
    read_units,
    value_bytes,
    write_units,
)


@pytest.mark.parametrize(
    ("number", "size"),
    [
        ("1994", 3),  # 4 significant digits: 2 bytes + 1
        ("7", 2),
        ("12345", 4),  # 5 digits: 3 bytes + 1
        ("0.00123400", 3),  # leading and trailing zeros trimmed: 1234
        ("-1200", 2),  # 12
        ("1.5E+10", 2),  # 15
        ("0", 2),
        ("12345678901234567890123456789012345678", 20),  # 38 digits: 19 + 1
    ],
)
def test_a_number_costs_one_byte_per_two_significant_digits_plus_one(number: str, size: int) -> None:
    assert number_bytes(number) == size


def test_item_size_is_names_plus_values() -> None:
    item: dict[str, dict[str, Any]] = {
        "Artist": {"S": "Arturo Sandoval"},  # 6 + 15
        "Year": {"N": "1994"},  # 4 + 3
        "Cover": {"B": base64.b64encode(b"\x00\x01\x02").decode()},  # 5 + 3 raw bytes, not the base64 text
        "Live": {"BOOL": True},  # 4 + 1
        "Label": {"NULL": True},  # 5 + 1
        "Straße": {"S": "é"},  # 7 (ß is 2 bytes) + 2
    }
    assert item_bytes(item) == 21 + 7 + 8 + 5 + 6 + 9


def test_lists_and_maps_cost_three_bytes_plus_one_per_element() -> None:
    assert value_bytes({"L": []}) == 3
    assert value_bytes({"M": {}}) == 3
    assert value_bytes({"L": [{"S": "a"}, {"S": "bc"}]}) == 3 + (1 + 1) + (1 + 2)
    assert value_bytes({"M": {"k": {"N": "10"}}}) == 3 + 1 + 1 + 2  # the nested name counts too
    assert item_bytes({"tags": {"L": [{"L": [{"BOOL": False}]}]}}) == 4 + 3 + 1 + (3 + 1 + 1)


def test_sets_cost_the_sum_of_their_elements() -> None:
    assert value_bytes({"SS": ["ab", "c"]}) == 3
    assert value_bytes({"NS": ["1994", "7"]}) == 3 + 2
    assert value_bytes({"BS": [base64.b64encode(b"1234").decode()]}) == 4


def test_an_unknown_value_type_is_refused() -> None:
    with pytest.raises(ValueError, match="'X'"):
        value_bytes({"X": 1})


def _item_of(size: int) -> dict[str, dict[str, str]]:
    return {"k": {"S": "x" * (size - 1)}}


@pytest.mark.parametrize(
    ("old", "new", "units"),
    [
        (None, 500, 1),  # a 500-byte item costs what a 1 KB item does
        (None, 1024, 1),
        (None, 1025, 2),
        (None, 1536, 2),  # 1.5 KB rounds up to 2 KB
        (3000, 500, 3),  # a put replacing an item: the larger of the two
        (500, 3000, 3),
        (2048, None, 2),  # a delete: the size of the deleted item
        (None, None, 1),  # a failed conditional put of nothing costs at least one unit
    ],
)
def test_write_units_are_per_started_kb_of_the_larger_item(old: int | None, new: int | None, units: int) -> None:
    assert write_units(_item_of(old) if old else None, _item_of(new) if new else None) == units


@pytest.mark.parametrize(
    ("size", "consistent", "units"),
    [
        (3500, True, 1.0),  # 3,500 bytes round up to 4 KB
        (3500, False, 0.5),
        (8192, True, 2.0),  # the guide's 8 KB example: 2 strongly consistent, 1 eventually consistent
        (8192, False, 1.0),
        (10 * 1024, True, 3.0),  # 10 KB rounds up to 12 KB
    ],
)
def test_read_units_are_per_started_4_kb_halved_when_eventually_consistent(
    size: int, consistent: bool, units: float
) -> None:
    assert read_units(size, consistent=consistent) == units


TABLE_KEYS = ("pk",)
BY_STATUS = Index("byStatus", ("status",), "INCLUDE", ("amount",))


def test_gsi_writes_as_documented() -> None:
    plain = {"pk": {"S": "p1"}, "note": {"S": "n"}}
    paid = {**plain, "status": {"S": "PAID"}, "amount": {"N": "10"}}
    assert BY_STATUS.write_units(None, plain, TABLE_KEYS) == 0  # not in the index before or after (sparse)
    assert BY_STATUS.write_units(None, paid, TABLE_KEYS) == 1  # a new item defining the index key: one put
    assert BY_STATUS.write_units(plain, paid, TABLE_KEYS) == 1  # an update defining it: one put
    assert BY_STATUS.write_units(paid, plain, TABLE_KEYS) == 1  # the index key removed: one delete
    assert BY_STATUS.write_units(paid, None, TABLE_KEYS) == 1  # the item deleted
    failed = {**paid, "status": {"S": "FAILED"}}
    assert BY_STATUS.write_units(paid, failed, TABLE_KEYS) == 2  # the index key changed: delete + put
    more = {**paid, "amount": {"N": "11"}}
    assert BY_STATUS.write_units(paid, more, TABLE_KEYS) == 1  # a projected attribute changed: one write
    renoted = {**paid, "note": {"S": "other"}}
    assert BY_STATUS.write_units(paid, renoted, TABLE_KEYS) == 0  # not projected into this index


def test_a_gsi_entry_is_sized_by_its_projection() -> None:
    big = {"pk": {"S": "p1"}, "status": {"S": "PAID"}, "blob": {"S": "x" * 3000}}
    keys_only = Index("byStatus", ("status",), "KEYS_ONLY")
    everything = Index("byStatus", ("status",), "ALL")
    assert keys_only.entry(big, TABLE_KEYS) == {"pk": {"S": "p1"}, "status": {"S": "PAID"}}
    assert keys_only.write_units(None, big, TABLE_KEYS) == 1  # 2 + 2 + 6 + 4 bytes
    assert everything.write_units(None, big, TABLE_KEYS) == 3  # 3,018 bytes


def test_a_partition_admits_its_1000_units_a_second_then_throttles() -> None:
    t = Throughput(units_per_s=40_000, partitions=4)
    admitted = sum(t.admit(0, 1, now=0.0) is None for _ in range(1200))
    assert admitted == 1000  # a new partition holds one second of capacity
    assert t.admit(0, 1, now=0.0) == "partition"
    assert t.admit(1, 1, now=0.0) is None  # another partition still has capacity
    assert t.admit(0, 1, now=0.5) is None  # half a second later: 500 more units
    assert sum(t.admit(0, 1, now=0.5) is None for _ in range(1000)) == 499


def test_the_table_limit_applies_across_partitions() -> None:
    t = Throughput(units_per_s=100, partitions=4)
    admitted = sum(t.admit(i % 4, 1, now=0.0) is None for i in range(1000))
    assert admitted == 100
    assert t.admit(3, 1, now=0.0) == "table"


def test_unused_capacity_is_kept_for_300_seconds_as_burst() -> None:
    b = TokenBucket(rate=10)
    b.refill(0.0)
    b.tokens = 0
    b.refill(100.0)
    assert b.tokens == 1000  # 100 idle seconds
    b.refill(10_000.0)
    assert b.tokens == 3000  # at most 300 seconds' worth
    b.set_rate(1, 10_000.0)
    assert b.tokens == 300  # a lower rate keeps at most 300 seconds of it


def test_a_large_write_is_admitted_while_capacity_remains_and_leaves_the_partition_in_debt() -> None:
    t = Throughput(units_per_s=10_000, partitions=1)
    assert t.admit(0, 999, now=0.0) is None
    assert t.admit(0, 400, now=0.0) is None  # 1 unit was left: admitted, 399 in debt
    assert t.admit(0, 1, now=0.3) == "partition"  # 300 units refilled, still in debt
    assert t.admit(0, 1, now=0.4) is None


@pytest.mark.parametrize(("wcu", "rcu", "partitions"), [(4000, 0, 4), (1000, 3000, 2), (100, 100, 1), (10_001, 0, 11)])
def test_partitions_follow_the_throughput(wcu: float, rcu: float, partitions: int) -> None:
    assert partitions_for(wcu, rcu) == partitions
