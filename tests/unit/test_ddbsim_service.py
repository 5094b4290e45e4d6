"""The service-like DynamoDB layer's answers: charges, throttling in the service's own shape, faults.

The upstream is a small in-memory table store written here (dynalite's part in the stack); every
expected figure is a literal worked out from AWS's documented rules (1 WCU per started KB of the
larger of old and new item, GSI writes, 4 KB read units halved when eventually consistent).
"""

from __future__ import annotations

import statistics
from typing import Any

import pytest
from pydantic import ValidationError

from ops.ddbsim.service import Profile, Service

TABLE = "Payments"
ARN = f"arn:aws:dynamodb:us-east-1:000000000000:table/{TABLE}"


class Store:
    """dynalite's part: one table keyed by ``id``, a KEYS_ONLY index on ``status``; PutItem honours
    ``attribute_not_exists(id)``."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []

    def __call__(self, operation: str, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.calls.append(operation)
        if operation == "DescribeTable":
            if request["TableName"] != TABLE:
                return 400, {"__type": "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException"}
            return 200, {
                "Table": {
                    "TableName": TABLE,
                    "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
                    "GlobalSecondaryIndexes": [
                        {
                            "IndexName": "byStatus",
                            "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"}],
                            "Projection": {"ProjectionType": "KEYS_ONLY"},
                        }
                    ],
                }
            }
        if operation == "GetItem":
            item = self.items.get(request["Key"]["id"]["S"])
            return 200, ({"Item": item} if item else {})
        if operation == "BatchGetItem":
            keys = request["RequestItems"][TABLE]["Keys"]
            found = [self.items[k["id"]["S"]] for k in keys if k["id"]["S"] in self.items]
            return 200, {"Responses": {TABLE: found}, "UnprocessedKeys": {}}
        if operation == "PutItem":
            key = request["Item"]["id"]["S"]
            if request.get("ConditionExpression") == "attribute_not_exists(id)" and key in self.items:
                return 400, {"__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"}
            self.items[key] = request["Item"]
            return 200, {}
        if operation == "DeleteItem":
            self.items.pop(request["Key"]["id"]["S"], None)
            return 200, {}
        if operation == "BatchWriteItem":
            for write in request["RequestItems"].get(TABLE, []):
                item = write["PutRequest"]["Item"]
                self.items[item["id"]["S"]] = item
            return 200, {"UnprocessedItems": {}}
        if operation in ("Query", "Scan"):
            return 200, {"Items": list(self.items.values())}
        return 200, {}


def item(key: str, size: int, status: str | None = None) -> dict[str, Any]:
    """An item of exactly ``size`` bytes: ``id`` (2 + len(key)) and ``pad`` (3 + its length)[, ``status``]."""
    extra = 6 + len(status) if status else 0
    out = {"id": {"S": key}, "pad": {"S": "x" * (size - 2 - len(key) - 3 - extra)}}
    if status:
        out["status"] = {"S": status}
    return out


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def service(**profile: Any) -> tuple[Service, Store, Clock]:
    store, clock = Store(), Clock()
    return Service(store, Profile(**profile), clock=clock), store, clock


def put(svc: Service, it: dict[str, Any], **extra: Any) -> Any:
    return svc.handle("PutItem", {"TableName": TABLE, "Item": it, **extra})


def test_a_put_is_charged_per_started_kb_of_the_larger_of_old_and_new() -> None:
    svc, _, _ = service()
    first = put(svc, item("a", 1500), ReturnConsumedCapacity="TOTAL")
    assert first.status == 200
    assert first.body["ConsumedCapacity"] == {"TableName": TABLE, "CapacityUnits": 2.0, "WriteCapacityUnits": 2.0}
    smaller = put(svc, item("a", 500), ReturnConsumedCapacity="TOTAL")  # replaces 1,500 bytes: 2 units
    assert smaller.body["ConsumedCapacity"]["CapacityUnits"] == 2.0
    exactly = put(svc, item("b", 1024), ReturnConsumedCapacity="TOTAL")
    assert exactly.body["ConsumedCapacity"]["CapacityUnits"] == 1.0
    assert svc.stats.tables[TABLE].write_units == 5.0


def test_the_capacity_request_is_not_forwarded_and_no_capacity_is_reported_unasked() -> None:
    svc, store, _ = service()
    assert "ConsumedCapacity" not in put(svc, item("a", 100)).body
    assert store.calls == ["DescribeTable", "GetItem", "PutItem"]


def test_index_writes_are_charged_on_the_projected_entry_and_reported_with_indexes() -> None:
    svc, _, _ = service()
    answer = put(svc, item("a", 3000, status="NEW"), ReturnConsumedCapacity="INDEXES")
    assert answer.body["ConsumedCapacity"] == {
        "TableName": TABLE,
        "CapacityUnits": 4.0,
        "WriteCapacityUnits": 4.0,
        "Table": {"CapacityUnits": 3.0, "WriteCapacityUnits": 3.0},
        "GlobalSecondaryIndexes": {"byStatus": {"CapacityUnits": 1.0, "WriteCapacityUnits": 1.0}},
    }
    moved = put(svc, item("a", 3000, status="PAID"), ReturnConsumedCapacity="INDEXES")  # delete + put in the index
    assert moved.body["ConsumedCapacity"]["GlobalSecondaryIndexes"] == {
        "byStatus": {"CapacityUnits": 2.0, "WriteCapacityUnits": 2.0}
    }
    same_key = put(svc, {**item("a", 2000, status="PAID")}, ReturnConsumedCapacity="INDEXES")  # entry unchanged
    assert "GlobalSecondaryIndexes" not in same_key.body["ConsumedCapacity"]


def test_a_failed_conditional_write_is_charged_and_answered_unchanged() -> None:
    svc, store, _ = service()
    put(svc, item("a", 2500, status="NEW"))
    before = svc.stats.tables[TABLE].write_units
    failed = put(
        svc,
        item("a", 100, status="PAID"),
        ConditionExpression="attribute_not_exists(id)",
        ReturnConsumedCapacity="TOTAL",
    )
    assert failed.status == 400
    assert failed.body == {"__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"}
    assert svc.stats.tables[TABLE].write_units == before + 3.0  # the 2,500-byte item it would replace; no index write
    assert store.items["a"]["status"] == {"S": "NEW"}


def test_a_provisioned_table_throttles_as_the_service_does_and_refills_each_second() -> None:
    svc, store, clock = service(capacity="provisioned", write_units_per_s=5)
    answers = [put(svc, item(f"k{i}", 100)) for i in range(6)]
    assert [a.status for a in answers] == [200] * 5 + [400]
    assert answers[5].body == {
        "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "message": "The level of configured provisioned throughput for the table was exceeded. "
        "Consider increasing your provisioning level with the UpdateTable API.",
        "ThrottlingReasons": [{"reason": "TableWriteProvisionedThroughputExceeded", "resource": ARN}],
    }
    assert "k5" not in store.items  # a throttled write is not applied
    clock.now += 1.0
    assert put(svc, item("k5", 100)).status == 200
    assert svc.stats.tables[TABLE].throttles == {"TableWriteProvisionedThroughputExceeded": 1}


def test_one_hot_key_is_throttled_by_its_partition_before_the_table() -> None:
    svc, _, clock = service(capacity="provisioned", write_units_per_s=40_000, partitions=40)
    statuses = [put(svc, item("hot", 100)).status for _ in range(1001)]
    assert statuses.count(200) == 1000  # one partition: 1,000 units a second
    answer = put(svc, item("hot", 100))
    assert answer.body["ThrottlingReasons"] == [{"reason": "TableWriteKeyRangeThroughputExceeded", "resource": ARN}]
    assert answer.body["__type"].endswith("#ProvisionedThroughputExceededException")
    assert put(svc, item("cold", 100)).status == 200  # another key, most likely another partition
    clock.now += 0.5
    assert put(svc, item("hot", 100)).status == 200


def test_an_on_demand_table_over_its_maximum_answers_throttling_exception() -> None:
    svc, _, _ = service(capacity="on-demand", write_units_per_s=3)
    answers = [put(svc, item(f"k{i}", 100)) for i in range(4)]
    assert answers[3].status == 400
    assert answers[3].body["__type"] == "com.amazonaws.dynamodb.v20120810#ThrottlingException"
    assert answers[3].body["ThrottlingReasons"] == [
        {"reason": "TableWriteMaxOnDemandThroughputExceeded", "resource": ARN}
    ]


def test_an_index_out_of_capacity_throttles_the_table_write_and_names_the_index() -> None:
    svc, _, _ = service(capacity="provisioned", write_units_per_s=3)
    # 1 KB items: each costs the table 1 unit and the index 1; items without a status skip the index.
    assert put(svc, item("a", 900, status="NEW")).status == 200
    assert put(svc, item("b", 900, status="NEW")).status == 200
    assert put(svc, item("c", 900, status="NEW")).status == 200
    answer = put(svc, item("d", 900, status="NEW"))
    reasons = answer.body["ThrottlingReasons"]
    assert {"reason": "IndexWriteProvisionedThroughputExceeded", "resource": f"{ARN}/index/byStatus"} in reasons


def test_a_batch_write_returns_its_throttled_requests_as_unprocessed() -> None:
    svc, store, _ = service(capacity="provisioned", write_units_per_s=3)
    writes = [{"PutRequest": {"Item": item(f"k{i}", 100)}} for i in range(5)]
    answer = svc.handle("BatchWriteItem", {"RequestItems": {TABLE: writes}, "ReturnConsumedCapacity": "TOTAL"})
    assert answer.status == 200
    assert answer.body["UnprocessedItems"] == {TABLE: writes[3:]}
    assert sorted(store.items) == ["k0", "k1", "k2"]
    assert answer.body["ConsumedCapacity"] == [{"TableName": TABLE, "CapacityUnits": 3.0, "WriteCapacityUnits": 3.0}]
    again = svc.handle("BatchWriteItem", {"RequestItems": {TABLE: writes[3:]}})
    assert again.status == 400 and again.body["__type"].endswith("#ProvisionedThroughputExceededException")


def test_reads_are_charged_per_4_kb_and_halved_when_eventually_consistent() -> None:
    svc, _, _ = service()
    put(svc, item("a", 5000))
    key = {"id": {"S": "a"}}
    eventual = svc.handle("GetItem", {"TableName": TABLE, "Key": key, "ReturnConsumedCapacity": "TOTAL"})
    assert eventual.body["ConsumedCapacity"] == {"TableName": TABLE, "CapacityUnits": 1.0, "ReadCapacityUnits": 1.0}
    strong = svc.handle(
        "GetItem", {"TableName": TABLE, "Key": key, "ConsistentRead": True, "ReturnConsumedCapacity": "TOTAL"}
    )
    assert strong.body["ConsumedCapacity"]["CapacityUnits"] == 2.0
    missing = svc.handle("GetItem", {"TableName": TABLE, "Key": {"id": {"S": "zz"}}, "ReturnConsumedCapacity": "TOTAL"})
    assert missing.body["ConsumedCapacity"]["CapacityUnits"] == 0.5
    put(svc, item("b", 3000))
    scan = svc.handle("Scan", {"TableName": TABLE, "ReturnConsumedCapacity": "TOTAL"})  # 8,000 bytes together
    assert scan.body["ConsumedCapacity"]["CapacityUnits"] == 1.0


def test_fail_next_answers_500_without_applying_and_lose_next_applies_without_answering() -> None:
    svc, store, _ = service(fail_next=1, lose_next=1)
    failed = put(svc, item("a", 100))
    assert failed.status == 500 and failed.body["__type"] == "com.amazon.coral.service#InternalServerError"
    assert "a" not in store.items
    lost = put(svc, item("a", 100))
    assert lost.lose and "a" in store.items
    assert not put(svc, item("b", 100)).lose
    assert (svc.stats.injected_errors, svc.stats.lost_responses) == (1, 1)


def test_an_outage_answers_every_call_503_and_faults_keep_to_their_tables() -> None:
    svc, store, _ = service(unavailable=True)
    assert svc.handle("ListTables", {}).status == 503
    assert put(svc, item("a", 100)).status == 503
    svc.configure({"unavailable": False, "tables": ["Other*"], "error_rate": 1.0})
    assert put(svc, item("a", 100)).status == 200  # Payments is not in the faulted tables
    svc.configure({"tables": ["Pay*"]})
    assert put(svc, item("b", 100)).status == 500
    assert sorted(store.items) == ["a"]


def test_a_rate_change_keeps_the_saved_capacity_capped_by_the_new_rate() -> None:
    svc, _, clock = service(capacity="provisioned", write_units_per_s=100)
    put(svc, item("a", 100))
    clock.now += 10  # 10 s idle at 100/s: 1,000 units saved
    svc.configure({"write_units_per_s": 1})  # a cut to 1/s keeps at most 300 s of it: 300
    statuses = [put(svc, item(f"k{i}", 100)).status for i in range(302)]
    assert statuses.count(200) == 300


def test_profiles_are_validated() -> None:
    with pytest.raises(ValidationError, match="latency_p99_ms"):
        Profile(latency_p50_ms=10, latency_p99_ms=5)
    with pytest.raises(ValidationError):
        Profile(error_rate=1.5)
    with pytest.raises(ValidationError):
        Profile.model_validate({"latency": 3})


def test_latency_follows_the_profiles_median_and_99th_percentile() -> None:
    svc, _, _ = service(latency_p50_ms=5, latency_p99_ms=25, seed=7)
    samples = sorted(svc.latency_s() * 1000 for _ in range(40_000))
    assert statistics.median(samples) == pytest.approx(5, rel=0.05)
    assert samples[int(0.99 * len(samples))] == pytest.approx(25, rel=0.08)


def test_describe_table_tells_the_capacity_the_layer_enforces() -> None:
    svc, _, _ = service(capacity="provisioned", write_units_per_s=300, read_units_per_s=900)
    table = svc.handle("DescribeTable", {"TableName": TABLE}).body["Table"]
    assert table["BillingModeSummary"] == {"BillingMode": "PROVISIONED"}
    assert table["ProvisionedThroughput"] == {"ReadCapacityUnits": 900, "WriteCapacityUnits": 300}
    assert table["GlobalSecondaryIndexes"][0]["ProvisionedThroughput"] == {
        "ReadCapacityUnits": 900,
        "WriteCapacityUnits": 300,
    }
    svc.configure({"capacity": "on-demand"})
    table = svc.handle("DescribeTable", {"TableName": TABLE}).body["Table"]
    assert table["OnDemandThroughput"] == {"MaxReadRequestUnits": 900, "MaxWriteRequestUnits": 300}
    svc.configure({"capacity": "unlimited"})
    assert "OnDemandThroughput" not in svc.handle("DescribeTable", {"TableName": TABLE}).body["Table"]


def test_no_median_latency_means_no_added_latency() -> None:
    svc, _, _ = service(latency_p50_ms=0, latency_p99_ms=400)
    assert {svc.latency_s() for _ in range(100)} == {0.0}


def test_a_hot_index_key_is_throttled_by_its_index_partition() -> None:
    """Distinct items, one index key: the index's partition for that key serves 1,000 units a second."""
    svc, _, _ = service(capacity="provisioned", write_units_per_s=40_000, partitions=40)
    statuses = [put(svc, item(f"k{i}", 100, status="NEW")).status for i in range(1001)]
    assert statuses.count(200) == 1000
    answer = put(svc, item("one-more", 100, status="NEW"))
    assert answer.body["ThrottlingReasons"] == [
        {"reason": "IndexWriteKeyRangeThroughputExceeded", "resource": f"{ARN}/index/byStatus"}
    ]
