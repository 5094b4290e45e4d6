"""DynamoDB client construction: one place that knows endpoint, region, credentials, pool size and
which errors are transient."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from bridge.config import DynamoSettings
from bridge.errors import ConfigError
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
    """A low-level DynamoDB client for the configured endpoint (``endpoint_url`` None means AWS)."""
    client: DynamoDBClient = boto3.session.Session().client(
        "dynamodb",
        endpoint_url=settings.endpoint_url or None,
        region_name=settings.region,
        config=BotoConfig(
            max_pool_connections=pool_size,
            connect_timeout=5,
            read_timeout=30,
            retries={"mode": "standard", "max_attempts": max_attempts},
        ),
        **_credential_kwargs(settings),
    )
    return client


def _credential_kwargs(settings: DynamoSettings) -> dict[str, str]:
    if settings.access_key_id is None or settings.secret_access_key is None:
        return {}
    return {
        "aws_access_key_id": settings.access_key_id.get_secret_value(),
        "aws_secret_access_key": settings.secret_access_key.get_secret_value(),
    }


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
    session = boto3.session.Session(**_credential_kwargs(settings), region_name=settings.region)
    credentials = session.get_credentials()
    if credentials is None:
        raise ConfigError(
            "no AWS credentials found for DynamoDB: set dynamodb.access_key_id/secret_access_key, "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile or an instance role"
        )
    endpoint = settings.endpoint_url or f"https://dynamodb.{settings.region}.amazonaws.com"
    return LeanCall(endpoint, settings.region, credentials, operation=operation, pool_size=pool_size)


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
