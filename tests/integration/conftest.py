"""Fixtures over the real local stack."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from bridge.config import Settings, load_settings
from bridge.errors import DdbridgeError
from ops import teardown
from ops.ddbsim.admin import DdbsimAdmin
from ops.stack import LocalStack
from ops.toxiproxy import Toxiproxy
from tests.conftest import PAYMENTS_CONFIG


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    return load_settings(PAYMENTS_CONFIG)


@pytest.fixture(scope="session")
def stack(base_settings: Settings) -> LocalStack:
    """The local stack, started (or reused when already healthy) once per test session."""
    c = base_settings.connect
    local = LocalStack(base_settings.stack, c.database_user, c.database_password.get_secret_value(), c.database_name)
    local.up()
    return local


@pytest.fixture
def isolated(stack: LocalStack, base_settings: Settings, unique: str) -> Iterator[Settings]:
    """Settings of the payments example, with every shared name made unique to this test.

    Creates a fresh database owned by the ddbridge role; on teardown deletes the test's connector,
    drops its replication slot and its database, and deletes its DynamoDB tables (dynalite slows down
    as tables accumulate).
    """
    db = f"t_{unique}"
    with psycopg.connect(stack.pg_conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER ddbridge").format(sql.Identifier(db)))
    data = base_settings.model_dump(mode="python")
    data["source"]["dsn"] = f"postgresql://ddbridge:ddbridge@127.0.0.1:{stack.ports.postgres}/{db}"
    data["connect"].update(
        database_name=db,
        database_password="ddbridge",
        connector_name=f"ddbridge-{unique}",
        slot_name=f"slot_{unique}",
        publication_name=f"pub_{unique}",
        heartbeat_interval_ms=1000,
    )
    data["kafka"].update(topic_prefix=f"t{unique}", consumer_group=f"g-{unique}", dead_letter_topic=f"t{unique}.dlq")
    data["dynamodb"].update(control_table=f"ctl_{unique}")
    # No fixed metrics ports: the defaults lie in Linux's ephemeral range (32768-60999), where any
    # client connection of the suite may hold them; a test that reads metrics picks a free port.
    data["stream"]["metrics_port"] = 0
    data["migration"]["metrics_port"] = 0
    for table in data["tables"]:
        table["target"] = f"{table['target']}_{unique}"
    settings = Settings(**data)
    yield settings
    teardown.remove_connector(settings, forget_offsets=False)
    teardown.delete_tables(settings, wait=False)
    with contextlib.suppress(DdbridgeError):  # a slot still held after 30 s: DROP DATABASE says so
        teardown.drop_slot(settings, wait_s=30)
    with psycopg.connect(stack.pg_conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))


@pytest.fixture
def ddbsim(stack: LocalStack) -> Iterator[DdbsimAdmin]:
    """The stack's service-like DynamoDB layer, pass-through before and after the test."""
    admin = DdbsimAdmin(stack.ddbsim_url)
    admin.reset()
    yield admin
    admin.reset()


@pytest.fixture
def toxiproxy(stack: LocalStack) -> Iterator[Toxiproxy]:
    """The stack's Toxiproxy, every proxy enabled and free of toxics before and after the test."""
    proxy = Toxiproxy(stack.toxiproxy_url)
    proxy.reset()
    yield proxy
    proxy.reset()
