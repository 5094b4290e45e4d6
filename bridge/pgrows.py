"""Rows read with psycopg, in the codec's terms: each column's PostgreSQL type name and the row as
attribute values. Used by the backfill and the reconciler so that both produce exactly the items
the stream produces (DESIGN "One codec")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.types.string import TextLoader

from bridge.codec import CodecError, python_converter
from bridge.mapping import Row

# Loaded as text so the codec parses numbers inside JSON exactly, as it does for Debezium's text.
TEXT_LOADED_TYPES = ("json", "jsonb")


def configure(conn: psycopg.Connection[Any]) -> None:
    """Make a connection load json/jsonb as text (the codec parses it)."""
    for name in TEXT_LOADED_TYPES:
        conn.adapters.register_loader(name, TextLoader)


def column_types(conn: psycopg.Connection[Any], schema: str, table: str) -> dict[str, str]:
    """Column -> PostgreSQL type name (``typname`` upper-cased, ``_`` prefix for arrays), in table order."""
    rows = conn.execute(
        "SELECT a.attname, upper(t.typname), t.typtype, upper(bt.typname) "
        "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_type t ON t.oid = a.atttypid LEFT JOIN pg_type bt ON bt.oid = t.typbasetype "
        "WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        (schema, table),
    ).fetchall()
    if not rows:
        raise CodecError(f"table {schema}.{table} does not exist or has no columns")
    # A domain is encoded like its base type; an enum like text.
    return {str(r[0]): str(r[3]) if r[2] == "d" and r[3] else ("TEXT" if r[2] == "e" else str(r[1])) for r in rows}


def to_row(columns: Sequence[str], types: Sequence[str], record: Sequence[Any]) -> Row:
    """A fetched record as a codec row; a CodecError names the column."""
    return RowDecoder(columns, types)(record)


class RowDecoder:
    """``to_row`` for many records of one column list, the codec's type dispatch done once."""

    def __init__(self, columns: Sequence[str], types: Sequence[str]) -> None:
        self.columns = list(columns)
        self.converters = [python_converter(t) for t in types]

    def __call__(self, record: Sequence[Any]) -> Row:
        row: Row = {}
        try:
            for column, convert, value in zip(self.columns, self.converters, record, strict=True):
                row[column] = None if value is None else convert(value)
        except CodecError as exc:
            raise CodecError(exc.reason, column) from exc
        return row
