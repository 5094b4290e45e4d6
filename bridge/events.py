"""Debezium change events (JSON converter with schemas) parsed into rows of codec values. Pure."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import orjson

from bridge.codec import UNAVAILABLE, AttributeValue, from_debezium
from bridge.errors import CodecError, MissingColumnTypes
from bridge.pgtypes import TypeRegistry

SOURCE_TYPE = "__debezium.source.column.type"
_UNAVAILABLE_B64 = base64.b64encode(UNAVAILABLE.encode()).decode()

Row = dict[str, AttributeValue | None]


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


def _object(value: Any, what: str) -> dict[str, Any]:
    """``value`` if it is a JSON object; a malformed record is a CodecError."""
    if not isinstance(value, dict):
        raise CodecError(f"malformed change event: {what} is {type(value).__name__}, not an object")
    return value


def _column_types(struct_schema: Any) -> dict[str, tuple[str, str | None]]:
    """Column -> (type name as Debezium reports it, semantic name; for an array, its items' name)."""
    types: dict[str, tuple[str, str | None]] = {}
    fields = _object(struct_schema, "a row schema").get("fields", [])
    if not isinstance(fields, list):
        raise CodecError("malformed change event: a row schema's fields are not a list")
    for f in fields:
        f = _object(f, "a field schema")
        params = f.get("parameters") or {}
        pg_type = params.get(SOURCE_TYPE) if isinstance(params, dict) else None
        if pg_type is None:
            raise MissingColumnTypes(
                f"change events carry no PostgreSQL column types (field {f.get('field')!r}): the connector must set "
                "column.propagate.source.type=.* — register it with `ddbridge connector register`"
            )
        name, items = f.get("field"), f.get("items")
        if not isinstance(name, str) or not isinstance(pg_type, str):
            raise CodecError(f"malformed change event: a field schema has no name or type ({name!r}, {pg_type!r})")
        semantic = _object(items, "an array's items schema").get("name") if f.get("type") == "array" else f.get("name")
        types[name] = (pg_type, semantic if isinstance(semantic, str) else None)
    return types


def _is_unavailable(pg_type: str, value: Any) -> bool:
    if isinstance(value, str):
        return value == UNAVAILABLE or (value == _UNAVAILABLE_B64 and pg_type.upper() == "BYTEA")
    return isinstance(value, list) and UNAVAILABLE in value


ColumnTypes = dict[str, tuple[str, str | None]]  # column -> (PostgreSQL type, semantic name)


@dataclass(frozen=True, slots=True)
class EnvelopeSchema:
    """A change event's Connect schema, read once: the columns of each row image. The JSON converter
    sends it with every record; an Avro writer schema is read once per schema id (``bridge.avro``)."""

    before: ColumnTypes | None
    after: ColumnTypes | None

    @classmethod
    def of(cls, schema: Any) -> EnvelopeSchema:
        envelope = _object(schema, "the schema").get("fields", [])
        if not isinstance(envelope, list):
            raise CodecError("malformed change event: the schema's fields are not a list")
        fields = {str(f.get("field")): f for f in (_object(f, "an envelope field") for f in envelope)}
        before, after = fields.get("before"), fields.get("after")
        return cls(
            _column_types(before) if before is not None else None,
            _column_types(after) if after is not None else None,
        )


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
    return _decode_row(_column_types(struct_schema), payload, registry, excluded)


def _decode_row(
    types: ColumnTypes | None, payload: Any, registry: TypeRegistry, excluded: frozenset[str]
) -> tuple[Row | None, set[str]]:
    if payload is None or types is None:  # no image, or an envelope without this row field
        return None, set()
    row: Row = {}
    unavailable: set[str] = set()
    for column, value in _object(payload, "a row image").items():
        if column in excluded:
            continue
        if column not in types:
            raise CodecError(f"malformed change event: column {column} is not in the event's schema", column)
        pg_type, semantic = types[column]
        if _is_unavailable(pg_type, value):
            unavailable.add(column)
            continue
        try:
            row[column] = from_debezium(registry.codec_type(pg_type), value, semantic)
        except CodecError as exc:
            raise CodecError(exc.reason, column) from exc
    return row, unavailable


@dataclass(frozen=True, slots=True)
class Envelope:
    """A decoded record value: the event's payload with its schema (as the Connect schema's JSON, and
    read when a decoder has it at hand)."""

    payload: Any
    schema: Any
    parsed: EnvelopeSchema | None = None


def json_envelope(raw: bytes) -> Envelope:
    """A record value of the JSON converter (schemas enabled) as its envelope. CodecError if it is not one."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise CodecError(f"not JSON: {exc} (is the connector's converter Avro? set connect.converter)") from exc
    if not isinstance(doc, dict) or "payload" not in doc or "schema" not in doc:
        raise CodecError("not a Debezium envelope with schema (value.converter.schemas.enable must be true)")
    return Envelope(doc["payload"], doc["schema"])


def parse_change_event(
    raw: bytes, registry: TypeRegistry = BUILTIN_TYPES, excluded: frozenset[str] = frozenset()
) -> ChangeEvent:
    """Parse one JSON Kafka record value (``excluded`` columns are not decoded). Raises CodecError for a
    poison record."""
    return parse_envelope(json_envelope(raw), registry, excluded)


def parse_envelope(
    doc: Envelope, registry: TypeRegistry = BUILTIN_TYPES, excluded: frozenset[str] = frozenset()
) -> ChangeEvent:
    """Parse one change event's envelope, whichever converter produced it (JSON, or Avro through
    ``bridge.avro``). Raises CodecError for a poison record."""
    payload = doc.payload
    if not isinstance(payload, dict) or "op" not in payload:
        raise CodecError("not a Debezium change event (no 'op')")
    schema = doc.parsed or EnvelopeSchema.of(doc.schema)
    source = _object(payload.get("source") or {}, "the source block")
    table = f"{source.get('schema')}.{source.get('table')}"
    before, _ = _decode_row(schema.before, payload.get("before"), registry, excluded)
    after, unavailable = _decode_row(schema.after, payload.get("after"), registry, excluded)
    lsn, ts_ms = source.get("lsn"), source.get("ts_ms")
    if lsn is not None and (isinstance(lsn, bool) or not isinstance(lsn, int)):
        raise CodecError(f"malformed change event: source.lsn {lsn!r} is not an integer")
    if ts_ms is not None and (isinstance(ts_ms, bool) or not isinstance(ts_ms, int)):
        raise CodecError(f"malformed change event: source.ts_ms {ts_ms!r} is not an integer")
    row_types = schema.after or schema.before or {}
    columns = tuple((c, t) for c, (t, _) in row_types.items() if c not in excluded)
    return ChangeEvent(
        op=str(payload["op"]),
        table=table,
        lsn=lsn,
        ts_ms=ts_ms,
        before=before,
        after=after,
        unavailable=unavailable,
        columns=columns,
    )
