"""Schema changes of the source tables as the change stream shows them, recorded in the control table.

``ALTER TABLE … ADD COLUMN … DEFAULT x`` writes no WAL for the existing rows, and DROP COLUMN leaves
the attribute on every item nobody touches again: DynamoDB then differs from PostgreSQL on rows the
stream never sees change. The bridge notices a row schema that differs from the last one it applied,
logs what changed and what to do, and records it here; ``reconcile`` names it as the cause of the
differences it finds.

Records (pk, sk): ``table#<schema.table>`` / ``columns`` (the last row schema and its LSN) and
``schema#<LSN, 20 digits>`` (one change: added, dropped, retyped columns).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

Columns = tuple[tuple[str, str], ...]  # (column, type as Debezium reports it)


@dataclass(frozen=True)
class SchemaChange:
    """How a row schema changed at an LSN."""

    table: str
    lsn: int
    added: list[str]
    dropped: list[str]
    retyped: list[str]  # "column: OLD -> NEW"
    at: str = ""

    def describe(self) -> str:
        parts = [
            f"{label} {', '.join(names)}"
            for label, names in (("added", self.added), ("dropped", self.dropped), ("retyped", self.retyped))
            if names
        ]
        return "; ".join(parts) or "columns reordered"


def compare(table: str, lsn: int, old: Columns, new: Columns) -> SchemaChange:
    """The change from row schema ``old`` to ``new`` (pure). A rename shows as a drop and an add."""
    before, after = dict(old), dict(new)
    return SchemaChange(
        table,
        lsn,
        added=[c for c in after if c not in before],
        dropped=[c for c in before if c not in after],
        retyped=[f"{c}: {before[c]} -> {after[c]}" for c in after if c in before and before[c] != after[c]],
    )


class SchemaHistory:
    """The recorded row schemas and their changes."""

    def __init__(self, client: DynamoDBClient, control_table: str) -> None:
        self.client = client
        self.table = control_table

    def current(self, table: str) -> tuple[Columns, int] | None:
        """The last recorded row schema of ``table`` and the LSN it was seen at."""
        key = {"pk": {"S": f"table#{table}"}, "sk": {"S": "columns"}}
        item = self.client.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")
        if item is None:
            return None
        columns = tuple((str(c), str(t)) for c, t in json.loads(item["columns"]["S"]))
        return columns, int(item["lsn"]["N"])

    def record(self, table: str, lsn: int, columns: Columns, change: SchemaChange | None) -> None:
        """Store ``columns`` as the table's row schema from ``lsn`` on, and the change that led to it."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        if change is not None:
            self.client.put_item(
                TableName=self.table,
                Item={
                    "pk": {"S": f"table#{table}"},
                    "sk": {"S": f"schema#{lsn:020d}"},
                    "lsn": {"N": str(lsn)},
                    "change": {"S": json.dumps([change.added, change.dropped, change.retyped])},
                    "at": {"S": now},
                },
            )
        self.client.put_item(
            TableName=self.table,
            Item={
                "pk": {"S": f"table#{table}"},
                "sk": {"S": "columns"},
                "lsn": {"N": str(lsn)},
                "columns": {"S": json.dumps(list(columns))},
                "at": {"S": now},
            },
        )

    def changes(self, table: str) -> list[SchemaChange]:
        """Every recorded change of ``table``, oldest first."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :s)",
            "ExpressionAttributeValues": {":pk": {"S": f"table#{table}"}, ":s": {"S": "schema#"}},
            "ConsistentRead": True,
        }
        out: list[SchemaChange] = []
        while True:
            page = self.client.query(**kwargs)
            for item in page["Items"]:
                added, dropped, retyped = json.loads(item["change"]["S"])
                out.append(SchemaChange(table, int(item["lsn"]["N"]), added, dropped, retyped, item["at"]["S"]))
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
