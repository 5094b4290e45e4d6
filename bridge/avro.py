"""Avro change events in the Confluent wire format (magic byte 0, a 4-byte schema id, the Avro datum),
decoded into the same envelope the JSON converter produces, so one codec reads both.

The writer schema is fetched once per id from the registry and cached: its parsed form for fastavro on
the hot path, and the Connect schema it was made from (Kafka Connect's AvroData keeps Connect's names
and parameters, such as Debezium's semantic types and ``__debezium.source.column.type``, in
``connect.name``/``connect.parameters``). Logical types are dropped before parsing: the codec reads
Debezium's raw forms (epoch numbers, strings), exactly as the JSON converter writes them.
"""

from __future__ import annotations

import base64
import io
import struct
from typing import Any, Protocol

import fastavro
import orjson

from bridge.errors import CodecError
from bridge.events import Envelope, EnvelopeSchema

MAGIC = 0
_PRIMITIVES = {
    "null": "null",
    "boolean": "boolean",
    "int": "int32",
    "long": "int64",
    "float": "float32",
    "double": "float64",
    "bytes": "bytes",
    "string": "string",
    "enum": "string",
    "fixed": "bytes",
}


class UnknownSchema(Exception):  # a lookup outcome, raised by a SchemaSource
    """The registry has no schema with this id."""


class SchemaSource(Protocol):
    """Writer schemas by id (``bridge.registry.RegistrySchemas`` asks the schema registry)."""

    def avro_schema(self, schema_id: int) -> str:
        """The schema's Avro JSON text; UnknownSchema when the registry has none with this id."""
        ...


class WriterSchema:
    """One writer schema: parsed for fastavro, and as the Connect schema the JSON converter would show."""

    def __init__(self, schema_id: int, text: str) -> None:
        try:
            avro = orjson.loads(text)
            self.connect = _connect(avro, {}, "")
            self.parsed = fastavro.parse_schema(_without_logical_types(avro))
        except (orjson.JSONDecodeError, fastavro.schema.SchemaParseException, KeyError, TypeError) as exc:
            raise CodecError(f"schema id {schema_id} from the registry is not a usable Avro schema: {exc}") from exc
        self.needs_fixing = _needs_fixing(self.connect)
        self._envelope: EnvelopeSchema | None = None

    def envelope(self) -> EnvelopeSchema:
        """The row images' columns, read from the Connect schema on first use (once per schema id)."""
        if self._envelope is None:
            self._envelope = EnvelopeSchema.of(self.connect)
        return self._envelope


class AvroEnvelopes:
    """``decode(raw) -> envelope`` for Avro record values, writer schemas cached by id."""

    def __init__(self, source: SchemaSource) -> None:
        self.source = source
        self.schemas: dict[int, WriterSchema] = {}
        self.unusable: dict[int, CodecError] = {}  # ids whose schema cannot be used: not fetched again

    def writer(self, schema_id: int) -> WriterSchema:
        schema = self.schemas.get(schema_id)
        if schema is None:
            if schema_id in self.unusable:
                raise CodecError(self.unusable[schema_id].reason)
            text = self._schema_text(schema_id)  # an unknown id is asked again: a new schema may be replicating
            try:
                schema = self.schemas[schema_id] = WriterSchema(schema_id, text)
            except CodecError as exc:
                self.unusable[schema_id] = exc
                raise
        return schema

    def _schema_text(self, schema_id: int) -> str:
        try:
            return self.source.avro_schema(schema_id)
        except UnknownSchema as exc:
            raise CodecError(
                f"the schema registry has no schema with id {schema_id}: the record was written against "
                "another registry (check registry.url) or its schema was deleted"
            ) from exc

    def __call__(self, raw: bytes) -> Envelope:
        if len(raw) < 5 or raw[0] != MAGIC:
            raise CodecError(
                "not Avro in the Confluent wire format (magic byte 0 and a schema id): the topic holds another "
                "format — is connect.converter what the connector really uses?"
            )
        schema_id = int.from_bytes(raw[1:5], "big")
        writer = self.writer(schema_id)
        try:
            value = fastavro.schemaless_reader(io.BytesIO(raw[5:]), writer.parsed, None)
        except (EOFError, ValueError, IndexError, UnicodeDecodeError, TypeError) as exc:
            raise CodecError(f"the Avro datum does not match its writer schema (id {schema_id}): {exc!r}") from exc
        payload = _as_json_converter(value, writer.connect) if writer.needs_fixing else value
        return Envelope(payload, writer.connect, writer.envelope())


def _full_name(avro: dict[str, Any], namespace: str) -> str:
    name = str(avro["name"])
    space = avro.get("namespace", namespace)
    return name if "." in name or not space else f"{space}.{name}"


def _connect(avro: Any, named: dict[str, Any], namespace: str, optional: bool = False) -> dict[str, Any]:
    """The Connect schema (as the JSON converter writes it) that Kafka Connect's AvroData turned into
    ``avro``; ``named`` collects the record types defined so far (later uses refer to them by name)."""
    if isinstance(avro, list):  # a union: AvroData writes an optional schema as ["null", schema]
        branches = [b for b in avro if b != "null"]
        if len(branches) != 1:
            raise CodecError(f'unsupported Avro union {avro!r}: only ["null", type] comes from Kafka Connect')
        return _connect(branches[0], named, namespace, optional="null" in avro)
    if isinstance(avro, str):
        if avro in _PRIMITIVES:
            return {"type": _PRIMITIVES[avro], "optional": optional}
        known = named.get(avro) or named.get(f"{namespace}.{avro}")
        if known is None:
            raise CodecError(f"the Avro schema refers to the undefined type {avro!r}")
        return {**known, "optional": optional}
    kind = avro["type"]
    if isinstance(kind, dict | list):  # {"type": {...}} nests a schema
        return _connect(kind, named, namespace, optional)
    out: dict[str, Any] = {"type": _PRIMITIVES.get(kind, kind), "optional": optional}
    if kind == "record":
        full = _full_name(avro, namespace)
        inner = full.rsplit(".", 1)[0] if "." in full else ""
        out["type"] = "struct"
        out["fields"] = [{**_connect(f["type"], named, inner), "field": f["name"]} for f in avro["fields"]]
        out["name"] = avro.get("connect.name", full)
        named[full] = {k: v for k, v in out.items() if k != "optional"}
    elif kind == "array":
        out["items"] = _connect(avro["items"], named, namespace)
    elif kind == "map":
        out["keys"] = {"type": "string", "optional": False}
        out["values"] = _connect(avro["values"], named, namespace)
    elif kind in ("enum", "fixed"):
        named[_full_name(avro, namespace)] = {"type": _PRIMITIVES[kind]}
    if "connect.type" in avro:  # int8/int16 travel as Avro int
        out["type"] = avro["connect.type"]
    if "connect.name" in avro:
        out["name"] = avro["connect.name"]
    if "connect.version" in avro:
        out["version"] = avro["connect.version"]
    if "connect.parameters" in avro:
        out["parameters"] = avro["connect.parameters"]
    return out


def _without_logical_types(avro: Any) -> Any:
    """``avro`` without ``logicalType``: fastavro then returns the encoded numbers and bytes as they are."""
    if isinstance(avro, list):
        return [_without_logical_types(a) for a in avro]
    if isinstance(avro, dict):
        return {k: _without_logical_types(v) for k, v in avro.items() if k != "logicalType"}
    return avro


def _needs_fixing(connect: dict[str, Any]) -> bool:
    """Whether any field is binary or a 32-bit float (their Avro values differ from the JSON converter's)."""
    if connect.get("type") in ("bytes", "float32"):
        return True
    children = [*connect.get("fields", []), connect.get("items") or {}, connect.get("values") or {}]
    return any(_needs_fixing(c) for c in children if c)


def _float32(value: float) -> float:
    """A 32-bit float as the JSON converter writes it: the shortest decimal that is the same float32
    (fastavro widens 0.1f to 0.10000000149011612; the JSON converter writes 0.1)."""
    single: float = struct.unpack("<f", struct.pack("<f", value))[0]
    for digits in range(1, 10):
        shortest = float(f"{single:.{digits}g}")
        if struct.unpack("<f", struct.pack("<f", shortest))[0] == single:
            return shortest
    return single


def _as_json_converter(value: Any, connect: dict[str, Any]) -> Any:
    """The decoded datum as the JSON converter writes it: bytes as base64 text, 32-bit floats shortest."""
    if value is None:
        return None
    kind = connect.get("type")
    if kind == "struct" and isinstance(value, dict):
        fields = {f["field"]: f for f in connect["fields"]}
        return {k: _as_json_converter(v, fields[k]) if k in fields else v for k, v in value.items()}
    if kind == "array" and isinstance(value, list):
        return [_as_json_converter(v, connect["items"]) for v in value]
    if kind == "map" and isinstance(value, dict):
        return {k: _as_json_converter(v, connect["values"]) for k, v in value.items()}
    if kind == "bytes" and isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if kind == "float32" and isinstance(value, float):
        return _float32(value)
    return value
