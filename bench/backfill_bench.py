"""Backfill throughput against its ceiling, in one process on the same endpoints.

Ceiling = a raw loop of the same conditional PutItems (snapshot condition) with the same concurrency
and pre-built items: no PostgreSQL reads, no codec, no checkpoints. The ratio says what ddbridge's
reading, mapping and bookkeeping cost. Machines here are noisy: read the ratio, not the absolute rates.

    python -m bench.backfill_bench --rows 20000   # writes bench/results/backfill.md
"""

from __future__ import annotations

import argparse
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
from psycopg import sql

from backfill.runner import Backfill, BackfillOptions, ErrorLog
from bridge import pgrows
from bridge.config import Settings, load_settings
from bridge.dynamo import make_client
from bridge.initialize import initialize
from bridge.mapping import RowMapper
from bridge.rules import WriteRules
from examples.payments.generate import load_payments

RESULTS = Path(__file__).parent / "results"


def _settings(rows: int) -> Settings:
    base = load_settings(Path(__file__).parent.parent / "examples" / "payments" / "ddbridge.toml")
    tag = uuid.uuid4().hex[:8]
    db = f"bench_{tag}"
    with psycopg.connect("host=127.0.0.1 port=55432 user=postgres dbname=postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER ddbridge").format(sql.Identifier(db)))
    data = base.model_dump(mode="python")
    data["source"]["dsn"] = f"postgresql://ddbridge:ddbridge@127.0.0.1:55432/{db}"
    data["dynamodb"]["control_table"] = f"bench_ctl_{tag}"
    data["tables"][0]["target"] = f"BenchPayments_{tag}"
    settings = Settings(**data)
    load_payments(settings.source.dsn.get_secret_value(), rows=rows)
    return settings


def run_ddbridge(settings: Settings, workers: int) -> float:
    job = Backfill(settings, BackfillOptions(workers=workers, require_stream=False, migration_id="bench"))
    plan, store, cps = job.prepare()
    started = time.perf_counter()
    summary = job.run(plan, store, cps, ErrorLog(RESULTS / "bench.errors.jsonl", "bench", plan.source))
    elapsed = time.perf_counter() - started
    assert summary.status == "Completed" and summary.rows_written == plan.total_rows, summary
    return summary.rows_read / elapsed


def run_raw(settings: Settings, target: str) -> float:
    """The same items, pre-built, written by a bare conditional PutItem pool of the same size."""
    mapping = settings.mapping()
    rules = WriteRules(RowMapper(mapping), settings.bookkeeping, 0)
    with psycopg.connect(settings.source.dsn.get_secret_value()) as conn:
        pgrows.configure(conn)
        types = pgrows.column_types(conn, mapping.schema_name, mapping.table_name)
        cols = list(types)
        records = conn.execute(
            sql.SQL("SELECT {} FROM payments").format(sql.SQL(", ").join(map(sql.Identifier, cols)))
        ).fetchall()
    actions = [rules.snapshot(pgrows.to_row(cols, [types[c] for c in cols], r)) for r in records]
    concurrency = settings.migration.write_concurrency
    client = make_client(settings.dynamodb, pool_size=concurrency + 4)
    condition = rules.condition(actions[0])

    def put(action: object) -> None:
        client.put_item(TableName=target, Item=action.item, **condition)  # type: ignore[attr-defined]

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(put, actions))
    return len(actions) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    settings = _settings(args.rows)
    initialize(settings, source=False, connector=False)
    raw_table = settings.tables[0].model_copy(update={"target": settings.tables[0].target + "_raw"})
    initialize(settings.model_copy(update={"tables": [raw_table]}), source=False, connector=False)
    ours = run_ddbridge(settings, args.workers)
    raw = run_raw(settings, raw_table.target)
    RESULTS.mkdir(exist_ok=True)
    report = (
        "# Backfill benchmark\n\n"
        f"{args.rows:,} payments rows, endpoint {settings.dynamodb.endpoint_url}, "
        f"{settings.migration.write_concurrency} concurrent conditional PutItems, {args.workers} workers.\n\n"
        "| run | rows/s | ratio |\n|---|---|---|\n"
        f"| raw conditional PutItem loop (pre-built items) | {raw:,.0f} | 1.00 |\n"
        f"| ddbridge backfill (read + codec + write + checkpoints) | {ours:,.0f} | {ours / raw:.2f} |\n"
    )
    (RESULTS / "backfill.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
