"""The ``ddbridge`` command line. Exit codes: 0 ok, 1 a check failed, 2 usage or configuration error."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bridge.config import Settings, load_settings
from bridge.errors import ConfigError, DdbridgeError

app = typer.Typer(
    help="Move a live PostgreSQL table into DynamoDB with zero downtime, and prove the copy is exact.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
stack_app = typer.Typer(
    help="The embedded local stack (PostgreSQL, Kafka, Connect + Debezium, dynalite, moto).", no_args_is_help=True
)
connector_app = typer.Typer(help="The Debezium connector, through the Kafka Connect REST API.", no_args_is_help=True)
config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)
example_app = typer.Typer(help="The payments example data set.", no_args_is_help=True)
tombstones_app = typer.Typer(help="Delete markers left by deletes (the anti-resurrection guard).", no_args_is_help=True)
app.add_typer(stack_app, name="stack")
app.add_typer(connector_app, name="connector")
app.add_typer(config_app, name="config")
app.add_typer(example_app, name="example")
app.add_typer(tombstones_app, name="tombstones")
truncate_app = typer.Typer(help="Recover exactly from a TRUNCATE of a source table.", no_args_is_help=True)
app.add_typer(truncate_app, name="truncate")

console = Console()
err_console = Console(stderr=True)
T = TypeVar("T")


class State:
    """Global options shared by every command."""

    config_path: Path | None = None
    json_output: bool = False
    _settings: Settings | None = None

    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
        return self._settings


state = State()


@app.callback()
def _global(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="Config file (TOML, or the guide's JSON); default $DDBRIDGE_CONFIG or ./ddbridge.toml.",
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    state.config_path = config
    state.json_output = json_output
    state._settings = None


def _fail(exc: DdbridgeError) -> NoReturn:
    if state.json_output:
        print(json.dumps({"ok": False, "error": type(exc).__name__, "message": str(exc)}))
    err_console.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True, highlight=False, soft_wrap=True)
    raise typer.Exit(exc.exit_code)


def run(action: Callable[[], T]) -> T:
    """Run a command body, turning ddbridge errors into a message and their exit code."""
    try:
        return action()
    except DdbridgeError as exc:
        _fail(exc)


def emit(payload: Any, render: Callable[[], None]) -> None:
    """Print JSON with --json, else the human rendering."""
    if state.json_output:
        print(json.dumps(payload, indent=2, default=str))
    else:
        render()


def say(message: str) -> None:
    """A progress line for humans (stderr under --json so stdout stays parseable)."""
    (err_console if state.json_output else console).print(message, highlight=False, soft_wrap=True)


# -- config ------------------------------------------------------------------------------------


@config_app.command("show")
def config_show() -> None:
    """Print the effective configuration (file + DDBRIDGE_* environment), secrets masked."""
    settings = run(state.settings)
    data = json.loads(settings.model_dump_json())
    emit(data, lambda: console.print_json(data=data))


# -- stack -------------------------------------------------------------------------------------


def _stack() -> Any:
    from ops.stack import LocalStack  # imported lazily: heavy, and only the stack commands need it

    settings = state.settings()
    c = settings.connect
    return LocalStack(settings.stack, c.database_user, c.database_password.get_secret_value(), c.database_name)


ComponentsArg = Annotated[
    list[str] | None, typer.Argument(help="Components (postgres, kafka, connect, dynalite, moto); default all.")
]


@stack_app.command("up")
def stack_up(components: ComponentsArg = None) -> None:
    """Install what is missing, start every component on 127.0.0.1 and wait until each answers."""
    started = time.monotonic()
    run(lambda: _stack().up(components, progress=say))
    say(f"[green]stack healthy[/] in {time.monotonic() - started:.1f} s — `ddbridge stack status` for details")


@stack_app.command("down")
def stack_down(components: ComponentsArg = None) -> None:
    """Stop exactly the processes `stack up` started (gracefully, then forcibly)."""
    run(lambda: _stack().down(components, progress=say))


@stack_app.command("status")
def stack_status() -> None:
    """Component, port, PID and health; exit 1 when any component is unhealthy."""
    rows = run(lambda: _stack().status())

    def render() -> None:
        table = Table("component", "port", "pid", "health", "log")
        for r in rows:
            health = "[green]healthy[/]" if r.healthy else f"[red]{r.detail}[/]"
            table.add_row(r.name, str(r.port), str(r.pid or "-"), health, r.log)
        console.print(table)

    emit([asdict(r) for r in rows], render)
    if not all(r.healthy for r in rows):
        raise typer.Exit(1)


# -- connector ---------------------------------------------------------------------------------


def _connect_client() -> Any:
    from connectors.debezium import ConnectClient

    settings = state.settings()
    return ConnectClient(settings.connect.url, settings.connect.request_timeout_s)


@connector_app.command("register")
def connector_register(
    show: Annotated[bool, typer.Option("--show", help="Print the config instead of registering it.")] = False,
) -> None:
    """Create or update the Debezium connector (an idempotent PUT of its config)."""
    from connectors.debezium import connector_config, redact

    settings = run(state.settings)
    if not settings.tables:
        _fail(ConfigError("no [[tables]] mapping is configured: the connector would capture nothing"))
    config = connector_config(settings)
    if show:
        emit(redact(config), lambda: console.print_json(data=redact(config)))
        return
    created = run(lambda: _connect_client().register(settings.connect.connector_name, config))
    emit(
        {"connector": settings.connect.connector_name, "created": created},
        lambda: say(f"connector {settings.connect.connector_name} {'created' if created else 'updated'}"),
    )


@connector_app.command("status")
def connector_status() -> None:
    """Connector and task state, with the task trace when FAILED; exit 1 unless all RUNNING."""
    settings = run(state.settings)
    status = run(lambda: _connect_client().status(settings.connect.connector_name))
    if status is None:
        emit(
            {"connector": settings.connect.connector_name, "state": "MISSING"},
            lambda: say(
                f"connector {settings.connect.connector_name} is not registered: "
                "run `ddbridge connector register` (or `ddbridge init`)"
            ),
        )
        raise typer.Exit(1)

    def render() -> None:
        say(f"connector {status.name}: {status.state} on {status.worker}")
        for task in status.tasks:
            say(f"  task {task['id']}: {task['state']} on {task.get('worker_id', '?')}")
        for failure in status.failures():
            err_console.print(failure, highlight=False, markup=False)
        if status.failures():
            say("fix the cause above, then `ddbridge connector register` (or a Connect restart) resumes it")

    emit(asdict(status), render)
    if not status.running:
        raise typer.Exit(1)


@connector_app.command("delete")
def connector_delete(
    drop_slot: Annotated[
        bool,
        typer.Option(
            "--drop-slot", help="Also drop the replication slot and publication so PostgreSQL stops retaining WAL."
        ),
    ] = False,
) -> None:
    """Delete the connector (and optionally its replication slot).

    With --drop-slot the connector's stored offsets are cleared too: they point into the dropped
    slot's WAL, and a connector registered again under the same name would fail on them.
    """
    settings = run(state.settings)
    name = settings.connect.connector_name
    if drop_slot:
        from bridge.postgres import drop_slot_and_publication
        from connectors.debezium import connector_config

        run(lambda: _connect_client().forget(name, connector_config(settings)))
        say(f"connector {name} deleted with its offsets")
        say(run(lambda: drop_slot_and_publication(settings)))
        return
    deleted = run(lambda: _connect_client().delete(name))
    say(
        f"connector {name} {'deleted' if deleted else 'was not registered'} "
        "(offsets kept: registering it again resumes)"
    )


# -- init --------------------------------------------------------------------------------------


@app.command("init")
def init(
    skip_connector: Annotated[bool, typer.Option("--skip-connector", help="Do not register the connector.")] = False,
    skip_source: Annotated[bool, typer.Option("--skip-source", help="Do not prepare PostgreSQL.")] = False,
) -> None:
    """Create the DynamoDB tables (+ GSIs) and the control table, prepare the source, register the connector."""
    from bridge.initialize import initialize

    settings = run(state.settings)
    if not settings.tables:
        _fail(ConfigError("no [[tables]] mapping is configured: nothing to initialise"))
    report = run(lambda: initialize(settings, source=not skip_source, connector=not skip_connector, progress=say))
    emit(report, lambda: say("[green]init done[/]: next, start the bridge (`ddbridge stream`)"))


# -- stream -------------------------------------------------------------------------------------


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
        _fail(ConfigError("no [[tables]] mapping is configured: nothing to stream"))
    from bridge.stream_cli import run_stream

    totals = run(lambda: run_stream(settings, table, json_output=state.json_output))
    emit(asdict(totals), lambda: None)


# -- backfill -----------------------------------------------------------------------------------


def _backfill_options(**kwargs: Any) -> Any:
    from backfill.runner import BackfillOptions

    return BackfillOptions(**{k: v for k, v in kwargs.items() if v is not None})


def _run_backfill(options: Any, batch_size: int | None) -> None:
    from backfill.cli import run_backfill

    overrides = {"migration": {"batch_size": batch_size}} if batch_size else None
    settings = run(lambda: load_settings(state.config_path, overrides))
    summary = run(lambda: run_backfill(settings, options, json_output=state.json_output, say=say))
    emit(asdict(summary), lambda: None)
    if summary.status != "Completed":
        raise typer.Exit(1)


DateOpt = Annotated[
    datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Only rows whose date_column is on/after this day.")
]


@app.command("backfill")
def backfill(
    table: Annotated[str | None, typer.Option("--table", "-t", help="Mapped table (default: the only one).")] = None,
    start_date: DateOpt = None,
    end_date: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Only rows whose date_column is on/before this day.")
    ] = None,
    batch_size: Annotated[int | None, typer.Option(help="Rows per chunk (migration.batch_size).")] = None,
    workers: Annotated[int, typer.Option(help="Parallel range workers in this process.")] = 4,
    segments: Annotated[int, typer.Option(help="Split the migration into N segments (processes/machines).")] = 1,
    segment: Annotated[int, typer.Option(help="The segment (0..N-1) this process copies.")] = 0,
    migration_id: Annotated[
        str | None,
        typer.Option(help="Id of the migration (default migration-YYYYMMDD-HHMMSS); an existing id is joined/resumed."),
    ] = None,
    max_errors: Annotated[int | None, typer.Option(help="Stop as Failed after this many bad rows.")] = None,
    detailed_errors: Annotated[bool, typer.Option(help="List every sampled bad row in the summary.")] = False,
    no_stream: Annotated[
        bool, typer.Option("--no-stream", help="Skip the stream-first check (offline copy of a quiet source only).")
    ] = False,
    errors_file: Annotated[Path | None, typer.Option(help="Where bad rows are written (JSON lines).")] = None,
) -> None:
    """Copy the table's history to DynamoDB through the same sink (snapshot writes), resumably.

    Keyset pagination in primary-key order, short per-chunk queries, checkpoints in the control
    table. Start the stream first: rows changed during the copy are then made exact by the stream.
    Exit 0 when Completed, 1 when Stopped or Failed.
    """
    options = _backfill_options(
        table=table,
        start_date=start_date.date() if start_date else None,
        end_date=end_date.date() if end_date else None,
        workers=workers,
        segments=segments,
        segment=segment,
        migration_id=migration_id,
        max_errors=max_errors,
        detailed_errors=detailed_errors,
        require_stream=not no_stream,
        errors_file=errors_file,
    )
    _run_backfill(options, batch_size)


@app.command("resume")
def resume(
    migration_id: Annotated[str, typer.Option(help="The migration to continue.")],
    table: Annotated[str | None, typer.Option("--table", "-t", help="Mapped table (default: the only one).")] = None,
    segments: Annotated[int, typer.Option(help="As given to backfill.")] = 1,
    segment: Annotated[int, typer.Option(help="As given to backfill.")] = 0,
    workers: Annotated[int, typer.Option(help="Parallel range workers.")] = 4,
    batch_size: Annotated[int | None, typer.Option(help="Rows per chunk.")] = None,
    max_errors: Annotated[int | None, typer.Option(help="Stop as Failed after this many bad rows.")] = None,
    force: Annotated[bool, typer.Option(help="Resume although the configuration changed.")] = False,
    no_stream: Annotated[bool, typer.Option("--no-stream", help="Skip the stream-first check.")] = False,
) -> None:
    """Continue a stopped or killed backfill right after its last checkpointed key."""
    options = _backfill_options(
        table=table,
        segments=segments,
        segment=segment,
        workers=workers,
        migration_id=migration_id,
        max_errors=max_errors,
        force=force,
        require_stream=not no_stream,
        resume_only=True,
    )
    _run_backfill(options, batch_size)


@app.command("status")
def status(migration_id: Annotated[str, typer.Option(help="The migration.")]) -> None:
    """A migration's status, progress, errors and the DynamoDB item count."""
    from backfill.cli import show_status

    settings = run(state.settings)
    data = run(lambda: show_status(settings, migration_id))

    def render() -> None:
        for key in (
            "migration_id",
            "status",
            "processed",
            "total",
            "percent",
            "written",
            "stale",
            "errors",
            "ranges_done",
            "ranges",
            "dynamodb_item_count",
        ):
            say(f"{key:>20}: {data[key]}")

    emit(data, render)


@app.command("monitor")
def monitor(
    migration_id: Annotated[str, typer.Option(help="The migration.")],
    interval: Annotated[float, typer.Option(help="Seconds between lines.")] = 60.0,
) -> None:
    """Print `[time] Status | Processed | Errors | Progress` every interval until Completed or Failed."""
    from backfill.cli import monitor as watch

    settings = run(state.settings)
    final = run(lambda: watch(settings, migration_id, interval, json_output=state.json_output))
    if final.status != "Completed":
        raise typer.Exit(1)


# -- validate / reconcile / tombstones -----------------------------------------------------------


@app.command("validate")
def validate_cmd(
    table: Annotated[str | None, typer.Option("--table", "-t", help="Mapped table (default: the only one).")] = None,
    start_date: DateOpt = None,
    end_date: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Count rows whose date_column is on/before this day.")
    ] = None,
    detailed_errors: Annotated[
        bool, typer.Option("--detailed-errors", help="List the offending keys of each failed check (bounded).")
    ] = False,
) -> None:
    """Pre-flight checks of the source, the target and the pipeline; exit 1 if any fails.

    Source: row count, NULL key/required columns, duplicate item keys, unstorable values and items
    over 400 KB (every row through the codec), date range, replica identity, wal_level, publication,
    slot health. Target: table and GSIs ACTIVE with the mapping's keys. Pipeline: Kafka, topics,
    connector and task RUNNING, consumer lag. What `init` creates shows as todo until it has run.
    """
    from reconcile.cli import run_validate
    from reconcile.validate import ValidateOptions

    settings = run(state.settings)
    options = ValidateOptions(
        table=table,
        start_date=start_date.date() if start_date else None,
        end_date=end_date.date() if end_date else None,
    )
    checks = run(
        lambda: run_validate(settings, options, detailed=detailed_errors, json_output=state.json_output, say=say)
    )
    if any(c.status == "fail" for c in checks):
        raise typer.Exit(1)


@app.command("reconcile")
def reconcile_cmd(
    table: Annotated[str | None, typer.Option("--table", "-t", help="Mapped table (default: the only one).")] = None,
    sample: Annotated[
        int | None, typer.Option("--sample", help="Rows compared field by field via GetItem (reconcile.sample_size).")
    ] = None,
    repair: Annotated[
        bool, typer.Option("--repair", help="Rewrite confirmed differences from PostgreSQL through the sink.")
    ] = False,
    report: Annotated[
        list[Path] | None, typer.Option("--report", help="Write the report: FILE.md, FILE.html or FILE.json.")
    ] = None,
) -> None:
    """Compare every row with DynamoDB and say whether cutover is safe; exit 0 only when clean.

    Counts and every row (PostgreSQL COPY against a parallel Scan, bounded memory), differences
    re-checked after the bridge catches up (live traffic raises no false alarm), a random sample
    via GetItem, every GSI queried with sampled keys (latency p50/p95), and the error rate. Ends in
    `MIGRATION SUCCESSFUL` or exactly what blocks cutover.
    """
    from reconcile.cli import run_reconcile
    from reconcile.reconciler import ReconcileOptions

    settings = run(state.settings)
    for path in report or []:
        if path.suffix.lower() not in (".md", ".markdown", ".html", ".htm", ".json"):
            _fail(ConfigError(f"--report {path}: use a .md, .html or .json file name"))
    options = ReconcileOptions(table=table, sample_size=sample, repair=repair)
    result = run(lambda: run_reconcile(settings, options, reports=report or [], json_output=state.json_output, say=say))
    if not result.ok:
        raise typer.Exit(1)


@tombstones_app.command("purge")
def tombstones_purge(
    table: Annotated[str | None, typer.Option("--table", "-t", help="Mapped table (default: the only one).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Purge although a backfill of the table is recorded as in progress.")
    ] = False,
) -> None:
    """Delete tombstones past their grace (migration.tombstone_grace_days), never during a backfill.

    Run it after cutover of reads (readers must treat `_deleted` items as absent until then). Each
    delete is conditional on the item still being that tombstone.
    """
    from reconcile.tombstones import purge

    settings = run(state.settings)
    result = run(lambda: purge(settings, table, dry_run=dry_run, force=force))
    verb = "would delete" if dry_run else "deleted"
    emit(
        asdict(result),
        lambda: say(
            f"{result.table}: {result.tombstones:,} tombstones; {verb} {result.purged:,} past their grace, "
            f"{result.not_due:,} still within it, {result.changed:,} changed meanwhile (kept)"
        ),
    )


@truncate_app.command("recover")
def truncate_recover(
    table: Annotated[str | None, typer.Option("--table", "-t", help="Mapped table (default: the only one).")] = None,
    lsn: Annotated[
        int | None, typer.Option(help="LSN of the TRUNCATE (default: the one the bridge stopped at and recorded).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Recover although bridges or a backfill of the table seem to be running.")
    ] = False,
) -> None:
    """After the bridge stopped at a TRUNCATE: set the table's LSN floor and remove what the truncate deleted.

    Stop every `ddbridge stream` of the group first. Afterwards DynamoDB holds only the stream's writes
    from after the truncate, and the bridge drops every change from before it; start the bridges again.
    """
    from reconcile.truncate import recover

    settings = run(state.settings)
    result = run(lambda: recover(settings, table, lsn, force=force))
    emit(
        asdict(result),
        lambda: say(
            f"{result.table}: TRUNCATE at LSN {result.lsn} recovered: floor set; {result.scanned:,} items scanned, "
            f"{result.removed:,} removed, {result.kept:,} written after the truncate kept"
            + (f", {result.changed:,} rewritten meanwhile (kept)" if result.changed else "")
            + ". Start the bridges again (`ddbridge stream`)"
        ),
    )


# -- example data ------------------------------------------------------------------------------


@example_app.command("load")
def example_load(
    rows: Annotated[int, typer.Option(help="Rows to generate (the guide's scale is 500,247).")] = 500_247,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data).")] = 42,
    reset: Annotated[bool, typer.Option(help="Drop and recreate the payments table first.")] = True,
) -> None:
    """Create the payments schema and load generated rows with COPY."""
    from examples.payments.generate import load_payments

    settings = run(state.settings)
    started = time.monotonic()
    loaded = run(lambda: load_payments(settings.source.dsn.get_secret_value(), rows, seed=seed, reset=reset))
    elapsed = time.monotonic() - started
    emit({"rows": loaded, "seconds": round(elapsed, 2)}, lambda: say(f"loaded {loaded:,} payments in {elapsed:.1f} s"))


@example_app.command("traffic")
def example_traffic(
    rate: Annotated[float, typer.Option(help="Changes per second.")] = 20.0,
    duration: Annotated[float, typer.Option(help="Seconds to run.")] = 60.0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 1,
) -> None:
    """Live application traffic on the payments table: new payments, settlements, failures, refunds,
    amount and date corrections (moves), deletes."""
    import threading

    from examples.payments import traffic

    settings = run(state.settings)
    say(f"applying about {rate:g} changes/s for {duration:g} s to {settings.mapping().source}")
    done = traffic.run(
        settings.source.dsn.get_secret_value(), threading.Event(), rate=rate, seed=seed, duration=duration
    )
    emit(dict(done), lambda: say(traffic.describe(done)))


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except DdbridgeError as exc:  # raised outside run(), e.g. while loading settings lazily
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        sys.exit(exc.exit_code)
