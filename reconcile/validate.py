"""``ddbridge validate``: pre-flight checks of the source, the target and the pipeline.

Each check gives one line: pass / fail / warn / todo and a figure. *todo* marks what ``ddbridge
init`` creates, while nothing is initialised yet; once it is (a slot, a connector or the control
table exists), a missing piece is a failure.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import httpx2 as httpx
from botocore.exceptions import BotoCoreError, ClientError
from confluent_kafka import KafkaError, KafkaException, TopicCollection
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from psycopg import sql
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_fixed

from bridge.config import Settings, TableMapping
from bridge.dynamo import aws_refusal, make_client
from bridge.errors import CodecError, DdbridgeError
from bridge.kafka_config import AccessErrors, access_problem, admin_client
from bridge.keyset import date_filter
from bridge.pgtypes import REMEDY, table_columns
from bridge.postgres import connect, is_partitioned, replica_identity
from bridge.registry import client_config as registry_client_config
from bridge.sink import MAX_ITEM_BYTES, item_size
from bridge.tables import describe_differences, table_spec
from bridge.topics import topic_for
from connectors.debezium import ConnectClient
from reconcile.catchup import CatchUp
from reconcile.source import SourceTable
from reconcile.spill import Spill, partitions_for

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

Status = Literal["pass", "fail", "warn", "todo"]
Group = Literal["source", "target", "pipeline"]


@dataclass
class Check:
    """One pre-flight check."""

    group: Group
    name: str
    status: Status
    figure: str
    hint: str = ""
    offenders: list[str] = field(default_factory=list)
    always_listed: bool = False  # offenders shown without --detailed-errors (they are few and name the fix)


class Checks:
    """Collects checks; ``todo`` becomes ``fail`` once the migration is initialised."""

    def __init__(self, initialized: bool, limit: int) -> None:
        self.items: list[Check] = []
        self.initialized = initialized
        self.limit = limit

    def add(
        self,
        group: Group,
        name: str,
        status: Status,
        figure: str,
        hint: str = "",
        offenders: Any = (),
        always_listed: bool = False,
    ) -> None:
        if status == "todo" and self.initialized:
            status = "fail"
        listed = list(offenders) if always_listed else list(offenders)[: self.limit]
        self.items.append(Check(group, name, status, figure, hint, listed, always_listed))

    def tallied(self, group: Group, name: str, tally: Tally, failure: str, success: str, hint: str) -> None:
        """A check that fails when ``tally`` counted anything: ``failure`` is formatted with the count."""
        if tally.count:
            self.add(group, name, "fail", failure.format(count=tally.count), hint, tally.examples)
        else:
            self.add(group, name, "pass", success)

    @property
    def failed(self) -> bool:
        return any(c.status == "fail" for c in self.items)


@dataclass
class Tally:
    """How many offenders were found, and the first ``limit`` of them."""

    limit: int
    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, example: str) -> None:
        self.count += 1
        if len(self.examples) < self.limit:
            self.examples.append(example)


@dataclass
class ValidateOptions:
    table: str | None = None
    start_date: date | None = None
    end_date: date | None = None


def validate(
    settings: Settings, options: ValidateOptions, on_progress: Callable[[int], None] = lambda _: None
) -> list[Check]:
    """Run every check of one mapped table; never raises for a failing check."""
    mapping = settings.mapping(options.table)
    client = make_client(settings.dynamodb, max_attempts=3)
    checks = Checks(_initialized(settings, mapping, client), settings.reconcile.detail_limit)
    _source_checks(settings, mapping, options, checks, on_progress)
    _target_checks(settings, mapping, client, checks)
    _pipeline_checks(settings, mapping, checks)
    return checks.items


def _initialized(settings: Settings, mapping: TableMapping, client: DynamoDBClient) -> bool:
    """Has `ddbridge init` run (a slot, a connector or the control table exists)?"""
    try:
        if CatchUp(settings, mapping).stream_exists():
            return True
    except DdbridgeError:
        pass
    try:
        client.describe_table(TableName=settings.dynamodb.control_table)
        return True
    except (ClientError, BotoCoreError):
        return False


# -- source --------------------------------------------------------------------------------------


def _source_checks(
    settings: Settings,
    mapping: TableMapping,
    options: ValidateOptions,
    checks: Checks,
    on_progress: Callable[[int], None],
) -> None:
    try:
        refused = _type_checks(settings, mapping, checks)
        source = SourceTable(settings, mapping, skip=refused)
        conn = source.connect()
    except DdbridgeError as exc:
        checks.add("source", "source table", "fail", str(exc).splitlines()[0], "fix source.dsn or the mapping")
        return
    with conn:
        table = source.table
        total = _one(conn, sql.SQL("SELECT count(*) FROM {}").format(table))
        figure = f"Total rows: {total:,}"
        if options.start_date or options.end_date:
            where, params = date_filter(mapping, options.start_date, options.end_date)
            in_range = _one(conn, sql.SQL("SELECT count(*) FROM {} WHERE TRUE").format(table) + where, params)
            figure += f" ({in_range:,} from {options.start_date or '…'} to {options.end_date or '…'})"
        checks.add("source", "row count", "pass", figure)
        _null_checks(source, conn, checks)
        _row_pass(source, conn, total, checks, on_progress)
        if mapping.date_column:
            _date_check(source, conn, checks)
        _replica_identity_check(settings, mapping, source, conn, checks)
        _primary_key_check(mapping, conn, checks)
        wal = _one(conn, sql.SQL("SHOW wal_level"))
        checks.add(
            "source",
            "wal_level",
            "pass" if wal == "logical" else "fail",
            f"wal_level = {wal}",
            "" if wal == "logical" else "ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL",
        )
        _publication_check(settings, mapping, conn, checks)
        _slot_check(settings, conn, checks)


def _type_checks(settings: Settings, mapping: TableMapping, checks: Checks) -> list[str]:
    """Every column's type against the type policy; returns the refused columns (the row pass skips them)."""
    with connect(settings) as conn:
        columns = table_columns(conn, mapping.schema_name, mapping.table_name)
    copied = [c for c in columns if c.name not in mapping.exclude_columns]
    refused = [c for c in copied if c.refusal]
    excluded = len(columns) - len(copied)
    note = f" ({excluded} excluded)" if excluded else ""
    if refused:
        checks.add(
            "source",
            "column types",
            "fail",
            f"{len(refused)} of {len(copied)} columns of {mapping.source} cannot be copied exactly{note}",
            REMEDY,
            [f"{mapping.source}.{c.name} ({c.declared}): {c.refusal}" for c in refused],
            always_listed=True,
        )
    else:
        checks.add("source", "column types", "pass", f"Every type of {len(copied)} columns is supported{note}")
    _template_check(mapping, {c.name: c.decision.codec or "" for c in columns}, checks)
    return [c.name for c in refused]


FREE_TEXT = {"TEXT", "VARCHAR", "BPCHAR", "CITEXT", "CHAR", "XML", "LTREE", "TSVECTOR"}


def _template_check(mapping: TableMapping, codecs: dict[str, str], checks: Checks) -> None:
    """A key template joining two free-text columns is ambiguous in principle: ('a#b', 'c') and
    ('a', 'b#c') give one key. The row pass proves the current data has no collision; this says the
    template cannot prove it for future rows."""
    risky = []
    for spec in [mapping.partition_key, *([mapping.sort_key] if mapping.sort_key else [])]:
        texts = [c for c in spec.columns if codecs.get(c) in FREE_TEXT]
        if len(texts) >= 2:
            risky.append(f"{spec.name} = '{spec.template}' joins text columns {', '.join(texts)}")
    if risky:
        checks.add(
            "source",
            "key templates",
            "warn",
            "; ".join(risky),
            "a value containing the separator could give two rows one item key (the duplicate check covers "
            "today's data only): use a separator the application never writes, or a numeric/uuid column",
        )
    else:
        checks.add("source", "key templates", "pass", "Key templates join at most one text column each")


def _one(conn: Any, query: sql.Composable, params: Sequence[Any] = ()) -> Any:
    row = conn.execute(query, params).fetchone()
    return row[0] if row else None


def _null_checks(source: SourceTable, conn: Any, checks: Checks) -> None:
    mapping = source.mapping
    columns = list(dict.fromkeys(mapping.key_columns() + mapping.required_columns))
    pk = sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c)) for c in mapping.primary_key)
    for column in columns:
        ident = sql.Identifier(column)
        count = _one(conn, sql.SQL("SELECT count(*) FROM {} WHERE {} IS NULL").format(source.table, ident))
        offenders = []
        if count:
            rows = conn.execute(
                sql.SQL("SELECT {} FROM {} WHERE {} IS NULL LIMIT {}").format(
                    pk, source.table, ident, sql.Literal(checks.limit)
                )
            ).fetchall()
            offenders = [_pk_text(mapping, r) for r in rows]
        role = "key" if column in mapping.key_columns() else "required"
        checks.add(
            "source",
            f"NULL {column}",
            "fail" if count else "pass",
            f"No NULL {source.mapper.attribute(column)} found" if not count else f"{count:,} rows with NULL {column}",
            f"{column} is a {role} column of the DynamoDB item: fix those rows"
            + (" or the key template" if role == "key" else " or drop it from required_columns")
            if count
            else "",
            offenders,
        )


def _pk_text(mapping: TableMapping, values: Sequence[Any]) -> str:
    return ", ".join(f"{c}={v}" for c, v in zip(mapping.primary_key, values, strict=True))


def _row_pass(source: SourceTable, conn: Any, total: int, checks: Checks, on_progress: Callable[[int], None]) -> None:
    """Every row through the codec: unstorable values, items over 400 KB, duplicate item keys."""
    mapping = source.mapping
    unstorable, too_big, duplicates = Tally(checks.limit), Tally(checks.limit), Tally(checks.limit)
    names = source.mapper.key_names
    with tempfile.TemporaryDirectory(prefix="ddbridge-validate-") as tmp:
        keys = Spill(Path(tmp), "keys", partitions_for(total, 200_000))

        def on_record(record: Sequence[Any]) -> None:
            pk = ", ".join(f"{c}={v}" for c, v in zip(source.columns, record, strict=True) if c in mapping.primary_key)
            try:
                key, item = source.item(source.row(record))
            except CodecError as exc:
                unstorable.add(f"{pk}: {exc}")
                return
            size = item_size(item)
            if size > MAX_ITEM_BYTES:
                too_big.add(f"{pk}: about {size:,} bytes")
            keys.add(key, (key, pk))
            if keys.count % 5000 == 0:
                on_progress(5000)

        source.copy_all(conn, on_record)
        keys.close()
        for index in range(keys.partitions):
            seen: dict[tuple[str, ...], str] = {}
            for key, pk in keys.read(index):
                first = seen.setdefault(key, pk)
                if first != pk:
                    text = ", ".join(f"{n}={v}" for n, v in zip(names, key, strict=True))
                    duplicates.add(f"{text}: rows ({first}) and ({pk})")
    checks.tallied(
        "source",
        "duplicate item keys",
        duplicates,
        "{count:,} rows share an item key",
        "No duplicate item keys found",
        "two rows would overwrite one item: make the key templates unique (include every primary-key column "
        "with separators that cannot occur in the values)",
    )
    checks.tallied(
        "source",
        "storable values",
        unstorable,
        "{count:,} rows have values DynamoDB cannot hold exactly",
        "Every value fits DynamoDB",
        "fix the values, exclude the column (exclude_columns) or cast it in a view",
    )
    checks.tallied(
        "source",
        "item size",
        too_big,
        "{count:,} rows exceed DynamoDB's 400 KB item limit",
        "Every item is under 400 KB",
        "exclude large columns (exclude_columns) or move them to S3",
    )


def _date_check(source: SourceTable, conn: Any, checks: Checks) -> None:
    column = sql.Identifier(source.mapping.date_column or "")
    row = conn.execute(
        sql.SQL("SELECT min({c})::text, max({c})::text, count(*) FILTER (WHERE {c} > now()) FROM {t}").format(
            c=column, t=source.table
        )
    ).fetchone()
    low, high, future = row if row else (None, None, 0)
    checks.add(
        "source",
        "date range",
        "warn" if future else "pass",
        f"{source.mapping.date_column} from {low} to {high}" + (f", {future:,} in the future" if future else ""),
        "future dates are copied like any other; check they are expected (scheduled payments?)" if future else "",
    )


def _replica_identity_check(
    settings: Settings, mapping: TableMapping, source: SourceTable, conn: Any, checks: Checks
) -> None:
    ident = replica_identity(conn, mapping)
    if mapping.has_derived_key():
        ok = ident == "full"
        checks.add(
            "source",
            "replica identity",
            "pass" if ok else "todo",
            f"REPLICA IDENTITY {ident.upper()}" + ("" if ok else " (the item key uses non-key columns: needs FULL)"),
            "" if ok else f"ALTER TABLE {mapping.source} REPLICA IDENTITY FULL (`ddbridge init` does it)",
        )
        return
    toastable = [
        c for c, t in zip(source.columns, source.types, strict=True) if t in ("TEXT", "JSONB", "JSON", "BYTEA")
    ]
    warn = ident != "full" and bool(toastable)
    checks.add(
        "source",
        "replica identity",
        "warn" if warn else "pass",
        f"REPLICA IDENTITY {ident.upper()}",
        f"unchanged large values of {toastable} arrive as placeholders without FULL and go to the dead-letter "
        f"topic: consider ALTER TABLE {mapping.source} REPLICA IDENTITY FULL"
        if warn
        else "",
    )


def _primary_key_check(mapping: TableMapping, conn: Any, checks: Checks) -> None:
    """A deferrable primary key lets one transaction swap key values between rows: the LSN guard orders
    changes of an item key, not of a row, so the swap would lose rows."""
    row = conn.execute(
        "SELECT con.condeferrable, array_to_string(array_agg(a.attname ORDER BY k.ord), ','), con.conname "
        "FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "CROSS JOIN LATERAL unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord) "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum "
        "WHERE n.nspname = %s AND c.relname = %s AND con.contype = 'p' GROUP BY con.condeferrable, con.conname",
        (mapping.schema_name, mapping.table_name),
    ).fetchone()
    if row is None:
        checks.add(
            "source",
            "primary key",
            "warn",
            f"{mapping.source} has no PRIMARY KEY",
            f"updates and deletes are matched by {mapping.primary_key}: they must identify one row "
            "(the duplicate-key check above proves it for the current data only)",
        )
        return
    deferrable, columns, name = bool(row[0]), str(row[1]).split(","), str(row[2])
    if deferrable:
        checks.add(
            "source",
            "primary key",
            "fail",
            f"PRIMARY KEY ({', '.join(columns)}) of {mapping.source} is DEFERRABLE",
            "a transaction can swap key values between rows, which the stream cannot apply exactly: recreate it, "
            f"ALTER TABLE {mapping.source} DROP CONSTRAINT {name}, ADD PRIMARY KEY ({', '.join(columns)})",
        )
    elif sorted(columns) != sorted(mapping.primary_key):
        checks.add(
            "source",
            "primary key",
            "warn",
            f"PRIMARY KEY ({', '.join(columns)}) differs from the mapping's primary_key {mapping.primary_key}",
            "set [[tables]].primary_key to the table's primary-key columns",
        )
    else:
        checks.add("source", "primary key", "pass", f"PRIMARY KEY ({', '.join(columns)}) NOT DEFERRABLE")


def _publication_check(settings: Settings, mapping: TableMapping, conn: Any, checks: Checks) -> None:
    pub = settings.connect.publication_name
    tables = [
        str(r[0])
        for r in conn.execute(
            "SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = %s", (pub,)
        ).fetchall()
    ]
    exists = _one(conn, sql.SQL("SELECT count(*) FROM pg_publication WHERE pubname = %s"), (pub,))
    via_root = _one(conn, sql.SQL("SELECT pubviaroot FROM pg_publication WHERE pubname = %s"), (pub,))
    if exists and is_partitioned(conn, mapping) and not via_root:
        checks.add(
            "source",
            "publication",
            "fail",
            f"{mapping.source} is partitioned and publication {pub} publishes its partitions, not the table",
            f"ALTER PUBLICATION {pub} SET (publish_via_partition_root = true) (`ddbridge init` does it): "
            "otherwise the connector never sees a change of the table",
        )
    elif not exists:
        checks.add("source", "publication", "todo", f"publication {pub} does not exist", "`ddbridge init` creates it")
    elif mapping.source not in tables:
        checks.add(
            "source",
            "publication",
            "fail",
            f"publication {pub} does not include {mapping.source}",
            "run `ddbridge init` (it sets the publication's tables)",
        )
    else:
        checks.add("source", "publication", "pass", f"publication {pub} includes {mapping.source}")


def _slot_check(settings: Settings, conn: Any, checks: Checks) -> None:
    slot = settings.connect.slot_name
    row = conn.execute(
        "SELECT active, pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint FROM pg_replication_slots "
        "WHERE slot_name = %s",
        (slot,),
    ).fetchone()
    if row is None:
        checks.add("source", "replication slot", "todo", f"slot {slot} does not exist", "the connector creates it")
        return
    active, retained = bool(row[0]), int(row[1] or 0)
    limit = settings.reconcile.max_retained_wal_mb * 1024 * 1024
    figure = f"slot {slot} {'active' if active else 'INACTIVE'}, retaining {retained / 1024 / 1024:,.1f} MB of WAL"
    if not active:
        status: Status = "fail"
        hint = "nothing is reading the slot and PostgreSQL keeps all WAL: check `ddbridge connector status`"
    elif retained > limit:
        status, hint = "warn", "WAL is piling up: is the connector keeping up? (see the troubleshooting guide)"
    else:
        status, hint = "pass", ""
    checks.add("source", "replication slot", status, figure, hint)


# -- target --------------------------------------------------------------------------------------


def _target_checks(settings: Settings, mapping: TableMapping, client: DynamoDBClient, checks: Checks) -> None:
    spec = table_spec(mapping, settings.bookkeeping.ttl)
    try:
        table = client.describe_table(TableName=mapping.target)["Table"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            refusal = aws_refusal(exc)
            if refusal is not None:
                checks.add("target", "dynamodb access", "fail", str(refusal), "fix the credentials or the policy")
            else:
                checks.add(
                    "target", "table", "fail", f"DescribeTable {mapping.target}: {exc}", "check dynamodb settings"
                )
            return
        checks.add("target", "table", "todo", f"DynamoDB table {mapping.target} does not exist", "`ddbridge init`")
        return
    except BotoCoreError as exc:
        checks.add("target", "table", "fail", f"DynamoDB unreachable: {exc}", "check dynamodb.endpoint_url/region")
        return
    checks.add(
        "target", "dynamodb access", "pass", f"DynamoDB accepted the credentials (DescribeTable {mapping.target})"
    )
    status = table.get("TableStatus", "?")
    gsis = table.get("GlobalSecondaryIndexes", [])
    checks.add(
        "target",
        "table",
        "pass" if status == "ACTIVE" else "fail",
        f"DynamoDB table {mapping.target} {status} with {len(gsis)} GSIs",
        "" if status == "ACTIVE" else "wait until the table is ACTIVE",
    )
    diffs = describe_differences(spec, dict(table))
    key_diffs = [d for d in diffs if not d.startswith("GSI")]
    checks.add(
        "target",
        "key schema",
        "fail" if key_diffs else "pass",
        "; ".join(key_diffs) or "Key schema matches the mapping " + ", ".join(f"{a} ({k})" for a, k in spec.keys),
        "the table cannot hold this mapping: recreate it (`ddbridge init` on a new table name)" if key_diffs else "",
    )
    by_name = {g["IndexName"]: g for g in gsis}
    for gsi in spec.gsis:
        problems = [d for d in diffs if d.startswith(f"GSI {gsi.name} ")]
        state = by_name.get(gsi.name, {}).get("IndexStatus", "MISSING")
        if state != "ACTIVE" and gsi.name in by_name:
            problems.append(f"GSI {gsi.name} is {state}")
        keys = ", ".join(f"{a} ({k})" for a, k in gsi.keys)
        checks.add(
            "target",
            f"GSI {gsi.name}",
            "fail" if problems else "pass",
            "; ".join(problems) or f"GSI {gsi.name} ACTIVE, keys {keys}, projection {gsi.projection}",
            "queries through this index would fail or miss items: fix or wait for it" if problems else "",
        )
    for extra in [
        d for d in diffs if d.startswith("GSI") and not any(d.startswith(f"GSI {g.name} ") for g in spec.gsis)
    ]:
        checks.add("target", "GSI", "warn", extra, "an index not in the mapping is not checked by reconcile")
    try:
        client.describe_table(TableName=settings.dynamodb.control_table)
        checks.add("target", "control table", "pass", f"control table {settings.dynamodb.control_table} exists")
    except ClientError:
        checks.add(
            "target", "control table", "todo", f"control table {settings.dynamodb.control_table} missing", "`init`"
        )


# -- pipeline ------------------------------------------------------------------------------------

# What each Kafka resource must allow ddbridge's principal (KIP-430's authorised operations).
_NEEDED = {"change topic": {"READ", "DESCRIBE"}, "dead-letter topic": {"WRITE", "DESCRIBE"}}


def _kafka_authorisation_checks(
    settings: Settings, mapping: TableMapping, admin: AdminClient, topics: set[str], checks: Checks
) -> None:
    """Whether the principal may read the change topic, write dead letters and use the consumer group,
    as the brokers' authoriser answers (without reading or writing anything)."""
    wanted = {
        "change topic": topic_for(settings, mapping.source),
        "dead-letter topic": settings.kafka.dead_letter_topic,
    }
    present = {role: topic for role, topic in wanted.items() if topic in topics}
    missing_ops: list[str] = []
    try:
        if present:
            described = admin.describe_topics(
                TopicCollection(list(present.values())), include_authorized_operations=True, request_timeout=10
            )
            for role, topic in present.items():
                allowed = _operation_names(described[topic].result().authorized_operations)
                if allowed is not None:
                    missing_ops += [f"{op} on topic {topic}" for op in sorted(_NEEDED[role] - allowed)]
        group = settings.kafka.consumer_group
        allowed = _operation_names(_describe_group(admin, group).authorized_operations)
        if allowed is not None and "READ" not in allowed:
            missing_ops.append(f"READ on group {group}")
    except KafkaException as exc:
        err = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
        why = (access_problem(err, settings.kafka) if err else None) or str(exc)
        checks.add("pipeline", "kafka ACLs", "fail", why, "grant the ACLs listed in the README (Kafka ACLs)")
        return
    checks.add(
        "pipeline",
        "kafka ACLs",
        "fail" if missing_ops else "pass",
        f"the principal lacks {', '.join(missing_ops)}"
        if missing_ops
        else "the principal may read, write dead letters and use the consumer group",
        "grant the ACLs listed in the README (Kafka ACLs)" if missing_ops else "",
    )


def _describe_group(admin: AdminClient, group: str) -> Any:
    """The group's description; the first request for a group can meet a coordinator still loading."""
    for attempt in Retrying(
        stop=stop_after_attempt(5),
        wait=wait_fixed(1),
        retry=retry_if_exception(
            lambda e: (
                isinstance(e, KafkaException)
                and bool(e.args)
                and isinstance(e.args[0], KafkaError)
                and e.args[0].code() in (KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS)
            )
        ),
        reraise=True,
    ):
        with attempt:
            futures = admin.describe_consumer_groups([group], include_authorized_operations=True, request_timeout=10)
            return futures[group].result()
    raise AssertionError("unreachable")


def _operation_names(operations: list[Any] | None) -> set[str] | None:
    """AclOperation names, or None when the brokers did not say (no authoriser)."""
    if operations is None:
        return None
    names = {op.name for op in operations}
    return names | {"DESCRIBE"} if names & {"READ", "WRITE", "ALTER", "DELETE"} else names


def _registry_check(settings: Settings, topic: str, checks: Checks) -> None:
    """The schema registry answers ddbridge (credentials, TLS) and holds the change topic's schemas."""
    url = settings.registry.url
    try:
        subjects = set(SchemaRegistryClient(registry_client_config(settings.registry)).get_subjects())
    except (SchemaRegistryError, httpx.TransportError) as exc:
        checks.add(
            "pipeline",
            "schema registry",
            "fail",
            f"schema registry at {url} did not answer: {exc}",
            "check registry.url, registry.username/password and registry.ssl_ca_location",
        )
        return
    subject = f"{topic}-value"
    held = (
        f"holds {subject}" if subject in subjects else f"no {subject} yet (Debezium registers it with its first change)"
    )
    checks.add("pipeline", "schema registry", "pass", f"schema registry at {url} answers; {held}")


def _pipeline_checks(settings: Settings, mapping: TableMapping, checks: Checks) -> None:
    access = AccessErrors(settings.kafka)
    admin = admin_client(settings.kafka, access=access)
    try:
        topics = set(admin.list_topics(timeout=10).topics)
        checks.add("pipeline", "kafka", "pass", f"Kafka reachable at {settings.kafka.bootstrap_servers}")
    except KafkaException as exc:
        why = access.problem or f"Kafka unreachable at {settings.kafka.bootstrap_servers}: {exc}"
        checks.add("pipeline", "kafka", "fail", why, "check kafka.bootstrap_servers and the security settings")
        topics = None
    if topics is not None:
        _kafka_authorisation_checks(settings, mapping, admin, topics, checks)
    if topics is not None:
        wanted = [topic_for(settings, mapping.source), settings.kafka.dead_letter_topic]
        missing = [t for t in wanted if t not in topics]
        checks.add(
            "pipeline",
            "topics",
            "todo" if missing else "pass",
            f"missing topics {missing}" if missing else f"topics {', '.join(wanted)} exist",
            "`ddbridge init` creates them" if missing else "",
        )
    if settings.connect.converter == "avro":
        _registry_check(settings, topic_for(settings, mapping.source), checks)
    try:
        status = ConnectClient(settings.connect, 10).status(settings.connect.connector_name)
    except DdbridgeError as exc:
        checks.add(
            "pipeline",
            "connector",
            "fail",
            str(exc),
            "check that Kafka Connect runs at connect.url, and connect.username/password and ssl_ca_location",
        )
        status = None
    else:
        name = settings.connect.connector_name
        if status is None:
            checks.add("pipeline", "connector", "todo", f"connector {name} is not registered", "`ddbridge init`")
        else:
            tasks = ", ".join(t["state"] for t in status.tasks) or "no tasks"
            checks.add(
                "pipeline",
                "connector",
                "pass" if status.running else "fail",
                f"connector {name} {status.state}, tasks {tasks}",
                "" if status.running else status.advice() or "see `ddbridge connector status` for the task's error",
                status.failures(),
            )
    if topics is not None and status is not None:
        try:
            lag = CatchUp(settings, mapping).lag()
            checks.add(
                "pipeline", "consumer lag", "pass", f"bridge group {settings.kafka.consumer_group} lag: {lag:,} events"
            )
        except KafkaException as exc:
            checks.add("pipeline", "consumer lag", "warn", f"lag unknown: {exc}")
