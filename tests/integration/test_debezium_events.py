"""First end-to-end test: changes in PostgreSQL arrive in Kafka as Debezium events (op, LSN, before/after)."""

from __future__ import annotations

import json
from typing import Any

import psycopg

from bridge.config import Settings
from bridge.topics import topic_for
from connectors.debezium import wait_until_streaming
from examples.payments.generate import load_payments
from ops.initialize import initialize
from tests.integration.pipeline import consume_values


def test_insert_update_delete_arrive_as_change_events(isolated: Settings) -> None:
    dsn = isolated.source.dsn.get_secret_value()
    load_payments(dsn, rows=20, seed=7)
    initialize(isolated)
    wait_until_streaming(isolated)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE payments SET payment_status = 'Refunded' WHERE payment_id = 3")
        conn.execute("UPDATE payments SET payment_date = payment_date + 1 WHERE payment_id = 4")
        conn.execute("DELETE FROM payments WHERE payment_id = 5")
        conn.execute(
            "INSERT INTO payments (payment_id, customer_id, loan_id, payment_number, payment_date, payment_amount,"
            " principal_amount, interest_amount, payment_method, payment_status)"
            " VALUES (1000, 1, 999, 1, '2024-01-15', 123.45, 100.00, 23.45, 'ACH', 'Pending')"
        )
    raw = consume_values(isolated, topic_for(isolated, "public.payments"), want=4, want_nulls=1)
    values: list[dict[str, Any] | None] = [json.loads(v) if v else None for v in raw]
    # Rows hash to different partitions: order across them is by LSN, not by arrival.
    events = sorted((v["payload"] for v in values if v is not None), key=lambda e: e["source"]["lsn"])
    assert [e["op"] for e in events] == ["u", "u", "d", "c"]
    assert [e["after"]["payment_id"] if e["after"] else e["before"]["payment_id"] for e in events] == [3, 4, 5, 1000]
    # Each delete is followed by a null-valued Kafka tombstone (tombstones.on.delete).
    assert None in values
    assert all(isinstance(e["source"]["lsn"], int) and e["source"]["lsn"] > 0 for e in events)
    assert len({e["source"]["lsn"] for e in events}) == 4, "each commit has its own LSN"
    refund, moved, deleted, created = events
    assert refund["before"]["payment_status"] != "Refunded"
    assert refund["after"]["payment_status"] == "Refunded"
    # REPLICA IDENTITY FULL: the old image carries the old payment_date (a derived-key move).
    assert moved["before"]["payment_date"] + 1 == moved["after"]["payment_date"]
    assert deleted["before"]["payment_id"] == 5 and deleted["after"] is None
    assert created["after"]["payment_amount"] == "123.45"  # decimal.handling.mode=string: exact text
    assert created["source"]["table"] == "payments"
    # Schemas are on: the value schema names the Debezium envelope.
    first = next(v for v in values if v is not None)
    assert first["schema"]["name"].endswith(".Envelope")
