"""Rows read straight from PostgreSQL, in the codec's terms. Used by the backfill, the reconciler and
repairs so that they produce exactly the items the stream produces (DESIGN "One codec").

Every value is read as PostgreSQL's own text output (``text_cursor``: no psycopg type loaders), in a
session whose settings fix that output (``configure``): ISO dates, UTC, ISO-8601 intervals, hex bytea.
The columns come from ``bridge.pgtypes``: excluded columns are never read, and a column whose type is
refused stops the job before anything is written (``RefusedColumns``), as ``ddbridge validate`` says beforehand.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import postgres, sql
from psycopg.types.string import TextLoader

from bridge.codec import text_converter
from bridge.errors import CodecError, RefusedColumns
from bridge.mapping import Row
from bridge.pgtypes import REMEDY, Column, table_columns

SESSION = {
    "DateStyle": "ISO, MDY",
    "TimeZone": "UTC",
    "IntervalStyle": "iso_8601",
    "bytea_output": "hex",
    "extra_float_digits": "1",
}


def configure(conn: psycopg.Connection[Any]) -> None:
    """Fix the session settings that shape PostgreSQL's text output (the codec's input)."""
    settings = [sql.SQL("set_config({}, {}, false)").format(sql.Literal(k), sql.Literal(v)) for k, v in SESSION.items()]
    conn.execute(sql.SQL("SELECT ") + sql.SQL(", ").join(settings))


_BUILTIN_OIDS = [oid for info in postgres.types for oid in (info.oid, info.array_oid) if oid]


def text_cursor(conn: psycopg.Connection[Any]) -> psycopg.Cursor[Any]:
    """A cursor that returns every value as PostgreSQL's text output (no psycopg type loaders); the
    connection's other cursors keep loading Python objects."""
    cur = conn.cursor()
    for oid in _BUILTIN_OIDS:
        cur.adapters.register_loader(oid, TextLoader)
    return cur


def copied_columns(conn: psycopg.Connection[Any], schema: str, table: str, excluded: Sequence[str]) -> list[Column]:
    """The columns a job reads (table order, excluded ones left out); refused ones raise RefusedColumns."""
    columns = [c for c in table_columns(conn, schema, table) if c.name not in excluded]
    refused = [c for c in columns if c.refusal]
    if refused:
        listed = "; ".join(f"{c.name} ({c.declared}): {c.refusal}" for c in refused)
        raise RefusedColumns(f"table {schema}.{table} has columns ddbridge cannot copy exactly: {listed}. {REMEDY}")
    return columns


def column_types(
    conn: psycopg.Connection[Any], schema: str, table: str, excluded: Sequence[str] = ()
) -> dict[str, str]:
    """Column -> codec type of the columns a job reads (``copied_columns``), in table order."""
    return {c.name: c.decision.codec or "?" for c in copied_columns(conn, schema, table, excluded)}


def select_list(columns: Sequence[Column]) -> sql.Composable:
    """The SELECT list reading ``columns`` in the codec's input form."""
    parts: list[sql.Composable] = []
    for column in columns:
        ident = sql.Identifier(column.name)
        if column.decision.via_numeric:
            parts.append(sql.SQL("{}::numeric AS {}").format(ident, ident))
        else:
            parts.append(ident)
    return sql.SQL(", ").join(parts)


def codec_types(columns: Sequence[Column]) -> list[str]:
    """The codec type of each column."""
    return [c.decision.codec or "?" for c in columns]


def to_row(columns: Sequence[str], types: Sequence[str], record: Sequence[Any]) -> Row:
    """A fetched record as a codec row; a CodecError names the column."""
    return RowDecoder(columns, types)(record)


class RowDecoder:
    """``to_row`` for many records of one column list, the codec's type dispatch done once."""

    def __init__(self, columns: Sequence[str], types: Sequence[str]) -> None:
        self.columns = list(columns)
        self.converters = [text_converter(t) for t in types]

    def __call__(self, record: Sequence[Any]) -> Row:
        row: Row = {}
        try:
            for column, convert, value in zip(self.columns, self.converters, record, strict=True):
                row[column] = None if value is None else convert(value)
        except CodecError as exc:
            raise CodecError(exc.reason, column) from exc
        return row
