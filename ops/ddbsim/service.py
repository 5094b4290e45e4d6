"""What the service-like DynamoDB layer does with one API call: capacity, throttling, injected faults.

Every call still goes to a real DynamoDB API server (dynalite, the ``upstream``) and is applied there;
this layer adds what dynalite lacks. Before an item write it reads the item's current version from
the upstream (to charge the larger of old and new, and each GSI the item is in), checks the table's,
the partition's and each index's bucket, and answers a throttled call exactly as the service does (HTTP
400, ``ProvisionedThroughputExceededException`` or ``ThrottlingException`` with ``ThrottlingReasons``);
a BatchWriteItem or BatchGetItem returns its throttled requests as unprocessed. Reads are charged
after the fact by the size of what they returned. ``ReturnConsumedCapacity`` is answered with these
figures. Faults: an outage (every call 503), injected 500s before a write is applied, and responses
lost after it was applied (the server drops the connection).

Query and Scan are charged to the table (or index) as a whole, not to one partition; UpdateItem is
charged by the item before it, and once applied by the larger of before and after; transactions pass
through uncharged.
"""

from __future__ import annotations

import fnmatch
import hashlib
import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ops.ddbsim import capacity
from ops.ddbsim.capacity import Index, Item, Throughput

Request = dict[str, Any]
Upstream = Callable[[str, Request], tuple[int, dict[str, Any]]]
"""``upstream(operation, request)``: the real server's HTTP status and JSON answer."""

ERROR_NAMESPACE = "com.amazonaws.dynamodb.v20120810#"
ACCOUNT, REGION = "000000000000", "us-east-1"
WRITES = ("PutItem", "DeleteItem", "UpdateItem", "BatchWriteItem")
DATA_PLANE = (*WRITES, "GetItem", "BatchGetItem", "Query", "Scan", "TransactWriteItems", "TransactGetItems")
SCHEMA_CHANGES = ("CreateTable", "UpdateTable", "DeleteTable")
PROVISIONED_MESSAGE = (
    "The level of configured provisioned throughput for the table was exceeded. "
    "Consider increasing your provisioning level with the UpdateTable API."
)
ON_DEMAND_MESSAGE = (
    "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling "
    "your table or index so please try again shortly. If exceptions persist, check if you have a hot key."
)
LATENCY_P99_Z = 2.3263  # the standard normal's 99th percentile


class Profile(BaseModel):
    """How the layer behaves; every field can be changed at runtime (``POST /_ddbsim/profile``)."""

    model_config = ConfigDict(extra="forbid")

    latency_p50_ms: float = Field(0.0, ge=0, description="median round trip added to every call; 0: none")
    latency_p99_ms: float = Field(0.0, ge=0, description="99th percentile (log-normal between the two)")
    capacity: Literal["unlimited", "provisioned", "on-demand"] = "unlimited"
    write_units_per_s: float = Field(4000.0, gt=0, description="the table's write capacity (and each GSI's)")
    read_units_per_s: float = Field(12000.0, gt=0, description="the table's read capacity (and each GSI's)")
    partitions: int | None = Field(None, ge=1, description="None: as many as the capacity needs")
    tables: list[str] | None = Field(None, description="fnmatch patterns of the tables limits and faults apply to")
    unavailable: bool = Field(False, description="an outage: every call answers 503")
    error_rate: float = Field(0.0, ge=0, le=1, description="share of item calls answered 500, not applied")
    lost_response_rate: float = Field(0.0, ge=0, le=1, description="share of applied writes whose answer is lost")
    fail_next: int = Field(0, ge=0, description="the next N item calls answer 500, not applied")
    lose_next: int = Field(0, ge=0, description="the next N applied writes lose their answer")
    seed: int | None = None

    @model_validator(mode="after")
    def _p99_not_below_p50(self) -> Profile:
        if self.latency_p99_ms < self.latency_p50_ms:
            raise ValueError(f"latency_p99_ms ({self.latency_p99_ms}) is below latency_p50_ms ({self.latency_p50_ms})")
        return self

    def applies_to(self, table: str) -> bool:
        return self.tables is None or any(fnmatch.fnmatchcase(table, pattern) for pattern in self.tables)


@dataclass(frozen=True)
class Answer:
    """What the server sends back; ``lose``: the call was applied but its answer never arrives."""

    status: int
    body: dict[str, Any]
    lose: bool = False


@dataclass(frozen=True)
class TableMeta:
    """A table's key schema and global secondary indexes, from DescribeTable."""

    name: str
    arn: str
    keys: tuple[str, ...]
    indexes: tuple[Index, ...]

    @classmethod
    def from_description(cls, table: Mapping[str, Any]) -> TableMeta:
        indexes = []
        for gsi in table.get("GlobalSecondaryIndexes", []):
            projection = gsi.get("Projection", {})
            indexes.append(
                Index(
                    gsi["IndexName"],
                    tuple(k["AttributeName"] for k in gsi["KeySchema"]),
                    projection.get("ProjectionType", "ALL"),
                    tuple(projection.get("NonKeyAttributes", ())),
                )
            )
        name = table["TableName"]
        arn = table.get("TableArn") or f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
        return cls(name, arn, tuple(k["AttributeName"] for k in table["KeySchema"]), tuple(indexes))

    def key_of(self, item: Item) -> dict[str, Any] | None:
        if any(k not in item for k in self.keys):
            return None
        return {k: item[k] for k in self.keys}

    def resource(self, index: str | None) -> str:
        return self.arn if index is None else f"{self.arn}/index/{index}"


@dataclass
class Limits:
    """The throughput state of one table and its indexes (None: the table's own)."""

    writes: dict[str | None, Throughput]
    reads: dict[str | None, Throughput]


@dataclass
class TableStats:
    write_units: float = 0.0
    read_units: float = 0.0
    requests: Counter[str] = field(default_factory=Counter)
    throttles: Counter[str] = field(default_factory=Counter)


@dataclass
class Stats:
    tables: dict[str, TableStats] = field(default_factory=dict)
    unavailable: int = 0
    injected_errors: int = 0
    lost_responses: int = 0

    def table(self, name: str) -> TableStats:
        return self.tables.setdefault(name, TableStats())

    def as_json(self) -> dict[str, Any]:
        return {
            "unavailable": self.unavailable,
            "injected_errors": self.injected_errors,
            "lost_responses": self.lost_responses,
            "tables": {
                name: {
                    "write_units": t.write_units,
                    "read_units": t.read_units,
                    "requests": dict(t.requests),
                    "throttles": dict(t.throttles),
                }
                for name, t in self.tables.items()
            },
        }


def error(status: int, code: str, message: str, **extra: Any) -> Answer:
    """An error answer in the service's shape (``__type`` with the API's namespace)."""
    return Answer(status, {"__type": ERROR_NAMESPACE + code, "message": message, **extra})


def error_code(body: Mapping[str, Any]) -> str:
    return str(body.get("__type", "")).rpartition("#")[2]


def partition_of(value: Mapping[str, Any], partitions: int) -> int:
    """Which partition a partition-key value hashes to (DynamoDB spreads keys by a hash, as here)."""
    digest = hashlib.md5(repr(sorted(value.items())).encode(), usedforsecurity=False).digest()
    return int.from_bytes(digest[:8], "big") % partitions


class Service:
    """The layer's state (profile, table metadata, buckets, statistics) and its answer to each call."""

    def __init__(self, upstream: Upstream, profile: Profile | None = None, clock: Callable[[], float] = time.monotonic):
        self.upstream = upstream
        self.profile = profile or Profile()
        self.clock = clock
        self.rng = random.Random(self.profile.seed)
        self.lock = threading.Lock()
        self.metas: dict[str, TableMeta] = {}
        self.limits: dict[str, Limits] = {}
        self.stats = Stats()

    # -- configuration -------------------------------------------------------------------------

    def configure(self, changes: Mapping[str, Any]) -> Profile:
        """Apply a partial profile; rate changes keep each bucket's saved capacity (capped)."""
        with self.lock:
            old = self.profile
            new = Profile.model_validate({**old.model_dump(), **changes})
            if "seed" in changes:
                self.rng = random.Random(new.seed)
            self.profile = new
            if (new.capacity, new.partitions) != (old.capacity, old.partitions):
                self.limits.clear()
            else:
                now = self.clock()
                for limits in self.limits.values():
                    for t in limits.writes.values():
                        t.table.set_rate(new.write_units_per_s, now)
                    for t in limits.reads.values():
                        t.table.set_rate(new.read_units_per_s, now)
            return new

    def reset(self, changes: Mapping[str, Any]) -> Profile:
        """The default profile plus ``changes``, with fresh statistics and buckets."""
        profile = Profile.model_validate(dict(changes))
        with self.lock:
            self.profile = profile
            self.rng = random.Random(profile.seed)
            self.stats = Stats()
            self.limits.clear()
        return profile

    def latency_s(self) -> float:
        """One round trip drawn from the profile's log-normal distribution."""
        p50, p99 = self.profile.latency_p50_ms, self.profile.latency_p99_ms
        if p50 <= 0:
            return 0.0  # no added latency (whatever the p99 says)
        sigma = math.log(p99 / p50) / LATENCY_P99_Z
        with self.lock:
            return self.rng.lognormvariate(math.log(p50), sigma) / 1000.0

    # -- one call ------------------------------------------------------------------------------

    def handle(self, operation: str, request: Request) -> Answer:
        tables = list(tables_of(operation, request))
        concerned = any(self.profile.applies_to(t) for t in tables) if tables else self.profile.tables is None
        if concerned:
            fault = self._fault_before(operation)
            if fault is not None:
                return fault
        with self.lock:
            for name in tables:
                self.stats.table(name).requests[operation] += 1
        if operation in SCHEMA_CHANGES:
            for name in tables:
                self.metas.pop(name, None)
                self.limits.pop(name, None)
        handler = {
            "PutItem": self._write_item,
            "DeleteItem": self._write_item,
            "UpdateItem": self._write_item,
            "BatchWriteItem": self._batch_write,
            "GetItem": self._get_item,
            "BatchGetItem": self._batch_get,
            "Query": self._query_or_scan,
            "Scan": self._query_or_scan,
            "DescribeTable": self._describe,
        }.get(operation)
        answer = handler(operation, request) if handler else Answer(*self.upstream(operation, request))
        if concerned and operation in WRITES and answer.status < 500 and self._lose_answer():
            return Answer(answer.status, answer.body, lose=True)
        return answer

    def _stats(self, table: str) -> TableStats:
        with self.lock:
            return self.stats.table(table)

    def _fault_before(self, operation: str) -> Answer | None:
        with self.lock:
            p = self.profile
            if p.unavailable:
                self.stats.unavailable += 1
                return error(503, "ServiceUnavailableException", "Service Unavailable")
            if operation not in DATA_PLANE:
                return None
            if p.fail_next > 0:
                self.profile = p.model_copy(update={"fail_next": p.fail_next - 1})
            elif not (p.error_rate and self.rng.random() < p.error_rate):
                return None
            self.stats.injected_errors += 1
        return Answer(
            500, {"__type": "com.amazon.coral.service#InternalServerError", "message": "Internal server error"}
        )

    def _lose_answer(self) -> bool:
        with self.lock:
            p = self.profile
            if p.lose_next > 0:
                self.profile = p.model_copy(update={"lose_next": p.lose_next - 1})
            elif not (p.lost_response_rate and self.rng.random() < p.lost_response_rate):
                return False
            self.stats.lost_responses += 1
            return True

    # -- tables and buckets ----------------------------------------------------------------------

    def _meta(self, name: str) -> TableMeta | None:
        meta = self.metas.get(name)
        if meta is None:
            status, body = self.upstream("DescribeTable", {"TableName": name})
            if status != 200:
                return None
            meta = self.metas[name] = TableMeta.from_description(body["Table"])
        return meta

    def _limits(self, meta: TableMeta) -> Limits:
        limits = self.limits.get(meta.name)
        if limits is None:
            p = self.profile
            n = p.partitions or capacity.partitions_for(p.write_units_per_s, p.read_units_per_s)
            names: list[str | None] = [None, *(i.name for i in meta.indexes)]
            limits = self.limits[meta.name] = Limits(
                writes={i: Throughput(p.write_units_per_s, n, capacity.PARTITION_WRITE_UNITS) for i in names},
                reads={i: Throughput(p.read_units_per_s, n, capacity.PARTITION_READ_UNITS) for i in names},
            )
        return limits

    def _limited(self, meta: TableMeta) -> bool:
        return self.profile.capacity != "unlimited" and self.profile.applies_to(meta.name)

    def _throttled(self, meta: TableMeta, kind: Literal["Read", "Write"], hits: list[tuple[str | None, str]]) -> Answer:
        """The service's throttling answer for the limits hit: (index or None, "partition" or "table")."""
        on_demand = self.profile.capacity == "on-demand"
        reasons = []
        for index, limit in hits:
            if limit == "partition":
                cause = "KeyRangeThroughputExceeded"
            else:
                cause = "MaxOnDemandThroughputExceeded" if on_demand else "ProvisionedThroughputExceeded"
            reason = f"{'Index' if index else 'Table'}{kind}{cause}"
            reasons.append({"reason": reason, "resource": meta.resource(index)})
            self._stats(meta.name).throttles[reason] += 1
        code = (
            "ThrottlingException" if "MaxOnDemand" in reasons[0]["reason"] else "ProvisionedThroughputExceededException"
        )
        return error(400, code, ON_DEMAND_MESSAGE if on_demand else PROVISIONED_MESSAGE, ThrottlingReasons=reasons)

    def _write_hits(
        self, meta: TableMeta, key: Item, old: Item | None, new: Item | None
    ) -> list[tuple[str | None, str]]:
        """The limits a write of ``old`` into ``new`` would hit now (none when capacity is unlimited)."""
        if not self._limited(meta):
            return []
        limits, now = self._limits(meta), self.clock()
        hits: list[tuple[str | None, str]] = []
        t = limits.writes[None]
        limit = t.check(partition_of(key[meta.keys[0]], t.partitions), now)
        if limit:
            hits.append((None, limit))
        for index in meta.indexes:
            entry = index.entry(new, meta.keys) or index.entry(old, meta.keys)
            if entry is None or index.write_units(old, new, meta.keys) == 0:
                continue
            t = limits.writes[index.name]
            limit = t.check(partition_of(entry[index.keys[0]], t.partitions), now)
            if limit:
                hits.append((index.name, limit))
        return hits

    def _charge_write(
        self,
        meta: TableMeta,
        key: Item,
        units: float,
        index_units: Mapping[str, float],
        entries: tuple[Item | None, Item | None] = (None, None),
    ) -> None:
        """Record and take a write's units (the caller holds the lock); each index's units from the
        partition of the item's index key (``entries``: the item before and after)."""
        self.stats.table(meta.name).write_units += units + sum(index_units.values())
        if self.profile.capacity == "unlimited":
            return
        limits, now = self._limits(meta), self.clock()
        t = limits.writes[None]
        t.consume(partition_of(key[meta.keys[0]], t.partitions), units, now)
        old, new = entries
        for index in meta.indexes:
            spent = index_units.get(index.name, 0.0)
            entry = index.entry(new, meta.keys) or index.entry(old, meta.keys)
            if spent and entry is not None:
                bucket = limits.writes[index.name]
                bucket.consume(partition_of(entry[index.keys[0]], bucket.partitions), spent, now)

    def _charge_read(self, meta: TableMeta, index: str | None, partition_key: Any, units: float) -> None:
        stats = self._stats(meta.name)
        with self.lock:
            stats.read_units += units
            if self.profile.capacity == "unlimited":
                return
            t = self._limits(meta).reads[index]
            t.consume(None if partition_key is None else partition_of(partition_key, t.partitions), units, self.clock())

    def _read_hit(self, meta: TableMeta, index: str | None, partition_key: Any) -> str | None:
        if not self._limited(meta):
            return None
        with self.lock:
            t = self._limits(meta).reads[index]
            partition = None if partition_key is None else partition_of(partition_key, t.partitions)
            return t.check(partition, self.clock())

    def _current(self, table: str, key: Item) -> Item | None:
        """The item as it is now (what a write replaces), read from the upstream uncharged."""
        status, body = self.upstream("GetItem", {"TableName": table, "Key": dict(key), "ConsistentRead": True})
        return body.get("Item") if status == 200 else None

    def _currents(self, meta: TableMeta, keys: list[Item]) -> list[Item | None]:
        """``_current`` of several keys, in BatchGetItems of 100."""
        found: dict[str, Item] = {}
        for start in range(0, len(keys), 100):
            chunk = [dict(k) for k in keys[start : start + 100]]
            status, body = self.upstream(
                "BatchGetItem", {"RequestItems": {meta.name: {"Keys": chunk, "ConsistentRead": True}}}
            )
            for item in body.get("Responses", {}).get(meta.name, []) if status == 200 else []:
                found[_key_text(item, meta.keys)] = item
        return [found.get(_key_text(k, meta.keys)) for k in keys]

    # -- item writes ------------------------------------------------------------------------------

    def _write_item(self, operation: str, request: Request) -> Answer:
        meta = self._meta(request.get("TableName", ""))
        key = meta.key_of(request.get("Item") or request.get("Key") or {}) if meta else None
        if meta is None or key is None:
            return Answer(*self.upstream(operation, request))  # the server's own error
        old = self._current(meta.name, key)
        new = request["Item"] if operation == "PutItem" else None if operation == "DeleteItem" else old
        admitted_units = capacity.write_units(old, new)  # a failed condition costs the same
        with self.lock:
            hits = self._write_hits(meta, key, old, new)
            if not hits:  # taken at once, so concurrent calls see them spent
                self._charge_write(meta, key, admitted_units, {})
        if hits:
            return self._throttled(meta, "Write", hits)
        status, body = self.upstream(operation, _without_capacity(request))
        applied = status == 200
        if operation == "UpdateItem" and applied:
            new = self._current(meta.name, key)
        units = capacity.write_units(old, new)
        index_units = {i.name: float(i.write_units(old, new, meta.keys)) for i in meta.indexes} if applied else {}
        with self.lock:  # an update's growth and the indexes' units, once applied
            self._charge_write(meta, key, units - admitted_units, index_units, (old, new))
        if applied and request.get("ReturnConsumedCapacity", "NONE") != "NONE":
            body["ConsumedCapacity"] = consumed(meta.name, "Write", units, index_units, request)
        return Answer(status, body)

    def _batch_write(self, operation: str, request: Request) -> Answer:
        admitted: dict[str, list[dict[str, Any]]] = {}
        unprocessed: dict[str, list[dict[str, Any]]] = {}
        spent: dict[str, float] = {}
        throttles: list[Answer] = []
        for table, writes in request.get("RequestItems", {}).items():
            meta = self._meta(table)
            if meta is None:
                return Answer(*self.upstream(operation, request))
            keys = [
                meta.key_of(w.get("PutRequest", {}).get("Item") or w.get("DeleteRequest", {}).get("Key") or {})
                for w in writes
            ]
            if any(k is None for k in keys):
                return Answer(*self.upstream(operation, request))
            olds = self._currents(meta, [k for k in keys if k is not None])
            for write, key, old in zip(writes, keys, olds, strict=True):
                assert key is not None
                new = write["PutRequest"]["Item"] if "PutRequest" in write else None
                units = capacity.write_units(old, new)
                index_units = {i.name: float(i.write_units(old, new, meta.keys)) for i in meta.indexes}
                with self.lock:
                    hits = self._write_hits(meta, key, old, new)
                    if not hits:  # taken now, so later writes of the batch see these units spent
                        self._charge_write(meta, key, units, index_units, (old, new))
                if hits:
                    throttles.append(self._throttled(meta, "Write", hits))
                    unprocessed.setdefault(table, []).append(write)
                else:
                    admitted.setdefault(table, []).append(write)
                    spent[table] = spent.get(table, 0.0) + units + sum(index_units.values())
        if not admitted and throttles:
            return throttles[0]
        status, body = self.upstream(operation, {**_without_capacity(request), "RequestItems": admitted})
        if status != 200:
            return Answer(status, body)
        for table, writes in unprocessed.items():
            body.setdefault("UnprocessedItems", {}).setdefault(table, []).extend(writes)
        if request.get("ReturnConsumedCapacity", "NONE") != "NONE":
            body["ConsumedCapacity"] = [consumed(table, "Write", spent[table], {}, request) for table in admitted]
        return Answer(status, body)

    def _describe(self, operation: str, request: Request) -> Answer:
        """DescribeTable, telling the capacity the layer enforces (as the service describes such a table)."""
        status, body = self.upstream(operation, request)
        table = body.get("Table")
        p = self.profile
        if status != 200 or not table or p.capacity == "unlimited" or not p.applies_to(table.get("TableName", "")):
            return Answer(status, body)
        if p.capacity == "provisioned":
            throughput = {"ReadCapacityUnits": int(p.read_units_per_s), "WriteCapacityUnits": int(p.write_units_per_s)}
            described: dict[str, Any] = {"BillingModeSummary": {"BillingMode": "PROVISIONED"}}
            parts = {"ProvisionedThroughput": throughput}
        else:
            maximum = {"MaxReadRequestUnits": int(p.read_units_per_s), "MaxWriteRequestUnits": int(p.write_units_per_s)}
            described = {"BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"}}
            parts = {"OnDemandThroughput": maximum}
        table.update(described, **parts)
        for index in table.get("GlobalSecondaryIndexes", []):
            index.update(parts)
        return Answer(status, body)

    # -- reads ----------------------------------------------------------------------------------------

    def _get_item(self, operation: str, request: Request) -> Answer:
        meta = self._meta(request.get("TableName", ""))
        key = request.get("Key") or {}
        if meta is None or meta.keys[0] not in key:
            return Answer(*self.upstream(operation, request))
        limit = self._read_hit(meta, None, key[meta.keys[0]])
        if limit:
            return self._throttled(meta, "Read", [(None, limit)])
        status, body = self.upstream(operation, _without_capacity(request))
        if status == 200:
            units = capacity.read_units(
                capacity.item_bytes(body.get("Item")), consistent=bool(request.get("ConsistentRead"))
            )
            self._charge_read(meta, None, key[meta.keys[0]], units)
            if request.get("ReturnConsumedCapacity", "NONE") != "NONE":
                body["ConsumedCapacity"] = consumed(meta.name, "Read", units, {}, request)
        return Answer(status, body)

    def _batch_get(self, operation: str, request: Request) -> Answer:
        admitted: dict[str, Any] = {}
        unprocessed: dict[str, Any] = {}
        first_throttle: Answer | None = None
        for table, spec in request.get("RequestItems", {}).items():
            meta = self._meta(table)
            if meta is None:
                return Answer(*self.upstream(operation, request))
            for key in spec.get("Keys", []):
                limit = self._read_hit(meta, None, key.get(meta.keys[0]))
                if limit:
                    first_throttle = first_throttle or self._throttled(meta, "Read", [(None, limit)])
                    unprocessed.setdefault(table, {**spec, "Keys": []})["Keys"].append(key)
                else:
                    admitted.setdefault(table, {**spec, "Keys": []})["Keys"].append(key)
        if not admitted and first_throttle:
            return first_throttle
        status, body = self.upstream(operation, {**_without_capacity(request), "RequestItems": admitted})
        if status != 200:
            return Answer(status, body)
        report = []
        for table, spec in admitted.items():
            meta = self._meta(table)
            assert meta is not None
            consistent = bool(spec.get("ConsistentRead"))
            items = body.get("Responses", {}).get(table, [])
            missing = (
                len(spec["Keys"]) - len(items) - len(body.get("UnprocessedKeys", {}).get(table, {}).get("Keys", []))
            )
            units = sum(capacity.read_units(capacity.item_bytes(i), consistent=consistent) for i in items)
            units += max(0, missing) * capacity.read_units(0, consistent=consistent)
            self._charge_read(meta, None, None, units)
            report.append(consumed(table, "Read", units, {}, request))
        for table, spec in unprocessed.items():
            body.setdefault("UnprocessedKeys", {})[table] = spec
        if request.get("ReturnConsumedCapacity", "NONE") != "NONE":
            body["ConsumedCapacity"] = report
        return Answer(status, body)

    def _query_or_scan(self, operation: str, request: Request) -> Answer:
        meta = self._meta(request.get("TableName", ""))
        index = request.get("IndexName")
        if meta is None or (index is not None and index not in {i.name for i in meta.indexes}):
            return Answer(*self.upstream(operation, request))  # LSIs and unknown names: uncharged
        limit = self._read_hit(meta, index, None)
        if limit:
            return self._throttled(meta, "Read", [(index, limit)])
        status, body = self.upstream(operation, _without_capacity(request))
        if status == 200:
            size = sum(capacity.item_bytes(i) for i in body.get("Items", []))
            units = capacity.read_units(size, consistent=bool(request.get("ConsistentRead")))
            self._charge_read(meta, index, None, units)
            if request.get("ReturnConsumedCapacity", "NONE") != "NONE":
                body["ConsumedCapacity"] = (
                    consumed(meta.name, "Read", 0.0, {index: units}, request)
                    if index
                    else consumed(meta.name, "Read", units, {}, request)
                )
        return Answer(status, body)


def tables_of(operation: str, request: Mapping[str, Any]) -> Iterable[str]:
    """The tables a call touches."""
    if "TableName" in request:
        yield str(request["TableName"])
    for table in request.get("RequestItems", {}) if operation.startswith("Batch") else ():
        yield str(table)
    for entry in request.get("TransactItems", []):
        for part in entry.values():
            if isinstance(part, Mapping) and "TableName" in part:
                yield str(part["TableName"])


def consumed(
    table: str,
    kind: Literal["Read", "Write"],
    units: float,
    index_units: Mapping[str, float],
    request: Mapping[str, Any],
) -> dict[str, Any]:
    """A ``ConsumedCapacity`` entry as the service reports it: the total (TOTAL), and with INDEXES the
    table's ``units`` and each index's apart."""
    total = units + sum(index_units.values())
    entry: dict[str, Any] = {"TableName": table, "CapacityUnits": total, f"{kind}CapacityUnits": total}
    if request.get("ReturnConsumedCapacity") == "INDEXES":
        entry["Table"] = {"CapacityUnits": units, f"{kind}CapacityUnits": units}
        gsis = {name: {"CapacityUnits": u, f"{kind}CapacityUnits": u} for name, u in index_units.items() if u}
        if gsis:
            entry["GlobalSecondaryIndexes"] = gsis
    return entry


def _without_capacity(request: Request) -> Request:
    return {k: v for k, v in request.items() if k != "ReturnConsumedCapacity"}


def _key_text(item: Item, names: Iterable[str]) -> str:
    return repr([(name, sorted(item[name].items())) for name in names])
