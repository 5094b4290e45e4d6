"""The demo deletes and recreates its tables, topics and connector: it refuses anything but a local stack."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from bridge.config import load_settings
from bridge.errors import ConfigError
from examples.payments.demo import require_local
from tests.conftest import PAYMENTS_CONFIG


def test_the_demo_runs_only_against_a_local_stack() -> None:
    local = load_settings(PAYMENTS_CONFIG)
    require_local(local)
    aws = local.model_copy(update={"dynamodb": local.dynamodb.model_copy(update={"endpoint_url": None})})
    with pytest.raises(ConfigError, match="only runs against a local stack"):
        require_local(aws)
    remote_pg = local.model_copy(
        update={"source": local.source.model_copy(update={"dsn": SecretStr("postgresql://u:p@db.example.com/prod")})}
    )
    with pytest.raises(ConfigError, match=r"db\.example\.com"):
        require_local(remote_pg)
