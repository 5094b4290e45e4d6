"""Backfill state in the DynamoDB control table (created by ``ddbridge init``).

Items (``pk`` = ``migration#<id>``):

- ``sk = "plan"``: the plan (ranges, fingerprint, stream position), written once, conditionally.
- ``sk = "range#NNNN"``: one range's checkpoint: status, the last primary key copied, counters,
  times and ``seq`` (batches done). A save is conditional on ``seq`` not going backwards, so a
  checkpoint never moves back and two processes can never both own a range unnoticed.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError

from backfill.plan import Plan
from bridge.errors import ConfigError, TerminalError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

Status = Literal["Pending", "InProgress", "Completed", "Failed", "Stopped"]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class RangeCheckpoint:
    """Progress of one range."""

    index: int
    status: Status = "Pending"
    last_key: list[str] | None = None
    rows_read: int = 0
    rows_written: int = 0
    rows_stale: int = 0
    rows_failed: int = 0
    seq: int = 0
    started_at: str | None = None
    updated_at: str | None = None
    updated_epoch: float = 0.0
    owner: str | None = None

    @property
    def done(self) -> bool:
        return self.status == "Completed"


class MigrationStore:
    """Reads and writes one migration's plan and checkpoints."""

    def __init__(self, client: DynamoDBClient, table: str, migration_id: str) -> None:
        self.client = client
        self.table = table
        self.migration_id = migration_id
        self.pk = f"migration#{migration_id}"

    def _missing_table(self, exc: ClientError) -> TerminalError:
        return TerminalError(
            f"control table {self.table} is missing ({exc.response['Error']['Code']}): run `ddbridge init` first"
        )

    def create_plan(self, plan: Plan) -> Plan:
        """Store the plan unless one exists; returns the stored plan (ours or the earlier one)."""
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    "pk": {"S": self.pk},
                    "sk": {"S": "plan"},
                    "plan": {"S": plan.to_json()},
                    "created_at": {"S": plan.created_at},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
            return plan
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                raise self._missing_table(exc) from exc
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
        existing = self.load_plan()
        if existing is None:
            raise TerminalError(f"migration {self.migration_id}: plan vanished while being created; retry")
        return existing

    def load_plan(self) -> Plan | None:
        try:
            resp = self.client.get_item(
                TableName=self.table, Key={"pk": {"S": self.pk}, "sk": {"S": "plan"}}, ConsistentRead=True
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                raise self._missing_table(exc) from exc
            raise
        item = resp.get("Item")
        return Plan.from_json(item["plan"]["S"]) if item else None

    def require_plan(self) -> Plan:
        plan = self.load_plan()
        if plan is None:
            raise ConfigError(
                f"no migration {self.migration_id!r} in control table {self.table}; `ddbridge backfill` starts one "
                "(and prints its id)"
            )
        return plan

    def load_ranges(self) -> dict[int, RangeCheckpoint]:
        """Every saved range checkpoint of the migration."""
        out: dict[int, RangeCheckpoint] = {}
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :r)",
            "ExpressionAttributeValues": {":pk": {"S": self.pk}, ":r": {"S": "range#"}},
            "ConsistentRead": True,
        }
        while True:
            page = self.client.query(**kwargs)
            for item in page["Items"]:
                cp = RangeCheckpoint(**json.loads(item["state"]["S"]))
                out[cp.index] = cp
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def save(self, cp: RangeCheckpoint) -> None:
        """Save a checkpoint; refuses to move backwards (another process owns the range)."""
        cp.updated_at = now_iso()
        cp.updated_epoch = time.time()
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    "pk": {"S": self.pk},
                    "sk": {"S": f"range#{cp.index:04d}"},
                    "seq": {"N": str(cp.seq)},
                    "status": {"S": cp.status},
                    "state": {"S": json.dumps(asdict(cp))},
                },
                ConditionExpression="attribute_not_exists(pk) OR seq <= :seq",
                ExpressionAttributeValues={":seq": {"N": str(cp.seq)}},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise TerminalError(
                    f"migration {self.migration_id}: range {cp.index} has a newer checkpoint than this process "
                    "(another process is copying it?); stopped to avoid moving its checkpoint backwards"
                ) from exc
            raise


def all_migrations(client: DynamoDBClient, table: str) -> list[tuple[Plan, dict[int, RangeCheckpoint]]]:
    """Every migration in the control table with its checkpoints, oldest first ([] without the table)."""
    plans: dict[str, Plan] = {}
    ranges: dict[str, dict[int, RangeCheckpoint]] = {}
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    try:
        while True:
            page = client.scan(**kwargs)
            for item in page.get("Items", []):
                pk, sk = item["pk"]["S"], item["sk"]["S"]
                if not pk.startswith("migration#"):
                    continue
                if sk == "plan":
                    plans[pk] = Plan.from_json(item["plan"]["S"])
                elif sk.startswith("range#"):
                    cp = RangeCheckpoint(**json.loads(item["state"]["S"]))
                    ranges.setdefault(pk, {})[cp.index] = cp
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ResourceNotFoundException":
            return []
        raise
    ordered = sorted(plans.items(), key=lambda entry: entry[1].created_at)
    return [(plan, ranges.get(pk, {})) for pk, plan in ordered]
