"""The reconciler's pure logic: canonical digests, the partitioned comparison (property-tested against a
plain dict model), key parsing, and the in-flight re-check over fake stores."""

from __future__ import annotations

import itertools
import tempfile
import threading
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.config import load_settings
from reconcile.canonical import canonical, content, digest, field_diff
from reconcile.catchup import CatchUpState
from reconcile.compare import Candidate, FullPass, _compare_partition
from reconcile.recheck import Rechecker
from reconcile.source import SourceTable, block_ranges, template_values
from reconcile.spill import Spill, partition_of
from reconcile.target import get_items
from tests.conftest import PAYMENTS_CONFIG

SETTINGS = load_settings(PAYMENTS_CONFIG)


# -- canonical forms ----------------------------------------------------------------------------


def test_digest_ignores_attribute_and_map_order_but_not_values() -> None:
    a: dict[str, Any] = {"A": {"N": "1"}, "M": {"M": {"x": {"S": "1"}, "y": {"L": [{"N": "2"}, {"B": b"\x00"}]}}}}
    b: dict[str, Any] = {"M": {"M": {"y": {"L": [{"N": "2"}, {"B": b"\x00"}]}, "x": {"S": "1"}}}, "A": {"N": "1"}}
    assert digest(a) == digest(b)
    assert digest(a) != digest({**a, "A": {"S": "1"}})  # a number is not its text
    assert digest(a) != digest({**b, "M": {"M": {"x": {"S": "1"}, "y": {"L": [{"B": b"\x00"}, {"N": "2"}]}}}})


def test_content_strips_bookkeeping_and_field_diff_names_each_attribute() -> None:
    hidden = frozenset({"_src", "_lsn", "_deleted", "_ttl"})
    item = {"A": {"N": "1"}, "_src": {"S": "cdc"}, "_lsn": {"N": "9"}}
    assert content(item, hidden) == {"A": {"N": "1"}}
    diffs = field_diff({"A": {"N": "1"}, "B": {"S": "x"}}, {"A": {"N": "2"}, "C": {"BOOL": True}})
    assert [(d.attribute, d.expected, d.actual) for d in diffs] == [
        ("A", "1", "2"),
        ("B", "x", "(absent)"),
        ("C", "(absent)", "true"),
    ]
    assert field_diff({"A": {"N": "1"}}, {"A": {"N": "1"}}) == []


def test_field_diff_names_the_dynamodb_types_when_the_text_is_the_same() -> None:
    (diff,) = field_diff({"Amount": {"N": "18"}}, {"Amount": {"S": "18"}})
    assert (diff.expected, diff.actual) == ("18 (N)", "18 (S)")
    (diff,) = field_diff({"Tags": {"L": [{"S": "a"}]}}, {"Tags": {"S": '[{"S":"a"}]'}})
    assert diff.expected.endswith("(L)") and diff.actual.endswith("(S)")
    (same_type,) = field_diff({"Amount": {"N": "18"}}, {"Amount": {"N": "19"}})
    assert (same_type.expected, same_type.actual) == ("18", "19")


def test_template_values_invert_key_templates() -> None:
    assert template_values("{payment_date}#{payment_id}", "2024-01-31#17") == {
        "payment_date": "2024-01-31",
        "payment_id": "17",
    }
    assert template_values("{customer_id}", "42") == {"customer_id": "42"}
    assert template_values("C#{a}", "D#1") == {}


def test_primary_key_of_an_item_from_attributes_or_from_the_key() -> None:
    source = SourceTable(SETTINGS, SETTINGS.mapping())
    key = ("7", "2024-01-31#17")
    assert source.primary_key_of_item(key, {"PaymentId": {"N": "17"}}) == ("17",)
    assert source.primary_key_of_item(key, None) == ("17",)  # a tombstone: parsed from the template


# -- the partitioned comparison against a dict model ----------------------------------------------

keys = st.tuples(st.integers(0, 30).map(str), st.sampled_from(["a", "b#c", ""]))
values = st.integers(0, 3)


@settings(max_examples=150, deadline=None)
@given(
    source=st.dictionaries(keys, values, max_size=40),
    target=st.dictionaries(keys, st.one_of(st.none(), values), max_size=40),
    partitions=st.integers(1, 5),
    readers=st.integers(1, 3),
)
def test_partitioned_comparison_equals_the_whole_table_model(
    source: dict[tuple[str, str], int], target: dict[tuple[str, str], int | None], partitions: int, readers: int
) -> None:
    """Every key lands in exactly one outcome, the same one a whole-table dict comparison gives, however
    the source rows were shared among the readers' spills."""
    with tempfile.TemporaryDirectory() as tmp:
        srcs = [Spill(Path(tmp), f"s{i}", partitions) for i in range(readers)]
        dst = Spill(Path(tmp), "d", partitions)
        for n, (key, value) in enumerate(source.items()):
            srcs[n % readers].add(key, (key, bytes([value]), ("pk", *key), None))
        for key, tvalue in target.items():  # None: a tombstone
            dst.add(key, (key, None if tvalue is None else bytes([tvalue])))
        for src in srcs:
            src.close()
        dst.close()
        result = FullPass()
        for index in range(partitions):
            _compare_partition(srcs, dst, index, result)
    live = {k: v for k, v in target.items() if v is not None}
    kinds = {c.key: c.kind for c in result.candidates}
    assert result.source_rows == len(source)
    assert kinds == {
        **{k: "missing" for k in source if k not in live},
        **{k: "extra" for k in live if k not in source},
        **{k: "different" for k in source if k in live and live[k] != source[k]},
    }
    assert result.matched == sum(1 for k in source if live.get(k) == source[k])
    assert result.source_rows == len(source) and result.target_live == len(live)
    assert result.tombstones_pending == sum(1 for k, v in target.items() if v is None and k not in source)
    assert all(c.pk == ("pk", *c.key) for c in result.candidates if c.kind != "extra")


@settings(max_examples=150, deadline=None)
@given(
    source=st.dictionaries(keys, st.one_of(st.none(), values), max_size=40),
    target=st.dictionaries(keys, st.one_of(st.none(), values), max_size=40),
    partitions=st.integers(1, 4),
    limit=st.integers(1, 6),
)
def test_unstorable_rows_and_tombstones_are_counted_and_never_missing(
    source: dict[tuple[str, str], int | None],
    target: dict[tuple[str, str], int | None],
    partitions: int,
    limit: int,
) -> None:
    """A source row the codec refused (None here) is 'unstorable' whatever DynamoDB holds for its key (an
    item, a tombstone, nothing); every tombstone is counted; at most ``limit`` candidates are kept and the
    rest are counted as overflow."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Spill(Path(tmp), "s", partitions)
        dst = Spill(Path(tmp), "d", partitions)
        for key, value in source.items():
            src.add(
                key,
                (key, None if value is None else bytes([value]), ("pk", *key), None if value is not None else "bad"),
            )
        for key, tvalue in target.items():
            dst.add(key, (key, None if tvalue is None else bytes([tvalue])))
        src.close()
        dst.close()
        result = FullPass(limit=limit)
        for index in range(partitions):
            _compare_partition([src], dst, index, result)
    live = {k: v for k, v in target.items() if v is not None}
    want: dict[tuple[str, ...], str] = {}
    for key, value in source.items():
        if value is None:
            want[key] = "unstorable"
        elif key not in live:
            want[key] = "missing"
        elif live[key] != value:
            want[key] = "different"
    want.update({k: "extra" for k in live if k not in source})
    assert result.by_kind == {kind: list(want.values()).count(kind) for kind in set(want.values())}
    assert len(result.candidates) == min(limit, len(want)) and result.overflow == max(0, len(want) - limit)
    assert all(want[c.key] == c.kind for c in result.candidates)
    assert result.target_tombstones == sum(1 for v in target.values() if v is None)
    assert result.tombstones_pending == sum(1 for k, v in target.items() if v is None and k not in source)


@pytest.mark.parametrize("readers", [1, 2])
def test_two_rows_sharing_an_item_key_are_a_blocker_not_a_match(readers: int) -> None:
    # "{a}{b}" maps (1, 23) and (12, 3) to "123": DynamoDB can hold only one of them, and that one
    # matches its row; without the check the other row's loss would pass.
    key = ("123",)
    with tempfile.TemporaryDirectory() as tmp:
        srcs = [Spill(Path(tmp), f"s{i}", 2) for i in range(readers)]
        dst = Spill(Path(tmp), "d", 2)
        srcs[0].add(key, (key, b"row-1-23", ("1", "23"), None))
        srcs[-1].add(key, (key, b"row-12-3", ("12", "3"), None))
        srcs[0].add(("7",), (("7",), b"x", ("7", "0"), None))
        dst.add(key, (key, b"row-12-3"))
        dst.add(("7",), (("7",), b"x"))
        for spill in [*srcs, dst]:
            spill.close()
        result = FullPass()
        for index in range(2):
            _compare_partition(srcs, dst, index, result)
    assert result.source_rows == 3 and result.matched == 1
    assert sorted((c.kind, c.pk) for c in result.candidates) == [
        ("unstorable", ("1", "23")),
        ("unstorable", ("12", "3")),
    ]
    assert all("rows (1, 23) and (12, 3) map to one item key" in c.detail for c in result.candidates)


def test_partition_of_is_stable_and_spreads() -> None:
    assert partition_of(("1", "x"), 7) == partition_of(("1", "x"), 7)
    assert len({partition_of((str(i),), 8) for i in range(200)}) == 8


# -- the in-flight re-check over fake stores -----------------------------------------------------

Key = tuple[str, ...]
Item = dict[str, Any]


class FakeSource:
    """PostgreSQL as a dict pk -> item (the pk is the key); records are the items themselves."""

    def __init__(self, rows: dict[Key, Item]) -> None:
        self.rows = rows
        self.mapper = SourceTable(SETTINGS, SETTINGS.mapping()).mapper
        self.mapping = SETTINGS.mapping()
        self.on_fetch: Callable[[], None] = lambda: None

    def connect(self) -> Any:
        return nullcontext(None)

    def fetch(self, conn: Any, pks: Sequence[Sequence[str]]) -> tuple[str, list[tuple[Key, Item]]]:
        self.on_fetch()
        return "0/10", [(tuple(pk), dict(self.rows[tuple(pk)])) for pk in pks if tuple(pk) in self.rows]

    def row(self, record: tuple[Key, Item]) -> tuple[Key, Item]:
        return record

    def item(self, row: tuple[Key, Item]) -> tuple[Key, Item]:
        return row

    def primary_key_of_item(self, key: Key, item: Item | None) -> Key:
        return key


class FakeCatchUp:
    def __init__(self, status: str = "caught-up", on_wait: Callable[[], None] = lambda: None) -> None:
        self.status = status
        self.on_wait = on_wait
        self.waits = 0

    def wait(self, lsn: str, deadline: float) -> CatchUpState:
        self.waits += 1
        self.on_wait()
        return CatchUpState(self.status, "the bridge is 5 events behind" if self.status == "behind" else "", 0)  # type: ignore[arg-type]


def _rechecker(pg: Any, ddb: Any, catchup: FakeCatchUp, timeout: float = 5, confirm_rounds: int | None = None) -> Any:
    conf = SETTINGS.model_copy(
        update={"reconcile": SETTINGS.reconcile.model_copy(update={"in_flight_timeout_s": timeout})}
    )
    checker = Rechecker(conf, FakeSource(pg), catchup, sleep=lambda _: None, confirm_rounds=confirm_rounds)  # type: ignore[arg-type]
    checker._items = lambda ks: {k: ddb[k] for k in ks if k in ddb}  # type: ignore[method-assign,assignment]
    return checker


A, B, C = ("1", "a"), ("2", "b"), ("3", "c")


def test_agreeing_keys_resolve_without_waiting_for_the_bridge() -> None:
    catchup = FakeCatchUp()
    result = _rechecker({A: {"V": {"N": "1"}}}, {A: {"V": {"N": "1"}, "_src": {"S": "cdc"}}}, catchup).run(
        [Candidate(A, "different", A)]
    )
    assert (result.resolved, result.confirmed, result.unsettled, catchup.waits) == (1, [], [], 0)


def test_a_stable_difference_is_confirmed_after_the_configured_rounds() -> None:
    catchup = FakeCatchUp()
    pg = {A: {"V": {"N": "1"}}, B: {"V": {"N": "2"}}}
    ddb = {A: {"V": {"N": "9"}}, B: {"_deleted": {"BOOL": True}}, C: {"V": {"N": "3"}}}
    result = _rechecker(pg, ddb, catchup).run(
        [Candidate(A, "different", A), Candidate(B, "missing", B), Candidate(C, "extra")]
    )
    kinds = {d.key: d.kind for d in result.confirmed}
    assert kinds == {A: "different", B: "missing", C: "extra"}
    assert catchup.waits == SETTINGS.reconcile.confirm_rounds
    different = next(d for d in result.confirmed if d.key == A)
    assert [(f.attribute, f.expected, f.actual) for f in different.fields] == [("V", "1", "9")]
    assert "tombstone" in next(d for d in result.confirmed if d.key == B).detail


def test_a_change_in_flight_is_resolved_once_the_bridge_catches_up() -> None:
    pg = {A: {"V": {"N": "2"}}}
    ddb = {A: {"V": {"N": "1"}}}
    catchup = FakeCatchUp(on_wait=lambda: ddb.update({A: {"V": {"N": "2"}}}))  # the bridge applies it
    result = _rechecker(pg, ddb, catchup).run([Candidate(A, "different", A)])
    assert (result.resolved, result.confirmed, result.unsettled) == (1, [], [])


def test_a_row_changing_between_reads_is_never_confirmed() -> None:
    pg = {A: {"V": {"N": "1"}}}
    ddb = {A: {"V": {"N": "0"}}}
    checker = _rechecker(pg, ddb, FakeCatchUp(), timeout=0.3)
    counter = iter(range(10**9))
    checker.source.on_fetch = lambda: pg.update({A: {"V": {"N": str(next(counter) + 1)}}})
    result = checker.run([Candidate(A, "different", A)])
    assert result.confirmed == [] and [d.kind for d in result.unsettled] == ["unsettled"]
    assert "kept changing" in result.unsettled[0].detail


def test_a_bridge_that_never_catches_up_leaves_differences_unsettled_with_the_reason() -> None:
    result = _rechecker({A: {"V": {"N": "1"}}}, {}, FakeCatchUp("behind"), timeout=0.3).run(
        [Candidate(A, "missing", A)]
    )
    assert result.confirmed == [] and len(result.unsettled) == 1
    assert "5 events behind" in result.unsettled[0].detail


def test_up_to_1000_candidates_get_one_look_without_waiting_and_more_go_straight_to_the_waits() -> None:
    for count, waits, fetches in ((1000, 0, 1), (1001, 1, 2)):  # a waited look reads the row twice
        keys = [(str(i), "k") for i in range(count)]
        pg = {k: {"V": {"N": "1"}} for k in keys}
        catchup = FakeCatchUp()
        checker = _rechecker(pg, dict(pg), catchup)
        fetched = iter(range(1, 10))
        seen: list[int] = []
        checker.source.on_fetch = lambda: seen.append(next(fetched))  # noqa: B023 (called in this iteration)
        result = checker.run([Candidate(k, "different", k) for k in keys])
        assert (result.resolved, catchup.waits, len(seen)) == (count, waits, fetches), count


def test_under_repair_one_re_check_after_catch_up_confirms() -> None:
    pg, ddb = {A: {"V": {"N": "1"}}}, {A: {"V": {"N": "9"}}}
    catchup = FakeCatchUp()
    result = _rechecker(pg, ddb, catchup, confirm_rounds=1).run([Candidate(A, "different", A)])
    assert [d.kind for d in result.confirmed] == ["different"] and catchup.waits == 1
    behind = _rechecker(pg, ddb, FakeCatchUp("behind"), timeout=0.3, confirm_rounds=1)
    assert behind.run([Candidate(A, "different", A)]).confirmed == []  # never repaired while the bridge lags


def test_canonical_is_bytes() -> None:
    assert isinstance(canonical({"A": {"S": "x"}}), bytes)


@given(blocks=st.integers(0, 10_000), readers=st.integers(1, 8))
def test_block_ranges_cover_every_block_once_and_the_last_is_open(blocks: int, readers: int) -> None:
    ranges = block_ranges(blocks, readers)
    assert 1 <= len(ranges) <= readers
    assert ranges[0][0] == 0 and ranges[-1][1] is None  # rows past the measured size are still read
    for (_, end), (start, _) in itertools.pairwise(ranges):
        assert end == start  # contiguous: no block read twice or skipped
    assert all(end is None or start < end for start, end in ranges)  # no empty range


class FakeBatchGet:
    """BatchGetItem over a dict, leaving every other key of a request unprocessed the first time."""

    def __init__(self, items: dict[Key, Item]) -> None:
        self.items = items
        self.lock = threading.Lock()
        self.seen: set[Key] = set()
        self.calls = 0

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        ((table, request),) = RequestItems.items()
        assert request["ConsistentRead"] is True and len(request["Keys"]) <= 100
        found, unprocessed = [], []
        with self.lock:
            self.calls += 1
            for index, key in enumerate(request["Keys"]):
                ident = (key["CustomerId"]["N"], key["PaymentDateId"]["S"])
                if index % 2 and ident not in self.seen:
                    self.seen.add(ident)
                    unprocessed.append(key)
                elif ident in self.items:
                    found.append(self.items[ident])
        more = {table: {"Keys": unprocessed, "ConsistentRead": True}} if unprocessed else {}
        return {"Responses": {table: found}, "UnprocessedKeys": more}


@pytest.mark.parametrize("workers", [1, 4])
def test_get_items_reads_every_key_once_whatever_the_workers(workers: int) -> None:
    keys = [(str(i), f"2024-01-01#{i}") for i in range(1_050)]
    stored: dict[Key, Item] = {
        k: {"CustomerId": {"N": k[0]}, "PaymentDateId": {"S": k[1]}} for k in keys if int(k[0]) % 3
    }
    client = FakeBatchGet(stored)
    found = get_items(
        client.batch_get_item, "T", ["CustomerId", "PaymentDateId"], ["N", "S"], keys + keys[:10], workers=workers
    )
    assert found == stored
    assert client.calls >= 22  # 11 requests of up to 100 keys, each with unprocessed keys asked again
