"""The DynamoDB sink: conditional PutItems issued concurrently, retried when transient.

Outcomes per write: applied; stale (ConditionalCheckFailed: already applied or superseded — a
success); dead (the item can never be stored: too large, invalid — the caller dead-letters it).
Throttling, 5xx and network errors are retried with jittered exponential backoff; when retries run
out a TransientError is raised and the caller must not commit offsets.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from bridge import metrics
from bridge.config import Settings
from bridge.dynamo import make_put_item, retry_cause
from bridge.errors import TransientError
from bridge.pacing import WritePacer
from bridge.rules import WriteAction, WriteRules

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

MAX_ITEM_BYTES = 400 * 1024
WARN_EVERY_S = 10.0
STOP_GRACE_S = 20.0
log = logging.getLogger("ddbridge.sink")

Outcome = Literal["applied", "stale", "dead"]


@dataclass(frozen=True, slots=True)
class WriteResult:
    action: WriteAction
    outcome: Outcome
    reason: str = ""


def item_size(item: dict[str, Any]) -> int:
    """DynamoDB's item size: attribute names plus values (a close upper estimate for nested values)."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def table_write_units(item: dict[str, Any]) -> int:
    """The table's write units for putting ``item``, one per started KB (GSIs are charged apart): an
    estimate before the write, settled against what DynamoDB reports after it."""
    return max(1, -(-item_size(item) // 1024))


def oversize_reason(action: WriteAction) -> str | None:
    """Why an action's item can never be stored (over 400 KB), or None."""
    size = item_size(action.item)
    if size > MAX_ITEM_BYTES:
        return f"item {action.key} is about {size} bytes; DynamoDB's limit is 400 KB"
    return None


def _value_size(value: dict[str, Any]) -> int:
    ((type_, inner),) = value.items()
    if type_ == "S":
        return len(inner.encode())
    if type_ == "N":
        return len(inner) // 2 + 2
    if type_ == "B":
        return len(inner)
    if type_ in ("BOOL", "NULL"):
        return 1
    if type_ == "L":
        return 3 + sum(1 + _value_size(v) for v in inner)
    if type_ == "M":
        return 3 + sum(1 + len(k.encode()) + _value_size(v) for k, v in inner.items())
    return sum(len(str(v)) for v in inner)  # sets: rough


class DynamoSink:
    """Applies write actions of one table mapping to DynamoDB."""

    def __init__(
        self,
        client: DynamoDBClient,
        rules: WriteRules,
        *,
        concurrency: int,
        retry_attempts: int,
        backoff_ms: int,
        max_backoff_s: float = 20.0,
        put_item: Callable[..., Any] | None = None,
        pacer: WritePacer | None = None,
        retry_for_s: float = 0.0,
    ) -> None:
        """``retry_for_s``: keep retrying transient failures this long (the stream rides out an outage),
        instead of stopping after ``retry_attempts``."""
        self.client = client
        self.put_item = put_item or client.put_item
        self.rules = rules
        self.table = rules.mapper.mapping.target
        self.source = rules.mapper.mapping.source
        self.pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="ddbridge-put")
        self.retry_attempts = retry_attempts
        self.wait = wait_random_exponential(multiplier=backoff_ms / 1000.0, max=max_backoff_s)
        self.pacer = pacer
        self.retry_for_s = retry_for_s
        self.give_up = stop_after_delay(retry_for_s) if retry_for_s > 0 else stop_after_attempt(retry_attempts)
        self.warned_at = float("-inf")
        self.stopping_at: float | None = None

    @classmethod
    def for_settings(
        cls,
        settings: Settings,
        rules: WriteRules,
        client: DynamoDBClient,
        pacer: WritePacer | None = None,
        retry_for_s: float = 0.0,
    ) -> DynamoSink:
        """A sink with the configured concurrency, retries and PutItem caller (``dynamodb.lean_client``)."""
        m = settings.migration
        return cls(
            client,
            rules,
            concurrency=m.write_concurrency,
            retry_attempts=m.retry_attempts,
            backoff_ms=m.throttle_backoff_ms,
            put_item=make_put_item(settings.dynamodb, pool_size=m.write_concurrency + 4),
            pacer=pacer,
            retry_for_s=retry_for_s,
        )

    def close(self) -> None:
        self.pool.shutdown(wait=True)

    def stopping(self) -> None:
        """The process is stopping: writes still failing give up after ``STOP_GRACE_S`` more (a drain
        during an outage ends in time for an orchestrator's grace period; nothing is committed)."""
        self.stopping_at = time.monotonic()

    def _give_up(self, state: RetryCallState) -> bool:
        if self.give_up(state):
            return True
        return self.stopping_at is not None and time.monotonic() - self.stopping_at >= STOP_GRACE_S

    def write(self, actions: Sequence[WriteAction]) -> list[WriteResult]:
        """Apply every action (distinct keys, concurrently); results in the same order."""
        if len(actions) == 1:
            return [self.put(actions[0])]
        return list(self.pool.map(self.put, actions))

    def write_conditional(self, writes: Sequence[tuple[WriteAction, dict[str, Any]]]) -> list[WriteResult]:
        """Apply each action under its own condition (distinct keys, concurrently); results in order."""
        return list(self.pool.map(lambda write: self.put(*write), writes))

    def _tried(self) -> str:
        return f"{self.retry_for_s:.0f} s of retries" if self.retry_for_s > 0 else f"{self.retry_attempts} attempts"

    def _knob(self) -> str:
        return "stream.outage_tolerance_s" if self.retry_for_s > 0 else "migration.retry_attempts"

    def _on_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        cause = retry_cause(exc) if exc else None
        metrics.RETRIES.labels(cause or "unknown").inc()
        if cause == "throttle" and self.pacer is not None:
            self.pacer.throttled()
        now = time.monotonic()
        if self.retry_for_s > 0 and now - self.warned_at >= WARN_EVERY_S and state.attempt_number >= 3:
            self.warned_at = now
            log.warning(
                "DynamoDB %s: %s (%s) for %.0f s; retrying for up to %.0f s, nothing is committed meanwhile",
                self.table,
                cause or "failure",
                exc,
                state.seconds_since_start or 0.0,
                self.retry_for_s,
            )

    def _paced_put(self, request: dict[str, Any], units: int) -> None:
        """One attempt, within the pacer's budget of table write units: the units it reserved are settled
        against what DynamoDB reports (a failed condition is charged too; a call that failed otherwise,
        nothing)."""
        if self.pacer is None:
            self.put_item(**request)
            return
        self.pacer.acquire(units)
        try:
            response = self.put_item(**request, ReturnConsumedCapacity="INDEXES")
        except ClientError as exc:
            failed_condition = exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"
            self._settle(units, units if failed_condition else 0)
            raise
        except BaseException:
            self._settle(units, 0)
            raise
        consumed = (response or {}).get("ConsumedCapacity", {})
        self._settle(units, float(consumed.get("Table", consumed).get("CapacityUnits", units)))

    def _settle(self, reserved: float, consumed: float) -> None:
        assert self.pacer is not None
        self.pacer.settle(reserved, consumed)
        metrics.WRITE_UNITS.labels(self.source).inc(consumed)
        metrics.WRITE_BUDGET.set(self.pacer.rate)

    def put(self, action: WriteAction, condition: dict[str, Any] | None = None) -> WriteResult:
        """One conditional PutItem with retries of transient failures; ``condition`` replaces the write
        rules' condition (the reconciler's repairs expect an exact observed version instead)."""
        too_big = oversize_reason(action)
        if too_big:
            return WriteResult(action, "dead", too_big)
        request = {"TableName": self.table, "Item": action.item, **(condition or self.rules.condition(action))}
        units = table_write_units(action.item)
        started = time.perf_counter()
        try:
            for attempt in Retrying(
                stop=self._give_up,
                wait=self.wait,
                retry=retry_if_exception(lambda e: retry_cause(e) is not None),
                before_sleep=self._on_retry,
                reraise=True,
            ):
                with attempt:
                    self._paced_put(request, units)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code", "")
            if code == "ConditionalCheckFailedException":
                metrics.WRITES_STALE.labels(self.source, action.kind).inc()
                return WriteResult(action, "stale")
            if retry_cause(exc) is not None:
                raise TransientError(
                    f"DynamoDB {self.table}: {code} after {self._tried()} ({error.get('Message', '')}); "
                    "nothing was committed — the process stops and resumes from the last commit when restarted; "
                    f"raise {self._knob()} or the table's capacity if this repeats"
                ) from exc
            if code == "ValidationException":
                return WriteResult(action, "dead", f"DynamoDB rejected item {action.key}: {error.get('Message', '')}")
            raise
        except (ConnectionError, HTTPClientError, BotoCoreError) as exc:
            raise TransientError(
                f"DynamoDB {self.table} unreachable after {self._tried()}: {exc}; nothing was committed"
            ) from exc
        finally:
            metrics.WRITE_SECONDS.observe(time.perf_counter() - started)
        metrics.WRITES_APPLIED.labels(self.source, action.kind).inc()
        return WriteResult(action, "applied")
