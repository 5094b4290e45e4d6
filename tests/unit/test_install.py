"""Installers fail fast and clearly instead of hanging."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.errors import StackError
from ops import install


def test_a_hanging_download_becomes_a_clear_error() -> None:
    with pytest.raises(StackError, match=r"did not finish within 1 s .*registry may be unreachable"):
        install._run(["sleep", "5"], "fetching jars", 1)


def test_a_failing_download_shows_its_output() -> None:
    with pytest.raises(StackError, match=r"fetching jars failed \(exit 3.*Could not resolve"):
        install._run(["sh", "-c", "echo 'Could not resolve io.debezium:x'; exit 3"], "fetching jars", 10)


def test_a_missing_tool_is_named() -> None:
    with pytest.raises(StackError, match="'no-such-tool' is not on PATH: install it"):
        install.require_tool("no-such-tool", "install it")


def test_dynalite_patch_is_idempotent_and_refuses_an_unknown_source(tmp_path: Path) -> None:
    from ops.install import DYNALITE_PATCHES, patch_dynalite

    (relative, original, replacement), *_ = DYNALITE_PATCHES
    source = tmp_path / relative
    source.parent.mkdir(parents=True)
    source.write_text(f"function createIndexKey () {{\n  {original}\n}}\n")
    patch_dynalite(tmp_path)
    patch_dynalite(tmp_path)
    assert source.read_text().count(replacement) == 1 and original not in source.read_text()
    source.write_text("something else entirely\n")
    with pytest.raises(StackError, match=r"not the pinned 4\.0\.0"):
        patch_dynalite(tmp_path)
