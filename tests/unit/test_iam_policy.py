"""ops/iam-policy.json lists exactly the DynamoDB actions ddbridge's code calls (least privilege)."""

from __future__ import annotations

import json
import re

import botocore.session
from botocore import xform_name

from tests.conftest import ROOT

PRODUCT = ("bridge", "backfill", "reconcile", "connectors")


def _called_actions() -> set[str]:
    """DynamoDB API operations called anywhere in the product code: ``client.<operation>(`` and the
    operations given by name to the lean callers (``make_call(settings, "Scan", …)``)."""
    model = botocore.session.get_session().get_service_model("dynamodb")  # no client: no credential lookup
    api = {xform_name(name): name for name in model.operation_names}
    calls: set[str] = set()
    for package in PRODUCT:
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text()
            calls |= set(re.findall(r"client\.([a-z_]+)\(", text))
            calls |= {xform_name(op) for op in re.findall(r'make_(?:call|reader)\([^()]*?"([A-Z][A-Za-z]+)"', text)}
    actions = {api[call] for call in calls if call in api}
    if "get_waiter" in calls:  # the table_exists waiter polls DescribeTable
        actions.add("DescribeTable")
    return actions


def test_the_policy_grants_exactly_the_actions_the_code_uses() -> None:
    policy = json.loads((ROOT / "ops" / "iam-policy.json").read_text())
    granted = {
        action.removeprefix("dynamodb:")
        for statement in policy["Statement"]
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    }
    assert granted == _called_actions()
    assert all(s["Effect"] == "Allow" and "*" not in str(s["Action"]) for s in policy["Statement"])
