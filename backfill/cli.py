"""Terminal side of the backfill: the start banner, the progress bar, the summary, ``status`` and ``monitor``."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from backfill.checkpoints import MigrationStore
from backfill.runner import Backfill, BackfillOptions, ErrorLog, Summary
from backfill.status import MigrationStatus, read_status
from bridge import metrics
from bridge.config import Settings
from bridge.dynamo import make_client
from bridge.errors import ConfigError

log = logging.getLogger("ddbridge.backfill")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    return (
        f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"
        if seconds >= 3600
        else (f"{seconds // 60}m{seconds % 60:02d}s")
    )


def run_backfill(
    settings: Settings, options: BackfillOptions, *, json_output: bool, say: Callable[[str], None]
) -> Summary:
    """Prepare, print the start banner, copy with a progress bar, print the summary."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    console = Console(stderr=True)
    progress = Progress(
        TextColumn("[bold]backfill"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TextColumn("{task.fields[rate]} rows/s"),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=json_output or not console.is_terminal,
    )
    state: dict[str, Any] = {"done": 0, "started": time.monotonic(), "last_log": 0.0}
    task = progress.add_task("copy", total=None, rate="-")

    def advance(rows: int) -> None:
        state["done"] += rows
        if "migration" in state:
            metrics.BACKFILL_PROCESSED.labels(state["migration"]).inc(rows)
        elapsed = max(time.monotonic() - state["started"], 1e-6)
        progress.update(task, advance=rows, rate=f"{state['done'] / elapsed:,.0f}")
        if progress.disable and time.monotonic() - state["last_log"] >= 10:
            state["last_log"] = time.monotonic()
            say(
                f"[{datetime.now(UTC):%Y-%m-%d %H:%M:%S}] copied {state['done']:,} rows "
                f"({state['done'] / elapsed:,.0f} rows/s)"
            )

    job = Backfill(settings, options, on_progress=advance)
    plan, store, checkpoints = job.prepare()
    if settings.migration.metrics_port:
        try:
            metrics.serve(settings.migration.metrics_port, settings.stream.metrics_host, "migration.metrics_port")
        except ConfigError as exc:  # a port in use must not stop the copy
            log.warning("%s; copying without metrics", exc)
    mine = plan.ranges_of(options.segment)
    total = sum(plan.range_rows[r] for r in mine) if plan.range_rows else plan.total_rows
    already = sum(checkpoints[r].rows_read for r in mine if r in checkpoints)
    remaining = max(total - already, 0)
    errors_path = options.errors_file or Path(f"{plan.migration_id}.errors.jsonl")
    say(f"Migration ID: {plan.migration_id}")
    say(
        f"Source: {plan.source} -> DynamoDB {plan.target}"
        + (f" | dates {plan.start_date or '…'} to {plan.end_date or '…'}" if plan.start_date or plan.end_date else "")
    )
    say(f"Total Records: {total:,}" + (f" (segment {options.segment} of {plan.segments})" if plan.segments > 1 else ""))
    if already:
        say(f"Resuming: {already:,} rows already copied, {remaining:,} remaining")
    say(
        f"Batch Size: {settings.migration.batch_size} rows per chunk | workers {options.workers} | "
        f"{settings.migration.write_concurrency} concurrent writes"
    )
    say(
        f"Resume capability: ENABLED (checkpoints in {settings.dynamodb.control_table} every "
        f"{settings.migration.progress_save_interval} chunks; `ddbridge resume --migration-id {plan.migration_id}`)"
    )
    say(f"Estimated Duration: shown as ETA once the first chunks are copied; errors go to {errors_path}")
    progress.update(task, total=total, completed=already)
    state["done"] = 0
    metrics.BACKFILL_PLANNED.labels(plan.migration_id).set(total)
    metrics.BACKFILL_PROCESSED.labels(plan.migration_id).set(already)
    state["migration"] = plan.migration_id
    job.install_signal_handlers()
    with progress:
        summary = job.run(plan, store, checkpoints, ErrorLog(errors_path, plan.migration_id, plan.source))
    say(
        f"Status: {summary.status} | read {summary.rows_read:,} | written {summary.rows_written:,} | "
        f"already current {summary.rows_stale:,} | errors {summary.rows_failed:,} | "
        f"{_duration(summary.seconds)} at {summary.rate:,.0f} rows/s"
    )
    if summary.errors:
        say(f"Rows not copied (first {len(summary.errors)}; all in {summary.errors_file}):")
        for line in summary.errors if options.detailed_errors else summary.errors[:5]:
            say(f"  - {line}")
    if summary.failure:
        say(f"Failed: {summary.failure}")
    if summary.status == "Stopped":
        say(f"Stopped: continue with `ddbridge resume --migration-id {plan.migration_id}`")
    return summary


def status_line(s: MigrationStatus) -> str:
    """``[time] Status | Processed | Errors | Progress`` like the original guide's monitor."""
    extra = f" | {s.rate:,.0f} rows/s | ETA {_duration(s.eta_s)}" if s.rate else ""
    return (
        f"[{datetime.now(UTC):%Y-%m-%d %H:%M:%S}] Status: {s.status} | Processed: {s.processed:,} | "
        f"Errors: {s.errors:,} | Progress: {s.percent:.1f}%{extra}"
    )


def item_count(settings: Settings, table: str) -> int | None:
    """DynamoDB's item count of the target (DescribeTable: approximate on AWS, refreshed about every 6 h)."""
    try:
        return int(make_client(settings.dynamodb).describe_table(TableName=table)["Table"].get("ItemCount", 0))
    except Exception:
        return None


def show_status(settings: Settings, migration_id: str) -> dict[str, Any]:
    """The status as a dict (for --json) plus the DynamoDB item count."""
    store = MigrationStore(make_client(settings.dynamodb), settings.dynamodb.control_table, migration_id)
    s = read_status(store)
    return {**asdict(s), "percent": round(s.percent, 2), "dynamodb_item_count": item_count(settings, s.target)}


def monitor(
    settings: Settings, migration_id: str, interval_s: float, *, json_output: bool, out: Callable[[str], None] = print
) -> MigrationStatus:
    """Print a status line every interval until the migration is Completed or Failed."""
    store = MigrationStore(make_client(settings.dynamodb), settings.dynamodb.control_table, migration_id)
    plan = store.require_plan()
    previous: tuple[float, int] | None = None
    while True:
        s = read_status(store, plan)
        now = time.monotonic()
        if previous is not None and now > previous[0]:
            s.rate = (s.processed - previous[1]) / (now - previous[0])
        previous = (now, s.processed)
        if json_output:
            import json

            out(json.dumps({**asdict(s), "percent": round(s.percent, 2)}))
        else:
            count = item_count(settings, s.target)
            out(status_line(s) + (f" | DynamoDB items: {count:,}" if count is not None else ""))
        sys.stdout.flush()
        if s.finished:
            return s
        time.sleep(interval_s)
