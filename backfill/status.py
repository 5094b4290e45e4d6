"""What a migration is doing, from its control-table state: for ``status`` and ``monitor``."""

from __future__ import annotations

import time
from dataclasses import dataclass

from backfill.checkpoints import MigrationStore, RangeCheckpoint
from backfill.plan import Plan

STALL_S = 120.0


@dataclass
class MigrationStatus:
    """One snapshot of a migration's progress."""

    migration_id: str
    source: str
    target: str
    status: str
    processed: int
    total: int
    written: int
    stale: int
    errors: int
    ranges_done: int
    ranges: int
    seconds_since_update: float | None
    rate: float | None = None  # rows/s between two snapshots (monitor)

    @property
    def percent(self) -> float:
        return 100.0 * self.processed / self.total if self.total else (100.0 if self.status == "Completed" else 0.0)

    @property
    def eta_s(self) -> float | None:
        if not self.rate or self.rate <= 0:
            return None
        return max(self.total - self.processed, 0) / self.rate

    @property
    def finished(self) -> bool:
        return self.status in ("Completed", "Failed")


def overall_status(plan: Plan, cps: dict[int, RangeCheckpoint]) -> str:
    """Completed when every range is; Failed if any failed; InProgress while any is; else Stopped/Pending."""
    states = [cps[r].status if r in cps else "Pending" for r in range(plan.range_count)]
    if all(s == "Completed" for s in states):
        return "Completed"
    if "Failed" in states:
        return "Failed"
    if "InProgress" in states:
        return "InProgress"
    if "Stopped" in states:
        return "Stopped"
    return "Pending"


def read_status(store: MigrationStore, plan: Plan | None = None) -> MigrationStatus:
    """The migration's status now."""
    plan = plan or store.require_plan()
    cps = store.load_ranges()
    updated = max((cp.updated_epoch for cp in cps.values()), default=0.0)
    status = overall_status(plan, cps)
    since = time.time() - updated if updated else None
    if status == "InProgress" and since is not None and since > STALL_S:
        status = "Stalled"
    return MigrationStatus(
        migration_id=plan.migration_id,
        source=plan.source,
        target=plan.target,
        status=status,
        processed=sum(cp.rows_read for cp in cps.values()),
        total=plan.total_rows,
        written=sum(cp.rows_written for cp in cps.values()),
        stale=sum(cp.rows_stale for cp in cps.values()),
        errors=sum(cp.rows_failed for cp in cps.values()),
        ranges_done=sum(1 for cp in cps.values() if cp.done),
        ranges=plan.range_count,
        seconds_since_update=since,
    )
