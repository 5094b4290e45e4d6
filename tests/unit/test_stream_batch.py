"""``plan_batch``: one batch of Kafka records to the writes it asks for, without any server. Expected
items are written out as literals (the payments example's mapping: CustomerId / PaymentDateId)."""

from __future__ import annotations

from typing import Any, Literal

import pytest

from bridge.events import BUILTIN_TYPES
from bridge.mapping import RowMapper
from bridge.rules import WriteRules
from stream.batch import BatchPlan, TableRoute, plan_batch
from tests.unit.stream_fakes import TOPIC, FakeMessage, change, example_settings, payment, payment_routes

NOW_S = 1_700_000_000.0
ROUTES = payment_routes(example_settings())


def _plan(
    *values: bytes | None, floors: dict[str, int] | None = None, policy: Literal["stop", "skip"] = "stop"
) -> BatchPlan:
    records = [FakeMessage(offset, value=v) for offset, v in enumerate(values, start=41)]
    return plan_batch(records, ROUTES, BUILTIN_TYPES, floors=floors or {}, truncate_policy=policy, now_s=NOW_S)


def _writes(plan: BatchPlan) -> list[tuple[str, str, int | None, bool, int | None]]:
    """(partition key, sort key, LSN, tombstone, offset of the record) of each planned write."""
    return [
        (a.key.parts[0][2], a.key.parts[1][2], a.lsn, a.tombstone, record.offset())
        for a, record in plan.writes.get(TOPIC, [])
    ]


def test_changes_of_one_item_in_a_batch_leave_one_write_the_highest_lsn() -> None:
    plan = _plan(
        change("c", 100, after=payment(7)),
        change("u", 120, before=payment(7), after=payment(7, payment_amount="13.00")),
        change("u", 110, before=payment(7), after=payment(7, payment_amount="99.00")),  # replayed from another batch
        change("c", 105, after=payment(8)),
    )
    assert _writes(plan) == [("3", "2024-05-01#7", 120, False, 42), ("3", "2024-05-01#8", 105, False, 44)]
    assert plan.writes[TOPIC][0][0].item["PaymentAmount"] == {"N": "13"}
    assert plan.coalesced == {"public.payments": 2}
    assert plan.events == 4 and plan.dead == [] and plan.truncate is None
    assert plan.consumed == {("public.payments", "c"): 2, ("public.payments", "u"): 2}
    assert [e.lsn for _, e in plan.schemas] == [100, 120, 110, 105]
    assert plan.newest_ts_ms == {"public.payments": 1_700_000_000_000}


def test_a_payment_date_correction_moves_the_item_a_tombstone_and_a_put_at_one_lsn() -> None:
    plan = _plan(change("u", 130, before=payment(7), after=payment(7, payment_date="2024-05-03")))
    assert _writes(plan) == [("3", "2024-05-01#7", 130, True, 41), ("3", "2024-05-03#7", 130, False, 41)]
    tombstone = plan.writes[TOPIC][0][0].item
    assert tombstone["_deleted"] == {"BOOL": True} and tombstone["_ttl"] == {"N": str(int(NOW_S) + 7 * 86400)}


def test_a_record_that_cannot_be_decoded_is_dead_lettered_alone() -> None:
    plan = _plan(
        change("c", 100, after=payment(7, payment_amount=["not", "a", "number"])),
        b"{not json",
        change("c", 101, after=payment(8)),
    )
    assert [(d.message.offset(), d.table, d.error_class) for d in plan.dead] == [
        (41, "public.payments", "CodecError"),
        (42, "public.payments", "CodecError"),
    ]
    assert "payment_amount" in plan.dead[0].reason
    assert _writes(plan) == [("3", "2024-05-01#8", 101, False, 43)]
    assert plan.events == 3


@pytest.mark.parametrize("bug", [TypeError, KeyError, ValueError, AttributeError])
def test_a_programming_error_escapes_the_planner(bug: type[Exception], monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any) -> Any:
        raise bug("a bug in the write rules")

    monkeypatch.setattr(ROUTES[TOPIC].rules, "for_event", broken)
    with pytest.raises(bug):
        _plan(change("c", 100, after=payment(7)))


def test_an_item_over_400_kb_is_rejected_and_the_older_version_of_it_in_the_batch_still_applies() -> None:
    plan = _plan(
        change("c", 100, after=payment(7)),
        change("u", 110, before=payment(7), after=payment(7, payment_status="x" * 410_000)),
    )
    assert [(d.message.offset(), d.error_class) for d in plan.dead] == [(42, "ItemRejected")]
    assert _writes(plan) == [("3", "2024-05-01#7", 100, False, 41)]


def test_kafka_tombstones_and_other_topics_write_nothing() -> None:
    other = FakeMessage(41, value=change("c", 100, after=payment(7)), topic="ddbridge.public.other")
    plan = plan_batch(
        [other, FakeMessage(42, value=None)], ROUTES, BUILTIN_TYPES, floors={}, truncate_policy="stop", now_s=NOW_S
    )
    assert plan.writes == {} and plan.events == 0
    assert plan.consumed == {("public.payments", "tombstone"): 1}


def test_a_truncate_stops_planning_the_batch() -> None:
    plan = _plan(change("c", 100, after=payment(7)), change("t", 200), change("c", 210, after=payment(8)))
    assert plan.truncate is not None and plan.truncate[0] == "public.payments" and plan.truncate[1].lsn == 200
    assert [e.lsn for _, e in plan.schemas] == [100]  # nothing after the truncate was planned
    assert _writes(plan) == [("3", "2024-05-01#7", 100, False, 41)]  # planned, but the loop writes none of it


def test_a_truncate_under_the_skip_policy_is_passed() -> None:
    plan = _plan(change("t", 200), change("c", 210, after=payment(8)), policy="skip")
    assert plan.truncate is None and _writes(plan) == [("3", "2024-05-01#8", 210, False, 42)]


def test_a_recovered_truncate_is_passed_and_changes_from_before_it_are_dropped() -> None:
    plan = _plan(
        change("c", 150, after=payment(7)),  # before the recovered TRUNCATE at 200: dropped
        change("t", 200),  # the recovered TRUNCATE itself: passed
        change("c", 200, after=payment(8)),  # at the floor: applied (only changes below it are dropped)
        change("c", 210, after=payment(9)),
        floors={"public.payments": 200},
    )
    assert plan.truncate is None and plan.below_floor == 1
    assert _writes(plan) == [("3", "2024-05-01#8", 200, False, 43), ("3", "2024-05-01#9", 210, False, 44)]


def test_a_delete_is_a_tombstone_of_the_old_item() -> None:
    plan = _plan(change("d", 120, before=payment(8, payment_date="2024-06-30")))
    assert _writes(plan) == [("3", "2024-06-30#8", 120, True, 41)]


def test_records_after_a_kafka_tombstone_or_a_rejected_item_are_still_planned() -> None:
    plan = _plan(
        change("c", 100, after=payment(7)),
        None,  # the Kafka tombstone after a delete
        change("c", 101, after=payment(8)),
        change("c", 102, after=payment(9, payment_status="x" * 410_000)),  # over 400 KB: dead-lettered
        change("c", 103, after=payment(10)),
        None,
    )
    assert [key[1] for key in _writes(plan)] == ["2024-05-01#7", "2024-05-01#8", "2024-05-01#10"]
    assert plan.consumed[("public.payments", "tombstone")] == 2
    assert [(d.message.offset(), d.table, d.error_class) for d in plan.dead] == [
        (44, "public.payments", "ItemRejected")
    ]
    assert "400 KB" in plan.dead[0].reason


def test_the_newest_source_time_is_the_latest_of_the_batch_not_the_last() -> None:
    plan = _plan(
        change("c", 100, after=payment(7), ts_ms=1_700_000_009_000),
        change("c", 101, after=payment(8), ts_ms=1_700_000_001_000),  # committed earlier, delivered later
    )
    assert plan.newest_ts_ms == {"public.payments": 1_700_000_009_000}


def test_every_change_from_before_a_recovered_truncate_is_counted() -> None:
    plan = _plan(
        change("c", 150, after=payment(7)),
        change("u", 160, before=payment(8), after=payment(8, payment_date="2024-05-03")),  # a move: 2 actions
        floors={"public.payments": 200},
    )
    assert plan.below_floor == 3 and _writes(plan) == []


def test_an_excluded_column_is_never_decoded() -> None:
    """A column left out of the mapping (exclude_columns) cannot dead-letter its row, whatever it holds."""
    settings = example_settings()
    mapping = settings.mapping("public.payments").model_copy(update={"exclude_columns": ["payment_amount"]})
    route = payment_routes(settings)[TOPIC]
    routes = {TOPIC: TableRoute(mapping, WriteRules(RowMapper(mapping), settings.bookkeeping, 86400), route.sink)}
    bad = FakeMessage(41, value=change("c", 100, after=payment(7, payment_amount=["not", "a", "number"])))
    plan = plan_batch([bad], routes, BUILTIN_TYPES, floors={}, truncate_policy="stop", now_s=NOW_S)
    assert plan.dead == []
    ((action, _record),) = plan.writes[TOPIC]
    assert "PaymentAmount" not in action.item and action.item["PaymentStatus"] == {"S": "completed"}
