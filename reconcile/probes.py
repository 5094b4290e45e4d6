"""Spot checks the way the application will read: a random sample through GetItem, and every GSI
queried with sampled keys and compared with what PostgreSQL says it must return, timed."""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from bridge.config import GsiSettings, Settings
from bridge.errors import CodecError
from reconcile.canonical import Item, KeyTexts, bookkeeping_names, content, digest
from reconcile.catchup import CatchUp
from reconcile.compare import Candidate, Kind
from reconcile.source import SourceTable, attribute_columns
from reconcile.target import key_map

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

T = TypeVar("T")
GSI_ROWS_CAP = 1000  # a sampled GSI key matching more rows is timed but not compared
GSI_RETRIES = 3  # mismatching queries are repeated this many times, each after the bridge caught up


@dataclass
class Latency:
    """Round-trip times of one kind of request, in milliseconds."""

    count: int = 0
    avg_ms: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    max_ms: float = 0.0

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        if not seconds:
            return cls()
        ms = sorted(s * 1000 for s in seconds)
        p95 = ms[min(len(ms) - 1, max(0, round(0.95 * len(ms)) - 1))]
        return cls(len(ms), statistics.fmean(ms), statistics.median(ms), p95, ms[-1])


@dataclass
class SampleResult:
    """The random sample compared field by field through GetItem."""

    size: int = 0
    mismatched: list[KeyTexts] = field(default_factory=list)  # before the in-flight re-check
    confirmed: int = 0  # after it
    latency: Latency = field(default_factory=Latency)

    @property
    def matched(self) -> int:
        return self.size - self.confirmed


@dataclass
class GsiResult:
    """One GSI queried with sampled keys."""

    name: str
    queries: int = 0
    compared: int = 0
    failures: list[str] = field(default_factory=list)
    latency: Latency = field(default_factory=Latency)
    changing: int = 0  # mismatches while PostgreSQL's own answer kept changing (live writes): not faults

    @property
    def functional(self) -> bool:
        return not self.failures


def _timed(call: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    out = call()
    return out, time.perf_counter() - started


class Prober:
    """Runs the sample and the GSI checks of one table."""

    def __init__(
        self, settings: Settings, source: SourceTable, client: DynamoDBClient, catchup: CatchUp | None = None
    ) -> None:
        self.settings = settings
        self.catchup = catchup
        self.source = source
        self.client = client
        self.book = settings.bookkeeping
        self.hidden = bookkeeping_names(self.book)
        self.table = source.mapping.target
        self.key_names = source.mapper.key_names
        self.key_types = source.mapper.key_types
        self.times: list[float] = []  # every timed request, for the overall latency

    def sample(self, records: Sequence[tuple[Any, ...]]) -> tuple[SampleResult, list[Candidate]]:
        """GetItem each sampled row; mismatches become candidates for the re-check."""
        result = SampleResult(size=len(records))
        times: list[float] = []
        candidates: list[Candidate] = []
        for record in records:
            try:
                row = self.source.row(record)
                key, expected = self.source.item(row)
            except CodecError:
                result.size -= 1  # the full comparison reports unencodable rows
                continue
            request: dict[str, Any] = {"TableName": self.table, "Key": key_map(self.key_names, self.key_types, key)}
            resp, seconds = _timed(partial(self.client.get_item, ConsistentRead=True, **request))
            times.append(seconds)
            self.times.append(seconds)
            item = cast(Item, resp["Item"]) if "Item" in resp else None
            live = None if item is None or self.book.deleted in item else content(item, self.hidden)
            if live is None or digest(live) != digest(expected):
                result.mismatched.append(key)
                pk = self.source.primary_key(row)
                kind: Kind = "missing" if live is None else "different"
                candidates.append(Candidate(key, kind, pk, "found by the sample"))
        result.latency = Latency.of(times)
        return result, candidates

    def gsis(self, records: Sequence[tuple[Any, ...]]) -> list[GsiResult]:
        """Query every GSI with keys taken from sampled rows; compare with PostgreSQL.

        GSIs are eventually consistent and rows change under live traffic, so mismatching queries are
        repeated (all together, each time after the bridge caught up and a second for the index). A
        mismatch counts only if PostgreSQL's answer stayed the same: under live writes to that index key
        the query is not a consistent read, and the base-table comparison covers those items anyway."""
        results = []
        limit = self.settings.reconcile.gsi_queries
        with self.source.connect() as conn:
            for gsi in self.source.mapping.gsis:
                result = GsiResult(gsi.name)
                times: list[float] = []
                failing: dict[int, tuple[tuple[Any, ...], Item, str, bytes]] = {}
                for record in records:
                    if result.queries >= limit:
                        break
                    try:
                        _, item = self.source.item(self.source.row(record))
                    except CodecError:
                        continue
                    if gsi.partition_key.name not in item or (gsi.sort_key and gsi.sort_key.name not in item):
                        continue  # this row is not in the index
                    result.queries += 1
                    outcome, message, answer = self._check_query(conn, gsi, record, item, times)
                    result.compared += outcome != "broad"
                    if outcome == "differs":
                        failing[result.queries] = (record, item, message, answer)
                for _ in range(GSI_RETRIES):
                    if not failing:
                        break
                    self._settle(conn)
                    for number, (record, item, _, before) in list(failing.items()):
                        outcome, message, answer = self._check_query(conn, gsi, record, item, None)
                        if outcome == "differs" and answer == before:
                            failing[number] = (record, item, message, answer)
                        else:
                            del failing[number]
                            # PostgreSQL's own answer changed: live writes to this index key, not a fault
                            result.changing += outcome == "differs"
                result.failures = [message for _, _, message, _ in failing.values()]
                result.latency = Latency.of(times)
                results.append(result)
        return results

    def _settle(self, conn: Any) -> None:
        """Before a mismatching query is repeated: let the bridge apply everything committed so far
        (live traffic), then give the eventually consistent index a second."""
        if self.catchup is not None:
            row = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
            if row:
                self.catchup.wait(str(row[0]), time.monotonic() + self.settings.reconcile.in_flight_timeout_s)
        time.sleep(1.0)

    def _index_keys(self, gsi: GsiSettings) -> list[str]:
        return [gsi.partition_key.name] + ([gsi.sort_key.name] if gsi.sort_key else [])

    def _projected(self, gsi: GsiSettings, item: Item) -> bytes:
        keep = set(self.key_names) | set(self._index_keys(gsi))
        if gsi.projection == "ALL":
            return digest(content(item, self.hidden))
        if gsi.projection == "INCLUDE":
            keep |= set(gsi.non_key_attributes)
        return digest({k: v for k, v in item.items() if k in keep})

    def _check_query(
        self, conn: Any, gsi: GsiSettings, record: tuple[Any, ...], item: Item, times: list[float] | None
    ) -> tuple[Literal["equal", "broad", "differs"], str, bytes]:
        """One query of the index for the sampled row's index key, against PostgreSQL's answer."""
        attributes = self._index_keys(gsi)
        by_column = dict(zip(self.source.columns, record, strict=True))
        filters: dict[str, Any] = {}
        for attribute in attributes:
            for column in attribute_columns(self.source.mapper, self.source.columns, attribute):
                filters[column] = by_column[column]
        names = {f"#k{i}": a for i, a in enumerate(attributes)}
        values = {f":v{i}": item[a] for i, a in enumerate(attributes)}
        request: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": gsi.name,
            "KeyConditionExpression": " AND ".join(f"#k{i} = :v{i}" for i in range(len(attributes))),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        described = ", ".join(f"{a}={next(iter(item[a].values()))}" for a in attributes)
        got, seconds = self._query(request)
        if times is not None:
            times.append(seconds)
            self.times.append(seconds)
        rows = self.source.where_equal(conn, filters, GSI_ROWS_CAP + 1) if filters else []
        if len(rows) > GSI_ROWS_CAP or not filters:
            return "broad", "", b""  # too broad to compare exactly: timed only
        want: Counter[bytes] = Counter()
        for row in rows:
            try:
                _, candidate = self.source.item(self.source.row(row))
            except CodecError:
                continue
            if all(candidate.get(a) == item[a] for a in attributes):
                want[self._projected(gsi, candidate)] += 1
        have = Counter(self._projected(gsi, i) for i in got)
        if want == have:
            return "equal", "", b""
        missing, unexpected = sum((want - have).values()), sum((have - want).values())
        message = (
            f"query {described}: PostgreSQL says {sum(want.values())} items, the index returned "
            f"{sum(have.values())} ({missing} missing or different, {unexpected} unexpected)"
        )
        return "differs", message, digest({"answer": {"SS": sorted(d.hex() for d in want.elements())}})

    def _query(self, request: dict[str, Any]) -> tuple[list[Item], float]:
        """All pages of a query; the time is the first page's round trip."""
        items: list[Item] = []
        first: float | None = None
        while True:
            page, seconds = _timed(partial(self.client.query, **request))
            first = seconds if first is None else first
            items += cast(list[Item], page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items, first
            request = {**request, "ExclusiveStartKey": page["LastEvaluatedKey"]}
