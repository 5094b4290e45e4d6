"""docker-compose.yml and the monitoring files cannot run here (no Docker engine, no Prometheus): check
that they parse and agree with the defaults and the metrics ddbridge exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from bridge.config import MigrationSettings, StackPorts, StreamSettings, load_settings
from bridge.metrics import REGISTRY
from ops.install import APICURIO_REGISTRY
from tests.conftest import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _host_port(service: str) -> int:
    (mapping,) = COMPOSE["services"][service]["ports"]
    host, port, _ = mapping.split(":")
    assert host == "127.0.0.1", f"{service} must publish on loopback only"
    return int(port)


def test_host_ports_match_the_local_stack() -> None:
    ports = StackPorts()
    for service in ("postgres", "kafka", "connect", "registry", "dynalite", "moto"):
        assert _host_port(service) == getattr(ports, service), service


def test_images_are_pinned_and_match_ops_versions() -> None:
    pom = (ROOT / "ops" / "jvm" / "pom.xml").read_text()
    kafka = re.search(r"<kafka.version>([^<]+)<", pom)
    debezium = re.search(r"<debezium.version>([^<]+)<", pom)
    assert kafka and debezium
    images = {name: svc["image"] for name, svc in COMPOSE["services"].items() if "build" not in svc}
    assert all(":" in image and not image.endswith(":latest") for image in images.values()), images
    assert images["kafka"] == f"apache/kafka:{kafka.group(1)}"
    assert images["connect"] == f"quay.io/debezium/connect:{debezium.group(1)}"
    assert images["registry"] == f"apicurio/apicurio-registry:{APICURIO_REGISTRY[2]}"
    dynalite_pin = json.loads((ROOT / "ops" / "dynalite" / "package.json").read_text())["dependencies"]["dynalite"]
    assert f"dynalite@{dynalite_pin}" in COMPOSE["services"]["dynalite"]["command"]


def test_postgres_is_configured_for_logical_decoding() -> None:
    command = " ".join(COMPOSE["services"]["postgres"]["command"])
    assert "wal_level=logical" in command
    env = COMPOSE["services"]["postgres"]["environment"]
    assert Path(env["POSTGRES_DB"]).name == "ddbridge"


def test_the_bridge_services_use_valid_settings_and_the_metrics_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    services = COMPOSE["services"]
    assert _host_port("bridge") == StreamSettings().metrics_port
    assert _host_port("backfill") == MigrationSettings().metrics_port
    env = services["bridge"]["environment"]
    assert env == services["backfill"]["environment"]
    for key, value in env.items():
        monkeypatch.setenv(key, str(value))
    monkeypatch.setenv("DDBRIDGE_CONFIG", str(ROOT / "examples" / "payments" / "ddbridge.toml"))
    settings = load_settings()  # unknown or mistyped keys would raise ConfigError
    assert settings.kafka.bootstrap_servers == "kafka:19092" and settings.connect.database_host == "postgres"
    assert "pip install" in (ROOT / "Dockerfile").read_text()


def _family(sample_name: str) -> str:
    return re.sub(r"_(total|bucket|count|sum|created)$", "", sample_name)


def test_the_dashboard_and_scrape_configs_use_real_metrics_and_ports() -> None:
    exported = {m.name for m in REGISTRY.collect()}
    dashboard = json.loads((ROOT / "ops" / "monitoring" / "grafana" / "dashboards" / "ddbridge.json").read_text())
    used: set[str] = set()
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            used |= {_family(n) for n in re.findall(r"\b(ddbridge_[a-z_]+)", target["expr"])}
    unknown = used - exported
    assert not unknown, f"the dashboard queries metrics ddbridge does not export: {unknown}"
    wanted = {
        "ddbridge_writes_applied",
        "ddbridge_consumer_lag",
        "ddbridge_writes_stale",
        "ddbridge_dead_lettered",
        "ddbridge_retries",
        "ddbridge_backfill_processed_rows",
    }
    assert wanted <= used
    local = yaml.safe_load((ROOT / "ops" / "monitoring" / "prometheus.yml").read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in local["scrape_configs"]}
    assert targets["ddbridge-stream"] == [f"127.0.0.1:{StreamSettings().metrics_port}"]
    assert targets["ddbridge-backfill"] == [f"127.0.0.1:{MigrationSettings().metrics_port}"]
    compose = yaml.safe_load((ROOT / "ops" / "monitoring" / "prometheus-compose.yml").read_text())
    assert {job["static_configs"][0]["targets"][0] for job in compose["scrape_configs"]} == {
        f"bridge:{StreamSettings().metrics_port}",
        f"backfill:{MigrationSettings().metrics_port}",
    }
