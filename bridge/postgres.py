"""PostgreSQL source access shared by init, backfill and validation: connections and source preparation."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from bridge.config import Settings, TableMapping
from bridge.errors import ConfigError, TerminalError


def connect(settings: Settings, *, autocommit: bool = True) -> psycopg.Connection[tuple[object, ...]]:
    """A connection to the source database, with a clear error when it cannot be reached."""
    try:
        return psycopg.connect(
            settings.source.dsn.get_secret_value(),
            autocommit=autocommit,
            connect_timeout=settings.source.connect_timeout_s,
            application_name="ddbridge",
        )
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        raise TerminalError(
            f"cannot connect to the source PostgreSQL ({first}); check source.dsn "
            "(env DDBRIDGE_SOURCE__DSN) and that the server is up (`ddbridge stack status` locally)"
        ) from exc


def qualified(mapping: TableMapping) -> sql.Identifier:
    """The mapping's source table as a quoted SQL identifier."""
    return sql.Identifier(mapping.schema_name, mapping.table_name)


@dataclass
class SourcePreparation:
    """What ``prepare_source`` did, for the init report."""

    table: str
    replica_identity: str
    changed_replica_identity: bool
    publication: str


def replica_identity(conn: psycopg.Connection[tuple[object, ...]], mapping: TableMapping) -> str:
    """The table's replica identity: 'default', 'full', 'index' or 'nothing'."""
    row = conn.execute(
        "SELECT c.relreplident FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s",
        (mapping.schema_name, mapping.table_name),
    ).fetchone()
    if row is None:
        raise ConfigError(
            f"source table {mapping.source} does not exist in the database of source.dsn; "
            "create it or fix [[tables]].source"
        )
    return {"d": "default", "f": "full", "i": "index", "n": "nothing"}[str(row[0])]


def prepare_source(settings: Settings) -> list[SourcePreparation]:
    """Idempotently: REPLICA IDENTITY FULL where the mapping needs it (derived keys move items, and
    unchanged TOASTed values are then sent), the heartbeat table, and the publication over the
    mapped tables."""
    done: list[SourcePreparation] = []
    pub = settings.connect.publication_name
    with connect(settings) as conn:
        for mapping in settings.tables:
            ident = replica_identity(conn, mapping)
            changed = False
            if mapping.has_derived_key() and ident != "full":
                conn.execute(sql.SQL("ALTER TABLE {} REPLICA IDENTITY FULL").format(qualified(mapping)))
                ident, changed = "full", True
            done.append(SourcePreparation(mapping.source, ident, changed, pub))
        schema, _, table = settings.connect.heartbeat_table.rpartition(".")
        heartbeat = sql.Identifier(schema or "public", table)
        conn.execute(
            sql.SQL("CREATE TABLE IF NOT EXISTS {} (id int PRIMARY KEY, beat_at timestamptz NOT NULL)").format(
                heartbeat
            )
        )
        # The heartbeat table is published (not captured: table.include.list leaves it out) so that on a
        # quiet source Debezium still receives WAL, advances its offsets and lets the slot's
        # confirmed_flush_lsn move: the reconciler's catch-up check and WAL retention depend on it.
        tables = sql.SQL(", ").join([qualified(m) for m in settings.tables] + [heartbeat])
        exists = conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (pub,)).fetchone()
        if exists:
            conn.execute(sql.SQL("ALTER PUBLICATION {} SET TABLE {}").format(sql.Identifier(pub), tables))
        else:
            conn.execute(sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(sql.Identifier(pub), tables))
    return done


def drop_slot_and_publication(settings: Settings) -> str:
    """Drop the connector's replication slot and publication (after the connector is deleted)."""
    slot, pub = settings.connect.slot_name, settings.connect.publication_name
    with connect(settings) as conn:
        active = conn.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,)).fetchone()
        if active and active[0]:
            raise TerminalError(
                f"replication slot {slot} is still in use; delete the connector first and retry in a few seconds"
            )
        if active:
            conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
        conn.execute(sql.SQL("DROP PUBLICATION IF EXISTS {}").format(sql.Identifier(pub)))
    return f"dropped replication slot {slot if active else '(none)'} and publication {pub}"


@dataclass
class SlotState:
    """A replication slot as pg_replication_slots shows it."""

    name: str
    active: bool
    retained_wal_bytes: int | None
    confirmed_flush_lsn: str | None


def slot_state(settings: Settings) -> SlotState | None:
    """The connector's replication slot, or None when it does not exist."""
    with connect(settings) as conn:
        row = conn.execute(
            "SELECT slot_name, active, pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint, "
            "confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s",
            (settings.connect.slot_name,),
        ).fetchone()
    if row is None:
        return None
    name, active, retained, flushed = row
    return SlotState(
        str(name),
        bool(active),
        int(retained) if retained is not None else None,  # type: ignore[call-overload]
        str(flushed) if flushed is not None else None,
    )
