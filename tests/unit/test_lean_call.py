"""The lean DynamoDB caller: its SigV4 signature is botocore's; errors: integration/test_lean_call_http.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import botocore.auth
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from bridge.lean_call import LeanCall

WHEN = datetime(2026, 11, 25, 9, 58, 7, tzinfo=UTC)
BODY = json.dumps({"TableName": "Payments", "Item": {"PaymentId": {"N": "1"}}}).encode()


@pytest.mark.parametrize("token", [None, "session-token"])
@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:58000", "https://dynamodb.eu-west-1.amazonaws.com"])
def test_signature_is_the_one_botocore_computes(
    token: str | None, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    lean = LeanCall(endpoint, "eu-west-1", credentials, operation="PutItem", pool_size=1)
    ours = lean.signed_headers(BODY, WHEN)

    request = AWSRequest(method="POST", url=endpoint + "/", data=BODY, headers={})
    for name in ("content-type", "x-amz-target"):
        request.headers[name] = ours[name]
    signer = SigV4Auth(credentials, "dynamodb", "eu-west-1")
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: WHEN.replace(tzinfo=None))
    signer.add_auth(request)
    assert ours["authorization"] == request.headers["Authorization"]
    assert ours.get("x-amz-security-token") == request.headers.get("X-Amz-Security-Token")
    lean.close()
