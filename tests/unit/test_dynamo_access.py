"""AWS refusals (wrong or expired credentials, an action the policy denies, a role that cannot be
assumed) become one-line errors naming what to check, exit 1, wherever a command raises them; any
other AWS error is not disguised as one."""

from __future__ import annotations

import pytest
import typer
from botocore.exceptions import ClientError, ConnectionClosedError

from bridge.dynamo import aws_refusal
from ddbridge.output import run

DENIED = (
    "User: arn:aws:sts::123456789012:assumed-role/ddbridge-reconcile/x is not authorized to perform: "
    "dynamodb:PutItem on resource: arn:aws:dynamodb:eu-west-1:123456789012:table/Payments"
)


def _error(code: str, operation: str, message: str = "refused") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


def test_a_denied_action_names_the_action_and_the_policies() -> None:
    problem = aws_refusal(_error("AccessDeniedException", "PutItem", DENIED))
    assert problem is not None
    assert str(problem) == (
        f"DynamoDB denied PutItem (AccessDeniedException: {DENIED}); grant dynamodb:PutItem to the role "
        "ddbridge runs as: ops/iam/<command>.json lists what each command needs"
    )
    assert problem.exit_code == 1


@pytest.mark.parametrize("code", ["UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException"])
def test_rejected_credentials_name_the_credential_settings(code: str) -> None:
    problem = aws_refusal(_error(code, "DescribeTable"))
    assert problem is not None
    message = str(problem)
    assert message.startswith(f"DynamoDB rejected ddbridge's AWS credentials on DescribeTable ({code}: refused)")
    assert "dynamodb.access_key_id" in message and "dynamodb.role_arn" in message and "AWS_PROFILE" in message


def test_a_role_that_cannot_be_assumed_names_its_trust_policy_and_external_id() -> None:
    problem = aws_refusal(_error("AccessDenied", "AssumeRole"))
    assert problem is not None and "dynamodb.role_arn" in str(problem) and "dynamodb.external_id" in str(problem)


@pytest.mark.parametrize("code", ["ValidationException", "ResourceNotFoundException", "ThrottlingException"])
def test_other_errors_are_not_refusals(code: str) -> None:
    assert aws_refusal(_error(code, "PutItem")) is None


def test_a_command_stops_with_the_one_line_error_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    def body() -> None:
        raise _error("AccessDeniedException", "Scan", DENIED)

    with pytest.raises(typer.Exit) as exited:
        run(body)
    assert exited.value.exit_code == 1
    err = capsys.readouterr().err
    assert "error: DynamoDB denied Scan" in err and "Traceback" not in err


def test_any_other_aws_error_still_surfaces() -> None:
    def body() -> None:
        raise _error("ValidationException", "PutItem")

    with pytest.raises(ClientError):
        run(body)


@pytest.mark.parametrize(
    ("error", "start"),
    [
        (_error("ProvisionedThroughputExceededException", "PutItem"), "error: DynamoDB kept failing after retries"),
        (_error("InternalServerError", "Query"), "error: DynamoDB kept failing after retries"),
        (
            ConnectionClosedError(endpoint_url="http://127.0.0.1:58002/"),
            "error: DynamoDB did not answer after retries: Connection was closed",
        ),
    ],
)
def test_throttling_5xx_and_a_dead_endpoint_after_retries_are_one_line_errors_that_say_nothing_is_lost(
    capsys: pytest.CaptureFixture[str], error: Exception, start: str
) -> None:
    def body() -> None:
        raise error

    with pytest.raises(typer.Exit) as exited:
        run(body)
    assert exited.value.exit_code == 1
    err = capsys.readouterr().err
    assert err.startswith(start) and "nothing is lost" in err and "run the command again" in err, err
