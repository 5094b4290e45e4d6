"""Run a ddbridge command and write its peak RSS in kB to the file named by ``$DDBRIDGE_PEAK_RSS_FILE``.

The peak counts the whole process tree: ``reconcile`` reads the source in a child process. A thread
samples the resident memory of this process plus its children every 20 ms; the result is the larger
of that sampled sum and this process's own ``VmHWM``. ``ru_maxrss`` from ``wait4``/``getrusage`` is
no good here: Linux folds the memory of a forked parent, before ``exec``, into it.

    DDBRIDGE_PEAK_RSS_FILE=rss.txt python -m bench.peak_rss --config cfg.json reconcile
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
from pathlib import Path

_peak_tree_kb = 0


def _status_kb(pid: int | str, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def _children() -> list[str]:
    found: list[str] = []
    for task in Path("/proc/self/task").iterdir():
        try:
            found += (task / "children").read_text().split()
        except FileNotFoundError:
            continue
    return found


def _sample() -> None:
    global _peak_tree_kb
    while True:
        tree = _status_kb("self", "VmRSS") + sum(_status_kb(pid, "VmRSS") for pid in _children())
        _peak_tree_kb = max(_peak_tree_kb, tree)
        time.sleep(0.02)


def _report() -> None:
    target = os.environ.get("DDBRIDGE_PEAK_RSS_FILE")
    if target:
        Path(target).write_text(str(max(_peak_tree_kb, _status_kb("self", "VmHWM"))))


if __name__ == "__main__":
    from ddbridge.main import main

    atexit.register(_report)
    threading.Thread(target=_sample, daemon=True).start()
    sys.argv[0] = "ddbridge"
    main()
