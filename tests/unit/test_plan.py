"""The migration plan and the keyset SQL, without a database: ranges that cover the key space once,
segments that split the ranges once, a plan that survives its JSON, a fingerprint that notices what a
resume must share, and date ranges that include both named days."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backfill.plan import Plan, fingerprint
from bridge.config import load_settings
from bridge.errors import ConfigError
from bridge.keyset import KeyColumn, date_filter, date_window, keys_in, range_condition

examples = settings(max_examples=200, deadline=None)
MAPPING = load_settings(Path(__file__).parents[2] / "examples" / "payments" / "ddbridge.toml").mapping()
KEYS = [KeyColumn("payment_id", "bigint")]


def _plan(boundaries: list[int], segments: int, **extra: object) -> Plan:
    fields: dict[str, object] = {
        "migration_id": "m1",
        "source": "public.payments",
        "target": "Payments",
        "key_columns": KEYS,
        "boundaries": [[str(b)] for b in boundaries],
        "segments": segments,
        "start_date": None,
        "end_date": None,
        "fingerprint": "f",
        "created_at": "2026-12-01T00:00:00+00:00",
    }
    fields.update(extra)
    return Plan(**fields)  # type: ignore[arg-type]


boundary_lists = st.lists(st.integers(-1000, 1000), max_size=12, unique=True).map(sorted)


def _in_range(plan: Plan, index: int, key: int) -> bool:
    """The half-open range's membership, evaluated from its bounds as PostgreSQL would compare keys."""
    lower, upper = plan.bounds(index)
    return (lower is None or int(lower[0]) <= key) and (upper is None or key < int(upper[0]))


@examples
@given(boundaries=boundary_lists, key=st.integers(-1100, 1100))
def test_every_key_lies_in_exactly_one_range(boundaries: list[int], key: int) -> None:
    plan = _plan(boundaries, 1)
    assert plan.range_count == len(boundaries) + 1
    owners = [r for r in range(plan.range_count) if _in_range(plan, r, key)]
    assert len(owners) == 1, (boundaries, key, owners)


@examples
@given(boundaries=boundary_lists)
def test_ranges_are_contiguous_first_and_last_unbounded(boundaries: list[int]) -> None:
    plan = _plan(boundaries, 1)
    assert plan.bounds(0)[0] is None and plan.bounds(plan.range_count - 1)[1] is None
    for r in range(plan.range_count - 1):
        assert plan.bounds(r)[1] == plan.bounds(r + 1)[0] == [str(boundaries[r])]


@examples
@given(boundaries=boundary_lists, segments=st.integers(1, 9))
def test_each_range_belongs_to_exactly_one_segment(boundaries: list[int], segments: int) -> None:
    plan = _plan(boundaries, segments)
    owned = [r for s in range(segments) for r in plan.ranges_of(s)]
    assert sorted(owned) == list(range(len(boundaries) + 1))


@examples
@given(
    boundaries=boundary_lists,
    segments=st.integers(1, 9),
    rows=st.lists(st.integers(0, 10**6), max_size=13),
    start=st.one_of(st.none(), st.dates().map(date.isoformat)),
    position=st.one_of(st.none(), st.text(max_size=12)),
    last=st.one_of(st.none(), st.integers(1001, 2000).map(lambda k: [str(k)])),
)
def test_a_plan_survives_its_json(
    boundaries: list[int],
    segments: int,
    rows: list[int],
    start: str | None,
    position: str | None,
    last: list[str] | None,
) -> None:
    plan = _plan(
        boundaries,
        segments,
        range_rows=rows,
        total_rows=sum(rows),
        start_date=start,
        stream_position=position,
        last_key=last,
        bounded=True,
    )
    assert Plan.from_json(plan.to_json()) == plan


def test_the_last_range_ends_at_the_greatest_key_of_the_plan() -> None:
    plan = _plan([10, 20], 1, last_key=["35"], bounded=True)
    assert [plan.last_of(r) for r in range(plan.range_count)] == [None, None, ["35"]]
    assert not plan.empty_at_plan()
    assert _plan([], 1, bounded=True).empty_at_plan()  # an empty table: the stream brings every row
    before = Plan.from_json(
        json.dumps({k: v for k, v in json.loads(plan.to_json()).items() if k not in ("last_key", "bounded")})
    )
    assert before.last_of(2) is None and not before.empty_at_plan()  # a plan stored before the bound: open
    clause, params = range_condition(KEYS, ["20"], None, last=["35"])
    assert clause.as_string(None) == 'TRUE AND ("payment_id") >= (%s::bigint) AND ("payment_id") <= (%s::bigint)'
    assert params == ["20", "35"]
    later, params = range_condition(KEYS, ["20"], None, after=["30"], last=["35"])
    assert later.as_string(None) == 'TRUE AND ("payment_id") > (%s::bigint) AND ("payment_id") <= (%s::bigint)'
    assert params == ["30", "35"]


def test_the_fingerprint_is_the_hash_of_what_a_resume_must_share() -> None:
    day = date(2024, 3, 1)
    payload = {  # written out here, independently of backfill.plan
        "end_date": "2024-03-02",
        "mapping": json.loads(MAPPING.model_dump_json(exclude_defaults=True)),
        "segments": 2,
        "start_date": "2024-03-01",
    }
    expected = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
    assert fingerprint(MAPPING, day, day + timedelta(days=1), 2) == expected


def test_a_setting_left_at_its_default_does_not_change_the_fingerprint() -> None:
    explicit = MAPPING.model_copy(update={"attribute_naming": "pascal", "date_column": MAPPING.date_column})
    assert MAPPING.attribute_naming == "pascal"  # the default, set explicitly above
    assert fingerprint(explicit, None, None, 1) == fingerprint(MAPPING, None, None, 1)


def test_the_fingerprint_changes_with_the_mapping_the_dates_and_the_segments() -> None:
    day = date(2024, 3, 1)
    base = fingerprint(MAPPING, day, day, 2)
    assert fingerprint(MAPPING, day, day, 2) == base
    variants = [
        fingerprint(MAPPING, day, day, 3),
        fingerprint(MAPPING, None, day, 2),
        fingerprint(MAPPING, day, None, 2),
        fingerprint(MAPPING, day, day + timedelta(days=1), 2),
        fingerprint(MAPPING, day - timedelta(days=1), day, 2),
        fingerprint(MAPPING.model_copy(update={"target": "Other"}), day, day, 2),
        fingerprint(MAPPING.model_copy(update={"exclude_columns": ["notes"]}), day, day, 2),
    ]
    assert base not in variants and len(set(variants)) == len(variants)


@examples
@given(start=st.dates(max_value=date(9998, 1, 1)), days=st.integers(0, 400), offset_s=st.integers(0, 86399))
def test_a_date_range_includes_both_named_days_and_nothing_beyond(start: date, days: int, offset_s: int) -> None:
    end = start + timedelta(days=days)
    lower, upper = date_window(start, end)
    assert lower is not None and upper is not None

    def inside(moment: datetime) -> bool:  # the SQL: column >= lower AND column < upper
        return datetime.combine(lower, time()) <= moment < datetime.combine(upper, time())

    within = timedelta(seconds=offset_s, microseconds=999999)
    assert inside(datetime.combine(start, time()) + within)
    assert inside(datetime.combine(end, time()) + within)  # late on the end day
    assert not inside(datetime.combine(end + timedelta(days=1), time()))
    assert not inside(datetime.combine(start, time()) - timedelta(microseconds=1))


def test_the_date_filter_binds_the_window_and_needs_a_date_column() -> None:
    clause, params = date_filter(MAPPING, date(2024, 1, 1), date(2024, 1, 31))
    assert clause.as_string(None) == ' AND "payment_date" >= %s AND "payment_date" < %s'
    assert params == [date(2024, 1, 1), date(2024, 2, 1)]
    only_end = date_filter(MAPPING, None, date(2024, 1, 31))
    assert (only_end[0].as_string(None), only_end[1]) == (' AND "payment_date" < %s', [date(2024, 2, 1)])
    undated = MAPPING.model_copy(update={"date_column": None})
    for mapping in (MAPPING, undated):  # no range: no clause, and no date column needed
        clause, params = date_filter(mapping, None, None)
        assert (clause.as_string(None), params) == ("", [])
    with pytest.raises(ConfigError, match=r"need \[\[tables\]\]\.date_column \(e\.g\. date_column = 'payment_date'\)"):
        date_filter(undated, date(2024, 1, 1), None)
    assert date_window(date(2024, 1, 1), None) == (date(2024, 1, 1), None)


def test_a_range_condition_reads_past_the_last_key_of_a_chunk_instead_of_the_lower_bound() -> None:
    keys = [KeyColumn("a", "bigint"), KeyColumn("b", "text")]
    first, params = range_condition(keys, ["1", "x"], ["5", "y"])
    assert (
        first.as_string(None) == 'TRUE AND ("a", "b") >= (%s::bigint, %s::text) AND ("a", "b") < (%s::bigint, %s::text)'
    )
    assert params == ["1", "x", "5", "y"]
    lower, upper, after = ["1", "x"], ["5", "y"], ["3", "z"]
    range_condition(keys, lower, upper)
    range_condition(keys, lower, upper, after=after)
    assert (lower, upper, after) == (["1", "x"], ["5", "y"], ["3", "z"])  # the caller's keys are left alone
    later, params = range_condition(keys, ["1", "x"], None, after=["3", "z"])
    assert later.as_string(None) == 'TRUE AND ("a", "b") > (%s::bigint, %s::text)'
    assert params == ["3", "z"]
    assert range_condition(keys, None, None)[0].as_string(None) == "TRUE"
    assert keys_in(keys, 2).as_string(None) == '("a", "b") IN ((%s::bigint, %s::text), (%s::bigint, %s::text))'
