"""Installers fail fast and clearly instead of hanging."""

from __future__ import annotations

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
