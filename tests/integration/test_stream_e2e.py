"""The streaming bridge end to end: PostgreSQL -> Debezium -> Kafka -> ddbridge stream -> DynamoDB."""

from __future__ import annotations

import json
import random
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import Consumer, Producer

from bridge.config import Settings
from bridge.topics import topic_for
from connectors.debezium import wait_until_streaming
from examples.payments.generate import load_payments
from ops.initialize import initialize
from tests.integration.pipeline import (
    BridgeProcess,
    Cli,
    assert_converged,
    dynamo_items,
    live_traffic,
    source_items,
    wait_until,
)

INSERT = (
    "INSERT INTO payments (payment_id, customer_id, loan_id, payment_number, payment_date, payment_amount,"
    " principal_amount, interest_amount, payment_method, payment_status, transaction_reference)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


@pytest.fixture
def streaming(isolated: Settings, tmp_path: Path) -> Iterator[tuple[Settings, BridgeProcess]]:
    """An empty payments table captured by Debezium, and a running bridge (stopped afterwards)."""
    settings = isolated.model_copy(update={"stream": isolated.stream.model_copy(update={"metrics_port": 0})})
    load_payments(settings.source.dsn.get_secret_value(), rows=0)
    initialize(settings)
    wait_until_streaming(settings)
    bridge = BridgeProcess(settings, tmp_path).start()
    yield settings, bridge
    if bridge.alive():
        bridge.stop()


def _sql(settings: Settings, *statements: str) -> None:
    with psycopg.connect(settings.source.dsn.get_secret_value(), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def test_every_kind_of_change_arrives_exactly(streaming: tuple[Settings, BridgeProcess]) -> None:
    settings, bridge = streaming
    dsn = settings.source.dsn.get_secret_value()
    load_payments(dsn, rows=300, reset=False)  # 300 inserts through CDC
    assert_converged(settings)
    _sql(
        settings,
        "UPDATE payments SET payment_status = 'Refunded', updated_date = now() WHERE payment_id BETWEEN 1 AND 40",
        "DELETE FROM payments WHERE payment_id BETWEEN 41 AND 50",
        # Primary-key change: Debezium sends DELETE(old key) + CREATE(new key).
        "UPDATE payments SET payment_id = 100001 WHERE payment_id = 51",
        # Derived-key move: the sort key PaymentDateId contains payment_date.
        "UPDATE payments SET payment_date = payment_date + 3 WHERE payment_id BETWEEN 52 AND 60",
        # NULLs: the attribute disappears.
        "UPDATE payments SET transaction_reference = NULL, processed_date = NULL WHERE payment_id BETWEEN 61 AND 65",
        # Numeric precision at the column's limit (numeric(18,2)).
        "UPDATE payments SET payment_amount = 9999999999999999.99, principal_amount = 9999999999999999.98,"
        " interest_amount = 0.01 WHERE payment_id = 66",
        # Same row changed several times in one transaction, then deleted and re-inserted.
        "BEGIN; UPDATE payments SET payment_number = payment_number + 1000 WHERE payment_id = 67;"
        " UPDATE payments SET payment_method = 'WIRE' WHERE payment_id = 67; COMMIT",
        "DELETE FROM payments WHERE payment_id = 68",
    )
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(INSERT, (68, 7, 7007, 1, "2023-05-05", "10.50", "10.00", "0.50", "CASH", "Pending", None))
    rows = assert_converged(settings)
    assert rows == 300 - 10
    items = dynamo_items(settings)
    amounts = {i["PaymentId"]["N"]: i.get("PaymentAmount") for i in items.values()}
    assert amounts["66"] == {"N": "9999999999999999.99"}
    assert "TransactionReference" not in next(i for i in items.values() if i["PaymentId"]["N"] == "61")
    # Moved and deleted rows left tombstones only (not live items) at their old keys.
    all_items = dynamo_items(settings, live_only=False)
    tombstones = [i for i in all_items.values() if "_deleted" in i]
    assert len(tombstones) >= 10 + 1 + 9 + 1
    assert all(set(t) == {"CustomerId", "PaymentDateId", "_src", "_lsn", "_deleted", "_ttl"} for t in tombstones)
    assert bridge.alive()


def test_unchanged_toasted_column_survives_an_update(streaming: tuple[Settings, BridgeProcess]) -> None:
    settings, _ = streaming
    big = "".join(random.Random(1).choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(20000))
    _sql(
        settings,
        "ALTER TABLE payments ADD COLUMN memo text",
        "ALTER TABLE payments ALTER COLUMN memo SET STORAGE EXTERNAL",
    )
    load_payments(settings.source.dsn.get_secret_value(), rows=5, reset=False)
    with psycopg.connect(settings.source.dsn.get_secret_value(), autocommit=True) as conn:
        conn.execute("UPDATE payments SET memo = %s WHERE payment_id = 3", (big,))
        conn.execute("UPDATE payments SET payment_status = 'Failed' WHERE payment_id = 3")  # memo unchanged
    assert_converged(settings)
    item = next(i for i in dynamo_items(settings).values() if i["PaymentId"]["N"] == "3")
    assert item["Memo"] == {"S": big}
    assert item["PaymentStatus"] == {"S": "Failed"}


def test_poison_record_goes_to_the_dead_letter_topic(streaming: tuple[Settings, BridgeProcess]) -> None:
    settings, bridge = streaming
    topic = topic_for(settings, "public.payments")
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers})
    producer.produce(topic, key=b'{"id": 1}', value=b"this is not a change event", headers=[("origin", b"test")])
    producer.flush(10)
    load_payments(settings.source.dsn.get_secret_value(), rows=20, reset=False)
    assert_converged(settings)
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": f"dlq-reader-{time.time()}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([settings.kafka.dead_letter_topic])
    found = None
    deadline = time.monotonic() + 30
    while found is None and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            found = msg
    consumer.close()
    assert found is not None, "no dead letter"
    assert found.value() == b"this is not a change event" and found.key() == b'{"id": 1}'
    headers = {h[0]: h[1] for h in found.headers() or []}
    assert headers["origin"] == b"test"
    assert headers["ddbridge.error.class"] == b"CodecError"
    assert b"not JSON" in (headers["ddbridge.error.message"] or b"")
    assert headers["ddbridge.source.topic"] == topic.encode()
    assert "ddbridge.source.offset" in headers and "ddbridge.source.partition" in headers
    assert bridge.alive(), bridge.output()


def test_kill9_the_bridge_repeatedly_while_rows_change(streaming: tuple[Settings, BridgeProcess]) -> None:
    settings, bridge = streaming
    load_payments(settings.source.dsn.get_secret_value(), rows=3000, reset=False)
    stop = threading.Event()
    writer = live_traffic(settings, stop, rate=400.0, seed=11)
    writer.start()
    rng = random.Random(5)
    kills = 0
    try:
        for _ in range(4):
            time.sleep(rng.uniform(1.5, 4.0))
            bridge.kill9()
            kills += 1
            bridge.start()
    finally:
        stop.set()
        writer.join(30)
    rows = assert_converged(settings, timeout_s=120)
    assert kills == 4 and rows > 2000
    assert bridge.alive(), bridge.output()[-3000:]
    assert len(source_items(settings)) == rows


def test_truncate_stops_the_bridge_and_its_recovery_is_exact(isolated: Settings, tmp_path: Path) -> None:
    """History copied by the backfill, changes in flight on every partition when the TRUNCATE lands
    (the bridge is frozen), rows inserted right after it: the bridge stops and records the truncate;
    `truncate recover` sets the floor and sweeps; a restarted bridge converges exactly, dropping the
    changes from before the truncate that other partitions still hold."""
    settings = isolated.model_copy(update={"stream": isolated.stream.model_copy(update={"metrics_port": 0})})
    dsn = settings.source.dsn.get_secret_value()
    load_payments(dsn, rows=300)
    initialize(settings)
    wait_until_streaming(settings)
    cli = Cli(settings, tmp_path)
    bridge = BridgeProcess(settings, tmp_path).start()
    copied = cli.run("backfill", "--migration-id", "before-truncate")
    assert copied.returncode == 0, copied.stdout + copied.stderr
    assert assert_converged(settings) == 300
    assert bridge.proc is not None
    bridge.proc.send_signal(signal.SIGSTOP)  # changes pile up on every partition, unapplied
    _sql(
        settings,
        "UPDATE payments SET payment_status = 'Failed' WHERE payment_id % 3 = 0",
        "TRUNCATE payments",
    )
    load_payments(dsn, rows=20, reset=False, seed=7)  # after the truncate
    _sql(settings, "UPDATE payments SET payment_status = 'Refunded' WHERE payment_id % 2 = 0")
    bridge.proc.send_signal(signal.SIGCONT)
    assert bridge.proc.wait(90) == 1
    assert "was TRUNCATEd" in bridge.output() and "ddbridge truncate recover --table public.payments" in bridge.output()

    recovered = cli.run("--json", "truncate", "recover")
    assert recovered.returncode == 0, recovered.stdout + recovered.stderr
    summary = json.loads(recovered.stdout)
    assert summary["removed"] > 0 and summary["lsn"] > 0
    again = BridgeProcess(settings, tmp_path).start()
    try:
        assert assert_converged(settings, timeout_s=120) == 20
        assert again.alive(), again.output()
        assert "was recovered" in again.output() or "TRUNCATE" not in again.output()
    finally:
        again.stop()
    nothing = cli.run("truncate", "recover")  # the pending truncate was forgotten
    assert nothing.returncode == 2 and "no TRUNCATE of public.payments is recorded" in nothing.stdout + nothing.stderr


def test_the_bridge_refuses_to_start_without_the_replica_identity_a_derived_key_needs(
    isolated: Settings, tmp_path: Path
) -> None:
    # Under REPLICA IDENTITY DEFAULT Debezium sends the old image's non-key columns as NULL: a delete could
    # not find the item (CustomerId and PaymentDate are not primary-key columns), so the bridge never starts.
    load_payments(isolated.source.dsn.get_secret_value(), rows=0)
    initialize(isolated)
    _sql(isolated, "ALTER TABLE payments REPLICA IDENTITY DEFAULT")
    bridge = BridgeProcess(isolated, tmp_path).start()
    assert bridge.proc is not None
    assert bridge.proc.wait(60) == 1
    out = bridge.output()
    assert "public.payments is REPLICA IDENTITY DEFAULT" in out
    assert "ALTER TABLE public.payments REPLICA IDENTITY FULL" in out and "Traceback" not in out


def _delete_all_records(settings: Settings, at_least: int) -> None:
    """What retention would do: once the change topic holds ``at_least`` records, delete all of them."""
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import AdminClient

    topic = topic_for(settings, "public.payments")
    probe = Consumer({"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": "probe"})
    wait_until(
        lambda: sum(probe.get_watermark_offsets(TopicPartition(topic, p))[1] for p in range(4)) >= at_least,
        30,
        "the changes to reach Kafka",
    )
    ends = [TopicPartition(topic, p, probe.get_watermark_offsets(TopicPartition(topic, p))[1]) for p in range(4)]
    probe.close()
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})
    for future in admin.delete_records(ends).values():
        future.result()


def test_retention_gap_stops_the_bridge(streaming: tuple[Settings, BridgeProcess]) -> None:

    settings, bridge = streaming
    dsn = settings.source.dsn.get_secret_value()
    load_payments(dsn, rows=20, reset=False)
    assert_converged(settings)
    assert bridge.stop() == 0, bridge.output()
    _sql(settings, "UPDATE payments SET payment_status = 'Failed'")  # events the bridge never sees
    _delete_all_records(settings, at_least=40)
    bridge.start()
    assert bridge.proc is not None
    assert bridge.proc.wait(60) == 1
    assert "data gap" in bridge.output() and "backfill" in bridge.output()


def test_expired_committed_offsets_resume_from_the_bridges_record_or_stop_on_a_gap(
    isolated: Settings, tmp_path: Path
) -> None:
    """Kafka deletes an idle group's committed offsets after offsets.retention.minutes (7 days). The
    bridge then resumes from its own record, even under start_from=latest (which would jump past the
    unapplied changes), and when retention also deleted changes it never applied, it stops on the gap."""
    from confluent_kafka.admin import AdminClient

    stream = isolated.stream.model_copy(update={"metrics_port": 0, "start_from": "latest"})
    settings = isolated.model_copy(update={"stream": stream})
    dsn = settings.source.dsn.get_secret_value()
    load_payments(dsn, rows=0)
    initialize(settings)
    wait_until_streaming(settings)
    bridge = BridgeProcess(settings, tmp_path).start()
    wait_until(lambda: "assigned" in bridge.output(), 60, "the bridge to join")
    load_payments(dsn, rows=30, reset=False)
    assert_converged(settings)
    assert bridge.stop() == 0, bridge.output()
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})

    def expire_offsets() -> None:  # what offsets.retention.minutes does to an idle group
        for future in admin.delete_consumer_groups([settings.kafka.consumer_group], request_timeout=30).values():
            future.result()

    _sql(settings, "UPDATE payments SET payment_status = 'Failed' WHERE payment_id <= 10")  # unapplied
    expire_offsets()
    again = BridgeProcess(settings, tmp_path).start()
    assert assert_converged(settings) == 30, again.output()
    assert "no committed offset in Kafka" in again.output()
    assert again.stop() == 0, again.output()

    _sql(settings, "UPDATE payments SET payment_status = 'Refunded'")  # unapplied, then deleted by retention
    _delete_all_records(settings, at_least=70)
    expire_offsets()
    gap = BridgeProcess(settings, tmp_path).start()
    assert gap.proc is not None
    assert gap.proc.wait(60) == 1
    assert "data gap" in gap.output() and "ddbridge's record of the applied position" in gap.output()


def test_oversized_item_is_dead_lettered_and_metrics_and_probes_are_served(isolated: Settings, tmp_path: Path) -> None:
    import socket
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = isolated.model_copy(update={"stream": isolated.stream.model_copy(update={"metrics_port": port})})
    dsn = settings.source.dsn.get_secret_value()
    load_payments(dsn, rows=0)
    _sql(settings, "ALTER TABLE payments ADD COLUMN memo text")
    initialize(settings)
    wait_until_streaming(settings)
    bridge = BridgeProcess(settings, tmp_path).start()
    try:
        load_payments(dsn, rows=10, reset=False)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("UPDATE payments SET memo = repeat('x', 500000) WHERE payment_id = 4")
            conn.execute("UPDATE payments SET payment_status = 'Failed' WHERE payment_id = 5")

        def converged_except_4() -> bool:
            src = {k: v for k, v in source_items(settings).items() if v["PaymentId"] != {"N": "4"}}
            dst = {k: v for k, v in dynamo_items(settings).items() if v["PaymentId"] != {"N": "4"}}
            return src == dst

        wait_until(converged_except_4, 60, "every row but the oversized one")
        # Payment 4 keeps its last storable version; the oversized one is in the DLQ, not silently cut.
        four = next(v for v in dynamo_items(settings).values() if v["PaymentId"] == {"N": "4"})
        assert "Memo" not in four

        def scrape() -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
                return str(resp.read().decode())

        wait_until(
            lambda: 'ddbridge_dead_lettered_total{reason="ItemRejected",table="public.payments"} 1.0' in scrape(),
            30,
            "the dead-letter metric",
        )
        text = scrape()
        assert 'ddbridge_events_consumed_total{op="c",table="public.payments"} 10.0' in text
        assert 'ddbridge_writes_applied_total{kind="cdc",table="public.payments"}' in text
        assert "ddbridge_write_seconds_bucket" in text and "ddbridge_consumer_lag" in text
        # The probes beside the metrics: live, and ready with every partition (the only member).
        for path, answer in (("livez", "the loop turned"), ("readyz", "4 partition(s) assigned")):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/{path}", timeout=5) as resp:
                assert resp.status == 200 and resp.read().decode().startswith(answer)
        # The reconciler sees exactly what the dead letter left behind, and blocks cutover on it.
        from reconcile.reconciler import ReconcileOptions, reconcile

        report = reconcile(settings, ReconcileOptions(sample_size=5))
        assert [(d.kind, d.pk) for d in report.differences] == [("different", ("4",))]
        assert [f.attribute for f in report.differences[0].fields] == ["Memo"]
        assert report.errors.dead_letters == 1
        assert any("error rate 10.000%" in b for b in report.blockers), report.blockers
        assert bridge.alive()
    finally:
        bridge.stop()


def test_two_bridges_share_partitions_and_sigterm_hands_over(
    streaming: tuple[Settings, BridgeProcess], tmp_path: Path
) -> None:
    settings, first = streaming
    second_dir = tmp_path / "second"
    second_dir.mkdir()
    second = BridgeProcess(settings, second_dir).start()
    try:

        def shares() -> tuple[int, int]:
            def last(proc: BridgeProcess) -> int:
                out = proc.output()
                return out.rsplit("assigned", 1)[1].splitlines()[0].count("[") if "assigned" in out else 0

            return last(first), last(second)

        wait_until(lambda: min(shares()) > 0 and sum(shares()) == 4, 60, "both members to own partitions")
        load_payments(settings.source.dsn.get_secret_value(), rows=400, reset=False)
        assert_converged(settings)
        assert min(shares()) > 0 and sum(shares()) == 4, shares()
        assert first.stop() == 0, first.output()[-2000:]  # SIGTERM: drain, commit, leave the group
        assert "offsets committed" in first.output()
        _sql(settings, "UPDATE payments SET payment_status = 'Reversed' WHERE payment_id % 3 = 0")
        assert_converged(settings)
        assert second.alive()
    finally:
        second.stop()


def test_a_member_joining_while_the_other_writes_leaves_no_partition_unread(
    streaming: tuple[Settings, BridgeProcess], tmp_path: Path
) -> None:
    """Regression: partitions paused during a batch's writes stayed paused when a rebalance revoked and
    re-assigned them, so a member owned partitions it never read again (found by bench/stream_bench.py;
    the bridge no longer pauses, and resumes every assignment)."""
    settings, first = streaming
    load_payments(settings.source.dsn.get_secret_value(), rows=6000, reset=False)  # keeps the first busy writing
    time.sleep(1.0)
    second_dir = tmp_path / "second"
    second_dir.mkdir()
    second = BridgeProcess(settings, second_dir).start()
    try:
        assert_converged(settings)
        assert "revoked" in first.output(), "no rebalance happened: the test proves nothing"
        assert first.alive() and second.alive()
    finally:
        second.stop()
