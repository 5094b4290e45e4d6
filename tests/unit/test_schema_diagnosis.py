"""Schema changes (bridge/schemas.py) and the reconciler's naming of their effect (reconcile/diagnose.py)."""

from __future__ import annotations

from bridge.schemas import SchemaChange, compare
from reconcile.canonical import field_diff
from reconcile.diagnose import causes
from reconcile.recheck import Difference


def test_compare_names_added_dropped_and_retyped_columns() -> None:
    old = (("id", "INT4"), ("amount", "NUMERIC"), ("memo", "TEXT"), ("n", "INT4"))
    new = (("id", "INT4"), ("amount", "NUMERIC"), ("fee", "NUMERIC"), ("n", "INT8"))
    change = compare("public.t", 99, old, new)
    assert (change.added, change.dropped, change.retyped) == (["fee"], ["memo"], ["n: INT4 -> INT8"])
    assert change.describe() == "added fee; dropped memo; retyped n: INT4 -> INT8"
    assert compare("public.t", 1, old, old).describe() == "columns reordered"


def _different(expected: dict[str, dict[str, str]], actual: dict[str, dict[str, str]]) -> Difference:
    return Difference(("k",), "different", ("1",), expected, actual, field_diff(expected, actual))


def test_differences_that_only_lack_a_new_column_are_named_with_the_recorded_change() -> None:
    row = {"Id": {"N": "1"}, "Amount": {"N": "5"}}
    lacking = [_different({**row, "Fee": {"N": "0.5"}}, row) for _ in range(3)]
    other = _different({**row, "Amount": {"N": "6"}}, row)  # a value difference: no schema cause
    change = SchemaChange("public.t", 4242, ["fee"], [], [], "2026-12-01T10:00:00+00:00")
    (cause,) = causes([*lacking, other], [change], {"fee": "Fee", "amount": "Amount", "id": "Id"})
    assert cause.startswith("3 items differ only in that DynamoDB lacks Fee")
    assert "at LSN 4242, 2026-12-01T10:00:00+00:00" in cause and "reconcile --repair" in cause


def test_differences_that_keep_a_dropped_column_are_named_without_a_record_too() -> None:
    row = {"Id": {"N": "1"}}
    (cause,) = causes([_different(row, {**row, "Memo": {"S": "x"}})], [], {"id": "Id"})
    assert cause.startswith("1 items differ only in that DynamoDB still has Memo: a column dropped from the source")
    assert causes([_different({**row, "A": {"N": "1"}}, {**row, "A": {"N": "2"}})], [], {}) == []
