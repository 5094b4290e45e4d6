"""``ddbridge stream``: one bridge process with its logging, metrics endpoint and live status line."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.text import Text

from bridge import metrics
from bridge.config import Settings, load_settings
from bridge.errors import ConfigError
from bridge.health import Health
from bridge.postgres import require_replica_identity
from connectors.debezium import ConnectClient
from ddbridge.app import app
from ddbridge.output import emit, fail, run, setup_logging, state
from stream.connector_watch import ConnectorWatch
from stream.loop import Bridge, Totals

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
    setup_logging(logging.INFO, rich_console=console if interactive else None)
    health = Health(settings.stream.stall_limit_s)
    s = settings.stream
    if s.metrics_port:
        metrics.serve(s.metrics_port, s.metrics_host, "stream.metrics_port", health)
        log.info("metrics on http://%s:%d/metrics, probes on /livez and /readyz", s.metrics_host, s.metrics_port)
    require_replica_identity(settings, [settings.mapping(t) for t in tables] if tables else list(settings.tables))
    bridge = Bridge.for_settings(settings, tables, health)
    bridge.install_signal_handlers()
    watching = threading.Event()
    ConnectorWatch(ConnectClient(settings.connect), settings.connect).start(watching)
    started = time.monotonic()
    try:
        if interactive:
            with Live(Text("starting…"), console=console, refresh_per_second=2, transient=False) as live:
                totals = bridge.run(on_status=lambda b: live.update(Text(status_line(b, started, b.update_lag()))))
        else:
            totals = bridge.run(on_status=lambda b: log.info(status_line(b, started, b.update_lag())))
    finally:
        watching.set()
    log.info("stopped cleanly after %s; offsets committed", status_line(bridge, started, -1))
    return totals


@app.command("stream")
def stream(
    table: Annotated[
        list[str] | None, typer.Option("--table", "-t", help="Mapped table(s) to stream; default all.")
    ] = None,
    group: Annotated[str | None, typer.Option(help="Kafka consumer group (kafka.consumer_group).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Records per batch (migration.batch_size).")] = None,
    concurrency: Annotated[
        int | None, typer.Option(help="Concurrent conditional PutItems (migration.write_concurrency).")
    ] = None,
    max_errors: Annotated[
        int | None, typer.Option(help="Stop after this many dead letters (migration.max_errors).")
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Prometheus /metrics port, 0 = off (stream.metrics_port).")
    ] = None,
    start_from: Annotated[
        str | None, typer.Option(help="earliest|latest: where a new consumer group starts (stream.start_from).")
    ] = None,
    instance_id: Annotated[
        str | None,
        typer.Option(help="Static group membership id: a restart with the same id resumes its partitions at once."),
    ] = None,
) -> None:
    """Apply Debezium change events to DynamoDB until stopped (SIGTERM/SIGINT drain and commit).

    Run it beside the live application; start several with the same --group to share partitions.
    Offsets are committed only after every write of a batch is acknowledged, so a crash or kill
    replays at most one batch, which the LSN guard makes harmless.
    """
    overrides: dict[str, Any] = {}
    for section, key, value in (
        ("kafka", "consumer_group", group),
        ("migration", "batch_size", batch_size),
        ("migration", "write_concurrency", concurrency),
        ("migration", "max_errors", max_errors),
        ("stream", "metrics_port", metrics_port),
        ("stream", "start_from", start_from),
        ("stream", "instance_id", instance_id),
    ):
        if value is not None:
            overrides.setdefault(section, {})[key] = value
    settings = run(lambda: load_settings(state.config_path, overrides))
    if not settings.tables:
        fail(ConfigError("no [[tables]] mapping is configured: nothing to stream"))
    totals = run(lambda: run_stream(settings, table, json_output=state.json_output))
    emit(asdict(totals), lambda: None)
