"""The ``ddbridge`` command tree: the application, its command groups and the global options. The
commands themselves live in ``ddbridge.commands`` and attach to these objects when imported (by
``ddbridge.main``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ddbridge.output import state

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
truncate_app = typer.Typer(help="Recover exactly from a TRUNCATE of a source table.", no_args_is_help=True)
app.add_typer(stack_app, name="stack")
app.add_typer(connector_app, name="connector")
app.add_typer(config_app, name="config")
app.add_typer(example_app, name="example")
app.add_typer(tombstones_app, name="tombstones")
app.add_typer(truncate_app, name="truncate")


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
