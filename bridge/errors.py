"""The core's errors: one root, split into what a retry can fix and what it cannot, plus the one data
error. Every error can carry where it happened (table, key, column, topic, partition, offset, LSN):
``--json`` output shows those fields next to the message."""

from __future__ import annotations

from typing import Any

CONTEXT_FIELDS = ("table", "key", "column", "topic", "partition", "offset", "lsn")


class DdbridgeError(Exception):
    """Root of every error ddbridge raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, **context: Any) -> None:
        unknown = set(context) - set(CONTEXT_FIELDS)
        if unknown:
            raise TypeError(f"unknown error context {sorted(unknown)}")  # a programming error
        super().__init__(message)
        self.context = {k: v for k, v in context.items() if v is not None}

    def to_dict(self) -> dict[str, Any]:
        """The error for machine-readable output."""
        return {"error": type(self).__name__, "message": str(self), **self.context}


class ConfigError(DdbridgeError):
    """The configuration is invalid; raised before any store is touched (CLI exit 2)."""

    exit_code = 2


class TransientError(DdbridgeError):
    """A failure that may succeed when retried (throttling, 5xx, network)."""


class TerminalError(DdbridgeError):
    """A failure that retrying cannot fix; the operator must act."""


class CodecError(DdbridgeError):
    """A value that cannot be stored in DynamoDB exactly: the one data error. On the stream its record
    goes to the dead-letter topic; in the backfill its row to the errors file."""

    def __init__(self, reason: str, column: str | None = None) -> None:
        super().__init__(reason if column is None else f"column {column}: {reason}", column=column)
        self.reason = reason
        self.column = column


class StackError(TerminalError):
    """A local-stack component failed to install, start or answer."""


class KafkaAccessError(TerminalError):
    """Kafka refused ddbridge: authentication, TLS or an ACL. Retrying does not help; a setting does."""


class DynamoAccessError(TerminalError):
    """AWS refused ddbridge's credentials or denied it an action: fix the credentials or the policy."""


class ConnectorError(TerminalError):
    """Kafka Connect refused a request or the connector is not healthy."""


class SchemaMismatchError(TerminalError):
    """An existing DynamoDB table differs from what the mapping requires."""


class MissingColumnTypes(TerminalError):
    """Events lack the PostgreSQL column types the codec needs (connector misconfigured)."""


class NeedsFullReplicaIdentity(TerminalError):
    """An update/delete lacks the old row image needed to find a derived-key item."""


class RefusedColumns(TerminalError):
    """The table has columns whose type ddbridge cannot copy exactly (and that are not excluded)."""


class DeadLetterLimit(TerminalError):
    """Too many dead letters: stop rather than divert the stream."""
