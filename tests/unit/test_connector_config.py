"""The Debezium connector config rendered from ddbridge settings."""

from __future__ import annotations

from bridge.config import load_settings
from bridge.topics import topic_for
from connectors.debezium import ConnectorStatus, connector_config, redact
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
