"""Background processes tracked by pidfile: spawn, identify, stop gracefully then forcibly.

A pidfile alone is not proof: PIDs are reused. A PID counts as ours only while its command line
still contains the component's marker (a path under the stack directory, or its port).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path


def read_pid(pidfile: Path) -> int | None:
    """The PID stored in a pidfile, or None."""
    try:
        return int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def cmdline(pid: int) -> str:
    """The command line of a live process ('' when it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def is_ours(pid: int | None, marker: str) -> bool:
    """True when ``pid`` is alive, not a zombie, and its command line contains ``marker``."""
    if pid is None or pid <= 0:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return False
    for _ in range(10):  # an empty command line: unreadable for a moment while the process execs (the
        line = cmdline(pid)  # java launcher re-executes itself); a kernel thread's stays empty
        if line:
            return marker in line
        time.sleep(0.02)
    return False


def tracked_pid(pidfile: Path, marker: str) -> int | None:
    """The PID of a live process we started, or None (a stale pidfile is removed)."""
    pid = read_pid(pidfile)
    if is_ours(pid, marker):
        return pid
    pidfile.unlink(missing_ok=True)
    return None


def spawn(
    argv: Sequence[str],
    pidfile: Path,
    log: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    user: int | None = None,
    group: int | None = None,
) -> int:
    """Start ``argv`` detached (own session), output appended to ``log``; record its PID."""
    log.parent.mkdir(parents=True, exist_ok=True)
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            cwd=cwd,
            user=user,
            group=group,
            extra_groups=[] if user is not None else None,
        )
    pidfile.write_text(f"{proc.pid}\n")
    return proc.pid


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def wait_gone(pid: int, marker: str, timeout_s: float) -> bool:
    """Wait until the process has exited; True if it did within the timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _reap(pid)
        if not is_ours(pid, marker):
            _reap(pid)  # it may have exited after the first reap: no zombie child is left behind
            return True
        time.sleep(0.1)
    _reap(pid)
    return not is_ours(pid, marker)


def stop(pidfile: Path, marker: str, *, graceful: signal.Signals = signal.SIGTERM, timeout_s: float = 30.0) -> str:
    """Stop the process of a pidfile: ``graceful`` signal, then SIGKILL after the timeout.

    Returns what happened: 'not running', 'stopped' or 'killed'.
    """
    pid = tracked_pid(pidfile, marker)
    if pid is None:
        return "not running"
    try:
        os.kill(pid, graceful)
    except ProcessLookupError:
        pidfile.unlink(missing_ok=True)
        return "not running"
    if wait_gone(pid, marker, timeout_s):
        pidfile.unlink(missing_ok=True)
        return "stopped"
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    wait_gone(pid, marker, 10.0)
    pidfile.unlink(missing_ok=True)
    return "killed"


def port_open(port: int, host: str = "127.0.0.1", timeout_s: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        return sock.connect_ex((host, port)) == 0


def tail(path: Path, lines: int = 25) -> str:
    """The last lines of a log file ('' when missing)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])
