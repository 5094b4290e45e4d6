"""``ddbridge tombstones purge``: delete tombstones whose grace has passed, safely.

A tombstone keeps a late backfill chunk from resurrecting a deleted row, so none is purged while a
backfill of the table is in progress. Each delete is conditional on the item still being that
tombstone (same ``_lsn``), so a row re-created meanwhile is never touched.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from backfill.checkpoints import all_migrations
from bridge.config import Settings
from bridge.dynamo import make_client
from bridge.errors import TerminalError
from reconcile.target import delete_conditionally, scan

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@dataclass
class PurgeResult:
    table: str
    tombstones: int = 0
    purged: int = 0
    not_due: int = 0
    changed: int = 0  # no longer the same tombstone when deleted (re-created or re-deleted): kept
    dry_run: bool = False


def running_backfills(settings: Settings, client: DynamoDBClient, source: str) -> list[str]:
    """Migrations of ``source`` with a range still InProgress (running, or killed before it finished)."""
    return [
        plan.migration_id
        for plan, checkpoints in all_migrations(client, settings.dynamodb.control_table)
        if plan.source == source and any(cp.status == "InProgress" for cp in checkpoints.values())
    ]


def purge(settings: Settings, table: str | None = None, *, dry_run: bool = False, force: bool = False) -> PurgeResult:
    """Delete every tombstone of the table whose ``_ttl`` has passed."""
    mapping = settings.mapping(table)
    book = settings.bookkeeping
    client = make_client(settings.dynamodb, pool_size=settings.migration.write_concurrency + 4, max_attempts=8)
    running = running_backfills(settings, client, mapping.source)
    if running and not force:
        raise TerminalError(
            f"backfill {', '.join(running)} of {mapping.source} is in progress (or was stopped mid-range): a tombstone "
            "purged now could let one of its chunks resurrect a deleted row. Let it finish (`ddbridge resume`), "
            "or pass --force if that migration is abandoned"
        )
    result = PurgeResult(mapping.target, dry_run=dry_run)
    now = time.time()
    due: list[dict[str, Any]] = []
    key_names = [mapping.partition_key.name] + ([mapping.sort_key.name] if mapping.sort_key else [])
    names = {f"#k{i}": n for i, n in enumerate(key_names)}
    names.update({"#d": book.deleted, "#lsn": book.lsn, "#ttl": book.ttl})

    def on_page(items: list[dict[str, Any]]) -> None:
        for item in items:
            result.tombstones += 1
            if book.ttl in item and float(item[book.ttl]["N"]) > now:
                result.not_due += 1
            else:
                due.append(item)

    scan(
        client.scan,
        mapping.target,
        settings.reconcile.scan_segments,
        on_page,
        FilterExpression="attribute_exists(#d)",
        ProjectionExpression=", ".join(names),
        ExpressionAttributeNames=names,
    )
    if dry_run:
        result.purged = len(due)
        return result

    def request(item: dict[str, Any]) -> dict[str, Any]:
        same = "#lsn = :lsn" if book.lsn in item else "attribute_not_exists(#lsn)"
        request: dict[str, Any] = {
            "TableName": mapping.target,
            "Key": {n: item[n] for n in key_names},
            "ConditionExpression": f"attribute_exists(#d) AND {same}",
            "ExpressionAttributeNames": {"#d": book.deleted, "#lsn": book.lsn},
        }
        if book.lsn in item:
            request["ExpressionAttributeValues"] = {":lsn": item[book.lsn]}
        return request

    result.purged, result.changed = delete_conditionally(
        client, [request(i) for i in due], settings.migration.write_concurrency
    )
    return result
