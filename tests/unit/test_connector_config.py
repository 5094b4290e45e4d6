"""The Debezium connector config rendered from ddbridge settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pydantic import SecretStr

from bridge.config import ConnectSettings, Settings, SourceSettings, load_settings
from bridge.errors import ConfigError
from bridge.topics import topic_for
from connectors.debezium import ConnectClient, ConnectorStatus, connector_config, redact
from tests.conftest import PAYMENTS_CONFIG


def test_template_is_filled_from_settings() -> None:
    settings = load_settings(PAYMENTS_CONFIG)
    config = connector_config(settings)
    assert not any("${" in v for v in config.values()), config
    assert config["plugin.name"] == "pgoutput"
    assert config["decimal.handling.mode"] == "string"
    assert config["snapshot.mode"] == "no_data"
    assert config["table.include.list"] == "public\\.payments"
    assert config["slot.name"] == "ddbridge_slot"
    assert config["publication.autocreate.mode"] == "disabled"  # init owns the publication (+ heartbeat table)
    assert config["value.converter.schemas.enable"] == "true"
    assert config["time.precision.mode"] == "adaptive"
    assert "ddbridge_heartbeat" in config["heartbeat.action.query"]
    assert config["poll.interval.ms"] == "50"  # Debezium's 500 ms default is pure latency
    assert topic_for(settings, "public.payments") == "ddbridge.public.payments"


def test_extra_keys_override_and_password_is_redacted() -> None:
    settings = load_settings(PAYMENTS_CONFIG, overrides={"connect": {"extra": {"snapshot.mode": "initial"}}})
    config = connector_config(settings)
    assert config["snapshot.mode"] == "initial"
    assert redact(config)["database.password"] == "********"


def test_status_running_needs_every_task() -> None:
    ok = ConnectorStatus("c", "RUNNING", "w", [{"id": 0, "state": "RUNNING"}])
    failed = ConnectorStatus("c", "RUNNING", "w", [{"id": 0, "state": "FAILED", "trace": "boom"}])
    assert ok.running and not failed.running
    assert failed.failures() == ["task 0: boom"]
    assert not ConnectorStatus("c", "RUNNING", "w", []).running


def test_truncates_and_column_types_are_sent() -> None:
    config = connector_config(load_settings(PAYMENTS_CONFIG))
    # Debezium skips truncates by default; the bridge must see them to stop instead of diverging.
    assert config["skipped.operations"] == "none"
    assert config["column.propagate.source.type"] == ".*"


def _tls_settings(tmp_path: Path) -> Settings:
    (tmp_path / "key-password").write_text("k3y-pw\n")
    return load_settings(
        PAYMENTS_CONFIG,
        overrides={
            "connect": {
                "database_password": "db-pw",
                "database_sslmode": "verify-full",
                "database_sslrootcert": "/opt/connect/certs/rds-ca.pem",
                "database_sslcert": "/opt/connect/certs/debezium.crt",
                "database_sslkey": "/opt/connect/certs/debezium.key",
                "database_sslpassword_file": str(tmp_path / "key-password"),
                "extra": {
                    "database.ssl.truststore.password": "ts-pw",
                    "notifications.enabled": "false",
                    "producer.override.sasl.jaas.config": 'ScramLoginModule required password="jaas-pw";',
                },
            }
        },
    )


def test_debeziums_database_tls_settings_are_rendered(tmp_path: Path) -> None:
    config = connector_config(_tls_settings(tmp_path))
    assert {k: v for k, v in config.items() if k.startswith("database.ssl")} == {
        "database.sslmode": "verify-full",
        "database.sslrootcert": "/opt/connect/certs/rds-ca.pem",
        "database.sslcert": "/opt/connect/certs/debezium.crt",
        "database.sslkey": "/opt/connect/certs/debezium.key",
        "database.sslpassword": "k3y-pw",
        "database.ssl.truststore.password": "ts-pw",
    }
    assert "database.sslmode" not in connector_config(load_settings(PAYMENTS_CONFIG))  # Debezium's default


def test_connector_register_show_prints_no_secret(tmp_path: Path) -> None:
    shown = redact(connector_config(_tls_settings(tmp_path)))
    assert shown["database.sslpassword"] == "********" and shown["database.sslkey"] == "/opt/connect/certs/debezium.key"
    assert shown["notifications.enabled"] == "false"
    printed = json.dumps(shown)
    for secret in ("k3y-pw", "ts-pw", "jaas-pw", "db-pw"):
        assert secret not in printed


def test_the_connect_client_authenticates_and_trusts_the_configured_ca(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("rest-pw")
    connect = ConnectSettings(
        url="https://connect.internal:8443",
        username="ddbridge",
        password_file=str(tmp_path / "pw"),  # type: ignore[call-arg]
        ssl_ca_location=Path("/etc/ddbridge/connect-ca.pem"),
        ssl_certificate_location=Path("/etc/ddbridge/client.pem"),
        ssl_key_location=Path("/etc/ddbridge/client.key"),
    )
    client = ConnectClient(connect)
    assert client.session.auth == ("ddbridge", "rest-pw")
    assert client.session.verify == "/etc/ddbridge/connect-ca.pem"
    assert client.session.cert == ("/etc/ddbridge/client.pem", "/etc/ddbridge/client.key")
    plain = ConnectClient(ConnectSettings())
    assert plain.session.auth is None and plain.session.verify is True and plain.session.cert is None


@pytest.mark.parametrize(
    ("connect", "message"),
    [
        ({"username": None}, "username and password"),  # the example names both: one alone is refused
        ({"url": "https://c:8443", "ssl_certificate_location": "c.pem"}, "set together"),
        ({"ssl_ca_location": "ca.pem"}, "is not https://"),
    ],
)
def test_inconsistent_connect_security_is_a_config_error(connect: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(PAYMENTS_CONFIG, overrides={"connect": connect})


@pytest.mark.parametrize(
    ("registry", "message"),
    [
        ({"url": "https://r/apis/ccompat/v7", "username": "u"}, "username and password"),
        ({"url": "https://r/apis/ccompat/v7", "ssl_key_location": "k.pem"}, "set together"),
        ({"url": "http://r/apis/ccompat/v7", "ssl_ca_location": "ca.pem"}, "is not https://"),
    ],
)
def test_inconsistent_registry_security_is_a_config_error(registry: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(PAYMENTS_CONFIG, overrides={"registry": registry})


def test_the_sources_tls_settings_reach_libpq(tmp_path: Path) -> None:
    source = SourceSettings(
        dsn=SecretStr("postgresql://ddbridge@db.internal:5432/app?application_name=x"),
        sslmode="verify-full",
        sslrootcert=Path("/etc/ddbridge/rds-global-bundle.pem"),
    )
    conninfo = make_conninfo(source.dsn.get_secret_value(), **source.libpq_options())
    assert conninfo_to_dict(conninfo) == {
        "host": "db.internal",
        "port": "5432",
        "dbname": "app",
        "user": "ddbridge",
        "application_name": "x",
        "sslmode": "verify-full",
        "sslrootcert": "/etc/ddbridge/rds-global-bundle.pem",
    }
    assert SourceSettings().libpq_options() == {}


def test_the_configured_ca_wins_over_requests_ca_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    """requests lets REQUESTS_CA_BUNDLE override a session's CA: connect.ssl_ca_location must still be used."""
    import requests
    from requests.adapters import BaseAdapter

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    seen: list[Any] = []

    class Recording(BaseAdapter):
        def send(  # type: ignore[override]  # only what requests passes
            self, request: requests.PreparedRequest, **kwargs: Any
        ) -> requests.Response:
            seen.append(kwargs["verify"])
            response = requests.Response()
            response.status_code, response._content, response.request = 404, b"{}", request
            return response

        def close(self) -> None:
            return

    client = ConnectClient(ConnectSettings(url="https://connect:8443", ssl_ca_location=Path("/etc/ddbridge/ca.pem")))
    client.session.mount("https://", Recording())
    assert client.status("c") is None
    assert seen == ["/etc/ddbridge/ca.pem"]


def test_a_schema_the_registry_refused_is_recognised_in_the_task_trace() -> None:
    trace = (  # the head of a real trace (Apicurio converter 2.6 against registry 3.0)
        "org.apache.kafka.connect.errors.ConnectException: Tolerance exceeded in error handler\n"
        "Caused by: io.apicurio.registry.rest.client.exception.RuleViolationException: \n"
        "Incompatible artifact: t179ae7d6cd.public.payments-value [AVRO], num of \nincompatible diffs: {2}"
    )
    failed = ConnectorStatus("c", "RUNNING", "w", [{"id": 0, "state": "FAILED", "trace": trace}])
    advice = failed.advice()
    assert advice is not None
    assert advice.startswith("the schema registry refused a new schema of t179ae7d6cd.public.payments-value")
    assert "relax that subject's compatibility" in advice and "`ddbridge connector restart`" in advice
    other = ConnectorStatus("c", "RUNNING", "w", [{"id": 0, "state": "FAILED", "trace": "PSQLException: FATAL"}])
    assert other.advice() is None
    assert ConnectorStatus("c", "RUNNING", "w", [{"id": 0, "state": "RUNNING"}]).advice() is None
