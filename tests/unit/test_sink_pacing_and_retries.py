"""The sink's retries (a stream rides out an outage) and the backfill's write budget: a steady rate
within the budget, multiplicative decrease on throttling (once per cool-down), additive climb back;
the sink reserves, settles and reports throttles; the budget is resolved from the table's capacity."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from pydantic import ValidationError

from bridge import sink as sink_module
from bridge.config import MigrationSettings
from bridge.errors import TransientError
from bridge.pacing import WritePacer
from bridge.rules import WriteAction
from bridge.sink import DynamoSink, table_write_units
from bridge.tables import write_capacity
from tests.model import MAPPINGS, PgRow, make_rules


class Time:
    """A clock that moves only when someone sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


def pacer(budget: float, **kwargs: Any) -> tuple[WritePacer, Time]:
    t = Time()
    return WritePacer(budget, clock=t.clock, sleep=t.sleep, **kwargs), t


def test_writes_are_spread_at_the_budget() -> None:
    p, t = pacer(100.0)
    for _ in range(1000):
        p.acquire(1)
        p.settle(1, 1)
    assert t.now == pytest.approx(10.0, rel=0.01)  # 1,000 units at 100 a second
    assert p.state().units == 1000


def test_unused_budget_is_spent_at_most_a_fifth_of_a_second_at_once() -> None:
    p, t = pacer(100.0)
    t.now = 60.0  # a minute idle
    for _ in range(40):
        p.acquire(1)
    assert t.now - 60.0 == pytest.approx(0.2, abs=0.011)  # 20 units saved, 20 more at 100 a second


def test_a_throttle_cuts_the_rate_once_per_cool_down_and_the_rate_climbs_back_to_the_budget() -> None:
    p, t = pacer(1000.0, decrease=0.5, probe=0.1, cooldown_s=1.0)
    p.throttled()
    p.throttled()  # the same burst: counted, not cut again
    assert p.state().rate == 500.0 and p.state().throttles == 2
    t.now += 1.0
    p.settle(0, 600)  # DynamoDB served more than the rate: the cut is the multiplicative one
    p.throttled()
    assert p.state().rate == 250.0
    t.now += 1.0  # cooling down: no climb yet
    p.acquire(0)
    assert p.state().rate == 250.0
    t.now += 1.0  # then a tenth of the new rate per second
    p.acquire(0)
    assert p.state().rate == pytest.approx(275.0)
    t.now += 60.0
    p.acquire(0)
    assert p.state().rate == 1000.0  # never above the budget


def test_after_a_deep_drop_the_climb_is_reckoned_on_a_fifth_of_the_budget() -> None:
    p, t = pacer(1000.0, probe=0.05, cooldown_s=1.0)
    t.now += 1.0
    p.settle(0, 50)  # a storm: DynamoDB served 50 units in a second
    p.throttled()
    assert p.state().rate == pytest.approx(50.0)
    t.now += 2.0  # 1 s cooling down, then 1 s of climbing by 5% of 200
    p.acquire(0)
    assert p.state().rate == pytest.approx(60.0)


def test_a_throttle_drops_the_rate_to_what_dynamodb_served_when_that_is_lower() -> None:
    p, t = pacer(2000.0, decrease=0.7, cooldown_s=1.0)
    for _ in range(300):  # 2 s in which DynamoDB accepted 150 units a second
        t.now += 2.0 / 300
        p.settle(0, 1)
    p.throttled()
    assert p.state().rate == pytest.approx(150.0)
    t.now += 0.5
    p.settle(0, 100)
    t.now += 0.1  # inside the cool-down: no second drop
    p.throttled()
    assert p.state().rate == pytest.approx(150.0)


def test_an_unthrottled_pacer_stays_at_its_budget() -> None:
    p, t = pacer(500.0)
    t.now += 100.0
    p.acquire(0)
    assert p.state().rate == 500.0


def test_the_rate_never_falls_below_its_floor() -> None:
    p, t = pacer(1000.0, decrease=0.1, floor=0.05)
    for _ in range(10):
        t.now += 1.0
        p.throttled()
    assert p.state().rate == 50.0


def test_a_write_that_consumed_more_than_it_reserved_delays_the_next() -> None:
    p, t = pacer(10.0)
    p.acquire(1)
    p.settle(1, 5)  # a 5 KB item estimated at 1 unit
    before = t.now
    p.acquire(1)
    assert t.now - before == pytest.approx(0.5, abs=0.01)  # 4 units of debt plus this one, at 10 a second


def test_a_budget_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        WritePacer(0)


class Caller:
    """PutItem answering with scripted errors, then success with the given consumed capacity."""

    def __init__(self, errors: list[str], table_units: float) -> None:
        self.errors = errors
        self.table_units = table_units
        self.requests: list[dict[str, Any]] = []

    def __call__(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        if self.errors:
            code = self.errors.pop(0)
            raise ClientError({"Error": {"Code": code, "Message": code}}, "PutItem")
        units = self.table_units
        return {"ConsumedCapacity": {"CapacityUnits": units + 2, "Table": {"CapacityUnits": units}}}


def _sink(caller: Caller, p: WritePacer | None = None, **options: Any) -> DynamoSink:
    rules = make_rules(MAPPINGS["plain"])
    settings: dict[str, Any] = {"concurrency": 1, "retry_attempts": 5, "backoff_ms": 1, "max_backoff_s": 0.001}
    return DynamoSink(None, rules, put_item=caller, pacer=p, **{**settings, **options})  # type: ignore[arg-type]


def _action() -> WriteAction:
    return make_rules(MAPPINGS["plain"]).snapshot(PgRow(1, 2, "2026-01-01", 3, "note").row())


def test_the_sink_reports_throttles_to_the_pacer_and_settles_the_table_units_dynamodb_reports() -> None:
    p, _ = pacer(1000.0)
    caller = Caller(["ProvisionedThroughputExceededException", "ThrottlingException"], table_units=3.0)
    result = _sink(caller, p).put(_action())
    assert result.outcome == "applied"
    assert p.state().throttles == 2
    assert p.state().units == 3.0  # the table's units, not the total with the GSIs
    assert all(r["ReturnConsumedCapacity"] == "INDEXES" for r in caller.requests)


def test_a_failed_condition_is_charged_its_estimate_and_an_unpaced_sink_asks_for_no_capacity() -> None:
    p, _ = pacer(1000.0)
    result = _sink(Caller(["ConditionalCheckFailedException"], 1.0), p).put(_action())
    assert result.outcome == "stale"
    assert p.state().units == table_write_units(_action().item)
    caller = Caller([], 1.0)
    _sink(caller, None).put(_action())
    assert "ReturnConsumedCapacity" not in caller.requests[0]


def test_table_write_units_are_per_started_kb() -> None:
    assert table_write_units({"id": {"S": "x" * 1000}}) == 1  # 1,003 bytes
    assert table_write_units({"id": {"S": "x" * 1022}}) == 1  # 1,024 bytes: exactly one KB
    assert table_write_units({"id": {"S": "x" * 1023}}) == 2


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        (
            {
                "BillingModeSummary": {"BillingMode": "PROVISIONED"},
                "ProvisionedThroughput": {"WriteCapacityUnits": 750},
            },
            (750.0, "provisioned write capacity"),
        ),
        ({"ProvisionedThroughput": {"WriteCapacityUnits": 20}}, (20.0, "provisioned write capacity")),
        (
            {
                "BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"},
                "ProvisionedThroughput": {"WriteCapacityUnits": 0},
                "OnDemandThroughput": {"MaxWriteRequestUnits": 2500},
                "WarmThroughput": {"WriteUnitsPerSecond": 9000},
            },
            (2500.0, "on-demand maximum (OnDemandThroughput.MaxWriteRequestUnits)"),
        ),
        (
            {
                "BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"},
                "OnDemandThroughput": {"MaxWriteRequestUnits": -1},
                "WarmThroughput": {"WriteUnitsPerSecond": 9000},
            },
            (9000.0, "on-demand warm throughput"),
        ),
        (
            {"BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"}},
            (4000.0, "a new on-demand table's initial throughput"),
        ),
    ],
)
def test_write_capacity_of_each_kind_of_table(table: dict[str, Any], expected: tuple[float, str]) -> None:
    assert write_capacity(table) == expected


def test_one_budget_at_a_time() -> None:
    with pytest.raises(ValidationError, match="not both"):
        MigrationSettings(max_write_units_per_s=100, target_utilization=0.5)
    with pytest.raises(ValidationError):
        MigrationSettings(target_utilization=1.5)


def test_a_sink_with_an_outage_tolerance_retries_past_its_attempts_and_one_without_stops() -> None:
    throttles = ["ProvisionedThroughputExceededException"] * 12
    tolerant = _sink(Caller(list(throttles), 1.0), retry_attempts=3, retry_for_s=30.0)
    assert tolerant.put(_action()).outcome == "applied"
    strict = _sink(Caller(list(throttles), 1.0), retry_attempts=3)
    with pytest.raises(TransientError, match=r"after 3 attempts.*raise migration\.retry_attempts"):
        strict.put(_action())


def test_a_stopping_sink_gives_up_after_its_grace_instead_of_the_whole_outage_tolerance(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sink_module, "STOP_GRACE_S", 0.05)
    sink = _sink(Caller(["ProvisionedThroughputExceededException"] * 100_000, 1.0), retry_for_s=900.0)
    sink.stopping()
    with pytest.raises(TransientError, match=r"after 900 s of retries.*raise stream\.outage_tolerance_s"):
        sink.put(_action())
