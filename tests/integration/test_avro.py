"""A migration over Avro: Debezium publishes through Apicurio's converter in the Confluent wire format,
the registry (Apicurio, stored in PostgreSQL) holds the schemas, and the bridge decodes with fastavro.
Under live writes the copy is exact across a registry restart (a bridge started after it reads the old
schema ids again) and a column added while streaming (a new schema version, decoded without a restart)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import psycopg
import pytest
import requests
from confluent_kafka import Consumer

from bridge.config import Settings
from bridge.kafka_config import client_config
from bridge.topics import topic_for
from connectors.debezium import ConnectClient, connector_config, wait_until_streaming
from examples.payments.generate import load_payments
from ops.initialize import initialize
from ops.stack import LocalStack
from tests.integration.pipeline import (
    BridgeProcess,
    Cli,
    assert_converged,
    live_traffic,
    wait_until,
)

ROWS = 2_000


@pytest.fixture
def avro(isolated: Settings, stack: LocalStack) -> Settings:
    """The isolated settings with Debezium publishing Avro through the stack's registry."""
    return isolated.model_copy(
        update={
            "connect": isolated.connect.model_copy(update={"converter": "avro"}),
            "registry": isolated.registry.model_copy(update={"url": stack.registry_url}),
            "stream": isolated.stream.model_copy(update={"metrics_port": 0}),
        }
    )


def _first_record(settings: Settings) -> bytes:
    consumer = Consumer(
        client_config(settings.kafka, "ddbridge-test", {"group.id": "peek-" + settings.kafka.consumer_group,
                                                        "auto.offset.reset": "earliest"})
    )  # fmt: skip
    consumer.subscribe([topic_for(settings, settings.mapping().source)])
    try:
        for _ in range(60):
            msg = consumer.poll(1.0)
            value = msg.value() if msg is not None and msg.error() is None else None
            if value:
                return bytes(value)
    finally:
        consumer.close()
    raise AssertionError("no change event on the topic")


def test_a_migration_over_avro_is_exact_across_a_registry_restart_and_an_added_column(
    avro: Settings, stack: LocalStack, tmp_path: Path
) -> None:
    settings = avro
    config = connector_config(settings)
    assert config["value.converter"] == "io.apicurio.registry.utils.converter.AvroConverter"
    dsn = settings.source.dsn.get_secret_value()
    load_payments(dsn, rows=ROWS)
    initialize(settings)
    wait_until_streaming(settings)
    bridge = BridgeProcess(settings, tmp_path).start()
    cli = Cli(settings, tmp_path)
    stop = threading.Event()
    writer = live_traffic(settings, stop, rate=100.0, seed=17)
    writer.start()
    try:
        done = cli.run("backfill", "--migration-id", "avro")
        assert done.returncode == 0, done.stdout + done.stderr
        raw = _first_record(settings)
        assert raw[0] == 0 and len(raw) < 1_000, raw[:40]  # Confluent framing; no inline schema

        # The registry restarts; a bridge started after it needs every schema id again.
        stack.down(["registry"])
        stack.up(["registry"])
        bridge.kill9()
        bridge = BridgeProcess(settings, tmp_path).start()

        with psycopg.connect(dsn, autocommit=True) as conn:  # a new schema version while streaming
            conn.execute("ALTER TABLE payments ADD COLUMN fee numeric DEFAULT 0.5")
        wait_until(lambda: "schema change of public.payments" in bridge.output(), 90, "the bridge to see the column")
        stop.wait(3)
    finally:
        stop.set()
        writer.join(30)
    try:
        status = ConnectClient(settings.connect).status(settings.connect.connector_name)
        assert status is not None and status.running, status
        repaired = cli.run("reconcile", "--repair")  # rows the stream did not touch since lack Fee
        assert repaired.returncode == 0, repaired.stdout + repaired.stderr
        assert "MIGRATION SUCCESSFUL" in repaired.stdout
        assert assert_converged(settings) > ROWS // 2
        assert "dead-lettered 0" in bridge.output().rsplit("consumed", 1)[-1], bridge.output()[-2000:]
    finally:
        assert bridge.stop() == 0, bridge.output()[-3000:]


def test_a_schema_change_the_registry_refuses_is_a_clear_connector_error(
    avro: Settings, stack: LocalStack, tmp_path: Path
) -> None:
    """A DDL whose new Avro schema breaks the subject's compatibility rule: Debezium cannot publish, the
    connector's task fails, and `connector status` and `validate` say why and what to do."""
    settings = avro
    dsn = settings.source.dsn.get_secret_value()
    load_payments(dsn, rows=10)
    initialize(settings)
    wait_until_streaming(settings)
    subject = f"{topic_for(settings, settings.mapping().source)}-value"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE payments SET payment_status = 'Completed' WHERE payment_id = 1")
    wait_until(
        lambda: subject in requests.get(f"{stack.registry_url}/subjects", timeout=5).json(), 60, "the value schema"
    )
    rule = requests.put(f"{stack.registry_url}/config/{subject}", json={"compatibility": "BACKWARD"}, timeout=5)
    assert rule.status_code == 200, rule.text
    with psycopg.connect(dsn, autocommit=True) as conn:  # int -> text: old records unreadable by the new schema
        conn.execute("ALTER TABLE payments ALTER COLUMN loan_id TYPE text")
        conn.execute("UPDATE payments SET payment_status = 'Failed' WHERE payment_id = 2")
    client = ConnectClient(settings.connect)

    def failed() -> bool:
        status = client.status(settings.connect.connector_name)
        return status is not None and any(t["state"] == "FAILED" for t in status.tasks)

    wait_until(failed, 90, "the connector's task to fail")
    cli = Cli(settings, tmp_path)
    shown = cli.run("connector", "status")
    out = shown.stdout + shown.stderr
    assert shown.returncode == 1 and "Traceback (most recent call last)" not in shown.stdout, out
    assert "the schema registry refused a new schema" in out and subject in out, out
    check = cli.run("--json", "validate")
    connector = {c["name"]: c for c in json.loads(check.stdout)}["connector"]
    assert connector["status"] == "fail" and "the schema registry refused a new schema" in connector["hint"], connector
    restarted = cli.run("--json", "connector", "restart")  # Kafka Connect accepts it (the task fails again)
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    assert json.loads(restarted.stdout) == {"connector": settings.connect.connector_name, "restarted": True,
                                            "only_failed": True}  # fmt: skip


def _subjects(stack: LocalStack) -> list[str]:
    return list(requests.get(f"{stack.registry_url}/subjects", timeout=5).json())


def test_a_registry_outage_while_the_bridge_needs_a_schema_loses_nothing(
    avro: Settings, stack: LocalStack, tmp_path: Path
) -> None:
    """The registry down while changes keep coming. Kafka Connect keeps publishing with the schemas it has
    registered (its converter's re-check every second fails, and the cached schema stays in use), so the
    task never fails. A bridge that has never fetched those schemas retries; past
    registry.unavailable_timeout_s it stops with nothing committed; once the registry is back every
    record is applied, none dead-lettered because the registry was unreachable."""
    settings = avro.model_copy(  # the converter re-checks its cached schemas every second: every lookup
        update={  # made while the registry is down is a failed refresh
            "connect": avro.connect.model_copy(
                update={
                    "extra": {
                        f"{side}.converter.apicurio.registry.check-period-ms": "1000" for side in ("key", "value")
                    }
                }
            )
        }
    )
    dsn = settings.source.dsn.get_secret_value()
    load_payments(dsn, rows=0)
    initialize(settings)
    wait_until_streaming(settings)
    load_payments(dsn, rows=300, reset=False)  # streamed: the connector registers the value schema
    _first_record(settings)
    heartbeat = f"__debezium-heartbeat.{settings.kafka.topic_prefix}"
    wait_until(
        lambda: {f"{heartbeat}-key", f"{heartbeat}-value"} <= set(_subjects(stack)), 60, "the heartbeat's schemas"
    )
    time.sleep(2)  # past the check period: the next lookups refresh
    client = ConnectClient(settings.connect)
    stack.down(["registry"])
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:  # published while the registry is down
            conn.execute("UPDATE payments SET payment_status = 'Refunded' WHERE payment_id <= 50")
        impatient = settings.model_copy(
            update={"registry": settings.registry.model_copy(update={"unavailable_timeout_s": 5.0})}
        )
        (tmp_path / "impatient").mkdir()
        gave_up = BridgeProcess(impatient, tmp_path / "impatient").start()
        assert gave_up.proc is not None
        rc = gave_up.proc.wait(120)
        assert rc != 0 and "nothing was committed" in gave_up.output(), gave_up.output()[-2000:]
        assert "Traceback (most recent call last)" not in gave_up.output(), gave_up.output()[-3000:]

        bridge = BridgeProcess(settings, tmp_path).start()  # the default: retries for two minutes
        wait_until(lambda: "unavailable" in bridge.output(), 60, "the bridge to retry the registry")
        assert bridge.alive(), bridge.output()[-2000:]
        status = client.status(settings.connect.connector_name)  # heartbeats and changes went on
        assert status is not None and status.running, status
    finally:
        stack.up(["registry"])
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:  # and after it: the task never needed a restart
            conn.execute("UPDATE payments SET payment_status = 'Failed' WHERE payment_id > 250")
        assert assert_converged(settings, timeout_s=120) == 300
        status = client.status(settings.connect.connector_name)
        assert status is not None and status.running, status
    finally:
        assert bridge.stop() == 0, bridge.output()[-3000:]
    assert "dead-lettered 0" in bridge.output().rsplit("consumed", 1)[-1], bridge.output()[-2000:]


def test_a_connector_task_failed_by_a_registry_outage_is_restarted_by_the_bridge(
    avro: Settings, stack: LocalStack, tmp_path: Path
) -> None:
    """A column added while the registry is down: the new schema cannot be registered, so Kafka Connect's
    task fails (Connect never restarts it). The running bridge's connector watch restarts it once the
    registry is back, and every change made meanwhile arrives; nothing is dead-lettered."""
    settings = avro.model_copy(
        update={"connect": avro.connect.model_copy(update={"watch_interval_s": 1.0, "restart_backoff_s": 2.0})}
    )
    dsn = settings.source.dsn.get_secret_value()
    load_payments(dsn, rows=0)
    initialize(settings)
    wait_until_streaming(settings)
    load_payments(dsn, rows=200, reset=False)
    bridge = BridgeProcess(settings, tmp_path).start()
    client = ConnectClient(settings.connect)
    try:
        assert assert_converged(settings) == 200
        stack.down(["registry"])
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:  # a new value schema, unregistrable now
                conn.execute("ALTER TABLE payments ADD COLUMN note text")
                conn.execute("UPDATE payments SET note = 'written while the registry was down'")

            def failed() -> bool:
                status = client.status(settings.connect.connector_name)
                return status is not None and status.failed

            wait_until(failed, 90, "Connect's task to fail without the registry")
        finally:
            stack.up(["registry"])
        wait_until(lambda: "restarted its failed tasks" in bridge.output(), 120, "the bridge to restart the task")
        assert assert_converged(settings, timeout_s=120) == 200
        status = client.status(settings.connect.connector_name)
        assert status is not None and status.running, status
        assert bridge.alive(), bridge.output()[-2000:]
    finally:
        assert bridge.stop() == 0, bridge.output()[-3000:]
    assert "dead-lettered 0" in bridge.output().rsplit("consumed", 1)[-1], bridge.output()[-2000:]
