"""Per-table LSN floors in the control table: after a TRUNCATE at LSN T is recovered, no change below T
may be applied to that table again (it describes a row the truncate removed), whichever partition or
replay it arrives from. The bridge drops such changes; ``ddbridge truncate recover`` sets the floor.

Records (pk, sk): ``table#<schema.table>`` / ``floor`` holds the floor; ``.../truncate`` the LSN of a
TRUNCATE the bridge stopped at and that was not recovered yet.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

FLOOR, PENDING = "floor", "truncate"


def _key(source: str, kind: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"table#{source}"}, "sk": {"S": kind}}


class FloorStore:
    """The floors and pending truncates of the mapped tables."""

    def __init__(self, client: DynamoDBClient, control_table: str) -> None:
        self.client = client
        self.table = control_table

    def _lsn(self, source: str, kind: str) -> int | None:
        item = self.client.get_item(TableName=self.table, Key=_key(source, kind), ConsistentRead=True).get("Item")
        return int(item["lsn"]["N"]) if item else None

    def floor(self, source: str) -> int:
        """The table's floor; 0 when it never had one."""
        return self._lsn(source, FLOOR) or 0

    def floors(self, sources: list[str]) -> dict[str, int]:
        return {source: self.floor(source) for source in sources}

    def pending_truncate(self, source: str) -> int | None:
        """The LSN of the TRUNCATE the bridge stopped at, if not recovered yet."""
        return self._lsn(source, PENDING)

    def record_truncate(self, source: str, lsn: int) -> None:
        """Remember a TRUNCATE the bridge stopped at (the highest one wins)."""
        self._raise(source, PENDING, lsn)

    def raise_floor(self, source: str, lsn: int) -> None:
        """Set the floor to ``lsn`` unless it is already at least that (a floor never goes down)."""
        self._raise(source, FLOOR, lsn)

    def clear_truncate(self, source: str, lsn: int) -> None:
        """Forget the pending TRUNCATE once it is recovered (unless a later one was recorded meanwhile)."""
        try:
            self.client.delete_item(
                TableName=self.table,
                Key=_key(source, PENDING),
                ConditionExpression="lsn <= :lsn",
                ExpressionAttributeValues={":lsn": {"N": str(lsn)}},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def _raise(self, source: str, kind: str, lsn: int) -> None:
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    **_key(source, kind),
                    "lsn": {"N": str(lsn)},
                    "at": {"S": datetime.now(UTC).isoformat(timespec="seconds")},
                },
                ConditionExpression="attribute_not_exists(lsn) OR lsn < :lsn",
                ExpressionAttributeValues={":lsn": {"N": str(lsn)}},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
