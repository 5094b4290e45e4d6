"""DynamoDB as the service behaves (the stack's ddbsim in front of dynalite): its throttling reaches
both of ddbridge's clients in the service's shape, and writes whose answers are lost after they were
applied — or answered 500 before — leave every store exact, never an error or a dead letter."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, cast

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backfill.checkpoints import MigrationStore, RangeCheckpoint
from backfill.plan import Plan
from bridge.config import DynamoSettings
from bridge.dynamo import make_client, make_put_item, retry_cause
from bridge.positions import PositionStore
from bridge.rules import accepts
from bridge.sink import DynamoSink
from bridge.tables import control_table_spec, ensure_table, table_spec
from ops.ddbsim.admin import DdbsimAdmin
from ops.stack import LocalStack
from tests.conftest import LOCAL_KEYS
from tests.model import BOOK, MAPPINGS, Item, Store, batch_actions, deliveries, histories, make_rules, store_from_items

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

RUN = uuid.uuid4().hex[:8]


@pytest.fixture
def endpoint(stack: LocalStack) -> DynamoSettings:
    return DynamoSettings(**LOCAL_KEYS, endpoint_url=stack.ddbsim_url)


def _table(client: DynamoDBClient, name: str) -> str:
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return name


def test_throttling_reaches_boto3_and_the_lean_caller_in_the_services_shape(
    ddbsim: DdbsimAdmin, endpoint: DynamoSettings
) -> None:
    client = make_client(endpoint, max_attempts=1)
    table = _table(client, f"throttle_{RUN}")
    try:
        ddbsim.configure(capacity="provisioned", write_units_per_s=2, tables=[table])
        lean = make_put_item(endpoint, pool_size=2)
        lean(TableName=table, Item={"id": {"S": "a"}})  # the layer's answers pass the caller's CRC32 check
        lean(TableName=table, Item={"id": {"S": "b"}})
        with pytest.raises(ClientError) as boto_error:
            client.put_item(TableName=table, Item={"id": {"S": "c"}})
        with pytest.raises(ClientError) as lean_error:
            lean(TableName=table, Item={"id": {"S": "d"}})
        resource = f"arn:aws:dynamodb:us-east-1:000000000000:table/{table}"
        response = boto_error.value.response
        assert response["Error"]["Code"] == "ProvisionedThroughputExceededException"
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert response.get("ThrottlingReasons") == [
            {"reason": "TableWriteProvisionedThroughputExceeded", "resource": resource}
        ]
        assert response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"].startswith(
            "ProvisionedThroughputExceededException:"
        )
        assert lean_error.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
        assert retry_cause(boto_error.value) == retry_cause(lean_error.value) == "throttle"
        stats = ddbsim.stats()["tables"][table]
        assert stats["throttles"] == {"TableWriteProvisionedThroughputExceeded": 2}
        assert stats["write_units"] == 2.0
    finally:
        ddbsim.reset()
        client.delete_table(TableName=table)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mapping=st.sampled_from(sorted(MAPPINGS)), data=st.data(), seed=st.integers(0, 2**16))
def test_histories_through_lost_answers_and_500s_end_exactly_as_the_model(
    ddbsim: DdbsimAdmin, endpoint: DynamoSettings, mapping: str, data: st.DataObject, seed: int
) -> None:
    """The write rules' histories through the sink while a third of the applied writes lose their answer
    and a tenth of the calls answer 500: a write whose answer was lost is retried, its retry fails the
    condition and counts as stale; nothing is dead, nothing raises, the table equals the model."""
    scenario = data.draw(histories())
    batches = data.draw(deliveries(scenario))
    target = f"lost_{mapping}_{RUN}"
    rules = make_rules(MAPPINGS[mapping].model_copy(update={"target": target}))
    client = make_client(endpoint, max_attempts=8)
    ensure_table(client, table_spec(rules.mapper.mapping))
    ddbsim.configure(tables=[target], lost_response_rate=0.33, error_rate=0.1, seed=seed)
    put_item = make_put_item(endpoint, pool_size=4)
    sink = DynamoSink(client, rules, concurrency=4, retry_attempts=12, backoff_ms=1, put_item=put_item)
    model: Store = {}
    try:
        for batch in batches:
            actions = batch_actions(batch, rules)
            predicted = [accepts(model.get(a.key), a, BOOK) for a in actions]
            results = sink.write(actions)
            for result, ok in zip(results, predicted, strict=True):
                assert result.outcome in (("applied", "stale") if ok else ("stale",)), result
            for action, ok in zip(actions, predicted, strict=True):
                if ok:
                    model[action.key] = dict(action.item)
        ddbsim.configure(lost_response_rate=0.0, error_rate=0.0)
        items = cast(list[Item], client.scan(TableName=target, ConsistentRead=True)["Items"])
        assert store_from_items(items, rules.mapper) == model
    finally:
        ddbsim.configure(lost_response_rate=0.0, error_rate=0.0)
        sink.close()
        for item in client.scan(TableName=target, ConsistentRead=True)["Items"]:
            key = {k.name: item[k.name] for k in rules.mapper.key_attributes}
            client.delete_item(TableName=target, Key=key)


def test_control_table_writes_whose_answers_were_lost_are_not_errors(
    ddbsim: DdbsimAdmin, endpoint: DynamoSettings
) -> None:
    """The backfill's plan and checkpoints and the bridge's positions, each written once more by the
    retry after its first answer was lost: the same state, no error (a checkpoint may be rewritten
    with its own sequence number; a position's retry fails its condition, which means 'already there')."""
    control = f"ctl_lost_{RUN}"
    client = make_client(endpoint, max_attempts=8)
    ensure_table(client, control_table_spec(control))
    try:
        ddbsim.configure(tables=[control])
        store = MigrationStore(client, control, "lost")
        plan = Plan("lost", "public.t", "T", [], [], 1, None, None, "fingerprint", "2026-12-01T00:00:00Z")
        ddbsim.configure(lose_next=1)
        assert store.create_plan(plan) == plan
        cp = RangeCheckpoint(index=0, seq=3, status="InProgress")
        ddbsim.configure(lose_next=1)
        store.save(cp)
        assert store.load_ranges()[0].seq == 3
        positions = PositionStore(client, control, "group")
        ddbsim.configure(lose_next=1)
        positions.save({("topic", 0): 41})
        assert positions.load() == {("topic", 0): 41}
        assert ddbsim.stats()["lost_responses"] == 3
    finally:
        ddbsim.reset()
        client.delete_table(TableName=control)
