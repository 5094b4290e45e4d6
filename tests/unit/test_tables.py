"""The DynamoDB table shape derived from a mapping, and the comparison with an existing table."""

from __future__ import annotations

import pytest

from bridge.config import load_settings
from bridge.errors import ConfigError
from bridge.tables import TableSpec, create_request, describe_differences, table_spec
from tests.conftest import PAYMENTS_CONFIG


def _payments_spec() -> TableSpec:
    return table_spec(load_settings(PAYMENTS_CONFIG).mapping())


def test_payments_create_request() -> None:
    request = create_request(_payments_spec())
    assert request["KeySchema"] == [
        {"AttributeName": "CustomerId", "KeyType": "HASH"},
        {"AttributeName": "PaymentDateId", "KeyType": "RANGE"},
    ]
    types = {d["AttributeName"]: d["AttributeType"] for d in request["AttributeDefinitions"]}
    assert types == {
        "CustomerId": "N",
        "PaymentDateId": "S",
        "PaymentStatus": "S",
        "PaymentDate": "S",
        "LoanId": "N",
        "PaymentMethod": "S",
    }
    by_name = {g["IndexName"]: g for g in request["GlobalSecondaryIndexes"]}
    assert by_name["PaymentMethodIndex"]["Projection"] == {
        "ProjectionType": "INCLUDE",
        "NonKeyAttributes": ["CustomerId", "PaymentAmount", "PaymentStatus"],
    }
    assert "ProvisionedThroughput" not in request


def test_describe_differences_lists_every_mismatch() -> None:
    spec = _payments_spec()
    table = create_request(spec)
    assert describe_differences(spec, table) == []
    table["GlobalSecondaryIndexes"] = [
        *table["GlobalSecondaryIndexes"][:1],
        {
            "IndexName": "Extra",
            "KeySchema": [{"AttributeName": "X", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "ALL"},
        },
    ]
    table["GlobalSecondaryIndexes"][0]["Projection"] = {"ProjectionType": "KEYS_ONLY"}
    table["KeySchema"] = table["KeySchema"][:1]
    diffs = describe_differences(spec, table)
    assert any("key schema is" in d for d in diffs)
    assert "GSI LoanPaymentIndex is missing" in diffs
    assert "GSI Extra exists but is not in the mapping" in diffs
    assert any("PaymentStatusIndex projection is KEYS_ONLY" in d for d in diffs)


def test_conflicting_attribute_types_are_a_config_error() -> None:
    mapping = load_settings(PAYMENTS_CONFIG).mapping()
    gsi = mapping.gsis[1].model_copy(
        update={"partition_key": mapping.gsis[1].partition_key.model_copy(update={"name": "CustomerId", "type": "S"})}
    )
    with pytest.raises(ConfigError, match="CustomerId is N in one key and S"):
        table_spec(mapping.model_copy(update={"gsis": [gsi]}))
