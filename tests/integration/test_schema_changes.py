"""Schema changes while the migration runs: a column added with a default, one dropped and one renamed
under live writes. PostgreSQL writes no WAL for the rows nobody touches, so DynamoDB keeps their old
shape; the bridge notices the change, reconcile names the cause (not "finish the backfill"), and
``reconcile --repair`` makes the copy exact without overwriting the bridge's newer writes."""

from __future__ import annotations

import random
import re
import threading
from pathlib import Path

import psycopg

from bridge.config import Settings
from connectors.debezium import wait_until_streaming
from examples.payments.generate import load_payments
from ops.initialize import initialize
from tests.integration.pipeline import BridgeProcess, Cli, assert_converged, dynamo_items, wait_until

ROWS = 1_500
DDL = [
    "ALTER TABLE payments ADD COLUMN fee numeric DEFAULT 0.5",
    "ALTER TABLE payments DROP COLUMN transaction_reference",
    "ALTER TABLE payments RENAME COLUMN interest_amount TO interest",
]


def _touch(dsn: str, stop: threading.Event) -> None:
    """The application: keeps changing random payments' status, across the DDL."""
    rng = random.Random(5)
    with psycopg.connect(dsn, autocommit=True) as conn:
        while not stop.is_set():
            status = rng.choice(["Pending", "Completed", "Failed"])
            conn.execute(
                "UPDATE payments SET payment_status = %s WHERE payment_id = %s", (status, rng.randint(1, ROWS))
            )
            stop.wait(0.005)


def test_added_dropped_and_renamed_columns_under_live_writes_end_exact(isolated: Settings, tmp_path: Path) -> None:
    settings = isolated.model_copy(update={"stream": isolated.stream.model_copy(update={"metrics_port": 0})})
    dsn = settings.source.dsn.get_secret_value()
    cli = Cli(settings, tmp_path)
    load_payments(dsn, rows=ROWS)
    initialize(settings)
    wait_until_streaming(settings)
    bridge = BridgeProcess(settings, tmp_path).start()
    stop = threading.Event()
    writer = threading.Thread(target=_touch, args=(dsn, stop))
    try:
        assert cli.run("backfill", "--migration-id", "before-ddl").returncode == 0
        wait_until(lambda: len(dynamo_items(settings)) == ROWS, 60, "the copy")
        with psycopg.connect(dsn, autocommit=True) as conn:
            # Before any change reaches the bridge: its first event already has the new column, and only
            # the baseline `init` recorded tells it that the copy did not.
            conn.execute(DDL[0])
            writer.start()
            stop.wait(2)
            for statement in DDL[1:]:
                conn.execute(statement)
        stop.wait(3)  # live writes go on with the new shape
        stop.set()
        writer.join(10)
        wait_until(lambda: "schema change of public.payments" in bridge.output(), 60, "the bridge to notice")
        noticed = bridge.output()
        # One warning or several, depending on how the DDL fell between the events the bridge saw.
        added = {c for part in re.findall(r"added ([\w, ]+)", noticed) for c in part.split(", ")}
        dropped = {c for part in re.findall(r"dropped ([\w, ]+)", noticed) for c in part.split(", ")}
        assert (added, dropped) == ({"fee", "interest"}, {"interest_amount", "transaction_reference"}), noticed
        assert "reconcile --repair" in noticed

        found = cli.run("reconcile")
        out = found.stdout + found.stderr
        assert found.returncode == 1, out
        assert "differ only in that DynamoDB lacks Fee, Interest" in out, out
        assert "still has InterestAmount, TransactionReference" in out, out
        assert "finish the backfill" not in out

        repaired = cli.run("reconcile", "--repair")
        assert repaired.returncode == 0, repaired.stdout + repaired.stderr
        assert "MIGRATION SUCCESSFUL" in repaired.stdout
        assert assert_converged(settings) == ROWS
        items = list(dynamo_items(settings).values())
        assert all(i["Fee"] == {"N": "0.5"} and "TransactionReference" not in i for i in items)
        assert bridge.alive(), bridge.output()
    finally:
        stop.set()
        bridge.stop()
