"""DynamoDB client construction: one place that knows endpoint, region, credentials and pool size."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config as BotoConfig

from bridge.config import DynamoSettings
from bridge.errors import ConfigError
from bridge.lean_put import LeanPutItem

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


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


def make_put_item(settings: DynamoSettings, *, pool_size: int) -> Callable[..., Any]:
    """The PutItem caller of the sink: the lean one (``settings.lean_puts``) or a boto3 client's."""
    session = boto3.session.Session(**_credential_kwargs(settings), region_name=settings.region)
    if not settings.lean_puts:
        return make_client(settings, pool_size=pool_size, max_attempts=1).put_item
    credentials = session.get_credentials()
    if credentials is None:
        raise ConfigError(
            "no AWS credentials found for DynamoDB: set dynamodb.access_key_id/secret_access_key, "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile or an instance role"
        )
    endpoint = settings.endpoint_url or f"https://dynamodb.{settings.region}.amazonaws.com"
    return LeanPutItem(endpoint, settings.region, credentials, pool_size=pool_size)
