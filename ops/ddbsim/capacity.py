"""DynamoDB's capacity accounting, as AWS documents it, for the local stack's service-like DynamoDB layer.

- Item size: the UTF-8 bytes of every attribute name plus its value: strings their UTF-8 bytes, numbers
  one byte per two significant digits plus one (leading and trailing zeros trimmed), binary its raw
  bytes, null and Boolean one byte, a list or map 3 bytes plus its elements with one byte each, sets
  the sum of their elements.
- Writes: one write unit per started KB of the larger of the item before and after; a write whose
  condition fails still consumes it. Each global secondary index the item is in before or after costs
  its own units, on the projected entry's size: a put into the index, a delete from it, both when the
  index key changes, and one write when only projected attributes change.
- Reads: one unit per started 4 KB, half of that when eventually consistent.
- Throughput: a token bucket per partition (1,000 write / 3,000 read units a second) and per table (its
  provisioned units, or an on-demand table's current peak), each keeping up to 300 seconds of unused
  capacity as burst.

Items are in DynamoDB's wire JSON (``{"S": "..."}``, ``{"N": "..."}``, ...), as the proxy sees them.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Item = Mapping[str, Mapping[str, Any]]

WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4096
PARTITION_WRITE_UNITS = 1000.0
PARTITION_READ_UNITS = 3000.0
BURST_SECONDS = 300.0


def number_bytes(text: str) -> int:
    """The size of a DynamoDB number: one byte per two significant digits, plus one."""
    mantissa = text.strip().lstrip("+-").lower().split("e", 1)[0].replace(".", "")
    significant = len(mantissa.strip("0")) or 1  # zero has one significant digit
    return math.ceil(significant / 2) + 1


def value_bytes(value: Mapping[str, Any]) -> int:
    """The size of one attribute value (without its name)."""
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(str(inner).encode())
    if kind == "N":
        return number_bytes(str(inner))
    if kind == "B":
        return len(base64.b64decode(inner))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(str(s).encode()) for s in inner)
    if kind == "NS":
        return sum(number_bytes(str(n)) for n in inner)
    if kind == "BS":
        return sum(len(base64.b64decode(b)) for b in inner)
    if kind == "L":
        return 3 + sum(1 + value_bytes(v) for v in inner)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_bytes(v) for k, v in inner.items())
    raise ValueError(f"not a DynamoDB attribute value type: {kind!r}")


def item_bytes(item: Item | None) -> int:
    """The size of an item: names plus values; 0 for no item."""
    if not item:
        return 0
    return sum(len(name.encode()) + value_bytes(value) for name, value in item.items())


def kb_units(size: int) -> int:
    """Write units of writing ``size`` bytes: one per started KB, at least one."""
    return max(1, math.ceil(size / WRITE_UNIT_BYTES))


def write_units(old: Item | None, new: Item | None) -> int:
    """Units of one table write (put, delete, or a failed conditional write): the larger item, per KB."""
    return kb_units(max(item_bytes(old), item_bytes(new)))


def read_units(size: int, *, consistent: bool) -> float:
    """Units of reading ``size`` bytes: per started 4 KB, halved when eventually consistent."""
    units = max(1, math.ceil(size / READ_UNIT_BYTES))
    return float(units) if consistent else units / 2


@dataclass(frozen=True)
class Index:
    """A global secondary index: its key attributes and projection (ALL, KEYS_ONLY or INCLUDE)."""

    name: str
    keys: tuple[str, ...]
    projection: str = "ALL"
    include: tuple[str, ...] = ()

    def entry(self, item: Item | None, table_keys: Sequence[str]) -> dict[str, Mapping[str, Any]] | None:
        """The item's entry in this index, or None when it lacks an index key attribute (sparse)."""
        if not item or any(k not in item for k in self.keys):
            return None
        if self.projection == "ALL":
            return dict(item)
        wanted = {*self.keys, *table_keys, *(self.include if self.projection == "INCLUDE" else ())}
        return {k: v for k, v in item.items() if k in wanted}

    def write_units(self, old: Item | None, new: Item | None, table_keys: Sequence[str]) -> int:
        """Units this index costs when a table write turns ``old`` into ``new``."""
        before, after = self.entry(old, table_keys), self.entry(new, table_keys)
        if before is None and after is None:
            return 0
        if before is None or after is None:
            return kb_units(item_bytes(before or after))
        if any(before[k] != after[k] for k in self.keys):  # moved in the index: delete and put
            return kb_units(item_bytes(before)) + kb_units(item_bytes(after))
        if before == after:
            return 0
        return kb_units(max(item_bytes(before), item_bytes(after)))


@dataclass
class TokenBucket:
    """``rate`` units a second, keeping up to ``burst_s`` seconds of unused capacity (a new bucket
    holds one second's worth)."""

    rate: float
    burst_s: float = BURST_SECONDS
    tokens: float = 0.0
    at: float | None = None

    def refill(self, now: float) -> None:
        if self.at is None:
            self.tokens = self.rate  # a new bucket holds one second
        else:
            self.tokens = min(self.rate * self.burst_s, self.tokens + (now - self.at) * self.rate)
        self.at = now

    def set_rate(self, rate: float, now: float) -> None:
        self.refill(now)
        self.rate = rate
        self.tokens = min(self.tokens, rate * self.burst_s)


@dataclass
class Throughput:
    """The throughput of one table or index, for reads or writes: a table bucket over per-partition
    buckets (``partition_units`` each). A request is admitted while both of its buckets hold a unit;
    a large one may leave them in debt, repaid before the next is admitted."""

    units_per_s: float
    partitions: int
    partition_units: float = PARTITION_WRITE_UNITS
    table: TokenBucket = field(init=False)
    by_partition: list[TokenBucket] = field(init=False)

    def __post_init__(self) -> None:
        self.table = TokenBucket(self.units_per_s)
        self.by_partition = [TokenBucket(self.partition_units) for _ in range(self.partitions)]

    def check(self, partition: int | None, now: float) -> str | None:
        """Which limit a request on ``partition`` (None: spread over the table) would hit, or None."""
        self.table.refill(now)
        if partition is not None:
            bucket = self.by_partition[partition % self.partitions]
            bucket.refill(now)
            if bucket.tokens < 1:
                return "partition"
        return "table" if self.table.tokens < 1 else None

    def consume(self, partition: int | None, units: float, now: float) -> None:
        """Take ``units`` from the table's bucket and the partition's (None: spread evenly)."""
        self.table.refill(now)
        self.table.tokens -= units
        for index, bucket in enumerate(self.by_partition):
            if partition is None or index == partition % self.partitions:
                bucket.refill(now)
                bucket.tokens -= units if partition is not None else units / self.partitions

    def admit(self, partition: int, units: float, now: float) -> str | None:
        """None when the write is admitted (its units consumed), else which limit throttled it."""
        limit = self.check(partition, now)
        if limit is None:
            self.consume(partition, units, now)
        return limit


def partitions_for(write_units_per_s: float, read_units_per_s: float = 0.0) -> int:
    """How many partitions a table's throughput needs (1,000 WCU or 3,000 RCU each)."""
    return max(1, math.ceil(write_units_per_s / PARTITION_WRITE_UNITS + read_units_per_s / PARTITION_READ_UNITS))
