"""Shared fixtures. Integration tests (tests/integration) use the real local stack, brought up once
per run (a healthy running stack is reused) with per-test isolation: each test gets its own
PostgreSQL database, Kafka topic prefix, replication slot, publication, connector and DynamoDB tables."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAYMENTS_CONFIG = ROOT / "examples" / "payments" / "ddbridge.toml"
# A local emulator accepts any key, but DynamoDB settings default to the AWS chain: tests name the keys.
LOCAL_KEYS = {"access_key_id": "local", "secret_access_key": "local"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.stack)


@pytest.fixture
def unique() -> str:
    """A short unique lower-case suffix for names of one test."""
    return uuid.uuid4().hex[:10]
