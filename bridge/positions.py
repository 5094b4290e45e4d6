"""The bridge's own record of the positions it applied, in the control table, beside Kafka's committed
offsets. Kafka deletes a group's committed offsets after ``offsets.retention.minutes`` (7 days by
default) of inactivity; without this record a bridge stopped that long would restart at the log start
(or end) and never notice the changes retention deleted meanwhile.

Records (pk, sk): ``group#<consumer group>`` / ``<topic>#<partition>`` with the next offset to apply.
A record only moves forward. It may lag Kafka's commit a little (it is written every few seconds):
resuming from it replays, which the write rules make harmless.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

Position = tuple[str, int]  # (topic, partition)


class PositionStore:
    """Applied positions of one consumer group."""

    def __init__(self, client: DynamoDBClient, control_table: str, group: str) -> None:
        self.client = client
        self.table = control_table
        self.pk = f"group#{group}"

    def load(self) -> dict[Position, int]:
        """Every recorded position of the group."""
        out: dict[Position, int] = {}
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": self.pk}},
            "ConsistentRead": True,
        }
        while True:
            page = self.client.query(**kwargs)
            for item in page["Items"]:
                topic, _, partition = item["sk"]["S"].rpartition("#")
                out[(topic, int(partition))] = int(item["offset"]["N"])
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def save(self, positions: dict[Position, int]) -> None:
        """Record positions, never moving one backwards."""
        at = datetime.now(UTC).isoformat(timespec="seconds")
        for (topic, partition), offset in positions.items():
            try:
                self.client.put_item(
                    TableName=self.table,
                    Item={
                        "pk": {"S": self.pk},
                        "sk": {"S": f"{topic}#{partition}"},
                        "offset": {"N": str(offset)},
                        "at": {"S": at},
                    },
                    ConditionExpression="attribute_not_exists(#o) OR #o < :o",
                    ExpressionAttributeNames={"#o": "offset"},
                    ExpressionAttributeValues={":o": {"N": str(offset)}},
                )
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
