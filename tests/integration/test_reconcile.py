"""The reconciler through the real stack: a clean migration passes; each corruption made directly in
DynamoDB is found precisely and repaired from PostgreSQL; live traffic raises no false alarm; the
tombstone purge."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backfill.checkpoints import MigrationStore, RangeCheckpoint
from bridge.config import Settings
from bridge.dynamo import make_client
from connectors.debezium import wait_until_streaming
from examples.payments.generate import load_payments
from ops.initialize import initialize
from tests.integration.pipeline import BridgeProcess, Cli, assert_converged, dynamo_items, live_traffic, wait_until

ROWS = 3_000


@pytest.fixture
def migrated(isolated: Settings, tmp_path: Path) -> Iterator[tuple[Settings, Cli, BridgeProcess]]:
    """A finished migration: history backfilled, the bridge streaming, both stores equal."""
    settings = isolated.model_copy(update={"stream": isolated.stream.model_copy(update={"metrics_port": 0})})
    cli = Cli(settings, tmp_path)
    load_payments(settings.source.dsn.get_secret_value(), rows=ROWS)
    initialize(settings)
    wait_until_streaming(settings)
    bridge = BridgeProcess(settings, tmp_path).start()
    try:
        done = cli.run("backfill", "--migration-id", "m1")
        assert done.returncode == 0, done.stdout + done.stderr
        assert_converged(settings)
        yield settings, cli, bridge
    finally:
        bridge.stop()


def _key(item: dict[str, Any]) -> dict[str, Any]:
    return {"CustomerId": item["CustomerId"], "PaymentDateId": item["PaymentDateId"]}


def _report(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def test_corruptions_are_found_precisely_and_repaired(migrated: tuple[Settings, Cli, BridgeProcess]) -> None:
    settings, cli, bridge = migrated
    workdir = cli.workdir
    clean = cli.run("reconcile", "--report", "clean.md", "--report", "clean.json", "--report", "clean.html")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "MIGRATION SUCCESSFUL" in clean.stdout
    assert f"Record Count Match: PostgreSQL: {ROWS:,} | DynamoDB: {ROWS:,}" in clean.stdout
    assert "Sample Validation: 100/100 records match exactly" in clean.stdout
    assert "All GSI Queries: Functional (3 indexes, 60 queries)" in clean.stdout
    assert "MIGRATION SUCCESSFUL" in (workdir / "clean.md").read_text()
    assert "MIGRATION SUCCESSFUL" in (workdir / "clean.html").read_text()
    summary = _report(workdir / "clean.json")
    assert summary["ok"] and summary["counts"]["matched"] == ROWS and summary["differences"] == []

    # Corrupt DynamoDB directly, one item per kind of damage.
    client = make_client(settings.dynamodb)
    table = settings.mapping().target
    items = sorted(dynamo_items(settings, live_only=False).values(), key=lambda i: int(i["PaymentId"]["N"]))
    missing, changed_amount, changed_gsi, stale = items[10], items[20], items[30], items[40]
    client.delete_item(TableName=table, Key=_key(missing))
    client.put_item(TableName=table, Item={**changed_amount, "PaymentAmount": {"N": "999999.99"}})
    client.put_item(TableName=table, Item={**changed_gsi, "PaymentStatus": {"S": "Reversed"}})
    extra = {**items[50], "PaymentDateId": {"S": "2099-01-01#777777"}, "PaymentId": {"N": "777777"}}
    client.put_item(TableName=table, Item=extra)
    # A stale version: the row changes in PostgreSQL (the bridge applies it), then the old item comes back.
    with psycopg.connect(settings.source.dsn.get_secret_value(), autocommit=True) as conn:
        conn.execute(
            "UPDATE payments SET payment_method = 'WIRE' WHERE payment_id = %s", (int(stale["PaymentId"]["N"]),)
        )
    wait_until(
        lambda: (
            client.get_item(TableName=table, Key=_key(stale), ConsistentRead=True)["Item"]["PaymentMethod"]
            == {"S": "WIRE"}
        ),
        60,
        "the bridge to apply the update",
    )
    client.put_item(TableName=table, Item=stale)

    found = cli.run("reconcile", "--report", "found.json")
    assert found.returncode == 1, found.stdout + found.stderr
    assert "CUTOVER BLOCKED" in found.stdout
    report = _report(workdir / "found.json")
    by_id = {d["key"]["PaymentDateId"]: d for d in report["differences"]}
    assert len(by_id) == 5, report["differences"]
    assert by_id[missing["PaymentDateId"]["S"]]["kind"] == "missing"
    assert by_id[extra["PaymentDateId"]["S"]]["kind"] == "extra"
    amount = by_id[changed_amount["PaymentDateId"]["S"]]
    assert amount["kind"] == "different"
    assert amount["fields"] == [
        {"attribute": "PaymentAmount", "expected": changed_amount["PaymentAmount"]["N"], "actual": "999999.99"}
    ]
    status = by_id[changed_gsi["PaymentDateId"]["S"]]
    assert [f["attribute"] for f in status["fields"]] == ["PaymentStatus"]
    assert status["fields"][0]["actual"] == "Reversed"
    old = by_id[stale["PaymentDateId"]["S"]]
    assert old["kind"] == "different"
    assert old["fields"][0] == {"attribute": "PaymentMethod", "expected": "WIRE", "actual": stale["PaymentMethod"]["S"]}
    counts = report["counts"]
    assert (counts["missing"], counts["extra"], counts["different"]) == (1, 1, 3)
    assert counts["unsettled"] == 0

    repaired = cli.run("reconcile", "--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "Repair: 5 of 5 rewritten from PostgreSQL" in repaired.stdout
    again = cli.run("reconcile")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "MIGRATION SUCCESSFUL" in again.stdout
    assert_converged(settings)
    # The extra item became a tombstone (never resurrected by a late snapshot), the rest are live again.
    tomb = client.get_item(TableName=table, Key=_key(extra), ConsistentRead=True)["Item"]
    assert tomb.get("_deleted") == {"BOOL": True}
    assert bridge.alive(), bridge.output()[-2000:]


def test_rows_changing_during_reconcile_are_not_reported(migrated: tuple[Settings, Cli, BridgeProcess]) -> None:
    """Live traffic with the bridge held behind: the full pass must see differences (the changes the
    bridge has not applied yet), and the re-check must resolve every one once the bridge catches up."""
    settings, cli, bridge = migrated
    assert bridge.proc is not None
    stop = threading.Event()
    writer = live_traffic(settings, stop, rate=40.0, seed=7)
    writer.start()
    try:
        time.sleep(1)
        bridge.proc.send_signal(signal.SIGSTOP)  # changes committed from here on are in flight for sure
        time.sleep(1)
        proc = cli.start("reconcile", "--report", "live.json")
        assert proc.stdout is not None
        output: list[str] = []
        for line in proc.stdout:  # hold the bridge until the reconciler waits for it to catch up
            output.append(line)
            if "re-checking" in line:
                break
        bridge.proc.send_signal(signal.SIGCONT)
        output.extend(proc.stdout)
        returncode = proc.wait(400)
    finally:
        bridge.proc.send_signal(signal.SIGCONT)
        stop.set()
        writer.join(30)
    assert returncode == 0, "".join(output)
    report = _report(cli.workdir / "live.json")
    assert report["differences"] == [] and report["ok"]
    # Changes were really in flight (otherwise this test proves nothing about tolerance).
    assert report["counts"]["in_flight_resolved"] > 0, report["counts"]
    assert bridge.alive(), bridge.output()[-2000:]


def test_tombstone_purge_waits_for_grace_and_backfills(isolated: Settings, tmp_path: Path) -> None:
    migration = isolated.migration.model_copy(update={"tombstone_grace_days": 3 / 86400})  # 3 seconds
    settings = isolated.model_copy(
        update={"migration": migration, "stream": isolated.stream.model_copy(update={"metrics_port": 0})}
    )
    cli = Cli(settings, tmp_path)
    load_payments(settings.source.dsn.get_secret_value(), rows=200)
    initialize(settings)
    wait_until_streaming(settings)
    bridge = BridgeProcess(settings, tmp_path).start()
    try:
        assert cli.run("backfill", "--migration-id", "p1").returncode == 0
        with psycopg.connect(settings.source.dsn.get_secret_value(), autocommit=True) as conn:
            conn.execute("DELETE FROM payments WHERE payment_id <= 20")
        assert_converged(settings)

        def tombstones() -> list[dict[str, Any]]:
            return [i for i in dynamo_items(settings, live_only=False).values() if "_deleted" in i]

        assert len(tombstones()) == 20
        # A backfill recorded as in progress blocks the purge.
        store = MigrationStore(make_client(settings.dynamodb), settings.dynamodb.control_table, "p1")
        store.save(RangeCheckpoint(0, status="InProgress", seq=10_000))
        refused = cli.run("tombstones", "purge")
        assert refused.returncode == 1 and "in progress" in refused.stderr, refused.stderr
        store.save(RangeCheckpoint(0, status="Completed", seq=10_001))
        time.sleep(3.5)
        dry = cli.run("--json", "tombstones", "purge", "--dry-run")
        assert json.loads(dry.stdout)["purged"] == 20 and len(tombstones()) == 20
        done = cli.run("--json", "tombstones", "purge")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["purged"] == 20
        assert tombstones() == []
        assert_converged(settings)
    finally:
        bridge.stop()
