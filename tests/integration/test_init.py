"""`init` against both DynamoDB API servers (dynalite and moto)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.config import Settings
from bridge.dynamo import make_client
from bridge.errors import SchemaMismatchError
from bridge.tables import ensure_table, table_spec
from ops.initialize import initialize
from ops.stack import LocalStack


@pytest.fixture(params=["dynalite", "moto"])
def dynamo_settings(request: pytest.FixtureRequest, isolated: Settings, stack: LocalStack) -> Settings:
    port = getattr(stack.ports, request.param)
    return isolated.model_copy(
        update={"dynamodb": isolated.dynamodb.model_copy(update={"endpoint_url": f"http://127.0.0.1:{port}"})}
    )


def test_init_creates_tables_and_gsis_idempotently(dynamo_settings: Settings) -> None:
    settings = dynamo_settings
    report = initialize(settings, source=False, connector=False)
    target = settings.tables[0].target
    assert report["tables"] == {target: "created", settings.dynamodb.control_table: "created"}
    client = make_client(settings.dynamodb)
    table = client.describe_table(TableName=target)["Table"]
    assert table["TableStatus"] == "ACTIVE"
    assert [(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]] == [
        ("CustomerId", "HASH"),
        ("PaymentDateId", "RANGE"),
    ]
    gsis = {g["IndexName"]: g for g in table["GlobalSecondaryIndexes"]}
    assert set(gsis) == {"PaymentStatusIndex", "LoanPaymentIndex", "PaymentMethodIndex"}
    method = gsis["PaymentMethodIndex"]["Projection"]
    assert method["ProjectionType"] == "INCLUDE"
    assert sorted(method["NonKeyAttributes"]) == ["CustomerId", "PaymentAmount", "PaymentStatus"]
    again = initialize(settings, source=False, connector=False)
    assert set(again["tables"].values()) == {"exists"}


def test_existing_table_with_other_shape_is_refused(dynamo_settings: Settings) -> None:
    settings = dynamo_settings
    initialize(settings, source=False, connector=False)
    mapping = settings.tables[0]
    changed = mapping.model_copy(update={"gsis": mapping.gsis[:2]})
    with pytest.raises(SchemaMismatchError, match="GSI PaymentMethodIndex exists but is not in the mapping"):
        ensure_table(make_client(settings.dynamodb), table_spec(changed))
    other_key = mapping.model_copy(
        update={
            "sort_key": None,
            "partition_key": mapping.partition_key.model_copy(update={"name": "PaymentId", "template": "{payment_id}"}),
        }
    )
    with pytest.raises(SchemaMismatchError, match="key schema is"):
        ensure_table(make_client(settings.dynamodb), table_spec(other_key))


def test_init_prepares_source_and_registers_connector(isolated: Settings) -> None:
    from bridge.postgres import connect
    from connectors.debezium import wait_until_streaming
    from examples.payments.generate import load_payments
    from tests.integration.pipeline import wait_until

    load_payments(isolated.source.dsn.get_secret_value(), rows=10)
    with connect(isolated) as conn:  # start from DEFAULT so init has something to fix
        conn.execute("ALTER TABLE payments REPLICA IDENTITY DEFAULT")
    report = initialize(isolated)
    assert report["source"][0]["replica_identity"] == "full"
    assert report["source"][0]["changed_replica_identity"] is True
    assert report["connector"]["created"] is True
    status = wait_until_streaming(isolated)
    assert status.running
    with connect(isolated) as conn:
        tables = conn.execute(
            "SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = %s",
            (isolated.connect.publication_name,),
        ).fetchall()
    assert sorted(tables) == [("public.ddbridge_heartbeat",), ("public.payments",)]
    # On a quiet source the slot still advances (heartbeats go through the publication): the
    # reconciler's catch-up check and bounded WAL retention depend on it.
    with connect(isolated) as conn:
        row = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
        assert row is not None

        def flushed() -> bool:
            done = conn.execute(
                "SELECT confirmed_flush_lsn >= %s::pg_lsn FROM pg_replication_slots WHERE slot_name = %s",
                (row[0], isolated.connect.slot_name),
            ).fetchone()
            return bool(done and done[0])

        wait_until(flushed, 60, "the replication slot to confirm a position past an idle moment")
    assert initialize(isolated)["connector"]["created"] is False


def test_connector_deleted_with_its_slot_can_be_registered_again(isolated: Settings, tmp_path: Path) -> None:
    """`connector delete --drop-slot` clears the stored offsets too: otherwise the next connector of the
    same name asks for a WAL position the dropped slot no longer has and FAILs."""
    from bridge.postgres import connect, slot_state
    from connectors.debezium import wait_until_streaming
    from examples.payments.generate import load_payments
    from tests.integration.pipeline import Cli, wait_until

    load_payments(isolated.source.dsn.get_secret_value(), rows=10)
    initialize(isolated)
    wait_until_streaming(isolated)
    first = slot_state(isolated)
    assert first is not None
    with connect(isolated) as conn:
        conn.execute("UPDATE payments SET payment_status = 'Failed' WHERE payment_id = 1")
    wait_until(
        lambda: (s := slot_state(isolated)) is not None and s.confirmed_flush_lsn != first.confirmed_flush_lsn,
        60,
        "Debezium to commit an offset",
    )
    done = Cli(isolated, tmp_path).run("connector", "delete", "--drop-slot")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "deleted with its offsets" in done.stdout
    assert slot_state(isolated) is None
    initialize(isolated)
    assert wait_until_streaming(isolated).running
