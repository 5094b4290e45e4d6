"""Running the bridge from the command line: logging, metrics endpoint, live status line."""

from __future__ import annotations

import logging
import sys
import time

from rich.console import Console
from rich.live import Live
from rich.logging import RichHandler
from rich.text import Text

from bridge import metrics
from bridge.config import Settings
from bridge.postgres import require_replica_identity
from bridge.stream import Bridge, Totals

log = logging.getLogger("ddbridge.stream")


def status_line(bridge: Bridge, started: float, lag: int) -> str:
    """One line: totals, rate, consumer lag."""
    t = bridge.totals
    elapsed = max(time.monotonic() - started, 1e-6)
    return (
        f"consumed {t.consumed:,} | applied {t.applied:,} | stale {t.stale:,} | dead-lettered {t.dead:,} | "
        f"{t.consumed / elapsed:,.0f} rec/s | lag {lag if lag >= 0 else '?'}"
    )


def run_stream(settings: Settings, tables: list[str] | None, *, json_output: bool = False) -> Totals:
    """Run one bridge process until SIGTERM/SIGINT; returns its totals."""
    console = Console(stderr=True)
    interactive = console.is_terminal and not json_output
    logging.basicConfig(
        level=logging.INFO,
        format="%(message)s" if interactive else "%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=[RichHandler(console=console, show_path=False)]
        if interactive
        else [logging.StreamHandler(sys.stderr)],
        force=True,
    )
    if settings.stream.metrics_port:
        metrics.serve(settings.stream.metrics_port, settings.stream.metrics_host, "stream.metrics_port")
        log.info("metrics on http://%s:%d/metrics", settings.stream.metrics_host, settings.stream.metrics_port)
    require_replica_identity(settings, [settings.mapping(t) for t in tables] if tables else list(settings.tables))
    bridge = Bridge(settings, tables)
    bridge.install_signal_handlers()
    started = time.monotonic()
    if interactive:
        with Live(Text("starting…"), console=console, refresh_per_second=2, transient=False) as live:
            totals = bridge.run(on_status=lambda b: live.update(Text(status_line(b, started, b.update_lag()))))
    else:
        totals = bridge.run(on_status=lambda b: log.info(status_line(b, started, b.update_lag())))
    log.info("stopped cleanly after %s; offsets committed", status_line(bridge, started, -1))
    return totals
