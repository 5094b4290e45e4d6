"""The lean PutItem caller writes every attribute type exactly as boto3 reads it back, on both servers."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from bridge.config import DynamoSettings
from bridge.dynamo import make_client, make_put_item
from ops.stack import LocalStack

ITEM = {
    "Id": {"S": "k-1"},
    "text": {"S": "naïve, ünïcødé ✓ 支付"},
    "number": {"N": "123456789012345678901234567890.12345678"},
    "binary": {"B": b"\x00\xff\x10binary"},
    "empty_binary": {"B": b""},
    "flag": {"BOOL": True},
    "nothing": {"NULL": True},
    "strings": {"SS": ["a", "b"]},
    "numbers": {"NS": ["1", "2.5"]},
    "binaries": {"BS": [b"\x01", b"\x02\x03"]},
    "list": {"L": [{"S": "x"}, {"N": "1"}, {"B": b"\x7f"}, {"M": {"deep": {"B": b"\x00"}}}]},
    "map": {"M": {"k": {"S": "v"}, "b": {"B": b"\xfe"}}},
}


@pytest.mark.parametrize("server", ["dynalite", "moto"])
def test_every_attribute_type_round_trips(server: str, stack: LocalStack) -> None:
    endpoint = DynamoSettings(endpoint_url=f"http://127.0.0.1:{getattr(stack.ports, server)}")
    client = make_client(endpoint, max_attempts=1)
    table = f"lean_wire_{uuid.uuid4().hex[:8]}"
    client.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "Id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "Id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        make_put_item(endpoint, pool_size=1)(TableName=table, Item=ITEM)
        stored = client.get_item(TableName=table, Key={"Id": {"S": "k-1"}}, ConsistentRead=True)["Item"]
        assert {k: v for k, v in stored.items() if k not in ("strings", "numbers", "binaries")} == {
            k: v for k, v in ITEM.items() if k not in ("strings", "numbers", "binaries")
        }
        assert sorted(stored["strings"]["SS"]) == ["a", "b"]
        assert sorted(map(Decimal, stored["numbers"]["NS"])) == [Decimal(1), Decimal("2.5")]
        assert sorted(stored["binaries"]["BS"]) == [b"\x01", b"\x02\x03"]
    finally:
        client.delete_table(TableName=table)
