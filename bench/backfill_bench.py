"""Backfill throughput and CPU against baselines, in one process on the same endpoints.

Every run copies the same rows into its own fresh table:

- **ddbridge backfill**: keyset reads, the codec, conditional snapshot PutItems, checkpoints.
- **raw conditional PutItem loop**: the same pre-built items and condition at the same concurrency,
  no PostgreSQL, no codec, no checkpoints: the ceiling for writes that keep the guarantee. Run with
  the lean PutItem caller ddbridge uses (the ceiling) and with a boto3 client (what the same loop
  costs through botocore).
- **the original guide's approach**: OFFSET pagination, BatchWriteItem of 25 unconditional items,
  a 100 ms pause every 10 batches, one thread.
- **raw BatchWriteItem**: pre-built items, unconditional batches of 25 at the same concurrency (no
  guarantee at all: the ceiling of the endpoint).
- **naive boto3 loop**: ``Table.put_item`` one item at a time (resource API), for CPU per row.

Machines here are noisy: read the ratios, not the absolute rates.

    python -m bench.backfill_bench --rows 10000   # writes bench/results/backfill.md
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import psycopg
from boto3.dynamodb.types import TypeDeserializer
from psycopg import sql

from backfill.runner import Backfill, BackfillOptions, ErrorLog
from bench.sandbox import sandbox
from bridge import pgrows
from bridge.config import Settings
from bridge.dynamo import make_client, make_put_item
from bridge.mapping import RowMapper
from bridge.rules import WriteAction, WriteRules
from ops.initialize import initialize

RESULTS = Path(__file__).parent / "results"


@dataclass
class Run:
    name: str
    rows: int
    seconds: float
    cpu_seconds: float

    @property
    def rate(self) -> float:
        return self.rows / self.seconds

    @property
    def cpu_per_1000(self) -> float:
        return 1000 * self.cpu_seconds / self.rows


def measure(name: str, rows: int, work: Callable[[], None]) -> Run:
    """Wall and process CPU time (all threads) of ``work``."""
    cpu, wall = time.process_time(), time.perf_counter()
    work()
    return Run(name, rows, time.perf_counter() - wall, time.process_time() - cpu)


def new_table(settings: Settings, suffix: str) -> str:
    """A fresh copy of the mapping's target table (same keys and GSIs); returns its name."""
    mapping = settings.tables[0].model_copy(update={"target": settings.tables[0].target + suffix})
    initialize(settings.model_copy(update={"tables": [mapping]}), source=False, connector=False)
    return mapping.target


def prebuilt_actions(settings: Settings) -> list[WriteAction]:
    mapping = settings.mapping()
    rules = WriteRules(RowMapper(mapping), settings.bookkeeping, 0)
    with psycopg.connect(settings.source.dsn.get_secret_value()) as conn:
        pgrows.configure(conn)
        types = pgrows.column_types(conn, mapping.schema_name, mapping.table_name)
        cols = list(types)
        records = (
            pgrows.text_cursor(conn)
            .execute(sql.SQL("SELECT {} FROM payments").format(sql.SQL(", ").join(map(sql.Identifier, cols))))
            .fetchall()
        )
    decode = pgrows.RowDecoder(cols, [types[c] for c in cols])
    return [rules.snapshot(decode(r)) for r in records]


def run_ddbridge(settings: Settings, workers: int) -> Run:
    job = Backfill(settings, BackfillOptions(workers=workers, require_stream=False, migration_id="bench"))
    plan, store, cps = job.prepare()
    errors = ErrorLog(RESULTS / "bench.errors.jsonl", "bench", plan.source)
    holder: dict[str, Any] = {}
    run = measure(
        "ddbridge backfill", plan.total_rows, lambda: holder.update(summary=job.run(plan, store, cps, errors))
    )
    summary = holder["summary"]
    assert summary.status == "Completed" and summary.rows_written == plan.total_rows, summary
    return run


def run_raw_conditional(settings: Settings, actions: list[WriteAction], table: str, *, lean: bool) -> Run:
    """Pre-built items, the snapshot condition, the same concurrency; boto3's client or the lean caller."""
    rules = WriteRules(RowMapper(settings.mapping()), settings.bookkeeping, 0)
    concurrency = settings.migration.write_concurrency
    dynamo = settings.dynamodb.model_copy(update={"lean_client": lean})
    put_item = make_put_item(dynamo, pool_size=concurrency + 4)
    condition = rules.condition(actions[0])

    def work() -> None:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            list(pool.map(lambda a: put_item(TableName=table, Item=a.item, **condition), actions))

    caller = "lean caller" if lean else "boto3 client"
    return measure(f"raw conditional PutItem loop, {caller} (pre-built items)", len(actions), work)


def _batch_write(client: Any, table: str, items: list[dict[str, Any]]) -> None:
    request = {table: [{"PutRequest": {"Item": item}} for item in items]}
    while request:
        resp = client.batch_write_item(RequestItems=request)
        request = resp.get("UnprocessedItems") or {}
        if request:
            time.sleep(0.05)


def run_raw_batch(settings: Settings, actions: list[WriteAction], table: str) -> Run:
    concurrency = settings.migration.write_concurrency
    client = make_client(settings.dynamodb, pool_size=concurrency + 4)
    batches = [[a.item for a in actions[i : i + 25]] for i in range(0, len(actions), 25)]

    def work() -> None:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            list(pool.map(lambda b: _batch_write(client, table, b), batches))

    return measure("raw unconditional BatchWriteItem (pre-built items)", len(actions), work)


def run_guide(settings: Settings, table: str, rows: int) -> Run:
    """The original guide's migrator: OFFSET pages of 25, BatchWriteItem, 100 ms pause every 10 batches."""
    mapping = settings.mapping()
    mapper = RowMapper(mapping)
    client = make_client(settings.dynamodb)

    def work() -> None:
        with psycopg.connect(settings.source.dsn.get_secret_value()) as conn:
            pgrows.configure(conn)
            types = pgrows.column_types(conn, mapping.schema_name, mapping.table_name)
            cols = list(types)
            select = sql.SQL("SELECT {} FROM payments ORDER BY payment_id LIMIT 25 OFFSET %s").format(
                sql.SQL(", ").join(map(sql.Identifier, cols))
            )
            decode = pgrows.RowDecoder(cols, [types[c] for c in cols])
            offset, batches = 0, 0
            while True:
                records = pgrows.text_cursor(conn).execute(select, (offset,)).fetchall()
                if not records:
                    return
                items = [mapper.item(decode(r))[1] for r in records]
                _batch_write(client, table, items)
                offset += len(records)
                batches += 1
                if batches % 10 == 0:
                    time.sleep(0.1)

    return measure("the guide's approach (OFFSET, BatchWriteItem 25, pause)", rows, work)


def run_naive(settings: Settings, actions: list[WriteAction], table: str) -> Run:
    """One thread, boto3's resource API, Table.put_item per item (items converted to Python values)."""
    d = settings.dynamodb
    resource = boto3.resource(
        "dynamodb",
        endpoint_url=d.endpoint_url,
        region_name=d.region,
        aws_access_key_id=d.access_key_id.get_secret_value() if d.access_key_id else None,
        aws_secret_access_key=d.secret_access_key.get_secret_value() if d.secret_access_key else None,
    )
    target = resource.Table(table)
    deserialize = TypeDeserializer().deserialize
    plain = [{k: deserialize(v) for k, v in a.item.items()} for a in actions]

    def work() -> None:
        for item in plain:
            target.put_item(Item=item)

    return measure("naive boto3 Table.put_item loop (one thread)", len(plain), work)


def guide_at_scale(rows: int, guide: Run, ours: Run, samples: int = 40) -> list[str]:
    """Project both copies to ``rows`` rows from page reads measured at offsets across a table that big.

    The guide reads 25 rows per ``OFFSET k LIMIT 25`` query, so page k scans k rows (quadratic in
    total); ddbridge reads keyset chunks that cost the same anywhere in the table. Both page costs are
    sampled at ``samples`` points; writes are taken at the rates measured above (per row, unchanged
    by table size).
    """
    with sandbox(rows) as (settings, _), psycopg.connect(settings.source.dsn.get_secret_value()) as conn:
        conn.execute("ANALYZE payments")
        offset_s, keyset_s = [], []
        for i in range(samples):
            at = i * (rows - 25) // max(samples - 1, 1)
            started = time.perf_counter()
            conn.execute("SELECT * FROM payments ORDER BY payment_id LIMIT 25 OFFSET %s", (at,)).fetchall()
            offset_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            conn.execute("SELECT * FROM payments WHERE payment_id > %s ORDER BY payment_id LIMIT 500", (at,)).fetchall()
            keyset_s.append(time.perf_counter() - started)
    pages = rows / 25
    guide_reads = pages * sum(offset_s) / len(offset_s)
    guide_total = guide_reads + (pages / 10) * 0.1 + rows / guide.rate  # reads, pauses, writes as measured
    ours_total = rows / ours.rate + (rows / 500) * sum(keyset_s) / len(keyset_s)
    return [
        "",
        f"## Projected to {rows:,} rows (the guide's OFFSET reads measured at {samples} offsets across a table "
        f"of {rows:,} rows; writes at the rates above; `--guide-scale-rows {rows}`)",
        "",
        "| | one page read, first / last offset | projected copy time |",
        "|---|---:|---:|",
        f"| the guide (OFFSET k LIMIT 25) | {1000 * offset_s[0]:.1f} ms / {1000 * offset_s[-1]:.1f} ms "
        f"| {guide_total / 60:,.1f} min (reads {guide_reads / 60:,.1f} min) |",
        f"| ddbridge (keyset chunks of 500) | {1000 * keyset_s[0]:.1f} ms / {1000 * keyset_s[-1]:.1f} ms "
        f"| {ours_total / 60:,.1f} min |",
        "",
        f"- projected ddbridge / the guide's approach at {rows:,} rows: **{guide_total / ours_total:.1f}x** "
        "(a projection from measured parts, not a full run)",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--naive-rows", type=int, default=2_000, help="rows for the slow naive loop")
    parser.add_argument("--guide-scale-rows", type=int, default=0, help="project both copies to this many rows")
    args = parser.parse_args()
    with sandbox(args.rows) as (settings, tables):
        initialize(settings, source=False, connector=False)
        actions = prebuilt_actions(settings)
        names = {s: new_table(settings, s) for s in ("_raw", "_lean", "_guide", "_batch", "_naive")}
        tables += names.values()
        runs = [
            run_raw_conditional(settings, actions, names["_lean"], lean=True),
            run_ddbridge(settings, args.workers),
            run_guide(settings, names["_guide"], args.rows),
            run_raw_batch(settings, actions, names["_batch"]),
            run_raw_conditional(settings, actions, names["_raw"], lean=False),
        ]
        naive = run_naive(settings, actions[: args.naive_rows], names["_naive"])
    ceiling, ours, guide = runs[0], runs[1], runs[2]
    lines = [
        "# Backfill benchmark",
        "",
        f"{args.rows:,} payments rows, endpoint {settings.dynamodb.endpoint_url}, "
        f"{settings.migration.write_concurrency} concurrent writes, {args.workers} backfill workers; "
        f"naive loop over {naive.rows:,} rows. Command: `python -m bench.backfill_bench --rows {args.rows}`.",
        "",
        "| run | rows/s | vs raw conditional | CPU s / 1,000 rows |",
        "|---|---:|---:|---:|",
    ]
    for run in [*runs, naive]:
        lines.append(f"| {run.name} | {run.rate:,.0f} | {run.rate / ceiling.rate:.2f} | {run.cpu_per_1000:.3f} |")
    lines += [
        "",
        f"- ddbridge / raw conditional ceiling (lean caller): **{ours.rate / ceiling.rate:.2f}** (target >= 0.9)",
        f"- ddbridge / raw conditional loop through boto3: **{ours.rate / runs[4].rate:.2f}**",
        f"- ddbridge / the guide's approach: **{ours.rate / guide.rate:.1f}x** (target >= 10x)",
        f"- ddbridge CPU per row / naive boto3 loop: **{ours.cpu_per_1000 / naive.cpu_per_1000:.2f}** (target <= 0.5)",
    ]
    if args.guide_scale_rows:
        lines += guide_at_scale(args.guide_scale_rows, guide, ours)
    report = "\n".join(lines) + "\n"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "backfill.md").write_text(report)
    (RESULTS / "backfill.json").write_text(
        json.dumps([{"name": r.name, "rate": r.rate, "cpu_per_1000": r.cpu_per_1000} for r in [*runs, naive]], indent=1)
    )
    print(report)


if __name__ == "__main__":
    main()
