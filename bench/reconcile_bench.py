"""Reconcile throughput against raw reading, and its peak memory as the table grows.

For each size: the payments example in a fresh database, the same rows in a fresh DynamoDB table
(unconditional batches of pre-built items: setup only), then, on the same endpoints:

- **raw reading**: PostgreSQL COPY of the table and a parallel Scan with the same segments, nothing
  done with the rows: through the lean Scan caller ddbridge uses (the ceiling of any full
  comparison) and through a boto3 client (what a hand-written comparison would read with);
- **ddbridge full comparison**: ``reconcile.compare.full_compare`` (codec, digests, spill, compare);
- **peak RSS** (VmHWM) of a whole ``ddbridge reconcile`` in its own process (``bench/peak_rss.py``);
- **the source side alone** (before the target is filled, so the Scan is empty): the full comparison
  with one and with two ``reconcile.source_readers``, showing how reading PostgreSQL scales with
  processes when DynamoDB is not competing for this machine's cores.

    python -m bench.reconcile_bench --sizes 100000 500000   # writes bench/results/reconcile.md
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bench.backfill_bench import RESULTS, _batch_write, prebuilt_actions
from bench.sandbox import sandbox
from bridge.config import Settings, write_config
from bridge.dynamo import make_client, make_scan
from ops.initialize import initialize
from reconcile.compare import full_compare
from reconcile.source import SourceTable
from reconcile.target import scan


def fill_target(settings: Settings) -> None:
    """DynamoDB gets exactly the source's items (setup, not measured)."""
    actions = prebuilt_actions(settings)
    client = make_client(settings.dynamodb, pool_size=20)
    table = settings.mapping().target
    batches = [[a.item for a in actions[i : i + 25]] for i in range(0, len(actions), 25)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda b: _batch_write(client, table, b), batches))


def raw_read(settings: Settings, *, lean: bool) -> float:
    """Seconds to COPY the table and Scan DynamoDB in parallel, doing nothing with either."""
    dynamo = settings.dynamodb.model_copy(update={"lean_client": lean})
    scan_page = make_scan(dynamo, pool_size=settings.reconcile.scan_segments + 2)
    started = time.perf_counter()

    def copy() -> int:
        n = 0
        with (
            psycopg.connect(settings.source.dsn.get_secret_value()) as conn,
            conn.cursor().copy(sql.SQL("COPY (SELECT * FROM payments) TO STDOUT")) as cp,
        ):
            for _ in cp.rows():
                n += 1
        return n

    with ThreadPoolExecutor(max_workers=1) as pool:
        copied = pool.submit(copy)
        scan(scan_page, settings.mapping().target, settings.reconcile.scan_segments, lambda items: None)
        copied.result()
    return time.perf_counter() - started


def ours(settings: Settings) -> float:
    scan_page = make_scan(settings.dynamodb, pool_size=settings.reconcile.scan_segments + 2)
    started = time.perf_counter()
    result = full_compare(settings, SourceTable(settings, settings.mapping()), scan_page)
    elapsed = time.perf_counter() - started
    assert result.matched == result.source_rows and not result.candidates, result
    return elapsed


def source_side(settings: Settings, readers: int) -> float:
    """Seconds of a full comparison against the (still empty) target with ``readers`` source readers."""
    run = settings.model_copy(
        update={"reconcile": settings.reconcile.model_copy(update={"source_readers": readers, "max_candidates": 1})}
    )
    scan_page = make_scan(run.dynamodb, pool_size=run.reconcile.scan_segments + 2)
    started = time.perf_counter()
    result = full_compare(run, SourceTable(run, run.mapping()), scan_page)
    assert result.source_rows == result.by_kind.get("missing"), result  # every row read exactly once
    return time.perf_counter() - started


def peak_rss_mb(settings: Settings, workdir: Path) -> tuple[float, float]:
    """(peak RSS in MB, seconds) of a whole `ddbridge reconcile --sample 0` in its own process."""
    config = write_config(settings, workdir / "bench-reconcile.json")
    rss_file = workdir / "bench-reconcile.rss"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DDBRIDGE_")}
    env["DDBRIDGE_PEAK_RSS_FILE"] = str(rss_file)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "bench.peak_rss", "--config", str(config), "reconcile", "--sample", "0"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    elapsed = time.perf_counter() - started
    assert done.returncode == 0, "the reconcile did not end clean: " + done.stdout[-2000:] + done.stderr[-2000:]
    return int(rss_file.read_text()) / 1024, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 500_000])
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    for size in args.sizes:
        with sandbox(size) as (settings, _):
            initialize(settings, source=False, connector=False)
            alone = {str(n): source_side(settings, n) for n in (1, 2)}
            fill_target(settings)
            raw = raw_read(settings, lean=True)
            raw_boto3 = raw_read(settings, lean=False)
            full = ours(settings)
            with tempfile.TemporaryDirectory() as tmp:
                rss, whole = peak_rss_mb(settings, Path(tmp))
        rows.append(
            {
                "size": size,
                "raw": raw,
                "raw_boto3": raw_boto3,
                "ours": full,
                "rss": rss,
                "whole": whole,
                "source_alone": alone,
            }
        )
    lines = [
        "# Reconcile benchmark",
        "",
        "PostgreSQL COPY + DynamoDB parallel Scan (raw reading, nothing done with the rows) against ddbridge's "
        "full comparison on the same endpoints, and the peak RSS of a whole `ddbridge reconcile --sample 0` "
        f"process. Command: `python -m bench.reconcile_bench --sizes {' '.join(map(str, args.sizes))}`.",
        "Raw reading goes through the lean Scan caller ddbridge uses (the ceiling) and, for reference, "
        "through a boto3 client.",
        "",
        "| rows | raw reading rows/s | full comparison rows/s | ratio | raw via boto3 rows/s | ratio to it "
        "| whole reconcile s | peak RSS MB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        size, raw, full, boto = r["size"], r["raw"], r["ours"], r["raw_boto3"]
        rates = f"{size / raw:,.0f} | {size / full:,.0f} | {raw / full:.2f} | {size / boto:,.0f} | {boto / full:.2f}"
        lines.append(f"| {size:,} | {rates} | {r['whole']:.1f} | {r['rss']:.0f} |")
    lines += [
        "",
        "The source side alone (an empty target): how reading PostgreSQL scales with `reconcile.source_readers`.",
        "",
        "| rows | 1 reader rows/s | 2 readers rows/s | speed-up |",
        "|---:|---:|---:|---:|",
    ]
    for r in rows:
        one, two = r["source_alone"]["1"], r["source_alone"]["2"]
        lines.append(f"| {r['size']:,} | {r['size'] / one:,.0f} | {r['size'] / two:,.0f} | {one / two:.2f} |")
    lines += ["", "Targets: full comparison >= 0.8x raw reading; peak RSS about flat as rows grow."]
    report = "\n".join(lines) + "\n"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "reconcile.md").write_text(report)
    (RESULTS / "reconcile.json").write_text(json.dumps(rows, indent=1))
    print(report)


if __name__ == "__main__":
    main()
