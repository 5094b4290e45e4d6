"""docker-compose.yml cannot run here (no Docker engine): check it parses and matches ops/ defaults."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from bridge.config import StackPorts
from tests.conftest import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _host_port(service: str) -> int:
    (mapping,) = COMPOSE["services"][service]["ports"]
    host, port, _ = mapping.split(":")
    assert host == "127.0.0.1", f"{service} must publish on loopback only"
    return int(port)


def test_host_ports_match_the_local_stack() -> None:
    ports = StackPorts()
    for service in ("postgres", "kafka", "connect", "dynalite", "moto"):
        assert _host_port(service) == getattr(ports, service), service


def test_images_are_pinned_and_match_ops_versions() -> None:
    pom = (ROOT / "ops" / "jvm" / "pom.xml").read_text()
    kafka = re.search(r"<kafka.version>([^<]+)<", pom)
    debezium = re.search(r"<debezium.version>([^<]+)<", pom)
    assert kafka and debezium
    images = {name: svc.get("image", "") for name, svc in COMPOSE["services"].items()}
    assert all(":" in image and not image.endswith(":latest") for image in images.values()), images
    assert images["kafka"] == f"apache/kafka:{kafka.group(1)}"
    assert images["connect"] == f"quay.io/debezium/connect:{debezium.group(1)}"
    dynalite_pin = json.loads((ROOT / "ops" / "dynalite" / "package.json").read_text())["dependencies"]["dynalite"]
    assert f"dynalite@{dynalite_pin}" in COMPOSE["services"]["dynalite"]["command"]


def test_postgres_is_configured_for_logical_decoding() -> None:
    command = " ".join(COMPOSE["services"]["postgres"]["command"])
    assert "wal_level=logical" in command
    env = COMPOSE["services"]["postgres"]["environment"]
    assert Path(env["POSTGRES_DB"]).name == "ddbridge"
