"""The DynamoDB side as the reconciler reads it: a parallel, strongly consistent Scan and batched
strongly consistent GetItems; and the conditional deletes of the sweeps (tombstone purge, truncate
recovery)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from bridge.codec import AttributeValue
from reconcile.canonical import Item, KeyTexts, key_text

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

GET_BATCH = 100  # BatchGetItem's limit


def scan(
    scan_page: Callable[..., Any],
    table: str,
    segments: int,
    on_page: Callable[[list[Item]], None],
    **extra: Any,
) -> int:
    """Scan the whole table in ``segments`` parallel segments through ``scan_page`` (a boto3
    client's ``scan``, or ``bridge.dynamo.make_scan``'s lean caller); ``on_page`` gets each page
    (from several threads). Returns the number of items read."""

    def segment(index: int) -> int:
        kwargs: dict[str, Any] = {
            "TableName": table,
            "ConsistentRead": True,
            "Segment": index,
            "TotalSegments": segments,
            **extra,
        }
        count = 0
        while True:
            page = scan_page(**kwargs)
            items: list[Item] = page.get("Items", [])
            count += len(items)
            on_page(items)
            if "LastEvaluatedKey" not in page:
                return count
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    with ThreadPoolExecutor(max_workers=segments, thread_name_prefix="ddbridge-scan") as pool:
        return sum(pool.map(segment, range(segments)))


def key_map(names: Sequence[str], types: Sequence[str], key: KeyTexts) -> dict[str, AttributeValue]:
    """A key tuple in DynamoDB's wire form."""
    return {name: {type_: text} for name, type_, text in zip(names, types, key, strict=True)}


def get_items(
    batch_get: Callable[..., Any],
    table: str,
    names: Sequence[str],
    types: Sequence[str],
    keys: Sequence[KeyTexts],
    *,
    workers: int = 1,
) -> dict[KeyTexts, Item]:
    """Strongly consistent reads of many keys through ``batch_get`` (``bridge.dynamo.make_reader``'s
    BatchGetItem, or a boto3 client's ``batch_get_item``): batches of 100, ``workers`` requests at a
    time, unprocessed keys retried."""
    unique = list(dict.fromkeys(keys))

    def read(chunk: Sequence[KeyTexts]) -> list[Item]:
        items: list[Item] = []
        request: dict[str, Any] = {table: {"Keys": [key_map(names, types, k) for k in chunk], "ConsistentRead": True}}
        delay = 0.05
        while request:
            resp = batch_get(RequestItems=request)
            items += [cast(Item, raw) for raw in resp.get("Responses", {}).get(table, [])]
            request = dict(resp.get("UnprocessedKeys") or {})
            if request:
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
        return items

    chunks = [unique[start : start + GET_BATCH] for start in range(0, len(unique), GET_BATCH)]
    found: dict[KeyTexts, Item] = {}
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(chunks) or 1))) as pool:
        for items in pool.map(read, chunks):
            for item in items:
                found[tuple(key_text(item[n]) for n in names)] = item
    return found


def delete_conditionally(
    client: DynamoDBClient, requests: Sequence[dict[str, Any]], concurrency: int
) -> tuple[int, int]:
    """Run DeleteItem ``requests`` (each with its ConditionExpression) concurrently; returns (deleted,
    kept because the item no longer met its condition)."""

    def delete(request: dict[str, Any]) -> bool:
        try:
            client.delete_item(**request)
            return True
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        outcomes = list(pool.map(delete, requests))
    return sum(outcomes), len(outcomes) - sum(outcomes)
