"""PostgreSQL source access shared by init, backfill and validation: connections and source preparation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from bridge.config import Settings, TableMapping
from bridge.errors import ConfigError, TerminalError
from bridge.keyset import KeyColumn


def connect(settings: Settings, *, autocommit: bool = True) -> psycopg.Connection[tuple[object, ...]]:
    """A connection to the source database, with a clear error when it cannot be reached."""
    try:
        return psycopg.connect(
            make_conninfo(settings.source.dsn.get_secret_value(), **settings.source.libpq_options()),
            autocommit=autocommit,
            connect_timeout=settings.source.connect_timeout_s,
            application_name="ddbridge",
        )
    except psycopg.OperationalError as exc:
        text = " ".join(str(exc).split()) or repr(exc)
        tls = any(word in text for word in ("SSL", "certificate", "encryption"))
        what = (
            "check source.sslmode, source.sslrootcert (the CA that signed the server's certificate) and, for "
            "certificate authentication, source.sslcert/sslkey; the server's pg_hba.conf decides which users need TLS"
            if tls
            else "check source.dsn (env DDBRIDGE_SOURCE__DSN) and that the server is up (`ddbridge stack status`)"
        )
        raise TerminalError(f"cannot connect to the source PostgreSQL ({text[:400]}); {what}") from exc


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


IDENTITIES = {"d": "default", "f": "full", "i": "index", "n": "nothing"}


def _relation(conn: psycopg.Connection[tuple[object, ...]], mapping: TableMapping) -> tuple[str, str, list[str]]:
    """(relkind, relreplident, the leaf partitions as quoted names; [] unless partitioned)."""
    row = conn.execute(
        "SELECT c.relkind::text, c.relreplident::text, CASE WHEN c.relkind = 'p' THEN ARRAY("
        "SELECT l.oid::regclass::text FROM pg_partition_tree(c.oid) t JOIN pg_class l ON l.oid = t.relid "
        "WHERE t.isleaf ORDER BY 1) END "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
        (mapping.schema_name, mapping.table_name),
    ).fetchone()
    if row is None:
        raise ConfigError(
            f"source table {mapping.source} does not exist in the database of source.dsn; "
            "create it or fix [[tables]].source"
        )
    leaves = row[2] if isinstance(row[2], list) else []
    return str(row[0]), str(row[1]), [str(leaf) for leaf in leaves]


def is_partitioned(conn: psycopg.Connection[tuple[object, ...]], mapping: TableMapping) -> bool:
    """Is the source a partitioned table (its changes are logged by its leaf partitions)?"""
    return _relation(conn, mapping)[0] == "p"


def replica_identity(conn: psycopg.Connection[tuple[object, ...]], mapping: TableMapping) -> str:
    """The table's replica identity: 'default', 'full', 'index' or 'nothing'. For a partitioned table
    the leaf partitions log the changes: it is 'full' only when every leaf is."""
    kind, ident, leaves = _relation(conn, mapping)
    if kind != "p" or not leaves:
        return IDENTITIES[ident]
    rows = conn.execute("SELECT relreplident::text FROM pg_class WHERE oid = ANY(%s::regclass[])", (leaves,)).fetchall()
    weakest = [str(r[0]) for r in rows if str(r[0]) != "f"]
    return IDENTITIES[weakest[0]] if weakest else "full"


def require_replica_identity(settings: Settings, mappings: list[TableMapping]) -> None:
    """Refuse to stream a table whose item key uses non-key columns unless it is REPLICA IDENTITY FULL:
    without the whole old row, a delete or a key-moving update cannot find the item it changes."""
    derived = [m for m in mappings if m.has_derived_key()]
    if not derived:
        return
    with connect(settings) as conn:
        wrong = [(m, ident) for m in derived if (ident := replica_identity(conn, m)) != "full"]
    if wrong:
        listed = ", ".join(f"{m.source} is REPLICA IDENTITY {ident.upper()}" for m, ident in wrong)
        fixes = "; ".join(f"ALTER TABLE {m.source} REPLICA IDENTITY FULL" for m, _ in wrong)
        raise TerminalError(
            f"{listed}, but its DynamoDB key uses non-key columns, so deletes and key-moving updates need the "
            f"whole old row: {fixes} (`ddbridge init` does it), then start the bridge again"
        )


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
                _, _, leaves = _relation(conn, mapping)
                conn.execute(sql.SQL("ALTER TABLE {} REPLICA IDENTITY FULL").format(qualified(mapping)))
                for leaf in leaves:  # already quoted by regclass::text
                    conn.execute(sql.SQL("ALTER TABLE {} REPLICA IDENTITY FULL").format(sql.SQL(leaf)))
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
        if any(is_partitioned(conn, m) for m in settings.tables):
            # Changes of a partitioned table are published as its leaves' unless published via the root:
            # the connector captures the mapped (root) table, so without this it would never see them.
            conn.execute(
                sql.SQL("ALTER PUBLICATION {} SET (publish_via_partition_root = true)").format(sql.Identifier(pub))
            )
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


def key_columns(conn: psycopg.Connection[Any], mapping: TableMapping) -> list[KeyColumn]:
    """The mapping's primary-key columns with their SQL types; they must be the table's primary key."""
    rows = conn.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_index i "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
        "WHERE i.indrelid = %s::regclass AND i.indisprimary",
        (f'"{mapping.schema_name}"."{mapping.table_name}"',),
    ).fetchall()
    types = {str(name): str(type_) for name, type_ in rows}
    if sorted(types) != sorted(mapping.primary_key):
        raise ConfigError(
            f"table {mapping.source}: the mapping says primary_key={mapping.primary_key} but PostgreSQL's primary key "
            f"is {sorted(types) or 'missing'}; the backfill pages on the real primary key — fix [[tables]].primary_key"
        )
    return [KeyColumn(c, types[c]) for c in mapping.primary_key]
