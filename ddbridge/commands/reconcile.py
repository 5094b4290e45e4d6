"""``ddbridge validate`` and ``ddbridge reconcile``: the checks before a migration and the cutover
gate after it, with progress, reports and output."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from bridge.config import Settings
from bridge.errors import ConfigError
from ddbridge.app import app
from ddbridge.commands.backfill import DateOpt
from ddbridge.output import fail, progress_bar, run, say, setup_logging, state
from reconcile.reconciler import ReconcileOptions, Report, reconcile
from reconcile.report import print_report, to_dict, write_report
from reconcile.source import SourceTable
from reconcile.validate import Check, ValidateOptions, validate


def run_reconcile(
    settings: Settings,
    options: ReconcileOptions,
    *,
    reports: list[Path],
    json_output: bool,
    say: Callable[[str], None],
) -> Report:
    """Reconcile with progress bars, then print and write the report(s)."""
    setup_logging(logging.WARNING)
    mapping = settings.mapping(options.table)
    source = SourceTable(settings, mapping)
    with source.connect() as conn:
        rows = source.count(conn)
    progress = progress_bar(
        TextColumn("{task.description:<18}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}/s"),
        TimeRemainingColumn(),
        TimeElapsedColumn(),
        json_output=json_output,
    )
    tasks = {
        "source": progress.add_task("PostgreSQL rows", total=rows, rate="-"),
        "target": progress.add_task("DynamoDB items", total=None, rate="-"),
    }

    def advance(side: str, n: int) -> None:
        task = tasks[side]
        progress.update(task, advance=n)
        speed = progress.tasks[task].speed
        progress.update(task, rate=f"{speed:,.0f}" if speed else "-")

    with progress:
        report = reconcile(settings, options, on_progress=advance, say=say)
    limit = settings.reconcile.report_differences
    if json_output:
        print(json.dumps(to_dict(report, limit), indent=2, ensure_ascii=False))
    else:
        print_report(report, Console(soft_wrap=True), limit)
    for path in reports:
        write_report(report, path, limit)
        say(f"report written to {path}")
    return report


VALIDATE_MARKS = {"pass": "✅", "fail": "❌", "warn": "⚠️ ", "todo": "⏳"}


def run_validate(
    settings: Settings, options: ValidateOptions, *, detailed: bool, json_output: bool, say: Callable[[str], None]
) -> list[Check]:
    """Run the checks with a progress bar over the row pass, then print one line per check."""
    progress = progress_bar(
        TextColumn("checking rows"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), json_output=json_output
    )
    task = progress.add_task("rows", total=None)
    with progress:
        checks = validate(settings, options, on_progress=lambda n: progress.update(task, advance=n))
    if json_output:
        print(json.dumps([asdict(c) for c in checks], indent=2, ensure_ascii=False))
        return checks
    out = Console(soft_wrap=True)
    for check in checks:
        out.print(f"{VALIDATE_MARKS[check.status]} {check.group:<8} {check.figure}", highlight=False, markup=False)
        if check.hint and check.status != "pass":
            out.print(f"            -> {check.hint}", highlight=False, markup=False)
        if check.offenders:
            if detailed or check.always_listed:
                for offender in check.offenders:
                    out.print(f"            - {offender}", highlight=False, markup=False)
            else:
                out.print(
                    f"            ({len(check.offenders)}+ offending keys: --detailed-errors lists them)",
                    highlight=False,
                    markup=False,
                )
    failed = sum(1 for c in checks if c.status == "fail")
    todo = sum(1 for c in checks if c.status == "todo")
    if failed:
        say(f"[red]{failed} check(s) failed[/]: fix them before migrating")
    elif todo:
        say(f"[green]ready for `ddbridge init`[/] ({todo} item(s) it will create)")
    else:
        say("[green]all checks passed[/]")
    return checks


@app.command("validate")
def validate_cmd(
    table: Annotated[str | None, typer.Option("--table", "-t", help="Mapped table (default: the only one).")] = None,
    start_date: DateOpt = None,
    end_date: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Count rows whose date_column is on/before this day.")
    ] = None,
    detailed_errors: Annotated[
        bool, typer.Option("--detailed-errors", help="List the offending keys of each failed check (bounded).")
    ] = False,
) -> None:
    """Pre-flight checks of the source, the target and the pipeline; exit 1 if any fails.

    Source: row count, NULL key/required columns, duplicate item keys, unstorable values and items
    over 400 KB (every row through the codec), date range, replica identity, wal_level, publication,
    slot health. Target: table and GSIs ACTIVE with the mapping's keys. Pipeline: Kafka, topics,
    connector and task RUNNING, consumer lag. What `init` creates shows as todo until it has run.
    """
    settings = run(state.settings)
    options = ValidateOptions(
        table=table,
        start_date=start_date.date() if start_date else None,
        end_date=end_date.date() if end_date else None,
    )
    checks = run(
        lambda: run_validate(settings, options, detailed=detailed_errors, json_output=state.json_output, say=say)
    )
    if any(c.status == "fail" for c in checks):
        raise typer.Exit(1)


@app.command("reconcile")
def reconcile_cmd(
    table: Annotated[str | None, typer.Option("--table", "-t", help="Mapped table (default: the only one).")] = None,
    sample: Annotated[
        int | None, typer.Option("--sample", help="Rows compared field by field via GetItem (reconcile.sample_size).")
    ] = None,
    repair: Annotated[
        bool, typer.Option("--repair", help="Rewrite confirmed differences from PostgreSQL through the sink.")
    ] = False,
    report: Annotated[
        list[Path] | None, typer.Option("--report", help="Write the report: FILE.md, FILE.html or FILE.json.")
    ] = None,
) -> None:
    """Compare every row with DynamoDB and say whether cutover is safe; exit 0 only when clean.

    Counts and every row (PostgreSQL COPY against a parallel Scan, bounded memory), differences
    re-checked after the bridge catches up (live traffic raises no false alarm), a random sample
    via GetItem, every GSI queried with sampled keys (latency p50/p95), and the error rate. Ends in
    `MIGRATION SUCCESSFUL` or exactly what blocks cutover.
    """
    settings = run(state.settings)
    for path in report or []:
        if path.suffix.lower() not in (".md", ".markdown", ".html", ".htm", ".json"):
            fail(ConfigError(f"--report {path}: use a .md, .html or .json file name"))
    options = ReconcileOptions(table=table, sample_size=sample, repair=repair)
    result = run(lambda: run_reconcile(settings, options, reports=report or [], json_output=state.json_output, say=say))
    if not result.ok:
        raise typer.Exit(1)
