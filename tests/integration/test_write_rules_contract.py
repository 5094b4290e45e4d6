"""Contract: DynamoDB's real condition expressions behave exactly like the in-memory model.

Random histories of the consistency model (tests/model.py) are delivered batch by batch through the
real sink to dynalite and to moto server; every write's outcome (applied or stale) must be what
``bridge.rules.accepts`` predicts, and the final table must equal the model's store item for item,
bookkeeping included.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.config import DynamoSettings
from bridge.dynamo import make_client, make_put_item
from bridge.rules import WriteRules, accepts
from bridge.sink import DynamoSink
from bridge.tables import ensure_table, table_spec
from ops.stack import LocalStack
from tests.conftest import LOCAL_KEYS
from tests.model import BOOK, MAPPINGS, Item, Store, batch_actions, deliveries, histories, make_rules, store_from_items

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

RUN = uuid.uuid4().hex[:8]


@pytest.fixture(params=["dynalite", "moto", "dynalite-boto3"])
def endpoint(request: pytest.FixtureRequest, stack: LocalStack) -> DynamoSettings:
    """Both servers through the sink's lean PutItem caller, and one through boto3's (``lean_client=false``)."""
    server, _, caller = request.param.partition("-")
    port = getattr(stack.ports, server)
    return DynamoSettings(**LOCAL_KEYS, endpoint_url=f"http://127.0.0.1:{port}", lean_client=caller != "boto3")


def make_sink(endpoint: DynamoSettings, client: DynamoDBClient, rules: WriteRules, concurrency: int) -> DynamoSink:
    put_item = make_put_item(endpoint, pool_size=concurrency)
    return DynamoSink(client, rules, concurrency=concurrency, retry_attempts=3, backoff_ms=10, put_item=put_item)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mapping=st.sampled_from(sorted(MAPPINGS)), data=st.data())
def test_real_conditions_match_the_model(endpoint: DynamoSettings, mapping: str, data: st.DataObject) -> None:
    scenario = data.draw(histories())
    batches = data.draw(deliveries(scenario))
    target = f"contract_{mapping}_{RUN}"  # one table per mapping and server, emptied after each example
    rules = make_rules(MAPPINGS[mapping].model_copy(update={"target": target}))
    client = make_client(endpoint, max_attempts=1)
    ensure_table(client, table_spec(rules.mapper.mapping))
    sink = make_sink(endpoint, client, rules, 4)
    model: Store = {}
    try:
        for batch in batches:
            actions = batch_actions(batch, rules)
            predicted = [accepts(model.get(a.key), a, BOOK) for a in actions]
            results = sink.write(actions)
            assert [r.outcome for r in results] == ["applied" if ok else "stale" for ok in predicted]
            for action, ok in zip(actions, predicted, strict=True):
                if ok:
                    model[action.key] = dict(action.item)
        items = cast(list[Item], client.scan(TableName=target, ConsistentRead=True)["Items"])
        assert store_from_items(items, rules.mapper) == model
    finally:
        sink.close()
        for item in client.scan(TableName=target, ConsistentRead=True)["Items"]:
            key = {k.name: item[k.name] for k in rules.mapper.key_attributes}
            client.delete_item(TableName=target, Key=key)


def test_items_not_written_by_ddbridge_are_overwritten_like_the_model(endpoint: DynamoSettings) -> None:
    """Pre-existing items (no bookkeeping) are replaced by both write kinds, on the server as in the model."""
    target = f"contract_foreign_{RUN}"
    rules = make_rules(MAPPINGS["plain"].model_copy(update={"target": target}))
    client = make_client(endpoint, max_attempts=1)
    ensure_table(client, table_spec(rules.mapper.mapping))
    sink = make_sink(endpoint, client, rules, 2)
    try:
        for key in ("1", "2"):
            client.put_item(TableName=target, Item={"Id": {"N": key}, "legacy": {"S": "x"}})
        row1 = {"id": {"N": "1"}, "grp": {"N": "1"}, "d": {"S": "2024-01-01"}, "v": {"N": "5"}, "note": None}
        row2 = {**row1, "id": {"N": "2"}}
        cdc, snap = rules.cdc_put(row1, 7), rules.snapshot(row2)
        foreign = {"Id": {"N": "1"}, "legacy": {"S": "x"}}
        assert accepts(foreign, cdc, BOOK) and accepts(foreign, snap, BOOK)
        assert [r.outcome for r in sink.write([cdc, snap])] == ["applied", "applied"]
    finally:
        sink.close()
        client.delete_table(TableName=target)


@pytest.mark.parametrize("tombstone_first", [True, False])
def test_at_one_lsn_the_put_wins_over_the_tombstone_in_either_order(
    endpoint: DynamoSettings, tombstone_first: bool
) -> None:
    """A primary-key UPDATE whose old and new key give one item key (numeric 5.00 -> 5) arrives as a
    delete and a create at one LSN, maybe on two Kafka partitions: whichever lands last, the row stays."""
    target = f"contract_same_lsn_{RUN}_{int(tombstone_first)}"
    rules = make_rules(MAPPINGS["plain"].model_copy(update={"target": target}))
    client = make_client(endpoint, max_attempts=1)
    ensure_table(client, table_spec(rules.mapper.mapping))
    sink = make_sink(endpoint, client, rules, 2)
    try:
        row = {"id": {"N": "5"}, "grp": {"N": "1"}, "d": {"S": "2024-01-01"}, "v": {"N": "5"}, "note": None}
        put = rules.cdc_put(row, 900)
        tombstone = rules.tombstone(put.key, 900, 1_700_000_000)
        first, second = (tombstone, put) if tombstone_first else (put, tombstone)
        assert [r.outcome for r in sink.write([first])] == ["applied"]
        assert [r.outcome for r in sink.write([second])] == ["applied" if tombstone_first else "stale"]
        assert accepts(first.item, second, BOOK) == tombstone_first
        stored = client.get_item(TableName=target, Key=put.key.as_dynamo(), ConsistentRead=True)["Item"]
        assert stored == put.item
    finally:
        sink.close()
        client.delete_table(TableName=target)


def test_repairs_only_replace_the_version_they_observed(endpoint: DynamoSettings) -> None:
    """``unchanged_since``: a repair applies over exactly the observed version (or absence) and never
    over a write the bridge made after the observation."""
    target = f"contract_repair_{RUN}"
    rules = make_rules(MAPPINGS["plain"].model_copy(update={"target": target}))
    client = make_client(endpoint, max_attempts=1)
    ensure_table(client, table_spec(rules.mapper.mapping))
    sink = make_sink(endpoint, client, rules, 2)
    row = {"id": {"N": "1"}, "grp": {"N": "1"}, "d": {"S": "2024-01-01"}, "v": {"N": "5"}, "note": None}
    fixed = {**row, "v": {"N": "6"}}
    try:
        absent = rules.unchanged_since(None)
        assert sink.put(rules.snapshot(row), absent).outcome == "applied"
        assert sink.put(rules.snapshot(row), absent).outcome == "stale"  # no longer absent
        observed = cast(Item, client.get_item(TableName=target, Key={"Id": {"N": "1"}})["Item"])
        assert sink.put(rules.cdc_put(row, 10), None).outcome == "applied"  # the bridge writes meanwhile
        assert sink.put(rules.snapshot(fixed), rules.unchanged_since(observed)).outcome == "stale"
        current = cast(Item, client.get_item(TableName=target, Key={"Id": {"N": "1"}}, ConsistentRead=True)["Item"])
        assert sink.put(rules.cdc_put(fixed, 10), rules.unchanged_since(current)).outcome == "applied"
        foreign = {"Id": {"N": "2"}, "legacy": {"S": "x"}}
        client.put_item(TableName=target, Item=foreign)
        assert sink.put(rules.snapshot({**row, "id": {"N": "2"}}), rules.unchanged_since(foreign)).outcome == "applied"
    finally:
        sink.close()
        client.delete_table(TableName=target)
