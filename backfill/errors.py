"""The backfill job's errors."""

from __future__ import annotations

from bridge.errors import TerminalError


class BackfillFailed(TerminalError):
    """The backfill stopped because it reached its error limit."""
