"""A source table with a quoted mixed-case name (``dbo."Payments"``, as a DMS copy from SQL Server
leaves it) streams and backfills like any other."""

from __future__ import annotations

from pathlib import Path

import psycopg

from bridge.config import KeyAttribute, Settings, TableMapping
from connectors.debezium import wait_until_streaming
from ops.initialize import initialize
from tests.integration.pipeline import BridgeProcess, Cli, assert_converged, dynamo_items, wait_until


def test_a_quoted_mixed_case_table_streams_and_backfills(isolated: Settings, tmp_path: Path) -> None:
    mapping = TableMapping(
        source='dbo."Payments"',
        target=isolated.tables[0].target + "_mixed",
        primary_key=["PaymentId"],
        partition_key=KeyAttribute(name="PaymentId", template="{PaymentId}", type="N"),
        attribute_naming="same",
    )
    settings = isolated.model_copy(update={"tables": [mapping]})
    with psycopg.connect(settings.source.dsn.get_secret_value(), autocommit=True) as conn:
        conn.execute('CREATE SCHEMA dbo; CREATE TABLE dbo."Payments" ("PaymentId" int PRIMARY KEY, "Amount" numeric)')
        conn.execute('INSERT INTO dbo."Payments" VALUES (1, 10.50)')
    initialize(settings)
    wait_until_streaming(settings)
    bridge = BridgeProcess(settings, tmp_path).start()
    try:
        with psycopg.connect(settings.source.dsn.get_secret_value(), autocommit=True) as conn:
            conn.execute('INSERT INTO dbo."Payments" VALUES (2, 20)')
        copied = Cli(settings, tmp_path).run("backfill", "--migration-id", "mixed")
        assert copied.returncode == 0, copied.stdout + copied.stderr
        wait_until(lambda: len(dynamo_items(settings)) == 2, 60, "both rows")
        with psycopg.connect(settings.source.dsn.get_secret_value(), autocommit=True) as conn:
            conn.execute('UPDATE dbo."Payments" SET "Amount" = 11 WHERE "PaymentId" = 1')
        wait_until(
            lambda: dynamo_items(settings).get((("PaymentId", "1"),), {}).get("Amount") == {"N": "11"},
            60,
            "the update through the stream",
        )
        assert bridge.alive(), bridge.output()
    finally:
        bridge.stop()
    assert dynamo_items(settings)[(("PaymentId", "2"),)] == {"PaymentId": {"N": "2"}, "Amount": {"N": "20"}}


def test_a_partitioned_table_is_captured_through_its_root(isolated: Settings, tmp_path: Path) -> None:
    # Its changes are logged by the leaf partitions: init publishes them via the root (the connector
    # captures the root) and sets REPLICA IDENTITY FULL on every leaf (the key uses the non-key column region).
    mapping = TableMapping(
        source="public.events",
        target=isolated.tables[0].target + "_events",
        primary_key=["id", "d"],
        partition_key=KeyAttribute(name="Region", template="{region}"),
        sort_key=KeyAttribute(name="DateId", template="{d}#{id}"),
    )
    settings = isolated.model_copy(update={"tables": [mapping]})
    dsn = settings.source.dsn.get_secret_value()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE public.events (id int, d date, region text NOT NULL, v int, PRIMARY KEY (id, d))"
            " PARTITION BY RANGE (d);"
            " CREATE TABLE public.events_2024 PARTITION OF public.events"
            " FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');"
            " CREATE TABLE public.events_2025 PARTITION OF public.events"
            " FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');"
            " INSERT INTO public.events VALUES (1, '2024-03-01', 'eu', 1), (2, '2025-03-01', 'us', 2)"
        )
    initialize(settings)
    wait_until_streaming(settings)
    cli = Cli(settings, tmp_path)
    checked = cli.run("validate")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "publication" in checked.stdout and "REPLICA IDENTITY FULL" in checked.stdout
    bridge = BridgeProcess(settings, tmp_path).start()
    try:
        copied = cli.run("backfill", "--migration-id", "parts")
        assert copied.returncode == 0, copied.stdout + copied.stderr
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("INSERT INTO public.events VALUES (3, '2024-05-01', 'eu', 3), (4, '2025-05-01', 'eu', 4)")
            conn.execute("UPDATE public.events SET region = 'ap', v = 10 WHERE id = 1")  # moves the item
            conn.execute("UPDATE public.events SET d = '2025-06-01' WHERE id = 3")  # moves to the other partition
            conn.execute("DELETE FROM public.events WHERE id = 2")
        assert assert_converged(settings) == 3
        assert bridge.alive(), bridge.output()
    finally:
        bridge.stop()
    items = dynamo_items(settings)
    assert items[(("Region", "ap"), ("DateId", "2024-03-01#1"))]["V"] == {"N": "10"}
    assert (("Region", "eu"), ("DateId", "2025-06-01#3")) in items
