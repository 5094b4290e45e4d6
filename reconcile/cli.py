"""Terminal side of ``validate``, ``reconcile`` and ``tombstones purge``: progress, reports, output."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from bridge.config import Settings
from reconcile.reconciler import ReconcileOptions, Report, reconcile
from reconcile.report import print_report, to_dict, write_report
from reconcile.source import SourceTable


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
        print_report(report, Console(), limit)
    for path in reports:
        write_report(report, path, limit)
        say(f"report written to {path}")
    return report
