"""The reconcile's source reader runs in a child process; its failures reach the parent as clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from bridge.config import load_settings
from bridge.errors import TerminalError
from reconcile.compare import SourceReader
from tests.conftest import PAYMENTS_CONFIG


def test_a_failing_source_reader_raises_in_the_parent_with_the_table_and_cause(tmp_path: Path) -> None:
    settings = load_settings(PAYMENTS_CONFIG)
    unreachable = settings.source.model_copy(
        update={"dsn": SecretStr("postgresql://ddbridge:ddbridge@127.0.0.1:9/none?connect_timeout=2")}
    )
    settings = settings.model_copy(update={"source": unreachable})
    reader = SourceReader(settings, settings.mapping(), tmp_path / "reader0", 2, 10)
    reader.start(None)
    with pytest.raises(TerminalError) as failed:
        reader.finish(lambda: None)
    reader.stop()
    assert "reading public.payments for the comparison failed" in str(failed.value)
    assert "cannot connect to the source PostgreSQL" in str(failed.value)
    assert not reader.process.is_alive()
