"""A throw-away migration of the payments example on the local stack, for benchmarks: its own
database, connector, slot, publication, topics, consumer group and DynamoDB tables, all removed
afterwards."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import psycopg
from psycopg import sql

from bridge.config import Settings, load_settings
from bridge.errors import DdbridgeError
from bridge.kafka_config import admin_client
from examples.payments.generate import load_payments
from ops import teardown

EXAMPLE_CONFIG = Path(__file__).parent.parent / "examples" / "payments" / "ddbridge.toml"
ADMIN_DSN = "host=127.0.0.1 port=55432 user=postgres dbname=postgres"


def sandbox_settings(tag: str, *, partitions: int = 4) -> Settings:
    """The payments example with every shared name made unique by ``tag`` (nothing created yet)."""
    data = load_settings(EXAMPLE_CONFIG).model_dump(mode="python")
    db = f"bench_{tag}"
    data["source"]["dsn"] = f"postgresql://ddbridge:ddbridge@127.0.0.1:55432/{db}"
    data["connect"].update(
        database_name=db,
        database_password="ddbridge",
        connector_name=f"bench-{tag}",
        slot_name=f"bench_{tag}",
        publication_name=f"bench_{tag}",
        topic_partitions=partitions,
    )
    data["kafka"].update(topic_prefix=f"bench{tag}", consumer_group=f"bench-{tag}", dead_letter_topic=f"bench{tag}.dlq")
    data["dynamodb"]["control_table"] = f"bench_ctl_{tag}"
    data["tables"][0]["target"] = f"BenchPayments_{tag}"
    data["migration"]["metrics_port"] = 0
    data["stream"]["metrics_port"] = 0
    return Settings(**data)


@contextlib.contextmanager
def sandbox(rows: int, *, partitions: int = 4) -> Iterator[tuple[Settings, list[str]]]:
    """A fresh database loaded with ``rows`` payments; yields its settings and a list the caller adds
    extra DynamoDB table names to. Everything is removed on exit, connector and slot included."""
    settings = sandbox_settings(uuid.uuid4().hex[:8], partitions=partitions)
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER ddbridge").format(sql.Identifier(settings.connect.database_name))
        )
    tables = [settings.tables[0].target, settings.dynamodb.control_table]
    try:
        load_payments(settings.source.dsn.get_secret_value(), rows=rows)
        yield settings, tables
    finally:
        remove(settings, tables)


def remove(settings: Settings, tables: Sequence[str]) -> None:
    """Delete the sandbox's connector (and its offsets), slot, topics, DynamoDB tables and database."""
    teardown.remove_connector(settings, forget_offsets=False)
    teardown.delete_tables(settings, tables, wait=False)
    admin = admin_client(settings.kafka)
    prefix = settings.kafka.topic_prefix
    topics = [t for t in admin.list_topics(timeout=15).topics if prefix in t]  # CDC, heartbeat, dead letters
    with contextlib.suppress(Exception):
        teardown.delete_topics(settings, topics, wait_s=0)
    with contextlib.suppress(DdbridgeError):  # a slot still held after 30 s: DROP DATABASE says so
        teardown.drop_slot(settings, wait_s=30)
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(settings.connect.database_name))
        )
