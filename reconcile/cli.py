"""Terminal side of ``validate`` and ``reconcile``: progress, reports, output."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from bridge.config import Settings
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
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    console = Console(stderr=True)
    mapping = settings.mapping(options.table)
    source = SourceTable(settings, mapping)
    with source.connect() as conn:
        rows = source.count(conn)
    progress = Progress(
        TextColumn("{task.description:<18}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}/s"),
        TimeRemainingColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=json_output or not console.is_terminal,
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
    console = Console(stderr=True)
    progress = Progress(
        TextColumn("checking rows"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=json_output or not console.is_terminal,
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
