"""The reconcile's source reader runs in a child process; its failures reach the parent as clear errors."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import SecretStr

from bridge.config import load_settings
from bridge.errors import TerminalError
from reconcile.compare import SourceReader, release_snapshot
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


class _Exporter:
    def __init__(self) -> None:
        self.statements: list[str] = []

    def execute(self, statement: str) -> None:
        self.statements.append(statement)


def _reader(alive: bool = True) -> Any:
    return SimpleNamespace(imported=threading.Event(), process=SimpleNamespace(is_alive=lambda: alive))


def _release(exporter: _Exporter, readers: list[Any], done: threading.Event) -> threading.Thread:
    thread = threading.Thread(target=release_snapshot, args=(exporter, readers, done), daemon=True)
    thread.start()
    return thread


def test_the_exported_snapshot_is_released_once_every_reader_imported_it() -> None:
    exporter, readers, done = _Exporter(), [_reader(), _reader()], threading.Event()
    thread = _release(exporter, readers, done)
    readers[1].imported.set()
    thread.join(0.5)
    assert thread.is_alive() and exporter.statements == []  # reader 0 has not imported it yet
    readers[0].imported.set()
    thread.join(5)
    assert not thread.is_alive() and exporter.statements == ["ROLLBACK"]


@pytest.mark.parametrize("cause", ["a reader died first", "the pass ended first"])
def test_the_release_gives_up_and_leaves_the_transaction_to_the_caller(cause: str) -> None:
    exporter, done = _Exporter(), threading.Event()
    readers = [_reader(alive=cause != "a reader died first")]
    thread = _release(exporter, readers, done)
    if cause == "the pass ended first":
        done.set()
    thread.join(5)
    assert not thread.is_alive() and exporter.statements == []
