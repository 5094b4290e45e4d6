"""The stream job's errors: each stops the bridge with nothing committed past it."""

from __future__ import annotations

from bridge.errors import TerminalError


class DataGapError(TerminalError):
    """Events the bridge never applied are gone from Kafka."""


class TruncateError(TerminalError):
    """A TRUNCATE of a source table arrived (policy: stop)."""


class CommitOrderError(TerminalError):
    """A commit would move a partition's offset backwards (a bug, never data)."""
