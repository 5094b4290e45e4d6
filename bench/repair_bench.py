"""The schema-change remedy against a backfill, in one process on the same endpoints.

The payments example is backfilled into a fresh table (the baseline: what copying every row costs),
then a column is added with a default, so every item lacks it, and ``ddbridge reconcile --repair``
makes DynamoDB right again. The report splits the repair into its phases (the full pass, the re-check
that confirms the differences, the repair, its verification) and gives each as a ratio to the
backfill, and compares the repair's writes with a raw conditional overwrite of every item (pre-built
items, the lean caller, the same concurrency): overwriting an item costs the emulator more than
writing a new one (old index entries are removed), so that, not the backfill, is their floor. No
bridge runs: the reconciler compares without a stream, as after a schema change made with the
bridge stopped.

    python -m bench.repair_bench --rows 50000   # writes bench/results/repair.md
"""

from __future__ import annotations

import argparse
import json
import time

import psycopg

from bench.backfill_bench import RESULTS, prebuilt_actions, run_ddbridge, run_raw_conditional
from bench.sandbox import sandbox
from ops.initialize import initialize
from reconcile.reconciler import ReconcileOptions, reconcile

PHASES = (
    ("full pass", "comparing every row"),
    ("re-check", "re-checking"),
    ("repair", "repairing"),
    ("verification", "repaired "),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    with sandbox(args.rows) as (settings, _):
        initialize(settings, source=False, connector=False)
        backfill = run_ddbridge(settings, args.workers)
        with psycopg.connect(settings.source.dsn.get_secret_value(), autocommit=True) as conn:
            conn.execute("ALTER TABLE payments ADD COLUMN note text NOT NULL DEFAULT 'migrated'")
        marks: list[tuple[str, float]] = []

        def say(line: str) -> None:
            marks.append((line, time.perf_counter()))
            print(line, flush=True)

        started = time.perf_counter()
        report = reconcile(settings, ReconcileOptions(sample_size=0, repair=True), say=say)
        ended = time.perf_counter()
        # The floor of the repair's writes: the same rows as pre-built items over the existing items,
        # conditional PutItems through the lean caller at the same concurrency (no reads, no codec).
        overwrite = run_raw_conditional(settings, prebuilt_actions(settings), settings.mapping().target, lean=True)
    assert report.ok, report.verdict
    assert report.repair is not None and report.repair.repaired == args.rows, report.repair
    starts = {name: next(t for line, t in marks if line.startswith(prefix)) for name, prefix in PHASES}
    bounds = [*(starts[name] for name, _ in PHASES), ended]
    phases = {name: bounds[i + 1] - bounds[i] for i, (name, _) in enumerate(PHASES)}
    whole = ended - started
    lines = [
        "# Repair benchmark",
        "",
        f"{args.rows:,} payments rows, endpoint {settings.dynamodb.endpoint_url}; a column added with a default "
        f"makes every item differ. Command: `python -m bench.repair_bench --rows {args.rows}`.",
        "",
        "| run | seconds | vs backfill |",
        "|---|---:|---:|",
        f"| ddbridge backfill (baseline) | {backfill.seconds:.1f} | 1.00 |",
        f"| reconcile --repair, whole | {whole:.1f} | {whole / backfill.seconds:.2f} |",
        *(f"| - {name} | {s:.1f} | {s / backfill.seconds:.2f} |" for name, s in phases.items()),
        f"| raw conditional overwrite of every item (the repair's write floor) | {overwrite.seconds:.1f} "
        f"| {overwrite.seconds / backfill.seconds:.2f} |",
        "",
        f"- the repair's writes / the raw overwrite: **{phases['repair'] / overwrite.seconds:.2f}**",
        f"- reads and checks around them (full pass, re-check, verification): "
        f"**{(whole - phases['repair']) / backfill.seconds:.2f}x** the backfill",
        "",
        f"Re-check rounds: {report.recheck.rounds}; after repair: "
        f"{report.after_repair.rounds if report.after_repair else 0}.",
    ]
    text = "\n".join(lines) + "\n"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "repair.md").write_text(text)
    (RESULTS / "repair.json").write_text(
        json.dumps(
            {
                "rows": args.rows,
                "backfill_s": backfill.seconds,
                "whole_s": whole,
                "overwrite_s": overwrite.seconds,
                **phases,
            },
            indent=1,
        )
    )
    print(text)


if __name__ == "__main__":
    main()
