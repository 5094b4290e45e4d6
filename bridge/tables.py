"""DynamoDB tables ddbridge needs: the target table of each mapping (keys + GSIs) and the control
table for checkpoints. ``table_spec`` is pure; ``ensure_table`` creates or verifies (idempotent)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from bridge.config import TableMapping
from bridge.errors import ConfigError, SchemaMismatchError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@dataclass
class GsiSpec:
    """Expected shape of one global secondary index."""

    name: str
    keys: list[tuple[str, str]]  # (attribute, HASH|RANGE)
    projection: str
    non_key_attributes: list[str] = field(default_factory=list)


@dataclass
class TableSpec:
    """Expected shape of a DynamoDB table: what ``init`` creates and ``validate`` compares."""

    name: str
    keys: list[tuple[str, str]]
    attribute_types: dict[str, str]
    gsis: list[GsiSpec] = field(default_factory=list)
    ttl_attribute: str | None = None


def table_spec(mapping: TableMapping, ttl_attribute: str | None = None) -> TableSpec:
    """The target table a mapping needs; conflicting attribute types are a ConfigError."""
    types: dict[str, str] = {}

    def declare(name: str, type_: str, where: str) -> None:
        if types.setdefault(name, type_) != type_:
            raise ConfigError(
                f"table {mapping.source}: attribute {name} is {types[name]} in one key and {type_} in {where}; "
                "one attribute has one type"
            )

    keys = [(mapping.partition_key.name, "HASH")]
    declare(mapping.partition_key.name, mapping.partition_key.type, "the partition key")
    if mapping.sort_key:
        keys.append((mapping.sort_key.name, "RANGE"))
        declare(mapping.sort_key.name, mapping.sort_key.type, "the sort key")
    gsis = []
    for gsi in mapping.gsis:
        gkeys = [(gsi.partition_key.name, "HASH")]
        declare(gsi.partition_key.name, gsi.partition_key.type, f"GSI {gsi.name}")
        if gsi.sort_key:
            gkeys.append((gsi.sort_key.name, "RANGE"))
            declare(gsi.sort_key.name, gsi.sort_key.type, f"GSI {gsi.name}")
        gsis.append(GsiSpec(gsi.name, gkeys, gsi.projection, sorted(gsi.non_key_attributes)))
    return TableSpec(mapping.target, keys, types, gsis, ttl_attribute)


def control_table_spec(name: str) -> TableSpec:
    """The checkpoint/control table: ``pk`` (migration id) + ``sk`` (segment or record kind)."""
    return TableSpec(name, [("pk", "HASH"), ("sk", "RANGE")], {"pk": "S", "sk": "S"})


def _key_schema(keys: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"AttributeName": a, "KeyType": k} for a, k in keys]


def create_request(spec: TableSpec, billing_mode: str = "PAY_PER_REQUEST") -> dict[str, Any]:
    """CreateTable parameters for a spec."""
    request: dict[str, Any] = {
        "TableName": spec.name,
        "KeySchema": _key_schema(spec.keys),
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": t} for a, t in spec.attribute_types.items()],
        "BillingMode": billing_mode,
    }
    throughput = {"ReadCapacityUnits": 100, "WriteCapacityUnits": 100}
    if billing_mode == "PROVISIONED":
        request["ProvisionedThroughput"] = throughput
    if spec.gsis:
        indexes = []
        for gsi in spec.gsis:
            projection: dict[str, Any] = {"ProjectionType": gsi.projection}
            if gsi.non_key_attributes:
                projection["NonKeyAttributes"] = gsi.non_key_attributes
            index: dict[str, Any] = {
                "IndexName": gsi.name,
                "KeySchema": _key_schema(gsi.keys),
                "Projection": projection,
            }
            if billing_mode == "PROVISIONED":
                index["ProvisionedThroughput"] = throughput
            indexes.append(index)
        request["GlobalSecondaryIndexes"] = indexes
    return request


def describe_differences(spec: TableSpec, table: dict[str, Any]) -> list[str]:
    """What differs between an existing table (DescribeTable's ``Table``) and the spec."""
    diffs: list[str] = []
    actual_keys = [(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]]
    if actual_keys != spec.keys:
        diffs.append(f"key schema is {actual_keys}, mapping needs {spec.keys}")
    actual_types = {d["AttributeName"]: d["AttributeType"] for d in table.get("AttributeDefinitions", [])}
    for name, type_ in spec.attribute_types.items():
        if name in actual_types and actual_types[name] != type_:
            diffs.append(f"attribute {name} is {actual_types[name]}, mapping needs {type_}")
    actual_gsis = {g["IndexName"]: g for g in table.get("GlobalSecondaryIndexes", [])}
    expected = {g.name: g for g in spec.gsis}
    for name in sorted(expected.keys() - actual_gsis.keys()):
        diffs.append(f"GSI {name} is missing")
    for name in sorted(actual_gsis.keys() - expected.keys()):
        diffs.append(f"GSI {name} exists but is not in the mapping")
    for name in sorted(expected.keys() & actual_gsis.keys()):
        want, have = expected[name], actual_gsis[name]
        have_keys = [(k["AttributeName"], k["KeyType"]) for k in have["KeySchema"]]
        if have_keys != want.keys:
            diffs.append(f"GSI {name} keys are {have_keys}, mapping needs {want.keys}")
        proj = have.get("Projection", {})
        if proj.get("ProjectionType") != want.projection:
            diffs.append(f"GSI {name} projection is {proj.get('ProjectionType')}, mapping needs {want.projection}")
        elif sorted(proj.get("NonKeyAttributes", [])) != want.non_key_attributes:
            diffs.append(
                f"GSI {name} projects {sorted(proj.get('NonKeyAttributes', []))}, "
                f"mapping needs {want.non_key_attributes}"
            )
    return diffs


def ensure_table(
    client: DynamoDBClient, spec: TableSpec, billing_mode: str = "PAY_PER_REQUEST", wait_s: float = 120.0
) -> str:
    """Create the table if missing, else verify it matches; returns 'created' or 'exists'.

    An existing table with a different key schema or GSI set raises SchemaMismatchError listing
    every difference. Waits until the table is ACTIVE either way.
    """
    outcome = "exists"
    try:
        table = client.describe_table(TableName=spec.name)["Table"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        try:
            client.create_table(**create_request(spec, billing_mode))
            outcome = "created"
        except ClientError as create_exc:  # created concurrently by another init
            if create_exc.response["Error"]["Code"] != "ResourceInUseException":
                raise
        table = client.describe_table(TableName=spec.name)["Table"]
    diffs = describe_differences(spec, dict(table))
    if diffs:
        raise SchemaMismatchError(
            f"DynamoDB table {spec.name} exists with a different shape:\n  - "
            + "\n  - ".join(diffs)
            + "\nfix the mapping, or delete/rename the table if it holds nothing you need"
        )
    client.get_waiter("table_exists").wait(
        TableName=spec.name, WaiterConfig={"Delay": 1, "MaxAttempts": max(1, int(wait_s))}
    )
    if spec.ttl_attribute:
        enable_ttl(client, spec.name, spec.ttl_attribute)
    return outcome


def enable_ttl(client: DynamoDBClient, table: str, attribute: str) -> bool:
    """Turn on TTL expiry of tombstones; False where the API server does not support it (dynalite)."""
    try:
        current = client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        if current.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
            return True
        client.update_time_to_live(
            TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute}
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("UnknownOperationException", "ValidationException"):
            return False
        raise
    return True


NEW_ON_DEMAND_WRITE_UNITS = 4000.0
"""What a new on-demand table serves at once (AWS: "up to 4,000 write request units")."""


def write_capacity(table: Mapping[str, Any]) -> tuple[float, str]:
    """A table's write capacity in units a second (DescribeTable's ``Table``) and where it comes from:
    provisioned units; for on-demand, its configured maximum, else its warm throughput, else what a
    new on-demand table serves."""
    billing = table.get("BillingModeSummary", {}).get("BillingMode")
    provisioned = float(table.get("ProvisionedThroughput", {}).get("WriteCapacityUnits") or 0)
    if billing != "PAY_PER_REQUEST" and provisioned > 0:
        return provisioned, "provisioned write capacity"
    maximum = float(table.get("OnDemandThroughput", {}).get("MaxWriteRequestUnits") or 0)
    if maximum > 0:
        return maximum, "on-demand maximum (OnDemandThroughput.MaxWriteRequestUnits)"
    warm = float(table.get("WarmThroughput", {}).get("WriteUnitsPerSecond") or 0)
    if warm > 0:
        return warm, "on-demand warm throughput"
    return NEW_ON_DEMAND_WRITE_UNITS, "a new on-demand table's initial throughput"
