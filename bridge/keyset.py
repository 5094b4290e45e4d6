"""Keyset SQL over a table's primary key: the pieces every direct read composes (backfill chunks,
plan counts, reconcile fetches by key, validate's date-range count). Pure: each function returns SQL
and its parameters; nothing here talks to PostgreSQL.

Keys are compared as row values, ``(a, b) >= (%s::type_a, %s::type_b)``, with every stored key value
cast back to its column's type, so the order is PostgreSQL's own order of the primary key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from psycopg import sql

from bridge.config import TableMapping
from bridge.errors import ConfigError


@dataclass(frozen=True)
class KeyColumn:
    """A primary-key column and its SQL type (``format_type``), used to cast stored values back."""

    name: str
    sql_type: str


def row_key(columns: Sequence[KeyColumn]) -> sql.Composable:
    """``(a, b)`` for the key columns."""
    return sql.SQL("({})").format(sql.SQL(", ").join(sql.Identifier(c.name) for c in columns))


def key_literal(columns: Sequence[KeyColumn]) -> sql.Composable:
    """``(%s::type_a, %s::type_b)``: placeholders for a stored key, cast back to the column types."""
    return sql.SQL("({})").format(
        sql.SQL(", ").join(sql.SQL("%s::{}").format(sql.SQL(c.sql_type)) for c in columns)  # type from catalog
    )


def range_condition(
    columns: Sequence[KeyColumn],
    lower: Sequence[str] | None,
    upper: Sequence[str] | None,
    after: Sequence[str] | None = None,
    last: Sequence[str] | None = None,
) -> tuple[sql.Composable, list[Any]]:
    """The rows of the half-open key range ``[lower, upper)`` (None: unbounded), past ``after`` when a
    chunk of it was already read (``after`` is a key inside the range, so it replaces ``lower``), and
    not past ``last`` (an inclusive bound) when given."""
    key, literal = row_key(columns), key_literal(columns)
    parts: list[sql.Composable] = [sql.SQL("TRUE")]
    params: list[Any] = []
    if after is not None:
        parts.append(sql.SQL("{} > {}").format(key, literal))
        params += after
    elif lower is not None:
        parts.append(sql.SQL("{} >= {}").format(key, literal))
        params += lower
    if upper is not None:
        parts.append(sql.SQL("{} < {}").format(key, literal))
        params += upper
    if last is not None:
        parts.append(sql.SQL("{} <= {}").format(key, literal))
        params += last
    return sql.SQL(" AND ").join(parts), params


def keys_in(columns: Sequence[KeyColumn], count: int) -> sql.Composable:
    """``(a, b) IN ((%s::…, %s::…), …)`` for ``count`` keys (their values follow, key after key)."""
    return sql.SQL("{} IN ({})").format(row_key(columns), sql.SQL(", ").join([key_literal(columns)] * count))


def date_window(start: date | None, end: date | None) -> tuple[date | None, date | None]:
    """(inclusive lower, exclusive upper) bound of a date range whose end day is included: the
    upper bound is the day after ``end``, so timestamps late on the end day are inside."""
    return start, (end + timedelta(days=1) if end is not None else None)


def date_filter(mapping: TableMapping, start: date | None, end: date | None) -> tuple[sql.Composable, list[Any]]:
    """The ``AND date_column …`` clause of a date-range migration (both named days included)."""
    if start is None and end is None:
        return sql.SQL(""), []
    if not mapping.date_column:
        raise ConfigError(
            f"table {mapping.source}: --start-date/--end-date need [[tables]].date_column (e.g. date_column = "
            "'payment_date') in the config"
        )
    column = sql.Identifier(mapping.date_column)
    lower, upper = date_window(start, end)
    parts: list[sql.Composable] = []
    params: list[Any] = []
    if lower is not None:
        parts.append(sql.SQL(" AND {} >= %s").format(column))
        params.append(lower)
    if upper is not None:
        parts.append(sql.SQL(" AND {} < %s").format(column))
        params.append(upper)
    return sql.Composed(parts), params
