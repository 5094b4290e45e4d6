"""``ddbridge backfill|resume|status|monitor``: the copy of the history, with its start banner,
progress bar and summary, and the views of a migration's progress."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from backfill.checkpoints import MigrationStore
from backfill.runner import Backfill, BackfillOptions, ErrorLog, Summary
from backfill.status import MigrationStatus, read_status
from bridge import metrics
from bridge.config import Settings, load_settings
from bridge.dynamo import make_client
from bridge.errors import ConfigError
from bridge.pacing import WritePacer
from ddbridge.app import app
from ddbridge.output import duration, emit, progress_bar, run, say, setup_logging, state

log = logging.getLogger("ddbridge.backfill")


def run_backfill(
    settings: Settings, options: BackfillOptions, *, json_output: bool, say: Callable[[str], None]
) -> Summary:
    """Prepare, print the start banner, copy with a progress bar, print the summary."""
    setup_logging(logging.WARNING)
    progress = progress_bar(
        TextColumn("[bold]backfill"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TextColumn("{task.fields[rate]} rows/s{task.fields[pace]}"),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TimeElapsedColumn(),
        json_output=json_output,
    )
    state: dict[str, Any] = {"done": 0, "started": time.monotonic(), "last_log": 0.0}
    task = progress.add_task("copy", total=None, rate="-", pace="")

    def advance(rows: int) -> None:
        state["done"] += rows
        if "migration" in state:
            metrics.BACKFILL_PROCESSED.labels(state["migration"]).inc(rows)
        elapsed = max(time.monotonic() - state["started"], 1e-6)
        pace = pace_text(job.pacer, elapsed)
        progress.update(task, advance=rows, rate=f"{state['done'] / elapsed:,.0f}", pace=pace)
        if progress.disable and time.monotonic() - state["last_log"] >= 10:
            state["last_log"] = time.monotonic()
            say(
                f"[{datetime.now(UTC):%Y-%m-%d %H:%M:%S}] copied {state['done']:,} rows "
                f"({state['done'] / elapsed:,.0f} rows/s{pace})"
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
    if job.pacer is not None:
        say(f"Write budget: {job.pacer.budget:,.0f} table write units a second (lowered while DynamoDB throttles)")
    job.install_signal_handlers()
    state["started"] = time.monotonic()
    with progress:
        summary = job.run(plan, store, checkpoints, ErrorLog(errors_path, plan.migration_id, plan.source))
    say(
        f"Status: {summary.status} | read {summary.rows_read:,} | written {summary.rows_written:,} | "
        f"already current {summary.rows_stale:,} | errors {summary.rows_failed:,} | "
        f"{duration(summary.seconds)} at {summary.rate:,.0f} rows/s{pace_text(job.pacer, summary.seconds)}"
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


def pace_text(pacer: WritePacer | None, elapsed_s: float) -> str:
    """`` | 812 WCU/s (budget 1,000 now 900) | 3 throttled`` for a paced copy, else nothing."""
    if pacer is None:
        return ""
    p = pacer.state()
    return (
        f" | {p.units / max(elapsed_s, 1e-6):,.0f} WCU/s (budget {p.budget:,.0f}, now {p.rate:,.0f})"
        f" | {p.throttles:,} throttled"
    )


def status_line(s: MigrationStatus) -> str:
    """``[time] Status | Processed | Errors | Progress`` like the original guide's monitor."""
    extra = f" | {s.rate:,.0f} rows/s | ETA {duration(s.eta_s)}" if s.rate else ""
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


def watch(
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
            out(json.dumps({**asdict(s), "percent": round(s.percent, 2)}))
        else:
            count = item_count(settings, s.target)
            out(status_line(s) + (f" | DynamoDB items: {count:,}" if count is not None else ""))
        sys.stdout.flush()
        if s.finished:
            return s
        time.sleep(interval_s)


def _backfill_options(**kwargs: Any) -> BackfillOptions:
    return BackfillOptions(**{k: v for k, v in kwargs.items() if v is not None})


def _run_backfill(options: BackfillOptions, **migration: Any) -> None:
    """Run the copy with ``migration`` settings given on the command line (None: from the config)."""
    given = {k: v for k, v in migration.items() if v is not None}
    settings = run(lambda: load_settings(state.config_path, {"migration": given} if given else None))
    summary = run(lambda: run_backfill(settings, options, json_output=state.json_output, say=say))
    emit(asdict(summary), lambda: None)
    if summary.status != "Completed":
        raise typer.Exit(1)


MaxWcuOpt = Annotated[
    float | None,
    typer.Option(
        "--max-wcu",
        help="Write budget in table write units a second (migration.max_write_units_per_s); lowered while "
        "DynamoDB throttles, never exceeded.",
    ),
]
UtilizationOpt = Annotated[
    float | None,
    typer.Option(
        help="Budget as a share of the table's write capacity, e.g. 0.5 leaves half to the stream "
        "(migration.target_utilization).",
    ),
]
DateOpt = Annotated[
    datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Only rows whose date_column is on/after this day.")
]


@app.command("backfill")
def backfill(
    table: Annotated[str | None, typer.Option("--table", "-t", help="Mapped table (default: the only one).")] = None,
    start_date: DateOpt = None,
    end_date: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Only rows whose date_column is on/before this day.")
    ] = None,
    batch_size: Annotated[int | None, typer.Option(help="Rows per chunk (migration.batch_size).")] = None,
    workers: Annotated[int, typer.Option(help="Parallel range workers in this process.")] = 4,
    segments: Annotated[int, typer.Option(help="Split the migration into N segments (processes/machines).")] = 1,
    segment: Annotated[int, typer.Option(help="The segment (0..N-1) this process copies.")] = 0,
    migration_id: Annotated[
        str | None,
        typer.Option(help="Id of the migration (default migration-YYYYMMDD-HHMMSS); an existing id is joined/resumed."),
    ] = None,
    max_errors: Annotated[int | None, typer.Option(help="Stop as Failed after this many bad rows.")] = None,
    detailed_errors: Annotated[bool, typer.Option(help="List every sampled bad row in the summary.")] = False,
    no_stream: Annotated[
        bool, typer.Option("--no-stream", help="Skip the stream-first check (offline copy of a quiet source only).")
    ] = False,
    errors_file: Annotated[Path | None, typer.Option(help="Where bad rows are written (JSON lines).")] = None,
    max_wcu: MaxWcuOpt = None,
    target_utilization: UtilizationOpt = None,
) -> None:
    """Copy the table's history to DynamoDB through the same sink (snapshot writes), resumably.

    Keyset pagination in primary-key order, short per-chunk queries, checkpoints in the control
    table. Start the stream first: rows changed during the copy are then made exact by the stream.
    Exit 0 when Completed, 1 when Stopped or Failed.
    """
    options = _backfill_options(
        table=table,
        start_date=start_date.date() if start_date else None,
        end_date=end_date.date() if end_date else None,
        workers=workers,
        segments=segments,
        segment=segment,
        migration_id=migration_id,
        max_errors=max_errors,
        detailed_errors=detailed_errors,
        require_stream=not no_stream,
        errors_file=errors_file,
    )
    _run_backfill(options, batch_size=batch_size, max_write_units_per_s=max_wcu, target_utilization=target_utilization)


@app.command("resume")
def resume(
    migration_id: Annotated[str, typer.Option(help="The migration to continue.")],
    table: Annotated[str | None, typer.Option("--table", "-t", help="Mapped table (default: the only one).")] = None,
    segments: Annotated[int, typer.Option(help="As given to backfill.")] = 1,
    segment: Annotated[int, typer.Option(help="As given to backfill.")] = 0,
    workers: Annotated[int, typer.Option(help="Parallel range workers.")] = 4,
    batch_size: Annotated[int | None, typer.Option(help="Rows per chunk.")] = None,
    max_errors: Annotated[int | None, typer.Option(help="Stop as Failed after this many bad rows.")] = None,
    force: Annotated[bool, typer.Option(help="Resume although the configuration changed.")] = False,
    no_stream: Annotated[bool, typer.Option("--no-stream", help="Skip the stream-first check.")] = False,
    max_wcu: MaxWcuOpt = None,
    target_utilization: UtilizationOpt = None,
) -> None:
    """Continue a stopped or killed backfill right after its last checkpointed key."""
    options = _backfill_options(
        table=table,
        segments=segments,
        segment=segment,
        workers=workers,
        migration_id=migration_id,
        max_errors=max_errors,
        force=force,
        require_stream=not no_stream,
        resume_only=True,
    )
    _run_backfill(options, batch_size=batch_size, max_write_units_per_s=max_wcu, target_utilization=target_utilization)


@app.command("status")
def status(migration_id: Annotated[str, typer.Option(help="The migration.")]) -> None:
    """A migration's status, progress, errors and the DynamoDB item count."""
    settings = run(state.settings)
    data = run(lambda: show_status(settings, migration_id))

    def render() -> None:
        for key in (
            "migration_id",
            "status",
            "processed",
            "total",
            "percent",
            "written",
            "stale",
            "errors",
            "ranges_done",
            "ranges",
            "dynamodb_item_count",
        ):
            say(f"{key:>20}: {data[key]}")

    emit(data, render)


@app.command("monitor")
def monitor(
    migration_id: Annotated[str, typer.Option(help="The migration.")],
    interval: Annotated[float, typer.Option(help="Seconds between lines.")] = 60.0,
) -> None:
    """Print `[time] Status | Processed | Errors | Progress` every interval until Completed or Failed."""
    settings = run(state.settings)
    final = run(lambda: watch(settings, migration_id, interval, json_output=state.json_output))
    if final.status != "Completed":
        raise typer.Exit(1)
