"""Run a ddbridge command and write its peak RSS in kB to the file named by ``$DDBRIDGE_PEAK_RSS_FILE``.

It reads ``VmHWM`` (this process image only). ``ru_maxrss`` from ``wait4``/``getrusage`` is no good
here: Linux folds the memory of the forked parent, before ``exec``, into it.

    DDBRIDGE_PEAK_RSS_FILE=rss.txt python -m bench.peak_rss --config cfg.json reconcile
"""

from __future__ import annotations

import atexit
import os
import sys
from pathlib import Path


def _peak_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _report() -> None:
    target = os.environ.get("DDBRIDGE_PEAK_RSS_FILE")
    if target:
        Path(target).write_text(str(_peak_kb()))


if __name__ == "__main__":
    from bridge.cli import main

    atexit.register(_report)
    sys.argv[0] = "ddbridge"
    main()
