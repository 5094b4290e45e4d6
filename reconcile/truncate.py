"""``ddbridge truncate recover``: make DynamoDB exact again after a TRUNCATE of a source table.

A TRUNCATE at LSN T removes every row that existed before it; every row that exists after it was
inserted after T, so its change events (LSN > T) are in Kafka and the bridge applies them. Hence the
exact state is: only items written by the stream at an LSN above T. Recovery, with no bridge running:

1. raise the table's LSN floor to T (bridge/floors.py): the bridge then drops every change below T,
   from whichever partition or replay it still arrives;
2. delete every item of the table that is not a stream write above T (snapshot copies, stream writes
   below T, tombstones below T, items not written by ddbridge), each delete conditional on exactly that,
   so a write above T that lands meanwhile is never removed;
3. forget the pending truncate. Start the bridges again; no backfill is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException

from bridge.config import Settings
from bridge.dynamo import make_client
from bridge.errors import ConfigError, TerminalError
from bridge.floors import FloorStore
from bridge.kafka_config import admin_client
from bridge.rules import CDC
from reconcile.target import delete_conditionally, scan
from reconcile.tombstones import running_backfills


@dataclass
class TruncateRecovery:
    """What a recovery did."""

    table: str
    target: str
    lsn: int
    scanned: int = 0
    removed: int = 0
    kept: int = 0  # stream writes above the truncate
    changed: int = 0  # rewritten above the truncate while the sweep ran: kept


def bridge_members(settings: Settings) -> int:
    """Active members of the bridge's consumer group (0 when the group is empty or unknown)."""
    admin = admin_client(settings.kafka)
    future = admin.describe_consumer_groups([settings.kafka.consumer_group], request_timeout=15)
    try:
        description = future[settings.kafka.consumer_group].result()
    except KafkaException as exc:
        raise TerminalError(f"cannot describe consumer group {settings.kafka.consumer_group}: {exc}") from exc
    return len(description.members)


def recover(
    settings: Settings, table: str | None = None, lsn: int | None = None, *, force: bool = False
) -> TruncateRecovery:
    """Recover the table from the TRUNCATE at ``lsn`` (default: the one the bridge recorded)."""
    mapping = settings.mapping(table)
    book = settings.bookkeeping
    client = make_client(settings.dynamodb, pool_size=settings.migration.write_concurrency + 4, max_attempts=8)
    floors = FloorStore(client, settings.dynamodb.control_table)
    truncate_lsn = lsn if lsn is not None else floors.pending_truncate(mapping.source)
    if truncate_lsn is None:
        raise ConfigError(
            f"no TRUNCATE of {mapping.source} is recorded (the bridge records the one it stops at): "
            "pass --lsn with the LSN it printed"
        )
    if not force:
        members = bridge_members(settings)
        if members:
            raise TerminalError(
                f"{members} bridge process(es) of group {settings.kafka.consumer_group} are running: stop every "
                "`ddbridge stream` first (one of them could apply a change from before the truncate after the sweep)"
            )
        running = running_backfills(settings, client, mapping.source)
        if running:
            raise TerminalError(
                f"backfill {', '.join(running)} of {mapping.source} is in progress: a chunk it read before the "
                "truncate could be written after the sweep. Stop it, recover, and start a new migration if needed"
            )
    floors.raise_floor(mapping.source, truncate_lsn)
    result = TruncateRecovery(mapping.source, mapping.target, truncate_lsn)
    key_names = [mapping.partition_key.name] + ([mapping.sort_key.name] if mapping.sort_key else [])
    names = {f"#k{i}": n for i, n in enumerate(key_names)} | {"#src": book.source, "#lsn": book.lsn}
    doomed: list[dict[str, Any]] = []

    def on_page(items: list[dict[str, Any]]) -> None:
        for item in items:
            result.scanned += 1
            above = item.get(book.source) == {"S": CDC} and int(item.get(book.lsn, {"N": "0"})["N"]) > truncate_lsn
            if above:
                result.kept += 1
            else:
                doomed.append(item)

    scan(
        client.scan,
        mapping.target,
        settings.reconcile.scan_segments,
        on_page,
        ProjectionExpression=", ".join(names),
        ExpressionAttributeNames=names,
        ConsistentRead=True,
    )

    requests = [
        {
            "TableName": mapping.target,
            "Key": {n: item[n] for n in key_names},
            "ConditionExpression": "attribute_not_exists(#src) OR #src <> :cdc OR attribute_not_exists(#lsn) "
            "OR #lsn <= :t",
            "ExpressionAttributeNames": {"#src": book.source, "#lsn": book.lsn},
            "ExpressionAttributeValues": {":cdc": {"S": CDC}, ":t": {"N": str(truncate_lsn)}},
        }
        for item in doomed
    ]
    result.removed, result.changed = delete_conditionally(client, requests, settings.migration.write_concurrency)
    floors.clear_truncate(mapping.source, truncate_lsn)
    return result
