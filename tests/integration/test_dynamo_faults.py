"""A whole migration against DynamoDB as the service behaves (the stack's ddbsim): in-region latency,
a provisioned table the copy and the stream must share, 500s and answers lost after applied writes —
and it still ends exact, checked on dynalite directly (not through the layer under test)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from bridge.config import Settings
from connectors.debezium import wait_until_streaming
from examples.payments.generate import load_payments
from ops.ddbsim.admin import DdbsimAdmin
from ops.initialize import initialize
from ops.stack import LocalStack
from tests.integration.pipeline import (
    BridgeProcess,
    Cli,
    assert_converged,
    dead_letters,
    dynamo_items,
    live_traffic,
    source_items,
    wait_until,
)


def _through(settings: Settings, url: str) -> Settings:
    return settings.model_copy(update={"dynamodb": settings.dynamodb.model_copy(update={"endpoint_url": url})})


def _captured(isolated: Settings, stack: LocalStack, rows: int) -> tuple[Settings, Settings]:
    """``rows`` payments captured by Debezium; the settings through ddbsim, and straight to dynalite."""
    settings = _through(isolated, stack.ddbsim_url)
    load_payments(settings.source.dsn.get_secret_value(), rows=rows)
    initialize(settings)
    wait_until_streaming(settings)
    return settings, _through(isolated, f"http://127.0.0.1:{stack.ports.dynalite}")


def test_a_migration_through_throttling_latency_500s_and_lost_answers_ends_exact(
    isolated: Settings, stack: LocalStack, ddbsim: DdbsimAdmin, tmp_path: Path
) -> None:
    settings, direct = _captured(isolated, stack, rows=1500)
    # An unpaced copy meeting throttles retries longer than by default (what the error tells a user to do).
    settings = settings.model_copy(update={"migration": settings.migration.model_copy(update={"retry_attempts": 20})})
    target, control = settings.tables[0].target, settings.dynamodb.control_table
    # The table and each of its three GSIs get 150 write units a second (each payment costs one in
    # each): the copy alone wants more, so it is throttled; the stream's writes share the table and
    # the checkpoints meet the same faults.
    ddbsim.configure(
        tables=[target, control],
        latency_p50_ms=3,
        latency_p99_ms=15,
        capacity="provisioned",
        write_units_per_s=150,
        error_rate=0.02,
        lost_response_rate=0.02,
        seed=3,
    )
    bridge = BridgeProcess(settings, tmp_path).start()
    stop = threading.Event()
    writer = live_traffic(settings, stop, rate=25.0, seed=4)
    writer.start()
    try:
        done = Cli(settings, tmp_path).run("backfill", "--migration-id", "faults", "--workers", "2", timeout=600)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    finally:
        stop.set()
        writer.join(30)
    try:
        stats = ddbsim.stats()
        ddbsim.configure(error_rate=0.0, lost_response_rate=0.0)  # the bridge drains what is left
        assert_converged(direct, timeout_s=180)
        table = stats["tables"][target]
        assert sum(table["throttles"].values()) > 0, "nothing was throttled: the test exercised nothing"
        assert stats["lost_responses"] > 0 and stats["injected_errors"] > 0, stats
        live = set(source_items(direct))
        tombstones = {k for k, item in dynamo_items(direct, live_only=False).items() if "_deleted" in item}
        assert tombstones and not tombstones & live, "a deleted or moved row was resurrected"
        assert dead_letters(settings, want=1, timeout_s=5) == [], "a fault was dead-lettered as bad data"
        assert bridge.alive(), bridge.output()[-3000:]
    finally:
        bridge.stop()


def test_a_paced_backfill_leaves_the_stream_its_share_and_a_budget_over_capacity_adapts(
    isolated: Settings, stack: LocalStack, ddbsim: DdbsimAdmin, tmp_path: Path
) -> None:
    """Half of a 150-unit table for the copy (read from DescribeTable): never throttled, while the
    application writes and the bridge streams. Then a budget of 2,000 on the same table: DynamoDB
    throttles, the pacer backs off, the copy completes."""
    settings, direct = _captured(isolated, stack, rows=1200)
    target = settings.tables[0].target
    profile = {"tables": [target], "latency_p50_ms": 3, "latency_p99_ms": 15, "capacity": "provisioned"}
    ddbsim.configure(**profile, write_units_per_s=150)
    bridge = BridgeProcess(settings, tmp_path).start()
    stop = threading.Event()
    writer = live_traffic(settings, stop, rate=10.0, seed=8)
    writer.start()
    cli = Cli(settings, tmp_path)
    try:
        half = cli.run("backfill", "--migration-id", "half", "--target-utilization", "0.5", timeout=600)
        assert half.returncode == 0, half.stdout[-3000:] + half.stderr[-3000:]
        assert "Write budget: 75 table write units a second" in half.stdout, half.stdout
        assert ddbsim.stats()["tables"][target]["throttles"] == {}, "a paced copy below capacity was throttled"
        ddbsim.reset(**profile, write_units_per_s=150)  # no burst saved while the first copy stayed below capacity
        over = cli.run("backfill", "--migration-id", "over", "--max-wcu", "2000", timeout=600)
        assert over.returncode == 0, over.stdout[-3000:] + over.stderr[-3000:]
        throttled = sum(ddbsim.stats()["tables"][target]["throttles"].values())
        assert throttled > 0, "a budget 13 times the capacity was never throttled: the test exercised nothing"
        assert " throttled" in over.stdout, over.stdout
    finally:
        stop.set()
        writer.join(30)
    try:
        assert_converged(direct, timeout_s=180)
        assert bridge.alive(), bridge.output()[-3000:]
    finally:
        bridge.stop()


def test_the_bridge_rides_out_a_30_s_dynamodb_outage_under_live_writes(
    isolated: Settings, stack: LocalStack, ddbsim: DdbsimAdmin, tmp_path: Path
) -> None:
    """Every DynamoDB call answers 503 for 30 s (longer than the retry attempts last): the bridge keeps
    retrying with nothing committed, stays up, and catches up exactly once DynamoDB is back."""
    settings, direct = _captured(isolated, stack, rows=500)
    target = settings.tables[0].target
    bridge = BridgeProcess(settings, tmp_path).start()
    stop = threading.Event()
    writer = live_traffic(settings, stop, rate=40.0, seed=12)
    writer.start()
    try:
        wait_until(
            lambda: ddbsim.stats()["tables"].get(target, {}).get("requests", {}).get("PutItem", 0) > 0,
            60,
            "the first streamed write",
        )
        ddbsim.configure(tables=[target, settings.dynamodb.control_table], unavailable=True)
        time.sleep(30)
        assert bridge.alive(), bridge.output()[-3000:]
        ddbsim.configure(unavailable=False)
        time.sleep(3)
    finally:
        stop.set()
        writer.join(30)
    try:
        assert ddbsim.stats()["unavailable"] > 0
        done = Cli(settings, tmp_path).run("backfill", "--migration-id", "history")  # the rows from before the stream
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert assert_converged(direct, timeout_s=180) > 500
        assert bridge.alive(), bridge.output()[-3000:]
        assert "retrying for up to 900 s" in bridge.output(), bridge.output()[-3000:]
    finally:
        bridge.stop()
