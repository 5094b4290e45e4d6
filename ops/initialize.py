"""``ddbridge init``: target tables, control table, source preparation and connector registration."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bridge.config import Settings
from bridge.dynamo import make_client
from bridge.tables import control_table_spec, ensure_table, table_spec

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def initialize(
    settings: Settings,
    *,
    source: bool = True,
    connector: bool = True,
    kafka: bool | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Idempotently prepare everything a migration needs; returns what was done.

    ``kafka`` (default: same as ``connector``) creates the CDC topics and the dead-letter topic.
    """
    # Build every spec first: a mapping error must stop us before any store is touched.
    specs = [table_spec(m, settings.bookkeeping.ttl) for m in settings.tables]
    specs.append(control_table_spec(settings.dynamodb.control_table))
    report: dict[str, Any] = {"tables": {}, "topics": {}, "source": [], "connector": None}
    kafka = connector if kafka is None else kafka
    client = make_client(settings.dynamodb)
    for spec in specs:
        outcome = ensure_table(client, spec, settings.dynamodb.billing_mode)
        report["tables"][spec.name] = outcome
        gsis = f" with {len(spec.gsis)} GSIs" if spec.gsis else ""
        progress(f"DynamoDB table {spec.name}{gsis}: {outcome}, ACTIVE")
    if kafka:
        from bridge.topics import ensure_topics

        report["topics"] = ensure_topics(settings)
        progress("Kafka topics: " + ", ".join(f"{t} ({o})" for t, o in report["topics"].items()))
    if source:
        from bridge.postgres import prepare_source

        for prep in prepare_source(settings):
            report["source"].append(prep.__dict__)
            note = " (changed to FULL: derived keys need the old row image)" if prep.changed_replica_identity else ""
            progress(
                f"source {prep.table}: replica identity {prep.replica_identity}{note}, publication {prep.publication}"
            )
        record_schemas(settings, client)
    if connector:
        from connectors.debezium import ConnectClient, connector_config

        client_rest = ConnectClient(settings.connect)
        created = client_rest.register(settings.connect.connector_name, connector_config(settings))
        report["connector"] = {"name": settings.connect.connector_name, "created": created}
        progress(f"connector {settings.connect.connector_name}: {'registered' if created else 'updated'}")
    return report


def record_schemas(settings: Settings, client: DynamoDBClient) -> None:
    """The row schema of each mapped table as the bridge will see it, unless one is recorded already: the
    baseline the bridge compares its first events with, so a column added before the first change the
    bridge applies (while the backfill runs, say) is still noticed."""
    from bridge.pgtypes import table_columns
    from bridge.postgres import connect
    from bridge.schemas import SchemaHistory

    history = SchemaHistory(client, settings.dynamodb.control_table)
    with connect(settings) as conn:
        row = conn.execute("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint").fetchone()
        lsn = int(str(row[0])) if row else 0
        for mapping in settings.tables:
            if history.current(mapping.source) is not None:
                continue
            columns = table_columns(conn, mapping.schema_name, mapping.table_name)
            history.record(
                mapping.source,
                lsn,
                tuple(
                    (c.name, c.type_name.upper())
                    for c in columns
                    if c.name not in mapping.exclude_columns and not c.generated
                ),
                None,
            )
