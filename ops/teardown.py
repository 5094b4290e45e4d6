"""Undoing ``init``: the connector (optionally with its stored offsets), the replication slot and
publication, the topics, the consumer group and the DynamoDB tables. Used by ``ddbridge connector
delete``, the demo's reset, the benchmarks' sandboxes and the test fixtures; each step is idempotent
(what is already gone is skipped)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence

from bridge.config import Settings
from bridge.dynamo import make_client
from bridge.errors import DdbridgeError
from bridge.kafka_config import admin_client
from bridge.postgres import drop_slot_and_publication
from bridge.topics import topic_for
from connectors.debezium import ConnectClient, connector_config


def remove_connector(settings: Settings, *, forget_offsets: bool) -> bool:
    """Delete the connector; with ``forget_offsets`` its stored offsets too (they point into a slot's
    WAL: a connector registered again under the name would ask for a position a new slot lacks).
    Returns whether a connector was registered."""
    c = settings.connect
    client = ConnectClient(c)
    if forget_offsets:
        existed = client.status(c.connector_name) is not None
        client.forget(c.connector_name, connector_config(settings))
        return existed
    return client.delete(c.connector_name)


def drop_slot(settings: Settings, *, wait_s: float = 60.0) -> str:
    """Drop the replication slot and the publication, waiting up to ``wait_s`` for the slot to be
    released (a deleted connector's task lets go of it within seconds)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return drop_slot_and_publication(settings)
        except DdbridgeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def delete_topics(settings: Settings, topics: Sequence[str], *, wait_s: float = 60.0) -> list[str]:
    """Delete the topics that exist and wait until the broker no longer lists them; returns them."""
    admin = admin_client(settings.kafka)
    existing = set(admin.list_topics(timeout=15).topics)
    doomed = [t for t in topics if t in existing]
    for future in (admin.delete_topics(doomed, operation_timeout=30) if doomed else {}).values():
        future.result()
    deadline = time.monotonic() + wait_s
    while doomed and time.monotonic() < deadline and set(doomed) & set(admin.list_topics(timeout=15).topics):
        time.sleep(0.5)
    return doomed


def delete_group(settings: Settings) -> None:
    """Delete the bridge's consumer group (its committed offsets); none is fine."""
    admin = admin_client(settings.kafka)
    for future in admin.delete_consumer_groups([settings.kafka.consumer_group], request_timeout=30).values():
        with contextlib.suppress(Exception):  # no such group: nothing to delete
            future.result()


def delete_tables(settings: Settings, tables: Sequence[str] | None = None, *, wait: bool = True) -> list[str]:
    """Delete DynamoDB tables (default: every mapped target and the control table); returns the ones
    that existed."""
    client = make_client(settings.dynamodb)
    names = (
        list(tables) if tables is not None else [m.target for m in settings.tables] + [settings.dynamodb.control_table]
    )
    deleted: list[str] = []
    for table in names:
        with contextlib.suppress(client.exceptions.ResourceNotFoundException):
            client.delete_table(TableName=table)
            deleted.append(table)
            if wait:
                client.get_waiter("table_not_exists").wait(TableName=table, WaiterConfig={"Delay": 1})
    return deleted


def pipeline_topics(settings: Settings) -> list[str]:
    """The topics ``init`` creates: one per mapped table, and the dead-letter topic."""
    return [topic_for(settings, m.source) for m in settings.tables] + [settings.kafka.dead_letter_topic]


def teardown(settings: Settings, *, forget_offsets: bool = True) -> list[str]:
    """Everything ``init`` made, removed: connector (and offsets), slot and publication, topics, the
    consumer group, DynamoDB tables. Returns what it removed."""
    done = []
    if remove_connector(settings, forget_offsets=forget_offsets):
        done.append(f"connector {settings.connect.connector_name}")
    done.append(drop_slot(settings))
    done += [f"topic {t}" for t in delete_topics(settings, pipeline_topics(settings))]
    delete_group(settings)
    done += [f"DynamoDB table {t}" for t in delete_tables(settings)]
    return done
