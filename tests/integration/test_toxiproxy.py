"""TCP faults between ddbridge and every component (the stack's Toxiproxy): each proxy carries its
component's traffic, and the bridge streaming through Kafka's and DynamoDB's proxies survives
latency, connection resets and outages of both and ends exact."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import pytest
import requests
from botocore.exceptions import ClientError
from confluent_kafka.admin import AdminClient

from bridge.config import DynamoSettings, Settings
from bridge.dynamo import make_client
from connectors.debezium import wait_until_streaming
from examples.payments.generate import load_payments
from ops.initialize import initialize
from ops.stack import CONNECT_USERS, LocalStack
from ops.toxiproxy import Toxiproxy
from tests.conftest import LOCAL_KEYS
from tests.integration.pipeline import (
    BridgeProcess,
    Cli,
    assert_converged,
    dead_letters,
    dynamo_items,
    live_traffic,
    wait_until,
)


def test_every_proxy_carries_its_components_traffic_and_an_outage_cuts_it(
    stack: LocalStack, toxiproxy: Toxiproxy
) -> None:
    p = stack.ports
    assert set(toxiproxy.proxies()) == set(stack.proxies())
    dsn = f"postgresql://ddbridge:ddbridge@127.0.0.1:{p.toxiproxy_postgres}/ddbridge?connect_timeout=3"
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    brokers = AdminClient({"bootstrap.servers": f"127.0.0.1:{p.toxiproxy_kafka}"}).list_topics(timeout=10).brokers
    assert [f"{b.host}:{b.port}" for b in brokers.values()] == [f"127.0.0.1:{p.toxiproxy_kafka}"]  # back through it
    user = next(iter(CONNECT_USERS.items()))
    assert requests.get(f"http://127.0.0.1:{p.toxiproxy_connect}/", auth=user, timeout=5).status_code == 200
    dynamo = make_client(DynamoSettings(**LOCAL_KEYS, endpoint_url=f"http://127.0.0.1:{p.toxiproxy_dynamodb}"))
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        dynamo.describe_table(TableName="no-such-table")
    with toxiproxy.outage("postgres"), pytest.raises(psycopg.OperationalError):
        psycopg.connect(dsn)


def test_the_bridge_through_latency_resets_and_outages_of_kafka_and_dynamodb_ends_exact(
    isolated: Settings, stack: LocalStack, toxiproxy: Toxiproxy, tmp_path: Path
) -> None:
    p = stack.ports
    proxied = isolated.model_copy(
        update={
            "kafka": isolated.kafka.model_copy(update={"bootstrap_servers": f"127.0.0.1:{p.toxiproxy_kafka}"}),
            "dynamodb": isolated.dynamodb.model_copy(
                update={"endpoint_url": f"http://127.0.0.1:{p.toxiproxy_dynamodb}"}
            ),
        }
    )
    load_payments(isolated.source.dsn.get_secret_value(), rows=300)
    initialize(isolated)
    wait_until_streaming(isolated)
    bridge = BridgeProcess(proxied, tmp_path).start()
    stop = threading.Event()
    writer = live_traffic(isolated, stop, rate=40.0, seed=21)
    writer.start()
    try:
        wait_until(lambda: len(dynamo_items(isolated)) > 0, 60, "the first streamed change in DynamoDB")
        with toxiproxy.toxic("kafka", "latency", latency=300, jitter=100):
            time.sleep(5)
        with toxiproxy.toxic("dynamodb", "reset_peer", stream="upstream", timeout=0):
            time.sleep(5)
        with toxiproxy.toxic("dynamodb", "latency", latency=200, jitter=150):
            time.sleep(5)
        with toxiproxy.outage("dynamodb"):
            time.sleep(10)
        with toxiproxy.outage("kafka"):  # longer than the session timeout: the group is rebuilt afterwards
            time.sleep(20)
        assert bridge.alive(), bridge.output()[-3000:]
        time.sleep(3)
    finally:
        stop.set()
        writer.join(30)
    try:
        done = Cli(isolated, tmp_path).run("backfill", "--migration-id", "history")  # the rows from before the stream
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert assert_converged(isolated, timeout_s=180) > 300
        assert dead_letters(isolated, want=1, timeout_s=5) == [], "a network fault was dead-lettered as bad data"
        assert bridge.alive(), bridge.output()[-3000:]
    finally:
        bridge.stop()
