"""Pidfile process tracking: only our own PIDs are ever signalled."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from ops import procs


def _assert_reaped(pid: int) -> None:
    """A stopped child leaves no zombie (a parent such as mutmut's runner that waits for any child
    would otherwise collect it)."""
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def test_spawn_track_and_stop(tmp_path: Path) -> None:
    marker = str(tmp_path)
    pidfile, log = tmp_path / "p.pid", tmp_path / "p.log"
    pid = procs.spawn(
        [sys.executable, "-c", f"import time; print({marker!r}, flush=True); time.sleep(60)", marker], pidfile, log
    )
    assert procs.tracked_pid(pidfile, marker) == pid
    assert procs.tracked_pid(pidfile, "some-other-marker") is None, "a foreign command line is not ours"
    pidfile.write_text(f"{pid}\n")
    assert procs.stop(pidfile, marker) == "stopped"
    assert not procs.is_ours(pid, marker)
    _assert_reaped(pid)
    assert not pidfile.exists()
    assert procs.stop(pidfile, marker) == "not running"


def test_stubborn_process_is_killed(tmp_path: Path) -> None:
    marker = str(tmp_path)
    pidfile = tmp_path / "p.pid"
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    pid = procs.spawn([sys.executable, "-c", code, marker], pidfile, tmp_path / "log")
    deadline = 50
    while "up" not in procs.tail(tmp_path / "log") and deadline:
        import time

        time.sleep(0.1)
        deadline -= 1
    assert procs.stop(pidfile, marker, graceful=signal.SIGTERM, timeout_s=0.5) == "killed"
    assert not procs.is_ours(pid, marker)
    _assert_reaped(pid)


def test_stale_pidfile_is_cleaned(tmp_path: Path) -> None:
    pidfile = tmp_path / "p.pid"
    pidfile.write_text("999999999\n")
    assert procs.tracked_pid(pidfile, "x") is None
    assert not pidfile.exists()
