"""DynamoDB client construction: one place that knows endpoint, region, credentials, pool size and
which errors are transient."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import boto3
import botocore.session
from botocore.config import Config as BotoConfig
from botocore.credentials import CredentialProvider, DeferredRefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError, ProfileNotFound
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from bridge.config import DynamoSettings
from bridge.errors import ConfigError, DynamoAccessError
from bridge.lean_call import LeanCall

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

THROTTLE_CODES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TransactionConflictException",
}
SERVER_CODES = {"InternalServerError", "ServiceUnavailable", "InternalFailure", "ServiceUnavailableException"}
BOTO_METHODS = {"PutItem": "put_item", "Scan": "scan", "BatchGetItem": "batch_get_item"}


def make_client(settings: DynamoSettings, *, pool_size: int = 32, max_attempts: int = 5) -> DynamoDBClient:
    """A low-level DynamoDB client for the configured endpoint (``endpoint_url`` None means AWS), making at
    most ``max_attempts`` attempts of each call (1: no retries, the caller's own)."""
    client: DynamoDBClient = aws_session(settings).client(
        "dynamodb",
        endpoint_url=settings.endpoint_url or None,
        region_name=settings.region,
        config=BotoConfig(
            max_pool_connections=pool_size,
            connect_timeout=5,
            read_timeout=30,
            # total attempts: botocore's "max_attempts" counts retries, so 1 meant one retry
            retries={"mode": "standard", "total_max_attempts": max_attempts},
            use_fips_endpoint=settings.use_fips_endpoint,
        ),
    )
    return client


def aws_session(settings: DynamoSettings) -> boto3.session.Session:
    """The AWS session DynamoDB calls are signed with: explicit keys, else ``profile``, else the default
    chain (environment, AWS_PROFILE, SSO, web identity, instance or task role); with ``role_arn`` those
    credentials assume the role, renewed before it expires."""
    keys: dict[str, str] = {}
    if settings.access_key_id is not None and settings.secret_access_key is not None:
        keys = {
            "aws_access_key_id": settings.access_key_id.get_secret_value(),
            "aws_secret_access_key": settings.secret_access_key.get_secret_value(),
        }
    try:
        source = boto3.session.Session(profile_name=settings.profile, region_name=settings.region, **keys)
    except ProfileNotFound as exc:
        raise ConfigError(
            f"dynamodb.profile {settings.profile!r} is not in ~/.aws/config (or AWS_CONFIG_FILE): name one "
            "of its profiles, or unset it"
        ) from exc
    return assume_role(source, settings) if settings.role_arn else source


class _AssumedRole(CredentialProvider):  # type: ignore[misc]  # botocore is untyped
    METHOD = "ddbridge-assume-role"

    def __init__(self, credentials: DeferredRefreshableCredentials) -> None:
        super().__init__()
        self.credentials = credentials

    def load(self) -> DeferredRefreshableCredentials:
        return self.credentials


def assume_role(source: boto3.session.Session, settings: DynamoSettings) -> boto3.session.Session:
    """A session whose credentials are ``settings.role_arn`` assumed with ``source``'s credentials (and
    ``external_id``); the first call assumes it, and it is assumed again shortly before it expires."""
    assert settings.role_arn is not None
    request = {"RoleArn": settings.role_arn, "RoleSessionName": settings.role_session_name}
    if settings.external_id is not None:
        request["ExternalId"] = settings.external_id

    def refresh() -> dict[str, str]:
        sts = source.client("sts", region_name=settings.region, endpoint_url=settings.sts_endpoint_url)
        granted = sts.assume_role(**request)["Credentials"]
        return {
            "access_key": granted["AccessKeyId"],
            "secret_key": granted["SecretAccessKey"],
            "token": granted["SessionToken"],
            "expiry_time": granted["Expiration"].isoformat(),
        }

    core = botocore.session.Session()
    core.get_component("credential_provider").insert_before(
        "env", _AssumedRole(DeferredRefreshableCredentials(refresh, _AssumedRole.METHOD))
    )
    return boto3.session.Session(botocore_session=core, region_name=settings.region)


def _lean_endpoint(settings: DynamoSettings) -> str:
    if settings.endpoint_url:
        return settings.endpoint_url
    return f"https://dynamodb{'-fips' if settings.use_fips_endpoint else ''}.{settings.region}.amazonaws.com"


# Refusals retrying cannot fix: the credentials are wrong, expired or missing, or the policy denies.
_CREDENTIAL_CODES = {
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "ExpiredTokenException",
    "MissingAuthenticationTokenException",
    "IncompleteSignatureException",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
}
_DENIED_CODES = {"AccessDeniedException", "AccessDenied"}


def aws_refusal(exc: ClientError) -> DynamoAccessError | None:
    """The one-line error of an AWS refusal (bad credentials, an action the policy denies, a role that
    cannot be assumed), naming the settings and the policy to check; None for any other error."""
    error = exc.response.get("Error", {})
    code, message = error.get("Code", ""), error.get("Message", "")
    operation = exc.operation_name
    if code not in _CREDENTIAL_CODES | _DENIED_CODES:
        return None
    if operation == "AssumeRole":
        return DynamoAccessError(
            f"AWS STS refused to let ddbridge assume dynamodb.role_arn ({code}: {message}); check the role's "
            "trust policy, dynamodb.external_id, and that the source credentials may sts:AssumeRole it"
        )
    if code in _DENIED_CODES:
        return DynamoAccessError(
            f"DynamoDB denied {operation} ({code}: {message}); grant dynamodb:{operation} to the role ddbridge "
            "runs as: ops/iam/<command>.json lists what each command needs"
        )
    return DynamoAccessError(
        f"DynamoDB rejected ddbridge's AWS credentials on {operation} ({code}: {message}); check "
        "dynamodb.access_key_id/secret_access_key, dynamodb.profile (or AWS_PROFILE), dynamodb.role_arn, "
        "or the role of the machine or pod, and dynamodb.region"
    )


def retry_cause(exc: BaseException) -> str | None:
    """'throttle', 'server' or 'network' for a retryable error, else None."""
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in THROTTLE_CODES:
            return "throttle"
        if code in SERVER_CODES or status >= 500:
            return "server"
        return None
    if isinstance(exc, ConnectionError | HTTPClientError | BotoCoreError):
        return "network"
    return None


def make_call(settings: DynamoSettings, operation: str, *, pool_size: int) -> Callable[..., Any]:
    """One operation's caller, ``call(**request)``, without retries: the lean one
    (``settings.lean_client``) or a boto3 client's method. Lean responses stay in wire form
    (binary as base64 text, sets as lists)."""
    if not settings.lean_client:
        method: Callable[..., Any] = getattr(
            make_client(settings, pool_size=pool_size, max_attempts=1), BOTO_METHODS[operation]
        )
        return method
    credentials = aws_session(settings).get_credentials()
    if credentials is None:
        raise ConfigError(
            "no AWS credentials found for DynamoDB: set dynamodb.access_key_id/secret_access_key, "
            "dynamodb.profile (or AWS_PROFILE), AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run with a role"
        )
    return LeanCall(_lean_endpoint(settings), settings.region, credentials, operation=operation, pool_size=pool_size)


def make_put_item(settings: DynamoSettings, *, pool_size: int) -> Callable[..., Any]:
    """The sink's PutItem caller (it retries by itself)."""
    return make_call(settings, "PutItem", pool_size=pool_size)


def make_reader(settings: DynamoSettings, operation: str, *, pool_size: int, attempts: int = 5) -> Callable[..., Any]:
    """A caller of a read operation (Scan, BatchGetItem) that retries throttling, 5xx and network
    errors with jittered backoff."""
    call = make_call(settings, operation, pool_size=pool_size)

    def read(**request: Any) -> Any:
        for attempt in Retrying(
            stop=stop_after_attempt(attempts),
            wait=wait_random_exponential(multiplier=0.05, max=5),
            retry=retry_if_exception(lambda e: retry_cause(e) is not None),
            reraise=True,
        ):
            with attempt:
                return call(**request)
        raise AssertionError("unreachable")  # Retrying either returns or re-raises

    return read


def make_scan(settings: DynamoSettings, *, pool_size: int, attempts: int = 5) -> Callable[..., Any]:
    """A retrying Scan caller."""
    return make_reader(settings, "Scan", pool_size=pool_size, attempts=attempts)
