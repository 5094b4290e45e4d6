"""Everything the commands share about talking to the user: the global options, the consoles,
ddbridge errors turned into a message and their exit code, ``--json`` output, progress bars and
logging. Exit codes: 0 ok, 1 a check failed, 2 usage or configuration error."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import Progress, ProgressColumn

from bridge.config import Settings, load_settings
from bridge.dynamo import aws_refusal, retry_cause
from bridge.errors import DdbridgeError, TransientError

console = Console()
err_console = Console(stderr=True)
T = TypeVar("T")
AFTER_TRANSIENT = (
    "nothing is lost — check the endpoint, the network and the table's capacity, then run the command "
    "again (a backfill resumes from its checkpoints)"
)


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


def print_error(exc: DdbridgeError) -> None:
    """The one rendering of an error: ``error: <message>`` on stderr (and a JSON object under --json)."""
    if state.json_output:
        print(json.dumps({"ok": False, **exc.to_dict()}, default=str))
    err_console.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True, highlight=False, soft_wrap=True)


def fail(exc: DdbridgeError) -> NoReturn:
    """Report ``exc`` and exit with its code."""
    print_error(exc)
    raise typer.Exit(exc.exit_code)


def run(action: Callable[[], T]) -> T:
    """Run a command body, turning ddbridge errors (and AWS's refusals of its credentials or policy,
    wherever they are raised) into a message and their exit code."""
    try:
        return action()
    except DdbridgeError as exc:
        fail(exc)
    except ClientError as exc:
        refusal = aws_refusal(exc)
        if refusal is not None:
            fail(refusal)
        if retry_cause(exc) is None:
            raise  # a request DynamoDB refused as malformed: a bug, never hidden
        fail(TransientError(f"DynamoDB kept failing after retries: {exc}; {AFTER_TRANSIENT}"))
    except BotoCoreError as exc:  # the endpoint did not answer (connection refused, reset, timed out)
        fail(TransientError(f"DynamoDB did not answer after retries: {exc}; {AFTER_TRANSIENT}"))


def emit(payload: Any, render: Callable[[], None]) -> None:
    """Print JSON with --json, else the human rendering."""
    if state.json_output:
        print(json.dumps(payload, indent=2, default=str))
    else:
        render()


def say(message: str) -> None:
    """A progress line for humans (stderr under --json so stdout stays parseable)."""
    (err_console if state.json_output else console).print(message, highlight=False, soft_wrap=True)


def setup_logging(level: int, *, rich_console: Console | None = None) -> None:
    """Log lines on stderr: through rich on an interactive console, else timestamped plain lines."""
    handler: logging.Handler = (
        RichHandler(console=rich_console, show_path=False) if rich_console else logging.StreamHandler(sys.stderr)
    )
    fmt = "%(message)s" if rich_console else "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=level, format=fmt, handlers=[handler], force=True)
    logging.getLogger("httpx2").setLevel(logging.WARNING)  # the registry client logs every request at INFO


def progress_bar(*columns: str | ProgressColumn, json_output: bool) -> Progress:
    """A progress display on stderr, shown only on a terminal and never under --json."""
    stderr = Console(stderr=True)
    return Progress(*columns, console=stderr, disable=json_output or not stderr.is_terminal)


def duration(seconds: float | None) -> str:
    """``1h02m03s`` / ``2m03s``; ``?`` when unknown."""
    if seconds is None:
        return "?"
    seconds = int(seconds)
    return (
        f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"
        if seconds >= 3600
        else (f"{seconds // 60}m{seconds % 60:02d}s")
    )
