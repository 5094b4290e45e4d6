"""ops/iam/<command>.json together grant exactly the DynamoDB actions ddbridge's code calls, each on
named tables (least privilege; tests/integration/test_iam_policies.py runs every command through a
recording proxy and checks each call against its command's policy)."""

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


COMMANDS = ("init", "stream", "backfill", "reconcile", "maintenance")


def test_the_policies_grant_exactly_the_actions_the_code_uses_on_named_tables() -> None:
    assert sorted(p.stem for p in (ROOT / "ops" / "iam").glob("*.json")) == sorted(COMMANDS)
    granted: set[str] = set()
    for command in COMMANDS:
        policy = json.loads((ROOT / "ops" / "iam" / f"{command}.json").read_text())
        assert policy["Version"] == "2012-10-17"
        for statement in policy["Statement"]:
            assert statement["Effect"] == "Allow" and "*" not in str(statement["Action"]), statement
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            for arn in resources:
                assert re.fullmatch(
                    r"arn:aws:dynamodb:REGION:ACCOUNT_ID:table/(Payments|ddbridge_control)(/index/\*)?", arn
                ), arn
            granted |= {a.removeprefix("dynamodb:") for a in statement["Action"]}
    assert granted == _called_actions()
