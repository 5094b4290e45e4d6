"""Error hierarchy: one root, split into what a retry can fix and what it cannot."""

from __future__ import annotations


class DdbridgeError(Exception):
    """Root of every error ddbridge raises on purpose."""

    exit_code = 1


class ConfigError(DdbridgeError):
    """The configuration is invalid; raised before any store is touched (CLI exit 2)."""

    exit_code = 2


class TransientError(DdbridgeError):
    """A failure that may succeed when retried (throttling, 5xx, network)."""


class TerminalError(DdbridgeError):
    """A failure that retrying cannot fix; the operator must act."""


class StackError(TerminalError):
    """A local-stack component failed to install, start or answer."""


class ConnectorError(TerminalError):
    """Kafka Connect refused a request or the connector is not healthy."""


class SchemaMismatchError(TerminalError):
    """An existing DynamoDB table differs from what the mapping requires."""
