"""The console-script entry point: every command module attached to the application, then run."""

from __future__ import annotations

import sys

from bridge.errors import DdbridgeError
from ddbridge.app import app
from ddbridge.commands import (  # noqa: F401 (imported for their commands)
    backfill,
    config,
    connector,
    example,
    init,
    maintenance,
    reconcile,
    stack,
    stream,
)
from ddbridge.output import print_error

__all__ = ["app", "main"]  # the application with every command attached


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except DdbridgeError as exc:  # raised outside run(), e.g. while loading settings lazily
        print_error(exc)
        sys.exit(exc.exit_code)
