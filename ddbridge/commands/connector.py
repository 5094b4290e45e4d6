"""``ddbridge connector register|status|restart|delete``: the Debezium connector through Kafka Connect."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

import typer

from bridge.errors import ConfigError
from ddbridge.app import connector_app
from ddbridge.output import console, emit, err_console, fail, run, say, state
from ops import teardown


def _connect_client() -> Any:
    from connectors.debezium import ConnectClient

    settings = state.settings()
    return ConnectClient(settings.connect)


@connector_app.command("register")
def connector_register(
    show: Annotated[bool, typer.Option("--show", help="Print the config instead of registering it.")] = False,
) -> None:
    """Create or update the Debezium connector (an idempotent PUT of its config)."""
    from connectors.debezium import connector_config, redact

    settings = run(state.settings)
    if not settings.tables:
        fail(ConfigError("no [[tables]] mapping is configured: the connector would capture nothing"))
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
        advice = status.advice()
        if advice:
            say(advice)
        elif status.failures():
            say(
                "fix the cause above, then `ddbridge connector restart` resumes it from its last offset "
                "(a running `ddbridge stream` restarts it by itself, with backoff)"
            )

    emit(asdict(status), render)
    if not status.running:
        raise typer.Exit(1)


@connector_app.command("restart")
def connector_restart(
    all_tasks: Annotated[
        bool, typer.Option("--all", help="Restart the connector and every task, not only the FAILED ones.")
    ] = False,
) -> None:
    """Restart the connector's FAILED tasks (Kafka Connect never does); they resume from the last offset."""
    settings = run(state.settings)
    name = settings.connect.connector_name
    restarted = run(lambda: _connect_client().restart(name, only_failed=not all_tasks))
    if not restarted:
        emit(
            {"connector": name, "restarted": False},
            lambda: say(f"connector {name} is not registered: run `ddbridge connector register` (or `ddbridge init`)"),
        )
        raise typer.Exit(1)
    emit(
        {"connector": name, "restarted": True, "only_failed": not all_tasks},
        lambda: say(
            f"connector {name}: {'every task' if all_tasks else 'its failed tasks'} restarting; "
            "`ddbridge connector status` shows when they are RUNNING"
        ),
    )


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
        run(lambda: teardown.remove_connector(settings, forget_offsets=True))
        say(f"connector {name} deleted with its offsets")
        say(run(lambda: teardown.drop_slot(settings, wait_s=30)))
        return
    deleted = run(lambda: teardown.remove_connector(settings, forget_offsets=False))
    say(
        f"connector {name} {'deleted' if deleted else 'was not registered'} "
        "(offsets kept: registering it again resumes)"
    )
