"""`make demo`'s flow at a small row count: the whole migration ends in a clean reconciliation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bridge.config import Settings, write_config
from ops import procs
from tests.conftest import ROOT


@pytest.mark.parametrize("converter", ["json", "avro"])  # `make demo` and `make demo CONVERTER=avro`
def test_the_demo_migrates_under_live_traffic_and_reconciles_clean(
    isolated: Settings, tmp_path: Path, converter: str
) -> None:
    settings = isolated.model_copy(update={"stream": isolated.stream.model_copy(update={"metrics_port": 0})})
    config = write_config(settings, tmp_path / "demo.json")
    argv = [sys.executable, "-m", "examples.payments.demo", "--config", str(config), "--rows", "3000"]
    argv += ["--traffic-rate", "30", "--workdir", str(tmp_path / "work"), "--no-stack", "--converter", converter]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=600, check=False)
        out = done.stdout + done.stderr
        assert done.returncode == 0, out[-6000:]
        for step in range(1, 10):
            assert f"[{step}/9]" in out, out
        assert "ready for `ddbridge init`" in out and "all checks passed" in out
        assert "Status: Completed" in out and "live traffic during the copy:" in out
        assert "🎉 MIGRATION SUCCESSFUL" in out
        assert ("as Avro (Confluent wire format)" in out) == (converter == "avro"), out
        assert "MIGRATION SUCCESSFUL" in (tmp_path / "work" / "reports" / "reconcile.md").read_text()
        pid = procs.read_pid(tmp_path / "work" / "pids" / "bridge.pid")
        assert procs.is_ours(pid, "bridge --config"), "the bridge is left running for the user"
    finally:
        procs.stop(tmp_path / "work" / "pids" / "bridge.pid", "bridge --config")
