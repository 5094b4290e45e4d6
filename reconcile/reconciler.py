"""``ddbridge reconcile``: the cutover gate. Full comparison, in-flight re-check, sample, GSI queries,
error rate, optional repair, and a verdict that says exactly what blocks cutover."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from bridge.config import Settings
from bridge.dynamo import make_client, make_scan
from bridge.schemas import SchemaChange, SchemaHistory
from reconcile.catchup import CatchUp
from reconcile.compare import Candidate, FullPass, full_compare
from reconcile.diagnose import causes
from reconcile.error_rate import ErrorRate, error_rate
from reconcile.probes import GsiResult, Latency, Prober, SampleResult
from reconcile.recheck import Difference, Rechecker, RecheckResult
from reconcile.repair import Repairer, RepairResult
from reconcile.source import SourceTable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

SUCCESS = "MIGRATION SUCCESSFUL"


@dataclass
class ReconcileOptions:
    table: str | None = None
    sample_size: int | None = None
    repair: bool = False
    workdir: Path | None = None


@dataclass
class Report:
    """Everything one reconcile found; rendered by ``reconcile.report``."""

    source: str
    target: str
    key_names: list[str]
    started_at: str
    latency_threshold_ms: float
    max_error_rate: float
    full: FullPass
    recheck: RecheckResult
    sample: SampleResult
    gsis: list[GsiResult]
    errors: ErrorRate
    query_latency: Latency  # every timed read together: sample GetItems and GSI queries
    repair: RepairResult | None = None
    after_repair: RecheckResult | None = None
    seconds: float = 0.0
    blockers: list[str] = field(default_factory=list)
    causes: list[str] = field(default_factory=list)  # likely causes of the differences (reconcile.diagnose)

    @property
    def differences(self) -> list[Difference]:
        """What is still wrong (after repair, when one ran)."""
        final = self.after_repair if self.after_repair is not None else self.recheck
        unrepairable = [d for d in self.recheck.confirmed if d.kind == "unstorable"] if self.after_repair else []
        return unrepairable + final.confirmed + final.unsettled

    def repaired_delta(self) -> int:
        """How the live item count changed through repairs (missing rows added, extra items removed)."""
        if self.after_repair is None:
            return 0
        left = {d.key for d in self.differences}
        fixed = [d for d in self.recheck.confirmed if d.key not in left]
        return sum(1 for d in fixed if d.kind == "missing") - sum(1 for d in fixed if d.kind == "extra")

    def count_of(self, kind: str) -> int:
        return sum(1 for d in self.differences if d.kind == kind)

    @property
    def verdict(self) -> str:
        return SUCCESS if not self.blockers else "CUTOVER BLOCKED: " + "; ".join(self.blockers)

    @property
    def ok(self) -> bool:
        return not self.blockers


def blockers_of(report: Report) -> list[str]:
    """Everything that stands between this state and a safe cutover, in plain words."""
    out: list[str] = []
    for kind, words in (
        ("missing", "rows missing in DynamoDB"),
        ("extra", "items in DynamoDB with no source row"),
        ("different", "items that differ from their row"),
        ("unstorable", "rows that cannot be stored in DynamoDB (fix the data or the mapping)"),
    ):
        if n := report.count_of(kind):
            out.append(
                f"{n:,} {words}" + (f" — {' '.join(report.causes)}" if kind == "different" and report.causes else "")
            )
    if n := report.count_of("unsettled"):
        catch = report.recheck.catchup
        why = f" ({catch.detail})" if catch is not None and catch.status == "behind" else ""
        out.append(f"{n:,} differences could not be verified before the in-flight deadline{why}")
    if report.full.overflow:
        advice = "the same cause, most likely: see above" if report.causes else "finish the backfill first"
        out.append(f"{report.full.overflow:,} more differences than reconcile.max_candidates: {advice}")
    if report.sample.confirmed:
        out.append(f"sample: {report.sample.confirmed} of {report.sample.size} rows differ")
    for gsi in report.gsis:
        if not gsi.functional:
            out.append(f"GSI {gsi.name}: {len(gsi.failures)} of {gsi.queries} queries returned the wrong items")
    latency = report.query_latency
    if latency.count and latency.p95_ms > report.latency_threshold_ms:
        out.append(f"query p95 {latency.p95_ms:.1f} ms is over the {report.latency_threshold_ms:g} ms target")
    if report.errors.dead_letters is None:
        out.append("the dead-letter topic could not be read (is Kafka up?)")
    if report.errors.rate > report.max_error_rate:
        out.append(f"error rate {report.errors.rate:.3%} is over the {report.max_error_rate:.1%} limit")
    if report.repair and report.repair.failed:
        out.append(f"{len(report.repair.failed)} repairs failed")
    return out


def reconcile(
    settings: Settings,
    options: ReconcileOptions,
    *,
    on_progress: Callable[[str, int], None] = lambda side, n: None,
    say: Callable[[str], None] = lambda _: None,
) -> Report:
    """Run the whole reconciliation of one mapped table."""
    started = time.monotonic()
    mapping = settings.mapping(options.table)
    conf = settings.reconcile
    source = SourceTable(settings, mapping)
    client = make_client(
        settings.dynamodb, pool_size=conf.scan_segments + settings.migration.write_concurrency + 4, max_attempts=8
    )
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    say(f"comparing every row of {mapping.source} with DynamoDB {mapping.target}")
    scan_page = make_scan(settings.dynamodb, pool_size=conf.scan_segments + 2, attempts=8)
    full = full_compare(settings, source, scan_page, workdir=options.workdir, on_progress=on_progress)
    say(
        f"full pass: {full.source_rows:,} rows, {full.target_live:,} live items, {full.matched:,} matched, "
        f"{len(full.candidates) + full.overflow:,} to re-check ({full.seconds:.1f} s)"
    )
    catchup = CatchUp(settings, mapping)
    prober = Prober(settings, source, client, catchup)
    size = conf.sample_size if options.sample_size is None else options.sample_size
    with source.connect() as conn:
        records = source.sample(conn, max(size, conf.gsi_queries))  # GSI queries use sampled keys too
    sample, sample_candidates = prober.sample(records[:size])
    say(f"sample: {sample.size - len(sample.mismatched)}/{sample.size} rows match at first read")
    candidates = _merge(full.candidates, sample_candidates)
    # Under --repair one re-check after catch-up confirms: the repair is conditional on the item the
    # re-check saw, so a difference the bridge was about to fix costs a write, never a wrong item.
    rechecker = Rechecker(settings, source, catchup, confirm_rounds=1 if options.repair else None)
    if candidates:
        say(f"re-checking {len(candidates):,} differences after the bridge catches up (in-flight changes)")
    recheck = rechecker.run(candidates)
    still = {d.key for d in recheck.confirmed + recheck.unsettled}
    sample.confirmed = sum(1 for key in sample.mismatched if key in still)
    errors = error_rate(settings, mapping, client, full.source_rows)
    report = Report(
        source=mapping.source,
        target=mapping.target,
        key_names=[k.name for k in source.mapper.key_attributes],
        started_at=started_at,
        latency_threshold_ms=conf.latency_threshold_ms,
        max_error_rate=conf.max_error_rate,
        full=full,
        recheck=recheck,
        sample=sample,
        gsis=[],
        errors=errors,
        query_latency=Latency(),
    )
    if options.repair and recheck.confirmed:
        say(f"repairing {len(recheck.confirmed):,} differences from PostgreSQL")
        repair_started = time.monotonic()
        report.repair = Repairer(settings, source, client).repair(recheck.confirmed)
        done = report.repair
        say(
            f"repaired {done.repaired:,} of {done.attempted:,} ({done.conflicts:,} changed meanwhile, "
            f"{len(done.failed):,} failed) in {time.monotonic() - repair_started:.1f} s; verifying them"
        )
        repaired = [Candidate(d.key, "different", d.pk) for d in recheck.confirmed if d.kind != "unstorable"]
        report.after_repair = rechecker.run(repaired)
        still = {d.key for d in report.differences}
        sample.confirmed = sum(1 for key in sample.mismatched if key in still)
    report.causes = causes(report.differences, _schema_changes(settings, client, mapping.source), attribute_of(source))
    report.gsis = prober.gsis(records)  # after any repair: the indexes must serve the repaired items
    report.query_latency = Latency.of(prober.times)
    report.seconds = time.monotonic() - started
    report.blockers = blockers_of(report)
    return report


def _merge(*groups: list[Candidate]) -> list[Candidate]:
    seen: dict[tuple[str, ...], Candidate] = {}
    unkeyed: list[Candidate] = []
    for group in groups:
        for candidate in group:
            if not candidate.key:
                unkeyed.append(candidate)
            else:
                seen.setdefault(candidate.key, candidate)
    return unkeyed + list(seen.values())


def attribute_of(source: SourceTable) -> dict[str, str]:
    """Source column -> DynamoDB attribute, for every column of the table."""
    return {c: source.mapper.attribute(c) for c in source.columns}


def _schema_changes(settings: Settings, client: DynamoDBClient, table: str) -> list[SchemaChange]:
    """The schema changes the bridge recorded (none when there is no control table yet)."""
    try:
        return SchemaHistory(client, settings.dynamodb.control_table).changes(table)
    except ClientError:
        return []
