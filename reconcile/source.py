"""The source table as the reconciler reads it: a whole-table COPY in one snapshot, rows fetched by
primary key, random samples, all turned into items by the shared codec and mapping."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg import sql

from bridge import pgrows
from bridge.codec import scalar_text, text_converter
from bridge.config import Settings, TableMapping
from bridge.errors import CodecError
from bridge.keyset import KeyColumn, keys_in
from bridge.mapping import ItemKey, Row, RowMapper
from bridge.pgtypes import Column
from bridge.postgres import connect, key_columns
from reconcile.canonical import Item, KeyTexts

Connection = psycopg.Connection[Any]
FETCH_BATCH = 500
BlockRange = tuple[int, int | None]  # heap blocks [first, last); None: to the end


def block_ranges(blocks: int, readers: int) -> list[BlockRange]:
    """``readers`` contiguous ranges covering every heap block; the last is open-ended, so rows in
    blocks past the size measured at the snapshot are still read."""
    readers = max(1, min(readers, blocks))
    starts = [blocks * i // readers for i in range(readers)]
    ends: list[int | None] = [*starts[1:], None]
    return list(zip(starts, ends, strict=True))


def _block_filter(blocks: BlockRange) -> sql.Composable:
    first, last = blocks
    parts = []
    if first > 0:
        parts.append(sql.SQL("ctid >= {}::tid").format(sql.Literal(f"({first},0)")))
    if last is not None:
        parts.append(sql.SQL("ctid < {}::tid").format(sql.Literal(f"({last},0)")))
    return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(parts) if parts else sql.SQL("")


def key_tuple(key: ItemKey) -> KeyTexts:
    """An ItemKey as the text tuple the reconciler matches on."""
    return tuple(text for _, _, text in key.parts)


class SourceTable:
    """One mapped source table, read through the shared codec."""

    def __init__(self, settings: Settings, mapping: TableMapping, skip: Sequence[str] = ()) -> None:
        self.settings = settings
        self.mapping = mapping
        self.skip = [*mapping.exclude_columns, *skip]  # columns never read
        self.mapper = RowMapper(mapping)
        self.table = sql.Identifier(mapping.schema_name, mapping.table_name)
        self.columns: list[str] = []
        self.types: list[str] = []
        self.keys: list[KeyColumn] = []
        self.read: list[Column] = []
        self._decode: pgrows.RowDecoder | None = None

    def connect(self) -> Connection:
        """A configured connection (json as text); loads the column list on first use."""
        conn = connect(self.settings)
        pgrows.configure(conn)
        if not self.columns:
            m = self.mapping
            self.read = pgrows.copied_columns(conn, m.schema_name, m.table_name, self.skip)
            self.columns, self.types = [c.name for c in self.read], pgrows.codec_types(self.read)
            self.keys = key_columns(conn, self.mapping)
        return conn

    def _select(self) -> sql.Composable:
        return sql.SQL("SELECT {} FROM {}").format(pgrows.select_list(self.read), self.table)

    def row(self, record: Sequence[Any]) -> Row:
        """A fetched record as a codec row (CodecError names the column)."""
        if self._decode is None:
            self._decode = pgrows.RowDecoder(self.columns, self.types)
        return self._decode(record)

    def item(self, row: Row) -> tuple[KeyTexts, Item]:
        """The item key and the item a row must be in DynamoDB."""
        key, item = self.mapper.item(row)
        return key_tuple(key), item

    def key_only(self, record: Sequence[Any]) -> tuple[KeyTexts, tuple[str, ...]]:
        """The item key and primary key of a record, encoding only the key columns."""
        by_name = dict(zip(self.columns, zip(self.types, record, strict=True), strict=True))
        row: Row = {}
        for column in self.mapping.key_columns():
            pg_type, value = by_name[column]
            try:
                row[column] = None if value is None else text_converter(pg_type)(value)
            except CodecError as exc:
                raise CodecError(exc.reason, column) from exc
        return key_tuple(self.mapper.key(row)), self.primary_key(row)

    def primary_key(self, row: Row) -> tuple[str, ...]:
        """The row's primary-key values as text (castable back by ``fetch``)."""
        return tuple(scalar_text(v) if (v := row.get(c)) is not None else "" for c in self.mapping.primary_key)

    def copy_all(
        self,
        conn: Connection,
        on_record: Callable[[Sequence[Any]], None],
        *,
        snapshot: str | None = None,
        blocks: BlockRange = (0, None),
        on_snapshot: Callable[[], None] = lambda: None,
    ) -> str:
        """Stream every row in one REPEATABLE READ snapshot (COPY): a new one, or ``snapshot`` exported by
        another transaction (``export_snapshot``; ``on_snapshot`` is called once it is imported, after
        which the exporter may end); ``blocks`` limits the read to heap blocks [first, last). Returns the
        WAL position of a new snapshot ("" for an imported one)."""
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            lsn = ""
            if snapshot is None:
                row = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
                lsn = str(row[0]) if row else ""
            else:
                conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
                on_snapshot()
            cur = pgrows.text_cursor(conn)
            cur.execute(sql.Composed([self._select(), sql.SQL(" LIMIT 0")]))
            oids = [d.type_code for d in cur.description or []]
            query = sql.Composed([self._select(), _block_filter(blocks)])
            with cur.copy(sql.SQL("COPY ({}) TO STDOUT").format(query)) as copy:
                copy.set_types(oids)
                for record in copy.rows():
                    on_record(record)
        return lsn

    def export_snapshot(self, conn: Connection) -> tuple[str, str, int]:
        """Open a REPEATABLE READ transaction on ``conn`` and export its snapshot: (snapshot id, its WAL
        position, the table's heap blocks). Keep the transaction open until every reader imported it, and no
        longer: it holds back vacuum (``release_snapshot``)."""
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        row = conn.execute(
            "SELECT pg_export_snapshot(), pg_current_wal_insert_lsn()::text, "
            "pg_relation_size(format('%%I.%%I', %s::text, %s::text)::regclass) / current_setting('block_size')::bigint",
            (self.mapping.schema_name, self.mapping.table_name),
        ).fetchone()
        if row is None:
            raise RuntimeError("pg_export_snapshot() returned nothing")
        return str(row[0]), str(row[1]), int(row[2])

    def count(self, conn: Connection) -> int:
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(self.table)).fetchone()
        return int(row[0]) if row else 0

    def fetch(self, conn: Connection, pks: Sequence[Sequence[str]]) -> tuple[str, list[tuple[Any, ...]]]:
        """Rows by primary key (text values) in one snapshot; returns (WAL position, records)."""
        records: list[tuple[Any, ...]] = []
        wanted = list(dict.fromkeys(tuple(pk) for pk in pks))
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            row = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
            for start in range(0, len(wanted), FETCH_BATCH):
                chunk = wanted[start : start + FETCH_BATCH]
                query = sql.SQL("{} WHERE {}").format(self._select(), keys_in(self.keys, len(chunk)))
                records += pgrows.text_cursor(conn).execute(query, [v for pk in chunk for v in pk]).fetchall()
        return (str(row[0]) if row else ""), records

    def sample(self, conn: Connection, size: int) -> list[tuple[Any, ...]]:
        """``size`` random rows."""
        if size <= 0:
            return []
        query = sql.SQL("{} ORDER BY random() LIMIT {}").format(self._select(), sql.Literal(size))
        return pgrows.text_cursor(conn).execute(query).fetchall()

    def where_equal(self, conn: Connection, columns: dict[str, Any], limit: int) -> list[tuple[Any, ...]]:
        """Rows whose columns equal the given (Python) values, at most ``limit``."""
        condition = sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in columns)
        query = sql.SQL("{} WHERE {} LIMIT {}").format(self._select(), condition, sql.Literal(limit))
        return pgrows.text_cursor(conn).execute(query, list(columns.values())).fetchall()

    # -- from an item back to its row ----------------------------------------------------------

    def primary_key_of_item(self, key: KeyTexts, item: Item | None) -> tuple[str, ...] | None:
        """The primary key of the row an item stands for: from its attributes, else parsed from the
        key templates; None when neither says."""
        values: dict[str, str] = {}
        if item:
            for column in self.mapping.primary_key:
                attribute = item.get(self.mapper.attribute(column))
                if attribute is not None:
                    values[column] = scalar_text(attribute)
        for spec, text in zip(self.mapper.key_attributes, key, strict=True):
            for column, parsed in template_values(spec.template, text).items():
                values.setdefault(column, parsed)
        if not all(c in values for c in self.mapping.primary_key):
            return None
        return tuple(values[c] for c in self.mapping.primary_key)


def template_values(template: str, text: str) -> dict[str, str]:
    """The column values a key template produced ``text`` from (first match; {} if it does not fit)."""
    pattern = ""
    names: list[str] = []
    for literal, name in re.findall(r"([^{]*)(?:\{(\w+)\})?", template):
        pattern += re.escape(literal)
        if name:
            if name in names:
                pattern += f"(?P={name})"
            else:
                names.append(name)
                pattern += f"(?P<{name}>.*?)"
    match = re.fullmatch(pattern, text)
    return {k: v for k, v in match.groupdict().items()} if match else {}


def attribute_columns(mapper: RowMapper, columns: Sequence[str], attribute: str) -> list[str]:
    """The source columns an attribute is built from (a key template's columns, or one column)."""
    for spec in mapper.key_attributes:
        if spec.name == attribute:
            return list(spec.columns)
    return [c for c in columns if mapper.attribute(c) == attribute and c not in mapper.excluded]
