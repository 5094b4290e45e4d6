"""ddbridge against production-shaped security on the local stack: Kafka's SASL_SSL (SCRAM) and mTLS
listeners with ACLs (the principal gets exactly what the README lists), PostgreSQL over TLS with
``verify-full`` for a role pg_hba refuses without TLS, Debezium connecting the same way, and Kafka
Connect's REST API over HTTPS behind basic auth. A migration
runs exactly through it; a wrong password, an unauthorised principal and untrusted certificates are
refused with one-line errors that name the setting to check."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)
from psycopg import sql

from bridge.config import Settings
from connectors.debezium import wait_until_streaming
from examples.payments.generate import load_payments
from ops.certs import issue, new_ca, write_pair
from ops.initialize import initialize
from ops.stack import CONNECT_USERS, PG_TLS_PASSWORD, PG_TLS_ROLE, SCRAM_USERS, LocalStack
from tests.integration.pipeline import BridgeProcess, Cli, assert_converged, live_traffic

ROWS = 2_000
SECRETS = (SCRAM_USERS["ddbridge"], PG_TLS_PASSWORD, CONNECT_USERS["ddbridge"])


def _acls(settings: Settings, user: str) -> list[AclBinding]:
    """The README's ACLs for ``user``, on this test's topics and group."""
    k = settings.kafka

    def allow(kind: ResourceType, name: str, pattern: ResourcePatternType, op: AclOperation) -> AclBinding:
        return AclBinding(kind, name, pattern, f"User:{user}", "*", op, AclPermissionType.ALLOW)

    prefix, literal = ResourcePatternType.PREFIXED, ResourcePatternType.LITERAL
    return [
        allow(ResourceType.TOPIC, f"{k.topic_prefix}.", prefix, AclOperation.READ),
        allow(ResourceType.TOPIC, f"{k.topic_prefix}.", prefix, AclOperation.DESCRIBE),
        allow(ResourceType.TOPIC, f"{k.topic_prefix}.", prefix, AclOperation.CREATE),  # init creates the topics
        allow(ResourceType.TOPIC, k.dead_letter_topic, literal, AclOperation.WRITE),
        allow(ResourceType.GROUP, k.consumer_group, literal, AclOperation.READ),
        allow(ResourceType.GROUP, k.consumer_group, literal, AclOperation.DESCRIBE),
    ]


@pytest.fixture
def secured(isolated: Settings, stack: LocalStack) -> Iterator[Settings]:
    """The isolated settings, but every connection of ddbridge secured: Kafka through SASL_SSL as the
    SCRAM user ``ddbridge`` (with the README's ACLs and nothing more), PostgreSQL as the TLS-only role
    with verify-full, Debezium's database connection the same way."""
    tls = stack.root / "tls"
    with psycopg.connect(stack.pg_conninfo(), autocommit=True) as conn:  # the TLS role acts as the owner
        conn.execute(sql.SQL("GRANT ddbridge TO {}").format(sql.Identifier(PG_TLS_ROLE)))
    db = isolated.connect.database_name
    data = isolated.model_dump(mode="python")
    data["source"].update(
        dsn=f"postgresql://{PG_TLS_ROLE}:{PG_TLS_PASSWORD}@127.0.0.1:{stack.ports.postgres}/{db}",
        sslmode="verify-full",
        sslrootcert=tls / "ca.crt",
    )
    data["connect"].update(
        url=f"https://127.0.0.1:{stack.ports.connect_https}",
        username="ddbridge",
        password=CONNECT_USERS["ddbridge"],
        ssl_ca_location=tls / "ca.crt",
        database_user=PG_TLS_ROLE,
        database_password=PG_TLS_PASSWORD,
        database_sslmode="verify-full",
        database_sslrootcert=str(tls / "ca.crt"),
    )
    data["kafka"].update(
        bootstrap_servers=f"127.0.0.1:{stack.ports.kafka_sasl_ssl}",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="ddbridge",
        sasl_password=SCRAM_USERS["ddbridge"],
        ssl_ca_location=tls / "ca.crt",
    )
    settings = Settings(**data)
    root = AdminClient({"bootstrap.servers": stack.kafka_bootstrap})  # PLAINTEXT: the super user
    for future in root.create_acls(_acls(settings, "ddbridge")).values():
        future.result()
    yield settings
    # What the TLS role created (the publication) goes back to the owner the isolated teardown drops as.
    with psycopg.connect(stack.pg_conninfo(dbname=db), autocommit=True) as conn:
        conn.execute(sql.SQL("REASSIGN OWNED BY {} TO ddbridge").format(sql.Identifier(PG_TLS_ROLE)))
    everything = AclBindingFilter(
        ResourceType.ANY,
        None,  # type: ignore[arg-type]  # librdkafka: None matches any name and host
        ResourcePatternType.ANY,
        "User:ddbridge",
        None,  # type: ignore[arg-type]
        AclOperation.ANY,
        AclPermissionType.ANY,
    )
    for future in root.delete_acls([everything]).values():
        future.result()


def _variant(settings: Settings, section: str, **changes: Any) -> Settings:
    part = getattr(settings, section).model_copy(update=changes)
    return settings.model_copy(update={section: part})


def test_a_migration_runs_exactly_through_sasl_ssl_acls_and_postgres_verify_full(
    secured: Settings, isolated: Settings, stack: LocalStack, tmp_path: Path
) -> None:
    settings = _variant(secured, "stream", metrics_port=0)
    load_payments(isolated.source.dsn.get_secret_value(), rows=ROWS)  # the application's own connection
    initialize(settings)
    wait_until_streaming(settings)
    bridge = BridgeProcess(settings, tmp_path).start()
    cli = Cli(settings, tmp_path)
    try:
        stop = threading.Event()
        writer = live_traffic(isolated, stop, rate=200.0, seed=5)  # the application, over its own connection
        writer.start()
        try:
            done = cli.run("backfill", "--migration-id", "secured")
        finally:
            stop.set()
            writer.join(30)
        assert done.returncode == 0, done.stdout + done.stderr
        assert assert_converged(settings) > ROWS // 2
        report = cli.run("reconcile", "--report", "secured.json")
        assert report.returncode == 0, report.stdout + report.stderr
        assert "MIGRATION SUCCESSFUL" in report.stdout
        validate = cli.run("--json", "validate")
        checks = {c["name"]: c for c in json.loads(validate.stdout)}
        assert checks["kafka ACLs"]["status"] == "pass", checks["kafka ACLs"]
        # Every connection ddbridge and Debezium made to PostgreSQL is encrypted.
        with psycopg.connect(stack.pg_conninfo(), autocommit=True) as conn:
            rows = conn.execute(
                "SELECT a.backend_type, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) "
                "WHERE a.usename = %s",
                (PG_TLS_ROLE,),
            ).fetchall()
        assert ("walsender", True) in rows and all(ssl for _, ssl in rows), rows
        everything = (
            bridge.output()
            + done.stdout
            + done.stderr
            + report.stdout
            + validate.stdout
            + (tmp_path / "secured.json").read_text()
        )
        assert not [s for s in SECRETS if s in everything], "a secret was printed"
    finally:
        assert bridge.stop() == 0, bridge.output()[-3000:]


def _stream_error(settings: Settings, tmp_path: Path) -> str:
    """Run ``ddbridge stream``; it must stop by itself with exit 1 and no traceback. Its output."""
    bridge = BridgeProcess(_variant(settings, "stream", metrics_port=0), tmp_path).start()
    assert bridge.proc is not None
    try:
        code = bridge.proc.wait(90)
    finally:
        if bridge.alive():
            bridge.kill9()
    output = bridge.output()
    assert code == 1, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    return output


def test_kafka_refusals_are_one_line_errors_naming_the_setting(
    secured: Settings, isolated: Settings, stack: LocalStack, tmp_path: Path
) -> None:
    load_payments(isolated.source.dsn.get_secret_value(), rows=100)
    initialize(secured)
    wrong_password = _variant(secured, "kafka", sasl_password="not-the-password")
    assert "refused the SASL SCRAM-SHA-512 login of ddbridge" in _stream_error(wrong_password, tmp_path)
    assert "kafka.sasl_password" in _stream_error(wrong_password, tmp_path)
    intruder = _variant(secured, "kafka", sasl_username="intruder", sasl_password=SCRAM_USERS["intruder"])
    denied = _stream_error(intruder, tmp_path)
    assert "Kafka denied User:intruder an operation" in denied and "Kafka ACLs" in denied

    rogue_key, rogue_ca = new_ca("not the stack's CA")
    write_pair(rogue_key, rogue_ca, tmp_path / "rogue-ca.crt", tmp_path / "rogue-ca.key")
    untrusted_brokers = _variant(secured, "kafka", ssl_ca_location=tmp_path / "rogue-ca.crt")
    output = _stream_error(untrusted_brokers, tmp_path)
    assert "certificate verify failed" in output and "kafka.ssl_ca_location" in output

    tls = stack.root / "tls"
    mtls = _variant(
        secured,
        "kafka",
        bootstrap_servers=f"127.0.0.1:{stack.ports.kafka_ssl}",
        security_protocol="SSL",
        sasl_mechanism=None,
        sasl_username=None,
        sasl_password=None,
        ssl_certificate_location=tls / "client-ddbridge.crt",
        ssl_key_location=tls / "client-ddbridge.key",
    )
    check = Cli(mtls, tmp_path).run("--json", "validate")
    checks = {c["name"]: c for c in json.loads(check.stdout)}
    assert checks["kafka"]["status"] == "pass" and checks["kafka ACLs"]["status"] == "pass", checks
    key, cert = issue(rogue_key, rogue_ca, "ddbridge", server=False)  # the right name, the wrong signer
    write_pair(key, cert, tmp_path / "rogue.crt", tmp_path / "rogue.key")
    forged = _variant(
        mtls, "kafka", ssl_certificate_location=tmp_path / "rogue.crt", ssl_key_location=tmp_path / "rogue.key"
    )
    output = _stream_error(forged, tmp_path)
    assert "TLS with Kafka" in output and "bad certificate" in output, output[-2000:]


def test_postgres_refusals_name_the_setting(secured: Settings, tmp_path: Path) -> None:
    refused = Cli(_variant(secured, "source", sslmode="disable"), tmp_path).run("init", "--skip-connector")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr
    assert "no encryption" in refused.stdout + refused.stderr and "source.sslmode" in refused.stdout + refused.stderr
    rogue_key, rogue_ca = new_ca("not the stack's CA")
    write_pair(rogue_key, rogue_ca, tmp_path / "rogue-ca.crt", tmp_path / "rogue-ca.key")
    untrusted = Cli(_variant(secured, "source", sslrootcert=tmp_path / "rogue-ca.crt"), tmp_path).run(
        "init", "--skip-connector"
    )
    assert untrusted.returncode == 1 and "certificate verify failed" in untrusted.stdout + untrusted.stderr
    assert "source.sslrootcert" in untrusted.stdout + untrusted.stderr


def test_connect_refusals_name_the_setting(secured: Settings, tmp_path: Path) -> None:
    allowed = Cli(secured, tmp_path).run("connector", "status")  # over HTTPS, authenticated: not registered
    assert "is not registered" in allowed.stdout, allowed.stdout + allowed.stderr

    def refused(settings: Settings) -> str:
        done = Cli(settings, tmp_path).run("connector", "status")
        output = done.stdout + done.stderr
        assert done.returncode == 1 and "Traceback" not in output, output
        assert CONNECT_USERS["ddbridge"] not in output
        return output

    wrong = refused(_variant(secured, "connect", password="not-the-password"))
    assert "refused GET" in wrong and "401 unauthenticated" in wrong and "connect.password" in wrong
    anonymous = refused(_variant(secured, "connect", username=None, password=None))
    assert "401 unauthenticated" in anonymous and "connect.username" in anonymous
    rogue_key, rogue_ca = new_ca("not the stack's CA")
    write_pair(rogue_key, rogue_ca, tmp_path / "rogue-ca.crt", tmp_path / "rogue-ca.key")
    untrusted = refused(_variant(secured, "connect", ssl_ca_location=tmp_path / "rogue-ca.crt"))
    assert "certificate verify failed" in untrusted and "connect.ssl_ca_location" in untrusted
    check = Cli(_variant(secured, "connect", password="not-the-password"), tmp_path).run("--json", "validate")
    checks = {c["name"]: c for c in json.loads(check.stdout)}
    assert checks["connector"]["status"] == "fail" and "401" in checks["connector"]["figure"], checks["connector"]
