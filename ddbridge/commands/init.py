"""``ddbridge init``: DynamoDB tables, the control table, the source and the connector."""

from __future__ import annotations

from typing import Annotated

import typer

from bridge.errors import ConfigError
from ddbridge.app import app
from ddbridge.output import emit, fail, run, say, state


@app.command("init")
def init(
    skip_connector: Annotated[bool, typer.Option("--skip-connector", help="Do not register the connector.")] = False,
    skip_source: Annotated[bool, typer.Option("--skip-source", help="Do not prepare PostgreSQL.")] = False,
) -> None:
    """Create the DynamoDB tables (+ GSIs) and the control table, prepare the source, register the connector."""
    from ops.initialize import initialize

    settings = run(state.settings)
    if not settings.tables:
        fail(ConfigError("no [[tables]] mapping is configured: nothing to initialise"))
    report = run(lambda: initialize(settings, source=not skip_source, connector=not skip_connector, progress=say))
    emit(report, lambda: say("[green]init done[/]: next, start the bridge (`ddbridge stream`)"))
