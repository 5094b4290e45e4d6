"""CLI contract: configuration errors exit 2 before any store is touched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def _ddbridge(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ddbridge", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=60,
        check=False,
    )


def test_bad_config_exits_2_naming_field_and_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    # Unreachable endpoints: if anything tried to connect, it would hang or fail differently.
    bad.write_text('[dynamodb]\nendpoint_url = "http://192.0.2.1:9"\n[migration]\nmax_errors = -1\n')
    for command in (["init"], ["connector", "register"], ["config", "show"]):
        proc = _ddbridge("--config", str(bad), *command)
        assert proc.returncode == 2, (command, proc.stdout, proc.stderr)
        assert "migration.max_errors" in proc.stderr and "bad.toml" in proc.stderr


def test_bad_env_value_exits_2() -> None:
    proc = _ddbridge("config", "show", env={"DDBRIDGE_MIGRATION__BATCH_SIZE": "lots"})
    assert proc.returncode == 2
    assert "migration.batch_size" in proc.stderr


def test_config_show_json_masks_secrets() -> None:
    proc = _ddbridge("--json", "--config", str(ROOT / "examples/payments/ddbridge.toml"), "config", "show")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["tables"][0]["target"] == "Payments"
    assert "ddbridge:ddbridge@" not in proc.stdout


def test_usage_error_exits_2() -> None:
    assert _ddbridge("stack", "sideways").returncode == 2
