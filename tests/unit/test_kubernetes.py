"""deploy/kubernetes/ cannot be applied here (no cluster): every manifest is validated against the
Kubernetes API schemas (kubernetes-validate, strict: unknown fields fail), and checked against
ddbridge itself: the configuration loads, every command line parses, the probes and scrape annotations
use the stream's metrics port, the stream keeps a stable static-membership id and no more members than
partitions, the backfill's segments are the Job's completion indexes, secrets are mounted read-only as
files, and the image is the one the Dockerfile builds (the project's version, docker-compose's tag)."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import typer.main
import yaml

import ddbridge.main  # noqa: F401  # registers every command group on ``app``
from bridge.config import Settings, load_settings
from ddbridge.app import app
from tests.conftest import ROOT

MANIFESTS = sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))
DOCS = [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
KUBERNETES = ("1.33.0", "1.37.0")  # the oldest with backoffLimitPerIndex GA, and the newest schemas


def _kind(kind: str) -> dict[str, Any]:
    (doc,) = [d for d in DOCS if d["kind"] == kind]
    found: dict[str, Any] = doc
    return found


def _pod(doc: dict[str, Any]) -> dict[str, Any]:
    spec = doc["spec"]
    if doc["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    pod: dict[str, Any] = spec["template"]["spec"]
    return pod


def _workloads() -> Iterator[dict[str, Any]]:
    yield from (d for d in DOCS if d["kind"] in ("StatefulSet", "Job", "CronJob"))


@pytest.mark.parametrize("version", KUBERNETES)
def test_every_manifest_is_valid_against_the_kubernetes_schemas(version: str) -> None:
    assert {d["kind"] for d in DOCS} >= {"ConfigMap", "ServiceAccount", "StatefulSet", "Job", "CronJob"}
    for doc in DOCS:
        kubernetes_validate.validate(doc, version, strict=True)  # raises ValidationError naming the field


def test_a_schema_violation_is_caught() -> None:  # the validation above can fail
    broken = yaml.safe_load(yaml.safe_dump(_kind("StatefulSet")))
    broken["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES[-1], strict=True)


def _settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The ConfigMap's ddbridge.toml, loaded with its mounted files made real under ``tmp_path``."""
    text = _kind("ConfigMap")["data"]["ddbridge.toml"]
    for path in set(re.findall(r'"(/etc/ddbridge/[^"]+)"', text)):
        local = tmp_path / path.lstrip("/")
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text("postgresql://u:p@db:5432/payments\n" if path.endswith("source-dsn") else "secret\n")
        text = text.replace(path, str(local))
    config = tmp_path / "ddbridge.toml"
    config.write_text(text)
    for key in [k for k in os.environ if k.startswith("DDBRIDGE_")]:
        monkeypatch.delenv(key)
    return load_settings(config)


def test_the_configuration_loads_and_targets_aws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(tmp_path, monkeypatch)
    assert settings.dynamodb.endpoint_url is None and settings.dynamodb.access_key_id is None
    assert settings.source.sslmode == "verify-full" and settings.connect.database_sslmode == "verify-full"
    assert settings.stream.metrics_host == "0.0.0.0"


def test_every_file_the_configuration_names_is_mounted_read_only() -> None:
    text = _kind("ConfigMap")["data"]["ddbridge.toml"]
    files = set(re.findall(r'"(/etc/ddbridge/[^"]+)"', text))
    assert files
    for workload in _workloads():
        pod = _pod(workload)
        (container,) = pod["containers"]
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        for path in files:
            owner = [m for p, m in mounts.items() if path.startswith(p + "/")]
            assert owner and owner[0]["readOnly"], (workload["metadata"]["name"], path)
        secrets = [m for m in container["volumeMounts"] if "secret" in volumes[m["name"]]]
        assert secrets and all(m["readOnly"] for m in secrets)
        assert all(v["secret"]["defaultMode"] == 0o400 for v in volumes.values() if "secret" in v)
        assert mounts["/etc/ddbridge/ddbridge.toml"]["readOnly"]
        assert {"name": "DDBRIDGE_CONFIG", "value": "/etc/ddbridge/ddbridge.toml"} in container["env"]


def _argv(container: dict[str, Any], values: dict[str, str]) -> list[str]:
    return [re.sub(r"\$\((\w+)\)", lambda m: values[m.group(1)], arg) for arg in container["args"]]


def _parses(argv: list[str]) -> None:
    """``ddbridge <argv>`` parses: the command and every option exist and take these values."""
    group = typer.main.get_command(app)
    ctx = group.make_context("ddbridge", list(argv), resilient_parsing=False)
    name, command, rest = group.resolve_command(ctx, ctx._protected_args + ctx.args)  # type: ignore[attr-defined]
    assert command is not None, argv
    command.make_context(name or "", rest, parent=ctx)  # raises click.UsageError on anything unknown


def test_the_command_lines_parse_and_use_the_right_identity_and_ports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(tmp_path, monkeypatch)
    accounts = {d["metadata"]["name"] for d in DOCS if d["kind"] == "ServiceAccount"}
    for workload in _workloads():
        pod = _pod(workload)
        (container,) = pod["containers"]
        assert container["image"] == f"ddbridge:{VERSION}"
        assert pod["serviceAccountName"] in accounts
        assert pod["securityContext"]["runAsNonRoot"] and container["securityContext"]["readOnlyRootFilesystem"]
        _parses(_argv(container, {"MIGRATION_ID": "m", "SEGMENT": "0", "JOB_NAME": "j"}))
    with pytest.raises(Exception, match="No such option"):  # the parse check can fail
        _parses(["backfill", "--segmnt", "0"])

    stream = _kind("StatefulSet")
    pod = _pod(stream)
    (container,) = pod["containers"]
    assert container["args"] == ["stream"]
    assert stream["spec"]["replicas"] <= settings.connect.topic_partitions
    instance = next(e for e in container["env"] if e["name"] == "DDBRIDGE_STREAM__INSTANCE_ID")
    assert instance["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"  # stable in a StatefulSet
    port = settings.stream.metrics_port
    assert container["ports"] == [{"name": "metrics", "containerPort": port}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert stream["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == str(port)
    # The liveness probe gives up well after the loop's own stall limit would have been noticed.
    probe = container["livenessProbe"]
    assert probe["periodSeconds"] * probe["failureThreshold"] < settings.stream.stall_limit_s
    assert pod["terminationGracePeriodSeconds"] >= 30


def test_the_backfill_job_runs_one_segment_per_completion_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(tmp_path, monkeypatch)
    job = _kind("Job")
    spec = job["spec"]
    (container,) = _pod(job)["containers"]
    args = container["args"]
    segments = int(args[args.index("--segments") + 1])
    assert spec["completionMode"] == "Indexed" and spec["completions"] == spec["parallelism"] == segments
    assert args[args.index("--segment") + 1] == "$(SEGMENT)"
    segment = next(e for e in container["env"] if e["name"] == "SEGMENT")
    assert (
        segment["valueFrom"]["fieldRef"]["fieldPath"]
        == "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    )
    assert _pod(job)["restartPolicy"] == "Never"
    assert spec["podFailurePolicy"]["rules"][0]["onExitCodes"]["values"] == [2]  # config errors are final
    annotations = spec["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(settings.migration.metrics_port)


def test_the_reconcile_reports_are_kept_on_a_volume() -> None:
    cron = _kind("CronJob")
    pod = _pod(cron)
    (container,) = pod["containers"]
    reports = [a for a in container["args"] if a.startswith("/reports/")]
    assert reports and {Path(r).suffix for r in reports} == {".html", ".json"}
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == "/reports")
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    claim = volume["persistentVolumeClaim"]["claimName"]
    assert claim in {d["metadata"]["name"] for d in DOCS if d["kind"] == "PersistentVolumeClaim"}
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"


def test_the_image_tag_is_the_one_the_dockerfile_and_compose_build() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert {compose["services"][s]["image"] for s in ("bridge", "backfill")} == {f"ddbridge:{VERSION}"}
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"docker build -t ddbridge:{VERSION} ." in dockerfile
    user = re.search(r"^USER (\d+)$", dockerfile, re.MULTILINE)
    assert user is not None
    for workload in _workloads():
        assert _pod(workload)["securityContext"]["runAsUser"] == int(user.group(1))
