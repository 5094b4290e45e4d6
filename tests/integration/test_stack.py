"""The local stack's life cycle: health, idempotent up, down leaving no process behind."""

from __future__ import annotations

import hashlib
import shutil
import socket
import tempfile
import uuid
from pathlib import Path

import pytest

from bridge.config import DynamoSettings, StackPorts, StackSettings
from bridge.dynamo import make_client
from bridge.errors import StackError
from ops import procs
from ops.stack import LocalStack
from tests.conftest import LOCAL_KEYS


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def test_running_stack_is_healthy_and_up_is_idempotent(stack: LocalStack) -> None:
    before = {r.name: r.pid for r in stack.status()}
    assert all(r.healthy for r in stack.status()), stack.status()
    stack.up()
    after = {r.name: r.pid for r in stack.status()}
    assert before == after, "a healthy component must be left alone"


def test_private_stack_up_then_down_leaves_no_process(stack: LocalStack) -> None:
    # A separate stack on free ports (PostgreSQL and both DynamoDB servers, which start in seconds),
    # under the main stack's directory, which the postgres user can reach (pytest's tmp_path is 0700).
    pg, kafka, ctl, connect, dyn, moto = _free_ports(6)
    private = Path(tempfile.mkdtemp(prefix="private-", dir=stack.root))
    private.chmod(0o755)
    settings = StackSettings(
        dir=private,
        ports=StackPorts(postgres=pg, kafka=kafka, kafka_controller=ctl, connect=connect, dynalite=dyn, moto=moto),
    )
    local = LocalStack(settings)
    names = ["postgres", "dynalite", "moto"]
    local.up(names)
    pids = {r.name: r.pid for r in local.status() if r.name in names}
    assert all(pids.values()) and all(r.healthy for r in local.status() if r.name in names)
    local.down(names)
    for name, pid in pids.items():
        assert not procs.is_ours(pid, local.components[name].marker), f"{name} ({pid}) still running"
        assert not procs.port_open(getattr(settings.ports, name)), f"{name} port still open"
    assert not list((settings.dir / "pids").glob("*.pid"))
    shutil.rmtree(private)


def test_port_taken_by_a_stranger_is_named(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        settings = StackSettings(dir=tmp_path / "stack", ports=StackPorts(moto=port))
        with pytest.raises(StackError, match=f"port {port} for moto is already in use"):
            LocalStack(settings).up(["moto"])


def test_dynalite_survives_clients_killed_mid_request(stack: LocalStack) -> None:
    import struct
    import time

    for _ in range(3):
        with socket.create_connection(("127.0.0.1", stack.ports.dynalite)) as sock:
            sock.sendall(
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\nContent-Type: application/x-amz-json-1.0\r\n"
                b"X-Amz-Target: DynamoDB_20120810.ListTables\r\n\r\n{"
            )
            time.sleep(0.1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with RST
    time.sleep(0.5)
    status = {r.name: r for r in stack.status()}["dynalite"]
    assert status.healthy, status.detail


def _dynalite_hash(key: str) -> str:
    """dynalite 4.0.0's short hash of a string table key (db/index.js hashPrefix)."""
    return hashlib.md5(b"Outliers" + key.encode()).hexdigest()[:6]


def test_dynalite_indexes_items_whose_short_key_hashes_collide(stack: LocalStack) -> None:
    """Unpatched dynalite keys index entries by the first six hex digits of the table key's md5, so
    two items with the same index key and colliding hashes keep only one index entry."""
    seen: dict[str, str] = {}
    first, second = "", ""
    for i in range(100_000):
        key = f"item-{i}"
        if _dynalite_hash(key) in seen:
            first, second = seen[_dynalite_hash(key)], key
            break
        seen[_dynalite_hash(key)] = key
    assert first and second
    client = make_client(DynamoSettings(**LOCAL_KEYS, endpoint_url=f"http://127.0.0.1:{stack.ports.dynalite}"))
    table = f"collide_{uuid.uuid4().hex[:8]}"
    client.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "g", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "byG",
                "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    # dynalite answers CreateTable with CREATING and rejects writes (ResourceNotFound) until the table is ACTIVE.
    client.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    try:
        for key in (first, second):
            client.put_item(TableName=table, Item={"pk": {"S": key}, "g": {"S": "same"}})
        found = client.query(
            TableName=table,
            IndexName="byG",
            KeyConditionExpression="g = :g",
            ExpressionAttributeValues={":g": {"S": "same"}},
        )["Items"]
        assert sorted(i["pk"]["S"] for i in found) == sorted([first, second])
        client.delete_item(TableName=table, Key={"pk": {"S": first}})
        left = client.query(
            TableName=table,
            IndexName="byG",
            KeyConditionExpression="g = :g",
            ExpressionAttributeValues={":g": {"S": "same"}},
        )["Items"]
        assert [i["pk"]["S"] for i in left] == [second]
    finally:
        client.delete_table(TableName=table)
