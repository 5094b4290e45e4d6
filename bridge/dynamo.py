"""DynamoDB client construction: one place that knows endpoint, region, credentials and pool size."""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from botocore.config import Config as BotoConfig

from bridge.config import DynamoSettings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def make_client(settings: DynamoSettings, *, pool_size: int = 32, max_attempts: int = 5) -> DynamoDBClient:
    """A low-level DynamoDB client for the configured endpoint (``endpoint_url`` None means AWS)."""
    kwargs: dict[str, object] = {}
    if settings.access_key_id is not None and settings.secret_access_key is not None:
        kwargs["aws_access_key_id"] = settings.access_key_id.get_secret_value()
        kwargs["aws_secret_access_key"] = settings.secret_access_key.get_secret_value()
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
        **kwargs,
    )
    return client
