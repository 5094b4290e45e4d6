"""Debezium change events (JSON converter with schemas) parsed into rows of codec values. Pure."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import orjson

from bridge.codec import UNAVAILABLE, AttributeValue, CodecError, from_debezium
from bridge.errors import TerminalError
from bridge.pgtypes import TypeRegistry

SOURCE_TYPE = "__debezium.source.column.type"
_UNAVAILABLE_B64 = base64.b64encode(UNAVAILABLE.encode()).decode()

Row = dict[str, AttributeValue | None]


class MissingColumnTypes(TerminalError):
    """Events lack the PostgreSQL column types the codec needs (connector misconfigured)."""


@dataclass(slots=True)
class ChangeEvent:
    """One change of one source row."""

    op: str  # c(reate) u(pdate) d(elete) r(ead, snapshot) t(runcate) m(essage)
    table: str  # schema.table
    lsn: int | None
    ts_ms: int | None
    before: Row | None
    after: Row | None
    unavailable: set[str] = field(default_factory=set)  # after-columns Debezium could not read (TOAST)
    columns: tuple[tuple[str, str], ...] = ()  # (column, type) of the row schema, excluded columns left out


BUILTIN_TYPES = TypeRegistry()  # built-in type names only; the bridge passes one that can read the catalog


def _column_types(struct_schema: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    """Column -> (type name as Debezium reports it, semantic name; for an array, its items' name)."""
    types: dict[str, tuple[str, str | None]] = {}
    for f in struct_schema.get("fields", []):
        params = f.get("parameters") or {}
        pg_type = params.get(SOURCE_TYPE)
        if pg_type is None:
            raise MissingColumnTypes(
                f"change events carry no PostgreSQL column types (field {f.get('field')!r}): the connector must set "
                "column.propagate.source.type=.* — register it with `ddbridge connector register`"
            )
        semantic = (f.get("items") or {}).get("name") if f.get("type") == "array" else f.get("name")
        types[f["field"]] = (pg_type, semantic)
    return types


def _is_unavailable(pg_type: str, value: Any) -> bool:
    if value == UNAVAILABLE or (pg_type.upper() == "BYTEA" and value == _UNAVAILABLE_B64):
        return True
    return isinstance(value, list) and UNAVAILABLE in value


def decode_row(
    struct_schema: dict[str, Any],
    payload: dict[str, Any] | None,
    registry: TypeRegistry = BUILTIN_TYPES,
    excluded: frozenset[str] = frozenset(),
) -> tuple[Row | None, set[str]]:
    """A row image through the codec, without the excluded columns; also returns the columns holding
    Debezium's TOAST placeholder. A value or type that cannot be stored exactly is a CodecError naming
    the column."""
    if payload is None:
        return None, set()
    types = _column_types(struct_schema)
    row: Row = {}
    unavailable: set[str] = set()
    for column, value in payload.items():
        if column in excluded:
            continue
        pg_type, semantic = types[column]
        if _is_unavailable(pg_type, value):
            unavailable.add(column)
            continue
        try:
            row[column] = from_debezium(registry.codec_type(pg_type), value, semantic)
        except CodecError as exc:
            raise CodecError(exc.reason, column) from exc
        except (ValueError, OverflowError, TypeError) as exc:  # a value of the wrong shape for its type
            raise CodecError(f"{pg_type} value {value!r} could not be decoded: {exc}", column) from exc
    return row, unavailable


def parse_change_event(
    raw: bytes, registry: TypeRegistry = BUILTIN_TYPES, excluded: frozenset[str] = frozenset()
) -> ChangeEvent:
    """Parse one Kafka record value (``excluded`` columns are not decoded). Raises CodecError for a
    poison record."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise CodecError(f"not JSON: {exc}") from exc
    if not isinstance(doc, dict) or "payload" not in doc or "schema" not in doc:
        raise CodecError("not a Debezium envelope with schema (value.converter.schemas.enable must be true)")
    payload, schema = doc["payload"], doc["schema"]
    if not isinstance(payload, dict) or "op" not in payload:
        raise CodecError("not a Debezium change event (no 'op')")
    fields = {f["field"]: f for f in schema.get("fields", [])}
    source = payload.get("source") or {}
    table = f"{source.get('schema')}.{source.get('table')}"
    before, _ = (
        decode_row(fields["before"], payload.get("before"), registry, excluded) if "before" in fields else (None, set())
    )
    after, unavailable = (
        decode_row(fields["after"], payload.get("after"), registry, excluded) if "after" in fields else (None, set())
    )
    lsn = source.get("lsn")
    row_schema = fields.get("after") or fields.get("before") or {}
    columns = tuple((c, t) for c, (t, _) in _column_types(row_schema).items() if c not in excluded)
    return ChangeEvent(
        op=str(payload["op"]),
        table=table,
        lsn=int(lsn) if lsn is not None else None,
        ts_ms=source.get("ts_ms"),
        before=before,
        after=after,
        unavailable=unavailable,
        columns=columns,
    )
