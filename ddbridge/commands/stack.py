"""``ddbridge stack up|down|status``: the embedded local stack."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Annotated, Any

import typer
from rich.table import Table

from ddbridge.app import stack_app
from ddbridge.output import console, emit, run, say, state


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
