"""DynamoDB's AWS credentials: a profile, explicit keys, an assumed role with an external id, FIPS and
custom endpoints. The calls are answered by botocore's ``before-send`` hook (no network): the test sees
the AssumeRole request and the Authorization header DynamoDB would receive."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from bridge.config import DynamoSettings
from bridge.dynamo import _lean_endpoint, assume_role, aws_session, make_client
from bridge.errors import ConfigError

ROLE = "arn:aws:iam::123456789012:role/ddbridge-stream"


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Any:
        yield self.body


def _answer(status: int, body: bytes) -> AWSResponse:
    return AWSResponse("https://example.invalid", status, {}, _Raw(body))


def _form(request: Any) -> dict[str, list[str]]:
    body = request.body
    return parse_qs(body if isinstance(body, str) else body.decode())


def _assume_role_xml(key: str, expires: datetime) -> bytes:
    return f"""<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <Credentials>
      <AccessKeyId>{key}</AccessKeyId>
      <SecretAccessKey>assumed-secret</SecretAccessKey>
      <SessionToken>assumed-token</SessionToken>
      <Expiration>{expires.strftime("%Y-%m-%dT%H:%M:%SZ")}</Expiration>
    </Credentials>
    <AssumedRoleUser><AssumedRoleId>AROA:ddbridge</AssumedRoleId><Arn>{ROLE}/ddbridge</Arn></AssumedRoleUser>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>1</RequestId></ResponseMetadata>
</AssumeRoleResponse>""".encode()


def test_an_assumed_role_signs_dynamodb_calls_with_its_session_and_sends_the_external_id() -> None:
    settings = DynamoSettings(
        region="eu-west-1", role_arn=ROLE, external_id="ext-4711", role_session_name="ddbridge-stream-0"
    )
    source = boto3.session.Session(
        aws_access_key_id="AKIASOURCE", aws_secret_access_key="source-secret", region_name="eu-west-1"
    )
    assumed_requests: list[dict[str, list[str]]] = []

    def sts(request: Any, **_: Any) -> AWSResponse:
        assumed_requests.append(_form(request))
        assert "Credential=AKIASOURCE/" in request.headers["Authorization"].decode()
        return _answer(200, _assume_role_xml("ASIAASSUMED", datetime.now(UTC) + timedelta(hours=1)))

    source.events.register("before-send.sts.AssumeRole", sts)
    client = assume_role(source, settings).client("dynamodb", region_name="eu-west-1")
    seen: list[Any] = []

    def dynamodb(request: Any, **_: Any) -> AWSResponse:
        seen.append(request)
        return _answer(200, b'{"TableNames": []}')

    client.meta.events.register("before-send.dynamodb.ListTables", dynamodb)
    client.list_tables()
    client.list_tables()
    assert assumed_requests == [
        {
            "Action": ["AssumeRole"],
            "Version": ["2011-06-15"],
            "RoleArn": [ROLE],
            "RoleSessionName": ["ddbridge-stream-0"],
            "ExternalId": ["ext-4711"],
        }
    ]  # assumed once, not per call
    for request in seen:
        assert "Credential=ASIAASSUMED/" in request.headers["Authorization"].decode()
        assert request.headers["X-Amz-Security-Token"] == b"assumed-token"


def test_an_expiring_role_is_assumed_again() -> None:
    settings = DynamoSettings(region="eu-west-1", role_arn=ROLE)
    source = boto3.session.Session(aws_access_key_id="AKIASOURCE", aws_secret_access_key="s", region_name="eu-west-1")
    keys = iter(["ASIAFIRST", "ASIASECOND"])
    calls: list[str] = []

    def sts(request: Any, **_: Any) -> AWSResponse:
        assert "ExternalId" not in _form(request)
        calls.append(key := next(keys))
        soon = datetime.now(UTC) + timedelta(minutes=5)  # inside botocore's refresh window: renewed on next use
        return _answer(200, _assume_role_xml(key, soon))

    source.events.register("before-send.sts.AssumeRole", sts)
    credentials = assume_role(source, settings).get_credentials()
    assert credentials is not None
    assert credentials.get_frozen_credentials().access_key == "ASIAFIRST"
    assert credentials.get_frozen_credentials().access_key == "ASIASECOND"
    assert calls == ["ASIAFIRST", "ASIASECOND"]


def test_a_profile_supplies_the_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config"
    config.write_text("[profile migration]\naws_access_key_id = AKIAPROFILE\naws_secret_access_key = p\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    credentials = aws_session(DynamoSettings(profile="migration")).get_credentials()
    assert credentials is not None and credentials.access_key == "AKIAPROFILE"
    with pytest.raises(ConfigError, match=r"dynamodb.profile 'elsewhere' is not in ~/.aws/config"):
        aws_session(DynamoSettings(profile="elsewhere"))


def test_fips_and_custom_endpoints() -> None:
    fips = DynamoSettings(region="us-gov-west-1", use_fips_endpoint=True, access_key_id="a", secret_access_key="b")
    assert make_client(fips).meta.endpoint_url == "https://dynamodb-fips.us-gov-west-1.amazonaws.com"
    assert _lean_endpoint(fips) == "https://dynamodb-fips.us-gov-west-1.amazonaws.com"
    vpce = "https://vpce-0abc-dynamodb.eu-west-1.vpce.amazonaws.com"
    custom = DynamoSettings(region="eu-west-1", endpoint_url=vpce, access_key_id="a", secret_access_key="b")
    assert make_client(custom).meta.endpoint_url == vpce and _lean_endpoint(custom) == vpce


def test_contradicting_credential_settings_are_refused() -> None:
    with pytest.raises(ValueError, match=r"profile or dynamodb\.access_key_id"):
        DynamoSettings(profile="p", access_key_id="a", secret_access_key="b")
    with pytest.raises(ValueError, match=r"set dynamodb\.role_arn"):
        DynamoSettings(external_id="x")
